"""The Modbus server: protocol checks, TCP with an independent client, RTU on a pty."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import struct
import subprocess
import threading
import time
import tty
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from s8000_engine.config.meter import MeterConfig, meter_config
from s8000_engine.config.settings import SettingsError
from s8000_engine.const import FIRMWARE
from s8000_engine.local.changes import Origin, Replacement, register_change
from s8000_engine.local.image import MeterSnapshot, build_map, render
from s8000_engine.local.meter import DEMO_CONFIG, LocalMeter, SimulatedPulses
from s8000_engine.metering.synth import ZERO, Signal, sample_meter
from s8000_engine.modbus.backend import MeterBackend, Write
from s8000_engine.modbus.server import Handler, crc16, rtu_frame
from s8000_engine.protocol.sunspec import decode
from s8000_engine.storage.store import ConfigChange, Store
from tests.engine.meterproc import (
    ManualClock,
    NullModem,
    Progress,
    StderrLines,
    engine,
    free_port,
    serving_meter,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def handler() -> Handler:
    config = meter_config(DEMO_CONFIG)
    regmap = build_map(config)
    backend = MeterBackend(regmap, model="S8UTS-083", serial="0212060212", firmware="1.60")
    backend.update(render(regmap, MeterSnapshot(config, serial="0212060212", utc=1_795_600_000)))
    return Handler(backend)


def ask(handler: Handler, pdu: bytes) -> bytes:
    return asyncio.run(handler.handle(pdu))


def read(address: int, count: int, function: int = 3) -> bytes:
    return struct.pack(">BHH", function, address, count)


def test_reads_answer_the_image(handler: Handler) -> None:
    reply = ask(handler, read(40000, 4))
    assert reply[:2] == b"\x03\x08"
    assert struct.unpack(">4H", reply[2:]) == (0x5375, 0x6E53, 1, 66)
    assert ask(handler, read(40000, 4, 4))[2:] == reply[2:]  # FC04 reads the same registers


@pytest.mark.parametrize(
    ("pdu", "expected"),
    [
        (read(40000, 0), b"\x83\x03"),  # quantity 0
        (read(40000, 126), b"\x83\x03"),  # quantity 126
        (read(39999, 2), b"\x83\x02"),  # before the map
        (read(65500, 100), b"\x83\x02"),  # past the end
        (b"\x03\x9c\x40", b"\x83\x03"),  # truncated
        (b"\x41", b"\xc1\x01"),  # unknown function
        (b"\x2b\x0d\x01\x00", b"\xab\x01"),  # another MEI type
        (b"\x2b\x0e\x09\x00", b"\xab\x03"),  # bad read device id code
        (struct.pack(">BHH", 6, 40004, 1), b"\x86\x02"),  # write a read-only register
        (struct.pack(">BHHB", 16, 40000, 2, 3) + b"\0\0\0", b"\x90\x03"),  # byte count mismatch
        (struct.pack(">BHHB", 16, 40000, 124, 248) + b"\0" * 248, b"\x90\x03"),  # too many
        (b"\x14\x07\x05\x00\x01\x00\x00\x00\x01", b"\x94\x02"),  # reference type 5
    ],
)
def test_bad_requests_get_the_right_exception(
    handler: Handler, pdu: bytes, expected: bytes
) -> None:
    assert ask(handler, pdu) == expected


def test_writes_are_range_checked_and_change_nothing_when_refused(handler: Handler) -> None:
    regmap = handler.backend.regmap  # type: ignore[attr-defined]
    utc = regmap.address_of("s8000", "UTC")
    too_early = struct.pack(">BHHB", 16, utc, 2, 4) + struct.pack(">I", 100)
    assert ask(handler, too_early) == b"\x90\x03"
    half = struct.pack(">BHH", 6, utc, 1)  # half of a 32-bit value
    assert ask(handler, half) == b"\x86\x02"
    good = struct.pack(">BHHB", 16, utc, 2, 4) + struct.pack(">I", 1_800_000_000)
    assert ask(handler, good) == good[:5]
    backend = handler.backend
    assert backend.writes.get_nowait().value == 1_800_000_000  # type: ignore[attr-defined]
    # A register image with no meter behind it: its configuration cannot change
    # (a meter's validators judge the value: see the tests of a running meter below).
    rec = regmap.address_of("s8000", "RecInt")
    assert ask(handler, struct.pack(">BHH", 6, rec, 5)) == b"\x86\x04"
    assert backend.writes.empty()  # type: ignore[attr-defined]


def test_identification_and_server_id(handler: Handler) -> None:
    reply = ask(handler, b"\x2b\x0e\x01\x00")
    assert reply[:7] == b"\x2b\x0e\x01\x82\x00\x00\x03"
    assert b"Leviton" in reply
    assert b"S8UTS-083" in reply
    assert ask(handler, b"\x11").endswith(b"S8UTS-083 0212060212\xff")


@pytest.fixture
def running_meter(tmp_path: Path) -> Iterator[int]:
    """`s8000-engine run --simulate` serving Modbus TCP on loopback."""
    with serving_meter(tmp_path, "--start", "2026-11-25T12:00:00Z") as port:
        yield port


def published_map() -> list[tuple[int, str, str, int, str]]:
    """(address, name, type, registers, scale) from docs/registers.md only."""
    rows = []
    for line in (ROOT / "docs" / "registers.md").read_text().splitlines():
        match = re.match(r"\| (\d+) \| `([^`]+)` \| (\w+) \| (\d+) \| [^|]* \| ([^|]*) \|", line)
        if match:
            address, name, kind, size, scale = match.groups()
            rows.append((int(address), name, kind, int(size), scale.strip().strip("`")))
    return rows


def test_an_independent_pymodbus_client_reads_every_register(running_meter: int) -> None:
    from pymodbus.client import AsyncModbusTcpClient

    rows = published_map()
    assert len(rows) > 600
    first, last = rows[0][0], rows[-1][0] + rows[-1][3]

    async def read_all() -> list[int]:
        client = AsyncModbusTcpClient("127.0.0.1", port=running_meter)
        await client.connect()
        words: list[int] = []
        try:
            for start in range(first, last, 125):
                count = min(125, last - start)
                reply = await client.read_holding_registers(start, count=count, device_id=1)
                assert not reply.isError(), reply
                words += reply.registers
        finally:
            client.close()
        return words

    def values(words: list[int]) -> dict[str, float | int | str | None]:
        out: dict[str, float | int | str | None] = {}
        for address, name, kind, size, _scale in rows:
            chunk = words[address - first : address - first + size]
            if kind == "string":
                out[name] = b"".join(w.to_bytes(2, "big") for w in chunk).rstrip(b"\0").decode()
            elif kind in ("uint16", "enum16", "pad"):
                out[name] = chunk[0]
            elif kind in ("int16", "sunssf"):
                out[name] = chunk[0] - 0x10000 if chunk[0] & 0x8000 else chunk[0]
            elif kind in ("uint32", "acc32", "bitfield32"):
                out[name] = (chunk[0] << 16) | chunk[1]
            elif kind == "uint64":
                out[name] = int.from_bytes(b"".join(w.to_bytes(2, "big") for w in chunk), "big")
            elif kind == "float32":
                out[name] = struct.unpack(">f", struct.pack(">HH", *chunk))[0]
        return out

    before = values(asyncio.run(read_all()))
    assert before["SunS"] == 0x53756E53
    assert before["common.Mn"] == "Leviton"
    assert before["common.Md"] == "S8UTS-083"
    # A minute of meter time (3 s at 20x on an idle machine), however long it takes here.
    progress = Progress("a minute of meter time")
    start = int(before["s8000.UTC"])  # type: ignore[arg-type]
    while int((after := values(asyncio.run(read_all())))["s8000.UTC"]) < start + 60:  # type: ignore[arg-type]
        progress.seen(after["s8000.UTC"])
        time.sleep(0.5)
    grew = [n for n in range(1, 9) if after[f"s8000.Pt{n}WhImp"] > before[f"s8000.Pt{n}WhImp"]]  # type: ignore[operator]
    assert grew, "no delivered energy grew while the loads ran"
    assert after["s8000.UTC"] > before["s8000.UTC"]  # type: ignore[operator]


def test_rtu_on_a_pseudo_terminal_answers_only_its_unit(tmp_path: Path) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo before the server has set the line up itself
    tty.setraw(master)
    device = os.ttyname(slave)
    process = subprocess.Popen(
        [engine(), "run", "--simulate", "--data", str(tmp_path), "--speed", "20",
         "--modbus-rtu", device, "--baud", "19200", "--unit-id", "7"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stderr = StderrLines(process)
    try:
        serving = re.compile(r"serving Modbus RTU on ")
        assert stderr.wait_for(serving, 60), f"the meter did not open {device}: {stderr.text()}"
        os.set_blocking(master, False)

        def exchange(frame: bytes, answer: int = 0) -> bytes:
            """Send ``frame``; what comes back: ``answer`` bytes, however long
            they take (up to 10 s), or, expecting none, what came in 1 s."""
            os.write(master, frame)
            deadline = time.monotonic() + (10.0 if answer else 1.0)
            data = b""
            while time.monotonic() < deadline and (not answer or len(data) < answer):
                try:
                    data += os.read(master, 512)
                except BlockingIOError:
                    time.sleep(0.01)
            return data

        signature = rtu_frame(7, b"\x03\x04\x53\x75\x6e\x53")
        assert exchange(rtu_frame(7, read(40000, 2)), len(signature)) == signature
        assert exchange(rtu_frame(8, read(40000, 2))) == b""  # another meter's address
        corrupt = bytearray(rtu_frame(7, read(40000, 2)))
        corrupt[-1] ^= 0xFF
        assert exchange(bytes(corrupt)) == b""  # a bad CRC is not answered
        refused = rtu_frame(7, b"\xc1\x01")
        assert exchange(rtu_frame(7, b"\x41"), len(refused)) == refused
        assert crc16(b"\x01\x03\x00\x00\x00\x01") == 0x0A84
    finally:
        process.terminate()
        process.wait(10)
        stderr.close()
        os.close(master)
        os.close(slave)


def test_discover_finds_the_meter_and_nothing_else(running_meter: int) -> None:
    done = subprocess.run(
        [engine(), "discover", "--network", "127.0.0.1/32", "--port", str(running_meter),
         "--format", "json", "--timeout", "2"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    (row,) = json.loads(done.stdout)
    assert row["ip"] == "127.0.0.1"
    assert row["model"] == "S8UTS-083"
    assert row["status"] == "Found"
    assert len(row["serial"]) == 10
    assert row["mac"].startswith("00:21:B6:")
    assert row["build"] == "1600"
    # A small loopback network with nothing on that port: an empty table, quickly.
    empty = subprocess.run(
        [engine(), "discover", "--network", "127.0.3.0/29", "--port", str(free_port()), "--timeout", "0.5"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    assert "0 meter(s) found among 6 address(es)" in empty.stderr
    refused = subprocess.run(
        [engine(), "discover", "--network", "10.0.0.0/8"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert "more than 4096 addresses" in refused.stderr


def test_the_scan_limit_is_checked_before_listing_addresses() -> None:
    """A /20 is the most one scan covers; a /8 is refused before its sixteen
    million addresses are listed (which took seconds)."""
    from s8000_engine.client.discovery import addresses

    assert len(addresses(["192.0.2.0/20"])) == 4094
    assert addresses(["127.0.0.1/32"]) == ["127.0.0.1"]
    for too_many in (["10.0.0.0/8"], ["192.0.2.0/20", "198.51.100.0/24"]):
        with pytest.raises(ValueError, match="more than 4096 addresses"):
            addresses(too_many)


def test_read_command_through_the_main_cli(running_meter: int) -> None:
    done = subprocess.run(
        [engine(), "read", f"127.0.0.1:{running_meter}", "--format", "json"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert "S8UTS-083" in json.dumps(data)


def test_interval_memory_is_readable_with_function_20(tmp_path: Path) -> None:
    """Rows of the interval memory over Read File Record, from a running meter."""
    from s8000_engine.protocol.intervals import file_position, row_words

    options = ("--speed", "60", "--interval", "1", "--sample-rate", "4000",
               "--start", "2026-11-25T12:00:00Z")  # fmt: skip
    with serving_meter(tmp_path, *options) as port:

        async def fetch() -> list[list[int]]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)

            async def ask(pdu: bytes) -> bytes:
                writer.write(struct.pack(">HHHB", 1, 0, len(pdu) + 1, 1) + pdu)
                header = await reader.readexactly(7)
                return await reader.readexactly(struct.unpack(">H", header[4:6])[0] - 1)

            # Wait until three 1-minute intervals are stored (3 s at 60x on an idle machine).
            regmap = build_map(meter_config(DEMO_CONFIG))
            count_at = regmap.address_of("s8000", "IntCount")
            progress = Progress("three stored intervals")
            while True:
                reply = await ask(struct.pack(">BHH", 3, count_at, 6))
                count_hi, count_lo, _, _, newest_hi, newest_lo = struct.unpack(">6H", reply[2:14])
                count = count_hi << 16 | count_lo
                if count >= 3:
                    newest_start = newest_hi << 16 | newest_lo
                    break
                progress.seen(count)
                await asyncio.sleep(0.3)
            rows = []
            for start in (newest_start - 120, newest_start - 60, newest_start):
                file, record = file_position(start, 60, 8)
                width = row_words(8)
                data: list[int] = []
                for offset in range(0, width, 100):
                    count = min(100, width - offset)
                    pdu = struct.pack(">BBBHHH", 0x14, 7, 6, file, record + offset, count)
                    reply = await ask(pdu)
                    assert reply[0] == 0x14, reply.hex()
                    data += list(struct.unpack(f">{count}H", reply[4:]))
                rows.append(data)
            writer.close()
            return rows

        rows = asyncio.run(fetch())
        starts = [(row[0] << 16) | row[1] for row in rows]
        assert starts[1] - starts[0] == 60
        assert starts[2] - starts[1] == 60

        def value(row: list[int], point: int, k: int) -> int:
            at = 6 + 16 * point + 4 * k
            return int.from_bytes(b"".join(w.to_bytes(2, "big") for w in row[at : at + 4]), "big")

        for before, after in itertools.pairwise(rows):
            for point in range(8):
                for k in range(4):
                    assert value(after, point, k) >= value(before, point, k)
        # The loads ran: some register of some point moved between the rows.
        assert any(value(rows[2], p, k) > value(rows[0], p, k) for p in range(8) for k in range(4))


def test_the_meter_announces_itself_with_zeroconf(tmp_path: Path) -> None:
    """On 127.0.0.1 only (no root, no other interface): zeroconf sends its
    multicast out of the loopback interface it is given, so none leaves."""
    with serving_meter(tmp_path, "--announce", "127.0.0.1") as port:
        # The announcement follows the Modbus server's start: browse until it
        # is heard (each browse listens 3 s), not for a guessed time.
        deadline = time.monotonic() + 60
        while True:
            done = subprocess.run(
                [engine(), "discover", "--zeroconf", "127.0.0.1", "--format", "json"],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            # Other meters may announce on this machine's loopback: ours is on our port.
            ours = [row for row in json.loads(done.stdout) if row["port"] == port]
            if ours or time.monotonic() > deadline:
                break
    (row,) = ours
    assert row["ip"] == "127.0.0.1"
    assert row["model"] == "S8UTS-083"
    assert row["status"] == "Announced"
    assert row["mac"].startswith("00:21:B6:")


def test_discover_scans_the_unit_ids_of_a_serial_bus(tmp_path: Path) -> None:
    """The meter on unit 7 of a pty 'bus'; the scan hears it and nobody else."""
    cable = NullModem()
    process = subprocess.Popen(
        [engine(), "run", "--simulate", "--data", str(tmp_path), "--speed", "20",
         "--modbus-rtu", cable.paths[0], "--unit-id", "7"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stderr = StderrLines(process)
    try:
        serving = re.compile(r"serving Modbus RTU on ")
        assert stderr.wait_for(serving, 60), f"the meter did not open the cable: {stderr.text()}"
        done = subprocess.run(
            [engine(), "discover", "--serial", cable.paths[1], "--units", "1-10", "--format", "json"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout)
        (row,) = rows
        assert row["port"] == 7
        assert row["model"] == "S8UTS-083"
        assert row["status"] == "Found"
        assert row["mac"].startswith("00:21:B6:")  # the vendor model, read over RTU too
    finally:
        process.terminate()
        process.wait(10)
        stderr.close()
        cable.close()


async def _connect(port: int) -> Callable[[bytes], Awaitable[bytes]]:
    """A Modbus TCP connection to 127.0.0.1:port: ask(PDU) -> answer PDU."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def ask(pdu: bytes) -> bytes:
        writer.write(struct.pack(">HHHB", 1, 0, len(pdu) + 1, 1) + pdu)
        header = await reader.readexactly(7)
        return await reader.readexactly(struct.unpack(">H", header[4:6])[0] - 1)

    return ask


