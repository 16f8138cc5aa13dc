"""Fixtures of the integration's tests, which run in a real Home Assistant
against the engine's real local meter: ``s8000-engine run --simulate`` in a
process of its own, serving Modbus TCP on loopback or RTU on a pseudo-terminal
pair.  Tests that talk to it ask for ``socket_enabled`` (the plugin blocks
sockets otherwise)."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TYPE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s8000.const import CONF_UNIT_ID, DOMAIN
from s8000_engine.client.client import connect_tcp
from s8000_engine.storage.store import DATABASE_NAME, Store
from tests.engine.meterproc import engine, free_port

__all__ = ["free_port"]  # the tests import it from here

SERIAL = "4200012345"
MAC = "00:21:B6:12:34:56"

# pytest-homeassistant-custom-component turns SQLAlchemy's engine logger up to
# INFO as it loads (a copy of core's tests/conftest.py), so every statement the
# recorder runs is logged, and what its thread logs after a test has ended
# reaches the output uncaptured: thousands of lines.  A statement is of no use
# in a failure here.
logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/s8000."""
    return


def seed_store(data: Path, serial: str = SERIAL, mac: str = MAC) -> None:
    """Give a new data directory a known serial number and MAC address."""
    data.mkdir(parents=True, exist_ok=True)
    with Store.open(data / DATABASE_NAME) as store:
        store.set_meta("serial", serial)
        store.set_meta("mac", mac)


