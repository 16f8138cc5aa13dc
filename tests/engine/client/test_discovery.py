"""Discovery against real Modbus servers: the local meter's process over TCP
and over RTU on a pseudo-terminal bus, and in-process servers for the devices
that are not an S8000."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from s8000_engine.client import discovery
from s8000_engine.client.client import BACKENDS, BackendName, connect_tcp
from s8000_engine.client.discovery import Found
from s8000_engine.config.meter import meter_config
from s8000_engine.const import FIRMWARE, FIRMWARE_BUILD
from s8000_engine.exceptions import S8000ConnectionError
from s8000_engine.local.image import MeterSnapshot, build_map, render
from s8000_engine.local.meter import DEMO_CONFIG
from s8000_engine.modbus.backend import MeterBackend
from tests.engine.meterproc import Image, NullModem, engine, free_port, serving, serving_meter


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> BackendName:
    """Each of modbus-connection's backends, skipped where it is not installed."""
    name: BackendName = request.param
    try:
        importlib.import_module(f"modbus_connection.{name}")
    except ImportError as err:
        pytest.skip(f"modbus-connection's {name} backend is not installed: {err}")
    return name


@pytest.fixture(scope="module")
def running_meter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`s8000-engine run --simulate` (the demo S8UTS-083) serving Modbus TCP on loopback."""
    with serving_meter(tmp_path_factory.mktemp("meter")) as port:
        yield port


class Says(Image):
    """A device that names itself in its identification, over a fixed register block."""

    def __init__(self, objects: dict[int, bytes], base: int = 0, words: int = 100) -> None:
        super().__init__(base, [0] * words)
        self.objects = objects

    def identification(self) -> dict[int, bytes]:
        return self.objects


# -- the networks to scan -----------------------------------------------------------------


def test_addresses_are_the_hosts_of_the_networks() -> None:
    assert discovery.addresses(["127.0.0.1/32"]) == ["127.0.0.1"]
    assert discovery.addresses(["192.0.2.5/30", "198.51.100.7"]) == [
        "192.0.2.5",
        "192.0.2.6",
        "198.51.100.7",
    ]
    assert len(discovery.addresses(["192.0.2.0/20"])) == discovery.MAX_ADDRESSES - 2


@pytest.mark.parametrize(
    ("networks", "message"),
    [
        (["192.0.2.0/33"], "'192.0.2.0/33' is not an IPv4 network"),
        (["a.b.c.d"], "'a.b.c.d' is not an IPv4 network"),
        (["2001:db8::/64"], "2001:db8::/64 is an IPv6 network; only IPv4 networks can be scanned"),
        (["10.0.0.0/8"], "more than 4096 addresses"),
        (["192.0.2.0/20", "198.51.100.0/24"], "more than 4096 addresses"),
    ],
)
def test_a_wrong_network_is_a_plain_value_error(networks: list[str], message: str) -> None:
    """The library's message says what is wrong; naming the option is the command line's."""
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        discovery.addresses(networks)
    assert "--network" not in str(caught.value)
    with pytest.raises(ValueError, match=re.escape(message)):
        asyncio.run(discovery.scan(networks))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: discovery.scan(["127.0.0.1"], unit=256), "unit id 256 is not 0–255"),
        (lambda: discovery.probe("127.0.0.1", unit=-1), "unit id -1 is not 0–255"),
        (lambda: discovery.scan(["127.0.0.1"], backend="modbus-tk"), "unknown backend"),
        (lambda: discovery.scan_serial("/dev/null", parity="X"), "parity 'X' is not N, E or O"),
    ],
)
def test_wrong_arguments_are_refused_before_anything_is_asked(
    call: Callable[[], Coroutine[Any, Any, object]], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        asyncio.run(call())


# -- Modbus TCP ---------------------------------------------------------------------------


async def test_probe_lists_the_meter_as_the_client_identifies_it(
    running_meter: int, backend: BackendName
) -> None:
    row = await discovery.probe("127.0.0.1", running_meter, backend=backend)
    async with connect_tcp("127.0.0.1", running_meter) as client:
        identity = await client.identify()
    assert identity.mac is not None
    assert row == Found(
        ip="127.0.0.1",
        port=running_meter,
        model="S8UTS-083",
        name=f"S8UTS-083-{identity.serial}",
        mac=identity.mac,
        firmware=FIRMWARE,
        build=str(FIRMWARE_BUILD),
        serial=identity.serial,
        status="Found",
    )
    assert row.mac.startswith("00:21:B6:")


async def test_scan_finds_the_meter_and_nothing_else(running_meter: int) -> None:
    # 127.0.0.2 is loopback too, but the meter listens on 127.0.0.1 only.
    calls: list[tuple[int, int]] = []
    rows = await discovery.scan(
        ["127.0.0.0/30"], port=running_meter, progress=lambda done, of: calls.append((done, of))
    )
    assert [(row.ip, row.status) for row in rows] == [("127.0.0.1", "Found")]
    assert sorted(calls) == [(1, 2), (2, 2)]
    assert await discovery.scan(["127.0.3.0/29"], port=free_port(), wait_s=0.5) == []


async def test_devices_that_are_not_an_s8000_are_not_listed(backend: BackendName) -> None:
    config = meter_config(DEMO_CONFIG)
    regmap = build_map(config)
    meter = MeterBackend(regmap, model="S8UTS-083", serial="0212060212", firmware=FIRMWARE)
    meter.update(render(regmap, MeterSnapshot(config, serial="0212060212")))
    others = [
        Says({}),  # answers 43/14 with no objects
        Says({0: b"Fronius", 1: b"Symo", 2: b"3.14"}),
        Says({0: b"Leviton", 1: b"VerifEye", 2: b"1.60"}),  # not an S8000 model
    ]
    for device in others:
        async with serving(device) as port:
            assert await discovery.probe("127.0.0.1", port, backend=backend) is None
    async with serving(meter) as port:
        assert (await discovery.probe("127.0.0.1", port, backend=backend)) is not None
        # Another unit id behind the same address answers a gateway exception.
        assert await discovery.probe("127.0.0.1", port, unit=9, backend=backend) is None


async def test_a_device_that_says_s8000_but_cannot_be_identified_is_a_network_error(
    backend: BackendName,
) -> None:
    says = Says({0: b"Leviton", 1: b"S8UTS-083", 2: b"1.60"})  # but no SunSpec map
    async with serving(says) as port:
        row = await discovery.probe("127.0.0.1", port, backend=backend)
    assert row == Found("127.0.0.1", port, "S8UTS-083", "", "", "1.60", "", "", "Network Error")


async def test_silent_and_closed_addresses_take_at_most_the_wait(backend: BackendName) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, listens, never answers
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        assert await discovery.probe("127.0.0.1", port, wait_s=0.3, backend=backend) is None
        assert time.monotonic() - started < 2.0
    finally:
        server.close()
        await server.wait_closed()
    started = time.monotonic()
    assert await discovery.probe("127.0.0.1", free_port(), wait_s=0.3, backend=backend) is None
    assert time.monotonic() - started < 1.0
    with dropping_connections() as port:
        started = time.monotonic()
        assert await discovery.probe("127.0.0.1", port, wait_s=0.3, backend=backend) is None
        # tmodbus's own connect limit is 10 s, whatever the request timeout.
        assert time.monotonic() - started < 2.0


@contextlib.contextmanager
def dropping_connections() -> Iterator[int]:
    """A port whose connection attempts go unanswered, as at an address that drops
    them: a listener that accepts nothing, its queue full (Linux then drops SYNs)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        queued = [socket.socket() for _ in range(3)]
        try:
            for s in queued:
                s.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    s.connect(("127.0.0.1", port))
            yield port
        finally:
            for s in queued:
                s.close()