def test_a_ct_primary_written_over_modbus_rescales_the_readings(
    tmp_path: Path, running_meter: int
) -> None:
    """`s8000-engine run` end to end: the write is answered once the change is
    validated, stored with its change-log entry and applied."""
    regmap = build_map(meter_config(DEMO_CONFIG))
    ct = regmap.address_of("s8000", "Pt8CT")  # the base load: steady, always on
    watts = regmap.address_of("point8", "W")
    watts_sf = regmap.address_of("point8", "W_SF")
    utc = regmap.address_of("s8000", "UTC")

    async def session() -> tuple[int, float, bytes, bytes, int, float]:
        ask = await _connect(running_meter)

        async def ct_value() -> int:
            return int(struct.unpack(">H", (await ask(struct.pack(">BHH", 3, ct, 1)))[2:])[0])

        async def power() -> float:
            count = watts_sf - watts + 1  # W, its phases and W_SF: one image, one second
            value, *_, sf = struct.unpack(f">{count}h", (await ask(read(watts, count)))[2:])
            return float(value * 10.0**sf)

        async def seconds_later(count: int) -> None:
            """Until ``count`` more seconds are metered (each publishes a new image)."""
            seen: set[bytes] = set()
            deadline = time.monotonic() + 60
            while len(seen) < count + 1:
                assert time.monotonic() < deadline, "the meter stopped metering"
                seen.add(await ask(read(utc, 2)))
                await asyncio.sleep(0.02)

        before_ct = await ct_value()
        await seconds_later(2)
        before_w = await power()
        refused = await ask(struct.pack(">BHH", 6, ct, 20000))  # above 10000 A
        accepted = await ask(struct.pack(">BHH", 6, ct, 4 * before_ct))
        after_ct = await ct_value()  # applied when the write is answered
        await seconds_later(3)  # past the window begun before the change
        return before_ct, before_w, refused, accepted, after_ct, await power()

    before_ct, before_w, refused, accepted, after_ct, after_w = asyncio.run(session())
    assert refused == b"\x86\x03"
    assert accepted[0] == 6
    assert (before_ct, after_ct) == (50, 200)
    # Four times the rating, four times the power (the load wanders ±4 % a second).
    assert before_w > 500
    assert 3.5 < after_w / before_w < 4.6
    with Store.open(tmp_path, create=False) as store:
        log = store.config_changes()
        assert store.get_meta("config")["points"][7]["ct_primary"] == 200.0
    assert [(c.origin, c.user, c.changes) for c in log[:1]] == [
        ("modbus", "modbus", ["Point 8 (Office) CT primary (A): 50 → 200"])
    ]
    assert len(log) == 1  # the refused write left nothing