def _crc16(frame: bytes) -> bytes:
    """Modbus RTU's CRC (polynomial 0xA001), low byte first."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def _rtu_read(device: str, unit_id: int, address: int, count: int) -> list[int] | None:
    """Holding registers read over Modbus RTU on the serial device ``device``
    (None: no answer, or a wrong one)."""
    request = bytes([unit_id, 0x03]) + address.to_bytes(2, "big") + count.to_bytes(2, "big")
    size = 5 + 2 * count  # unit, function, byte count, the registers, the CRC
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        tty.setraw(fd)
        os.write(fd, request + _crc16(request))
        received = b""
        deadline = time.monotonic() + 0.3
        while len(received) < size and time.monotonic() < deadline:
            if select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                received += os.read(fd, 256)
        # Whatever else comes (an answer to an earlier try, late) is read
        # and dropped here, not left for Home Assistant's first request.
        while select.select([fd], [], [], 0.05)[0]:
            os.read(fd, 256)
    finally:
        os.close(fd)
    if (
        len(received) != size
        or received[:3] != bytes([unit_id, 0x03, 2 * count])
        or _crc16(received[:-2]) != received[-2:]
    ):
        return None
    return [int.from_bytes(received[3 + 2 * i : 5 + 2 * i], "big") for i in range(count)]


def _tcp_read(host: str, port: int, unit_id: int, address: int, count: int) -> list[int] | None:
    """Holding registers read over Modbus TCP (None: no answer, or a wrong one)."""
    pdu = bytes([0x03]) + address.to_bytes(2, "big") + count.to_bytes(2, "big")
    request = b"\x00\x01\x00\x00" + (len(pdu) + 1).to_bytes(2, "big") + bytes([unit_id]) + pdu
    size = 9 + 2 * count  # the MBAP header, function, byte count, the registers
    try:
        with socket.create_connection((host, port), timeout=0.5) as link:
            link.sendall(request)
            received = b""
            while len(received) < size and (chunk := link.recv(256)):
                received += chunk
    except OSError:
        return None
    if len(received) != size or received[7:9] != bytes([0x03, 2 * count]):
        return None
    return [int.from_bytes(received[9 + 2 * i : 11 + 2 * i], "big") for i in range(count)]


#: SunSpec's "not implemented" for an int16 register.
NOT_IMPLEMENTED = 0x8000


def meter_meters(meter: LocalMeter, unit_id: int | None = None) -> bool:
    """Whether the meter serves, and has metered: its first SunSpec meter
    model has a frequency.  (A meter that has just started serves its
    registers before its first metered second, without readings.)  Read by
    hand, walking the SunSpec chain, so that it is not the code under test."""
    unit = meter.unit_id if unit_id is None else unit_id

    def read(address: int, count: int) -> list[int] | None:
        if meter.rtu_device:
            return _rtu_read(meter.device, unit, address, count)
        return _tcp_read(meter.host, meter.port, unit, address, count)

    if "--profile" in meter.options:
        # The example profile (docs/profiles/example-fixed.json): its
        # frequency, a float32 at register 256, is not 0 once metered.
        hz = read(256, 2)
        return hz is not None and hz != [0, 0]
    if read(40000, 2) != [0x5375, 0x6E53]:  # "SunS"
        return False
    common = read(40002, 2)
    if common is None or common[0] != 1:
        return False
    first = 40004 + common[1]  # the first meter model's header
    header = read(first, 2)
    if header is None or header[0] not in (201, 202, 203, 204):
        return False
    hz = read(first + 2 + 14, 1)  # Hz, the 15th register of a meter model
    return hz is not None and hz[0] != NOT_IMPLEMENTED


@dataclass
class LocalMeter:
    """A running local meter: where it serves, and how to stop or restart it."""

    data: Path
    options: list[str]
    host: str = "127.0.0.1"
    port: int = 0
    rtu_device: str = ""  # the meter's end of the cable, when it serves RTU
    device: str = ""  # Home Assistant's end of the cable
    unit_id: int = 1
    pages_port: int = 0  # where it serves its PowerHawk-style pages (0: it does not)
    serial: str = SERIAL
    mac: str = MAC
    process: subprocess.Popen[str] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start (or restart) the meter, and wait until it serves what it meters."""
        assert self.process is None or self.process.poll() is not None
        serve = (
            ["--modbus-rtu", self.rtu_device, "--unit-id", str(self.unit_id)]
            if self.rtu_device
            else ["--modbus-tcp", f"{self.host}:{self.port}"]
        )
        if self.pages_port:
            serve += ["--pages", f"{self.host}:{self.pages_port}"]
        self.process = subprocess.Popen(
            [engine(), "run", "--simulate", "--data", str(self.data), *self.options, *serve],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while not meter_meters(self):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"the meter did not start: {self.process.communicate()[1]}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the meter (it stops answering; the port refuses connections)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def pause(self) -> None:
        """Freeze the meter: connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a frozen meter go on."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def clear(self) -> None:
        """Clear the meter's memory, keeping its identity: its registers restart at 0."""
        self.stop()
        shutil.rmtree(self.data)
        seed_store(self.data, self.serial, self.mac)


#: How far two reads of the meter's clock may differ: its register holds whole
#: seconds (truncated) and is refreshed once a metered second.
CLOCK_RESOLUTION_S = 2.0


async def meter_clock_offset(meter: LocalMeter) -> float:
    """The meter's clock minus this machine's (s), read from the meter's clock
    register over a connection of the test's own: what the integration's
    offsets are compared with, rather than what the meter was started with
    (its start-up time is in there)."""
    async with connect_tcp(meter.host, meter.port) as client:
        before = time.time()
        data = await client.read()
        after = time.time()
    assert data.utc is not None
    return data.utc - (before + after) / 2


@pytest.fixture
def local_meter(tmp_path: Path) -> Iterator[LocalMeter]:
    """The demo meter (an S8UTS-083, eight wye points) serving Modbus TCP on
    loopback, its simulated time running 20 times faster."""
    meter = LocalMeter(tmp_path / "meter", ["--speed", "20"], port=free_port())
    seed_store(meter.data)
    meter.start()
    try:
        yield meter
    finally:
        if meter.process is not None and meter.process.poll() is None:
            meter.resume()
        meter.stop()


@pytest.fixture
def pages_meter(tmp_path: Path) -> Iterator[LocalMeter]:
    """The demo meter as :func:`local_meter`, also serving its PowerHawk-style
    web pages on loopback (``pages_port``)."""
    meter = LocalMeter(
        tmp_path / "meter", ["--speed", "20"], port=free_port(), pages_port=free_port()
    )
    seed_store(meter.data)
    meter.start()
    try:
        yield meter
    finally:
        if meter.process is not None and meter.process.poll() is None:
            meter.resume()
        meter.stop()


# Two pseudo-terminals joined like a null-modem cable, in a process of its own
# (Home Assistant's tests do not allow a thread to outlive a test).
_NULL_MODEM = textwrap.dedent(
    """
    import os, select, sys, tty
    ends = [os.openpty(), os.openpty()]
    for master, slave in ends:
        tty.setraw(master); tty.setraw(slave)
    print(os.ttyname(ends[0][1]), os.ttyname(ends[1][1]), flush=True)
    a, b = ends[0][0], ends[1][0]
    while True:
        for fd in select.select([a, b], [], [], 1.0)[0]:
            try:
                os.write(b if fd == a else a, os.read(fd, 4096))
            except OSError:
                pass
    """
)


@contextlib.contextmanager
def null_modem() -> Iterator[tuple[str, str]]:
    """Two serial devices wired to each other; closed on exit."""
    process = subprocess.Popen(
        [sys.executable, "-c", _NULL_MODEM], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 10)
    assert ready, "the null-modem cable did not start"
    first, second = process.stdout.readline().split()
    try:
        yield first, second
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def serial_meter(tmp_path: Path) -> Iterator[LocalMeter]:
    """The demo meter on unit 7 of an RS-485 'bus' made of a pty pair, at
    19200 baud; ``device`` is the Home Assistant end of the cable."""
    with null_modem() as (meter_end, ha_end):
        meter = LocalMeter(
            tmp_path / "meter", ["--speed", "20"], rtu_device=meter_end, device=ha_end, unit_id=7
        )
        seed_store(meter.data)
        meter.start()
        try:
            yield meter
        finally:
            meter.stop()


def enable_entities(hass: HomeAssistant, entry: MockConfigEntry, *keys: str) -> None:
    """Register the entities of ``keys`` (their unique ids after the serial)
    enabled before ``entry`` is set up, as a user enables an entity that is
    disabled by default; adds the entry to ``hass`` if it is not there yet."""
    if hass.config_entries.async_get_entry(entry.entry_id) is None:
        entry.add_to_hass(hass)
    registry = er.async_get(hass)
    for key in keys:
        registry.async_get_or_create(
            "sensor", DOMAIN, f"{entry.unique_id}_{key}", config_entry=entry
        )


def tcp_entry(meter: LocalMeter, serial: str = SERIAL, **options: object) -> MockConfigEntry:
    """A config entry for a local meter on TCP."""
    return MockConfigEntry(
        domain=DOMAIN,
        unique_id=serial,
        title=f"S8UTS-083 {serial}",
        data={CONF_TYPE: "tcp", CONF_HOST: meter.host, CONF_PORT: meter.port, CONF_UNIT_ID: 1},
        options=options,
    )