# -- Modbus RTU ---------------------------------------------------------------------------


@pytest.fixture
def rtu_meter(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The local meter as unit 7 of a pty "bus" (and on Modbus TCP, to compare):
    yields the bus's other end and the TCP port once the meter serves both."""
    cable = NullModem()
    port = free_port()
    process = subprocess.Popen(
        [engine(), "run", "--simulate", "--data", str(tmp_path), "--speed", "20",
         "--modbus-tcp", f"127.0.0.1:{port}", "--modbus-rtu", cable.paths[0], "--unit-id", "7"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        # Until the meter serves the bus (stderr says so after TCP is up), rather
        # than scan again: a pty refuses even parity (EINVAL) once its settings
        # have been made.
        for line in process.stderr:
            if line.startswith("serving Modbus RTU"):
                break
        else:
            pytest.fail(f"the meter did not start (exit status {process.wait(10)})")
        yield cable.paths[1], port
    finally:
        process.terminate()
        process.wait(10)
        cable.close()


async def test_scan_serial_finds_the_meter_on_its_unit_id(rtu_meter: tuple[str, int]) -> None:
    bus, port = rtu_meter
    calls: list[tuple[int, int]] = []
    rows = await discovery.scan_serial(
        bus, units=[0, *range(1, 11), 248], progress=lambda done, of: calls.append((done, of))
    )
    assert calls == [(done, 10) for done in range(1, 11)]  # 0 and 248 are no unit ids
    async with connect_tcp("127.0.0.1", port, unit_id=7) as client:
        identity = await client.identify()
    assert rows == [
        Found(
            ip=bus,
            port=7,
            model="S8UTS-083",
            name=f"S8UTS-083-{identity.serial}",
            mac=identity.mac or "",
            firmware=FIRMWARE,
            build=str(FIRMWARE_BUILD),
            serial=identity.serial,
            status="Found",
        )
    ]


async def test_silent_unit_ids_are_given_up_on_after_the_wait(
    rtu_meter: tuple[str, int],
) -> None:
    bus, _port = rtu_meter
    started = time.monotonic()
    assert await discovery.scan_serial(bus, units=[1, 2, 3], wait_s=0.1) == []
    # The link's own timeout is the longer one a meter that answered gets.
    assert time.monotonic() - started < 3 * discovery.ANSWER_WAIT_S / 2


async def test_a_serial_port_that_cannot_be_opened_is_a_connection_error(tmp_path: Path) -> None:
    with pytest.raises(S8000ConnectionError, match="could not open serial port"):
        await discovery.scan_serial(str(tmp_path / "ttyUSB9"))


# -- zeroconf -----------------------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


@pytest.mark.parametrize("module", ["s8000_engine.client.discovery", "s8000_engine.client.browse"])
def test_finding_meters_loads_nothing_of_the_meter(module: str) -> None:
    """What Home Assistant installs has no zeroconf, numpy or Modbus server:
    importing discovery or the browser must not need them."""
    heavy = ["zeroconf", "numpy", "aiohttp", "s8000_engine.modbus", "s8000_engine.local"]
    done = _python(
        f"import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print([m for m in {heavy!r} if m in sys.modules])\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_browsing_without_zeroconf_names_the_extra() -> None:
    done = _python(
        "import asyncio, sys\n"
        "sys.modules['zeroconf'] = None  # as where it is not installed\n"
        "from s8000_engine.client.browse import browse\n"
        "try:\n"
        "    asyncio.run(browse(['127.0.0.1'], 0))\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        'browsing for announced meters needs zeroconf: pip install "s8000-engine[local]"'
    )