def test_recording_and_demand_writes_are_checked_together_then_applied(
    tmp_path: Path, running_meter: int
) -> None:
    regmap = build_map(meter_config(DEMO_CONFIG))
    rec = regmap.address_of("s8000", "RecInt")
    dmd = regmap.address_of("s8000", "DmdType")

    async def session() -> list[bytes]:
        ask = await _connect(running_meter)
        return [
            await ask(struct.pack(">BHH", 6, rec, 7)),  # not a recording interval
            await ask(struct.pack(">BHHB3H", 16, dmd, 3, 6, 2, 15, 4)),  # 4 does not divide 15
            await ask(struct.pack(">BHHB3H", 16, dmd, 3, 6, 3, 15, 5)),  # no demand type 3
            await ask(struct.pack(">BHHB3H", 16, dmd, 3, 6, 1, 15, 4)),  # block: no subinterval
            await ask(struct.pack(">BHHB3H", 16, dmd, 3, 6, 2, 15, 5)),  # sliding 15/5
            await ask(read(dmd, 3)),
            await ask(struct.pack(">BHH", 6, rec, 5)),
        ]

    bad_rec, bad_demand, bad_type, block, sliding, demand_now, good_rec = asyncio.run(session())
    assert bad_rec == b"\x86\x03"
    assert bad_demand == b"\x90\x03"
    assert bad_type == b"\x90\x03"
    assert block[0] == 0x10
    assert sliding[0] == 0x10
    assert good_rec[0] == 0x06
    # Applied when answered: the registers read the new demand at once.
    assert struct.unpack(">3H", demand_now[2:]) == (2, 15, 5)
    with Store.open(tmp_path, create=False) as store:
        log = store.config_changes()
        assert store.get_meta("recording_minutes") == 5
        assert store.get_meta("config")["demand"] == {
            "type": "sliding",
            "interval_minutes": 15,
            "subinterval_minutes": 5,
        }
    # The demo's sliding 15/5 demand: block, then sliding again, then the interval.
    assert [(c.origin, c.changes) for c in log[:3]] == [
        ("modbus", ["Recording interval (minutes): 15 → 5"]),
        ("modbus", ["Demand type: block → sliding", "Demand subinterval (minutes): 15 → 5"]),
        ("modbus", ["Demand type: sliding → block"]),
    ]


# -- writes to a running local meter, in this process -----------------------------------

T0 = 1_795_586_400  # 2026-11-25T06:00:00Z: the simulated water meter's busy hour
RATE = 4000
TWO_POINTS: dict[str, Any] = {
    "model": "S8UTS-241",
    "service": "1p2w",
    "points": [
        {"name": "Pump", "ct_primary": 100, "phases": ["A"]},
        {"name": "Fan", "ct_primary": 100, "phases": ["A"]},
    ],
    "demand": {"type": "block", "interval_minutes": 1},
    "pulse_inputs": [{"name": "Water", "unit": "L", "scale": 10.0}],
}
CT_RANGE = "must be from 0.1 to 10000 A (the CT's rated primary current)"


class TenAmps:
    """10 A at PF 1 (0.01 A of CT secondary on a 100 A CT) on the first two
    CTs, 120 V on A: 1200 W a point; phase-continuous in UTC time."""

    def __init__(self, config: MeterConfig) -> None:
        self.currents = [ZERO] * config.model.channel_count
        self.currents[:2] = [Signal(0.01), Signal(0.01)]

    def samples(self, start: float, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        return sample_meter([Signal(120.0), ZERO, ZERO], self.currents, frequency=60.0,
                            sample_rate=RATE, samples=int(RATE * seconds),
                            start=round(start * RATE))  # fmt: skip


class RunningMeter:
    """A local meter (real metering, a real SQLite store) behind the real
    Modbus protocol handler, metering second after second in its own thread."""

    def __init__(self, path: Path, *, start: float = T0) -> None:
        self.path = path
        config = meter_config(TWO_POINTS)
        self.clock = ManualClock(start)
        self.meter = LocalMeter(config, Store.open(path), TenAmps(config), self.clock,
                                sample_rate=RATE, recording_minutes=1,
                                pulses=SimulatedPulses(seed=3))  # fmt: skip
        # As `s8000-engine run --config` does.
        self.meter.apply_change(Replacement(TWO_POINTS), origin=Origin.CLI, user="test")
        self.meter.start()
        self.backend = MeterBackend(self.meter.regmap, model=config.model.code,
                                    serial=self.meter.serial, firmware=FIRMWARE)  # fmt: skip
        self.meter.serve(self.backend)
        self.handler = Handler(self.backend)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.clock.value += 1
            self.meter.step()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.meter.store.close()

    def ask(self, pdu: bytes) -> bytes:
        """A request through the protocol handler, as the TCP and RTU servers pass it."""
        return asyncio.run(self.handler.handle(pdu))

    def write(self, name: str, *words: int) -> bytes:
        """Function 16 to registers of the vendor model, from ``name`` on."""
        address = self.meter.regmap.address_of("s8000", name)
        return self.ask(struct.pack(f">BHHB{len(words)}H", 16, address, len(words),
                                    2 * len(words), *words))  # fmt: skip

    def registers(self, label: str, *names: str) -> list[Any]:
        """Fields of one model, decoded, read in one request (one image: one second)."""
        fields = {f.name: f for f in self.meter.regmap.fields}
        chosen = [fields[f"{label}.{name}"] for name in names]
        first = min(f.address for f in chosen)
        count = max(f.address + f.size for f in chosen) - first
        answer = self.ask(read(first, count))
        words = struct.unpack(f">{count}H", answer[2:])
        return [decode(f.type, words[f.address - first : f.address - first + f.size])
                for f in chosen]  # fmt: skip

    def seconds_later(self, count: int) -> None:
        """Wait until ``count`` more seconds are metered."""
        until = self.meter.t + count
        wait_for(lambda: self.meter.t >= until, f"{count} more metered seconds")

    def log(self) -> list[ConfigChange]:
        """The change log, read through a connection of its own (as the web page does)."""
        with Store.open(self.path, create=False) as store:
            return store.config_changes()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[RunningMeter]:
    meter = RunningMeter(tmp_path / "meter.db")
    try:
        yield meter
    finally:
        meter.close()


def _watts(served: RunningMeter, point: int) -> float:
    value, sf = served.registers(f"point{point}", "W", "W_SF")
    return float(value * 10.0**sf)


def test_a_ct_primary_write_is_a_logged_change_that_rescales_its_point(
    served: RunningMeter,
) -> None:
    served.seconds_later(2)
    assert _watts(served, 1) == pytest.approx(1200.0, rel=0.01)
    assert served.write("Pt1CT", 250)[0] == 0x10
    # Answered once validated, stored with its change-log entry and applied.
    assert served.meter.config.points[0].ct_primary_a == 250.0
    assert served.registers("s8000", "Pt1CT", "Pt2CT") == [250, 100]
    assert [(c.origin, c.user, c.changes) for c in served.log()] == [
        ("modbus", "modbus", ["Point 1 (Pump) CT primary (A): 100 → 250"]),
    ]
    served.seconds_later(3)  # past the window begun before the change
    assert _watts(served, 1) == pytest.approx(2.5 * 1200.0, rel=0.01)
    assert _watts(served, 2) == pytest.approx(1200.0, rel=0.01)


@pytest.mark.parametrize(
    ("writes", "form", "error"),
    [
        ([("Pt2CT", 20000)], {"points": {"1": {"ct_primary": 20000}}},
         (("points", 1, "ct_primary"), CT_RANGE)),
        ([("Pt2CT", 0)], {"points": {"1": {"ct_primary": 0}}},
         (("points", 1, "ct_primary"), CT_RANGE)),
        ([("RecInt", 7)], {"report": {"recording_minutes": 7}},
         (("report", "recording_minutes"), "must be one of 1, 5, 10, 15, 30, 60 minutes")),
        ([("DmdType", 2), ("DmdInt", 15), ("DmdSub", 4)],
         {"report": {"demand_type": "sliding", "demand_interval_minutes": 15,
                     "demand_subinterval_minutes": 4}},
         (("report", "demand_subinterval_minutes"),
          "must divide the interval (15) and be smaller than it")),
        ([("DmdType", 3)], {"report": {"demand_type": 3}},
         (("report", "demand_type"), "must be one of block, sliding")),
    ],
)  # fmt: skip
def test_the_web_form_and_modbus_refuse_a_bad_value_with_the_same_error(
    served: RunningMeter,
    caplog: pytest.LogCaptureFixture,
    writes: list[tuple[str, int]],
    form: dict[str, Any],
    error: tuple[tuple[str | int, ...], str],
) -> None:
    meter = served.meter
    registers = ("Pt2CT", "RecInt", "DmdType", "DmdSub")
    before = (meter.config, served.log(), served.registers("s8000", *registers))
    # The web page's change, as its request handler makes it.
    with pytest.raises(SettingsError) as from_web:
        meter.submit(lambda: meter.apply_change(form, origin=Origin.WEB, user="admin")).result()
    assert from_web.value.errors == (error,)
    # The same fields over Modbus: exception 03, because that validator said no.
    with caplog.at_level(logging.INFO, logger="s8000_engine.modbus.backend"):
        assert served.write(writes[0][0], *(value for _, value in writes)) == b"\x90\x03"
    refusals = [r.getMessage() for r in caplog.records if r.name == "s8000_engine.modbus.backend"]
    assert refusals == [f"Modbus write refused: {from_web.value}"]
    change = register_change([Write(f"s8000.{name}", value) for name, value in writes])
    with pytest.raises(SettingsError) as from_modbus:
        meter.submit(lambda: meter.apply_change(change, origin=Origin.MODBUS, user="m")).result()
    assert from_modbus.value.errors == from_web.value.errors
    # Nothing changed, nothing logged.
    assert (meter.config, served.log(), served.registers("s8000", *registers)) == before


def test_a_recording_interval_write_gives_intervals_of_the_new_length(tmp_path: Path) -> None:
    # Four minutes into a five-minute period: the switch comes a minute later.
    served = RunningMeter(tmp_path / "meter.db", start=T0 + 240)
    try:
        assert served.write("RecInt", 5)[0] == 0x10
        entry = served.log()[0]
        assert (entry.origin, entry.changes) == ("modbus", ["Recording interval (minutes): 1 → 5"])
        # The new length takes effect at the first end both lengths share (T0 + 300).
        wait_for(lambda: served.registers("s8000", "RecInt") == [5], "RecInt to read 5")
        assert served.registers("s8000", "IntLen") == [300]
        wait_for(lambda: served.meter.t > T0 + 601, "a whole interval of the new length")
        with Store.open(tmp_path / "meter.db", create=False) as store:
            spans = [(r.start - T0, r.length) for r in store.intervals()]
            assert store.get_meta("recording_minutes") == 5
        assert spans[:2] == [(240, 60), (300, 300)]
    finally:
        served.close()


def test_a_pulse_scale_write_scales_the_pulse_value(served: RunningMeter) -> None:
    wait_for(lambda: served.registers("s8000", "P1Count")[0] > 0, "a pulse on input 1")
    count, scale, value = served.registers("s8000", "P1Count", "P1Scale", "P1Value")
    assert scale == 10.0
    assert value == pytest.approx(10.0 * count)
    assert served.write("P1Scale", *struct.unpack(">2H", struct.pack(">f", 0.001)))[0] == 0x10
    # The float32 nearest 0.001 is taken as the 0.001 the client meant.
    assert served.meter.config.pulse_inputs[0].scale == 0.001
    assert served.log()[0].changes == ["Pulse input 1 scale (units per pulse): 10 → 0.001"]
    count, scale, value = served.registers("s8000", "P1Count", "P1Scale", "P1Value")
    assert scale == pytest.approx(0.001, rel=1e-6)
    assert value == pytest.approx(0.001 * count, rel=1e-6)
    wait_for(lambda: served.registers("s8000", "P1Count")[0] > count, "another pulse")
    count, value = served.registers("s8000", "P1Count", "P1Value")
    assert value == pytest.approx(0.001 * count, rel=1e-6)


def test_a_demand_write_restarts_demand_and_is_logged(served: RunningMeter) -> None:
    served.seconds_later(130)  # two whole one-minute demand intervals
    assert served.registers("s8000", "Pt1PkDmd")[0] == pytest.approx(1200.0, rel=0.01)
    assert served.write("DmdType", 2, 15, 5)[0] == 0x10
    assert served.registers("s8000", "DmdType", "DmdInt", "DmdSub") == [2, 15, 5]
    assert served.registers("s8000", "Pt1PkDmd") == [None]  # demand starts again
    assert served.log()[0].changes == [
        "Demand type: block → sliding",
        "Demand interval (minutes): 1 → 15",
        "Demand subinterval (minutes): 1 → 5",
    ]
