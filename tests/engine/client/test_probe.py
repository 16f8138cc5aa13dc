"""The probe against real parts: the local meter's process, a plain pymodbus
server, a web server with the PowerHawk pages, an RS-485 bus of pseudo-terminals
with three devices, a server that watches for writes and one that is slow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from modbus_connection import ModbusTcpParams

from s8000_engine.client import Verdict, probe_serial, probe_tcp, probe_unit
from s8000_engine.client.client import connect_tcp, connection_class
from s8000_engine.client.probe import ProbeOptions
from s8000_engine.config.meter import meter_config
from s8000_engine.const import FIRMWARE
from s8000_engine.exceptions import S8000ConnectionError
from s8000_engine.local.image import MeterSnapshot, build_map, render
from s8000_engine.local.meter import DEMO_CONFIG
from s8000_engine.modbus.backend import MeterBackend
from s8000_engine.modbus.server import Backend, Exc, Handler, ModbusError, RtuServer, TcpServer
from s8000_engine.protocol.profile import builtin_profile, load_profile
from s8000_engine.protocol.sunspec import COMMON, encode
from tests.engine.client.test_client import metered
from tests.engine.meterproc import (
    Bus,
    Image,
    Progress,
    StderrLines,
    engine,
    free_port,
    serving,
    serving_meter,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "profiles" / "example-fixed.json"
#: Function codes that write: coils, registers, file records, read-write.
WRITES = {5, 6, 15, 16, 21, 22, 23}
SERIAL = "0212060212"
MAC = "00:21:B6:01:02:03"


def words_of(text: str) -> list[int]:
    """``text`` as register words (two ASCII characters each, padded with NUL)."""
    data = text.encode()
    data += b"\0" * (len(data) % 2)
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def mac_words(mac: str) -> list[int]:
    data = bytes.fromhex(mac.replace(":", ""))
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, 6, 2)]


def contains(haystack: Sequence[int], needle: Sequence[int]) -> bool:
    n = len(needle)
    return any(list(haystack[i : i + n]) == list(needle) for i in range(len(haystack) - n + 1))


def local_meter() -> MeterBackend:
    """The demo S8UTS-083's registers, served in the test's own process."""
    config = meter_config(DEMO_CONFIG)
    regmap = build_map(config)
    meter = MeterBackend(regmap, model="S8UTS-083", serial=SERIAL, firmware=FIRMWARE)
    meter.update(render(regmap, MeterSnapshot(config, serial=SERIAL, mac=MAC)))
    return meter


class Says(Image):
    """A device with a fixed register block that names itself in function 43."""

    def __init__(self, objects: dict[int, bytes], base: int = 0, words: Sequence[int] = ()) -> None:
        super().__init__(base, list(words) or [0] * 100)
        self.objects = objects

    def identification(self) -> dict[int, bytes]:
        return self.objects


def sunspec_device(manufacturer: str, model: str) -> Image:
    """A SunSpec device that is not an S8000: marker, Common model, end model."""
    common = [0] * (COMMON.length + 2)
    common[0:2] = [COMMON.model_id, COMMON.length]
    for name, value in (("Mn", manufacturer), ("Md", model), ("SN", "SN-OTHER-1")):
        p = COMMON.point(name)
        common[p.offset : p.offset + p.size] = encode(p.type, value, p.size)
    return Image(40000, [0x5375, 0x6E53, *common, 0xFFFF, 0])


@pytest.fixture(scope="module")
def running_meter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`s8000-engine run --simulate` (the demo S8UTS-083) serving Modbus TCP on
    loopback, once it has metered a second (it serves its registers before,
    without readings: on a loaded machine a probe could come first)."""
    with serving_meter(tmp_path_factory.mktemp("meter")) as port:
        asyncio.run(_metered(port))
        yield port


async def _metered(port: int) -> None:
    progress = Progress("the local meter's first metered second")
    async with connect_tcp("127.0.0.1", port) as client:
        while (await client.read()).point(1).w is None:
            progress.seen(None)
            await asyncio.sleep(0.1)


# -- the local meter ----------------------------------------------------------------------


async def test_the_local_meter_is_an_s8000_with_our_map(running_meter: int) -> None:
    report = await probe_tcp("127.0.0.1", running_meter, http_port=free_port())
    assert report.verdict is Verdict.S8000_SUNSPEC
    assert report.cut_short is None
    (unit,) = report.units
    assert unit.device_identification is not None
    assert unit.device_identification[0] == b"Leviton"
    assert unit.server_id is not None
    assert unit.server_id.startswith(b"S8UTS-083 ")
    found = unit.found_sunspec
    assert found is not None
    assert found.base == 40000
    ids = [model_id for model_id, _, _ in found.models]
    assert ids == [1, *[203] * 8, 64800]
    # The client identifies and reads it through the built-in profile.
    (check,) = unit.profiles
    assert (check.profile, check.source, check.identified, check.error) == (
        "sunspec", "built-in", True, None
    )  # fmt: skip
    assert check.identity is not None
    assert check.identity["model"] == "S8UTS-083"
    assert [v["point"] for v in check.values] == [1, 2, 3]
    assert all(v["kwh_delivered"] is not None and v["w"] is not None for v in check.values)
    assert [s.marker for s in unit.sunspec] == [True, False, False]  # 40000, 0, 50000
    # The whole chain was read, marker to end model; below it nothing answers.
    holding = {r.start: r for r in unit.ranges if r.kind == "holding"}
    last = found.models[-1]
    assert len(holding[40000].words) == last[1] + last[2] + 4 - 40000
    assert holding[40000].words[:2] == [0x5375, 0x6E53]
    assert any((u.kind, u.start, u.failure.code) == ("holding", 0, 2) for u in unit.unreadable)
    assert report.http is not None
    assert not report.http.answered
    dump = report.to_dict()
    assert dump["verdict"] == "s8000-sunspec"
    assert dump["format"] == "s8000-probe"
    assert dump["format_version"] == 2
    assert dump["complete"] is True
    assert dump["verdict_profile"] is None
    assert dump["units"][0]["sunspec_base"] == 40000
    assert dump["units"][0]["profiles"][0]["identity"]["serial"] == "[serial]"
    assert "profile sunspec (built-in): identified S8UTS-083 serial [serial], 8 points; " in (
        report.summary()
    )
    assert "verdict: s8000-sunspec" in report.summary()


async def test_the_dump_hides_serial_and_mac_unless_asked(running_meter: int) -> None:
    async with connect_tcp("127.0.0.1", running_meter) as client:
        identity = await client.identify()
    assert identity.mac is not None
    serial, mac = identity.serial, identity.mac
    report = await probe_tcp("127.0.0.1", running_meter, http_port=None)
    forms = [serial, mac, mac.replace(":", ""), mac.lower(), mac.replace(":", "-")]

    def secrets_in(dump: dict[str, object], text: str) -> list[str]:
        found = [form for form in forms if form in text]
        for unit in dump["units"]:  # type: ignore[attr-defined]
            for r in unit["ranges"]:
                if contains(r["words"], words_of(serial)[:-1]):
                    found.append("serial words")
                if contains(r["words"], mac_words(mac)):
                    found.append("MAC words")
        return found

    redacted = report.to_json()
    assert secrets_in(json.loads(redacted), redacted + report.summary()) == []
    assert json.loads(redacted)["redacted"] is True
    assert "[serial]" in redacted
    kept = report.to_json(redact=False)
    summary = report.summary(redact=False)
    assert set(secrets_in(json.loads(kept), kept)) >= {serial, mac, "serial words", "MAC words"}
    assert serial in summary
    assert mac in summary


async def test_quick_reads_no_registers_beyond_the_identification(running_meter: int) -> None:
    report = await probe_tcp(
        "127.0.0.1", running_meter, http_port=None, options=ProbeOptions(quick=True)
    )
    assert report.verdict is Verdict.S8000_SUNSPEC
    (unit,) = report.units
    assert unit.ranges == []
    assert unit.found_sunspec is not None
    assert unit.profiles == []  # the built-in profile is checked in a full probe only
    assert unit.requests < 25


async def test_a_unit_handle_someone_else_owns_is_probed_quickly(running_meter: int) -> None:
    """What the configuration flow will use: its own unit handle, a quick probe."""
    connection = connection_class("tmodbus")(
        ModbusTcpParams(host="127.0.0.1", port=running_meter), timeout=2.0
    )
    try:
        report = await probe_unit(connection.for_unit(1), unit_id=1)
        other = await probe_unit(connection.for_unit(9), unit_id=9)
    finally:
        await connection.close()
    assert report.verdict is Verdict.S8000_SUNSPEC
    assert report.units[0].ranges == []
    # Behind the meter's TCP server, another unit id gets a gateway's "no device".
    assert other.verdict is Verdict.NOTHING
    assert other.units[0].stopped is not None
    assert "nothing at this unit id" in other.units[0].stopped


# -- a device that is not an S8000 ---------------------------------------------------------


@contextlib.asynccontextmanager
async def pymodbus_server(words: list[int], base: int) -> AsyncIterator[int]:
    """pymodbus's own TCP server with ``words`` at ``base`` (holding and input alike)."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    device = SimDevice(id=1, simdata=[SimData(base, values=words, datatype=DataType.REGISTERS)])
    server = ModbusTcpServer(device, address=("127.0.0.1", 0))
    task = asyncio.create_task(server.serve_forever())
    try:
        while server.transport is None:  # noqa: ASYNC110 (pymodbus offers no event)
            await asyncio.sleep(0.02)
        yield int(server.transport.sockets[0].getsockname()[1])
    finally:
        await server.shutdown()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_plain_pymodbus_server_is_no_s8000_and_its_registers_are_read() -> None:
    rng = random.Random(8000)
    words = [rng.randrange(32768) for _ in range(2500)]  # pymodbus stores them signed
    async with pymodbus_server(words, 100) as port:
        report = await probe_tcp("127.0.0.1", port, http_port=None)
    assert report.verdict is Verdict.MODBUS_UNKNOWN
    assert "not an S8000" in report.summary()
    (unit,) = report.units
    assert [s.marker for s in unit.sunspec] == [False, False, False]
    spans = sorted((r.kind, r.start, len(r.words)) for r in unit.ranges)
    # The default windows cut by the device's map: 100–2599, to the register.
    assert spans == [
        ("holding", 100, 900), ("holding", 2000, 600),
        ("input", 100, 900), ("input", 2000, 600),
    ]  # fmt: skip
    for r in unit.ranges:
        assert r.words == words[r.start - 100 : r.start - 100 + len(r.words)]
    refused = {(u.kind, u.start, u.count, u.failure.code) for u in unit.unreadable}
    assert ("holding", 0, 100, 2) in refused
    assert ("holding", 2600, 200, 2) in refused


async def test_refused_blocks_are_narrowed_to_the_register_within_the_budget() -> None:
    # Islands 13–70 and 118–185: every border falls inside a block of 60, the
    # first island begins inside a refused block with no readable one before it.
    class Islands(Backend):
        async def read(self, address: int, count: int) -> list[int]:
            if all(13 <= a <= 70 or 118 <= a <= 185 for a in range(address, address + count)):
                return list(range(address, address + count))
            raise ModbusError(Exc.ILLEGAL_ADDRESS)

    async with serving(Islands()) as port:
        options = ProbeOptions(windows=((0, 200),), max_requests=200)
        report = await probe_tcp("127.0.0.1", port, http_port=None, options=options)
        tight = await probe_tcp(
            "127.0.0.1", port, http_port=None, options=ProbeOptions(max_requests=7)
        )
    (unit,) = report.units
    assert [(r.kind, r.start, r.words) for r in unit.ranges if r.kind == "holding"] == [
        ("holding", 13, list(range(13, 71))),
        ("holding", 118, list(range(118, 186))),
    ]
    assert [(u.start, u.count) for u in unit.unreadable if u.kind == "input"] == [
        (0, 13), (71, 47), (186, 14)
    ]  # fmt: skip
    assert unit.requests < 60
    assert tight.units[0].requests == 7
    assert tight.units[0].stopped == "the budget of 7 requests was spent"


async def test_a_leviton_identification_without_sunspec_is_leviton_modbus() -> None:
    device = Says({0: b"Leviton", 1: b"Series 4000", 2: b"V1.003"}, base=0, words=range(400))
    async with serving(device) as port:
        report = await probe_tcp(
            "127.0.0.1", port, http_port=None, options=ProbeOptions(quick=True)
        )
    assert report.verdict is Verdict.LEVITON_MODBUS
    assert report.units[0].device_identification == {
        0: b"Leviton", 1: b"Series 4000", 2: b"V1.003"
    }  # fmt: skip


async def test_another_sunspec_device_is_sunspec_other() -> None:
    async with serving(sunspec_device("Fronius", "Symo")) as port:
        report = await probe_tcp("127.0.0.1", port, http_port=None)
    assert report.verdict is Verdict.SUNSPEC_OTHER
    found = report.units[0].found_sunspec
    assert found is not None
    assert found.common is not None
    assert (found.common["Mn"], found.common["Md"]) == ("Fronius", "Symo")
    assert [m[0] for m in found.models] == [1]
    assert found.ended


# -- profiles ----------------------------------------------------------------------------


def example_meter(tmp_path: Path) -> tuple[MeterBackend, MeterSnapshot]:
    """The demo meter after a few metered seconds, in the example profile's layout
    (fixed addresses, least significant word first, function 43)."""
    config, snapshot = metered(tmp_path)
    regmap = build_map(config, profile=str(EXAMPLE))
    backend = MeterBackend(regmap, model=config.model.code, serial=snapshot.serial,
                           firmware=FIRMWARE)  # fmt: skip
    backend.update(render(regmap, snapshot))
    return backend, snapshot


async def test_a_serial_number_only_function_17_says_is_redacted(tmp_path: Path) -> None:
    """A quick probe of a meter without SunSpec (what the configuration flow
    shows) learns the serial number from function 17 alone: it is hidden
    there too, in the summary and the dump."""
    backend, snapshot = example_meter(tmp_path)
    async with serving(backend) as port:
        report = await probe_tcp(
            "127.0.0.1", port, http_port=None, options=ProbeOptions(quick=True)
        )
    (unit,) = report.units
    assert unit.server_id is not None
    assert snapshot.serial.encode() in unit.server_id  # the local meter says it there
    assert snapshot.serial not in report.summary()
    assert snapshot.serial not in report.to_json()
    assert snapshot.serial in report.summary(redact=False)


async def test_a_meter_in_another_profile_is_read_through_it(tmp_path: Path) -> None:
    """The example profile given: an S8000 read through it, with sensible numbers;
    the built-in profile, checked too, says why it does not fit."""
    backend, snapshot = example_meter(tmp_path)
    example = load_profile(EXAMPLE)
    options = ProbeOptions(profiles=(builtin_profile(), example))
    async with serving(backend) as port:
        report = await probe_tcp("127.0.0.1", port, http_port=None, options=options)
        plain = await probe_tcp("127.0.0.1", port, http_port=None)
    assert report.verdict is Verdict.S8000_PROFILE
    builtin, through = report.units[0].profiles
    assert (builtin.profile, builtin.identified) == ("sunspec", False)
    assert builtin.error is not None
    assert builtin.error.startswith("no SunSpec marker at 40000 (")  # exception 02 there
    assert (through.profile, through.source) == ("example-fixed", "example-fixed.json")
    assert through.read
    assert through.identity is not None
    assert (through.identity["model"], through.identity["points"]) == ("S8UTS-083", 8)
    first = through.values[0]
    assert first["point"] == 1
    assert first["kwh_delivered"] == pytest.approx(snapshot.registers[0][0] / 1e6, abs=1e-6)
    assert first["w"] == pytest.approx(float(snapshot.readings.power[0]), rel=1e-5)
    assert report.verdict_profile is through
    dump = report.to_dict()
    assert dump["verdict"] == "s8000-profile"
    assert dump["verdict_profile"] == "example-fixed"
    assert dump["link"]["profiles"] == [
        {"profile": "sunspec", "source": "built-in"},
        {"profile": "example-fixed", "source": "example-fixed.json"},
    ]
    assert dump["units"][0]["profiles"][1]["identity"]["serial"] == "[serial]"
    assert snapshot.serial not in report.to_json() + report.summary()
    summary = report.summary()
    assert "verdict: s8000-profile — an S8000, identified and read through a profile" in summary
    assert "example-fixed (example-fixed.json)" in summary
    # A plain probe: function 43 says Leviton and the model, no SunSpec map.
    assert plain.verdict is Verdict.LEVITON_MODBUS
    assert [(c.profile, c.identified) for c in plain.units[0].profiles] == [("sunspec", False)]
    assert "function 43 (device identification): Leviton / S8UTS-083" in plain.summary()


async def test_a_profile_that_does_not_fit_says_why(tmp_path: Path) -> None:
    """The example profile over the built-in SunSpec map, and over a device
    that is not an S8000: not identified, with the client's reason."""
    example = load_profile(EXAMPLE)
    options = ProbeOptions(quick=True, profiles=(example,))
    async with serving(local_meter()) as port:
        report = await probe_tcp("127.0.0.1", port, http_port=None, options=options)
    assert report.verdict is Verdict.S8000_SUNSPEC
    (check,) = report.units[0].profiles
    assert not check.identified
    assert check.error is not None
    assert "profile example-fixed (example-fixed.json): not identified: " in report.summary()
    device = Says({0: b"Acme", 1: b"Meter 9"}, base=0, words=range(400))
    async with serving(device) as port:
        other = await probe_tcp("127.0.0.1", port, http_port=None, options=options)
    assert other.verdict is Verdict.MODBUS_UNKNOWN
    (check,) = other.units[0].profiles
    assert check.error == "the manufacturer is 'Acme', not 'Leviton'"


# -- never writes ------------------------------------------------------------------------


class Watched(MeterBackend):
    """The local meter's registers, recording every write the server is asked for."""

    writes: list[tuple[int, list[int]]]

    async def write(self, address: int, values: Sequence[int]) -> None:
        self.writes.append((address, list(values)))
        await super().write(address, values)


@pytest.mark.parametrize("profile", [None, EXAMPLE])
async def test_a_full_probe_never_writes(profile: Path | None) -> None:
    """Through the built-in map, and through the example profile's with that
    profile checked: the client's identification and read, inside the probe."""
    config = meter_config(DEMO_CONFIG)
    regmap = build_map(config) if profile is None else build_map(config, profile=str(profile))
    watched = Watched(regmap, model="S8UTS-083", serial=SERIAL, firmware=FIRMWARE)
    watched.writes = []
    watched.update(render(regmap, MeterSnapshot(config, serial=SERIAL)))
    handler = Handler(watched)
    server = TcpServer(handler)
    _host, port = await server.start("127.0.0.1", 0)
    options = ProbeOptions() if profile is None else ProbeOptions(profiles=(load_profile(profile),))
    try:
        report = await probe_tcp("127.0.0.1", port, http_port=None, options=options)
    finally:
        await server.close()
    (check,) = report.units[0].profiles
    assert check.read, check.error
    if profile is None:
        assert report.verdict is Verdict.S8000_SUNSPEC
    else:
        assert report.verdict is Verdict.S8000_PROFILE
    functions = handler.stats.by_function
    # It did ask (so the watch watched something), and never with a write.
    assert {3, 4, 17, 43} <= set(functions)
    assert WRITES & set(functions) == set()
    assert watched.writes == []


# -- the web pages -----------------------------------------------------------------------

#: The PowerHawk's pages as faganqui/PowerhawkRealtime2.0 reads them (leviton.md §3.2):
#: ``/`` a frameset with a nav and a header frame, the nav page linking to the
#: real-time pages, a meta refresh on the way, the data in the first table.
POWERHAWK = {
    "/": """<HTML><HEAD><TITLE>PowerHawk</TITLE></HEAD>
<FRAMESET ROWS="80,*"><FRAME SRC="header.htm" NAME="header">
<FRAMESET COLS="150,*"><FRAME SRC="nav.htm" NAME="nav"><FRAME SRC="main.htm" NAME="main">
</FRAMESET></FRAMESET></HTML>""",
    "/header.htm": """<HTML><BODY><TABLE><TR><TD><P>Building A Submeter</P>
<P>MAC 00:21:b6:0a:0b:0c</P></TD></TR></TABLE></BODY></HTML>""",
    "/nav.htm": """<HTML><BODY><A HREF="rt/active.htm">Active</A><BR>
<A HREF="rt/reactive.htm">Reactive</A><BR><A HREF="http://192.0.2.1/active.htm">Elsewhere</A>
<A HREF="setup.htm">Setup</A></BODY></HTML>""",
    "/main.htm": "<HTML><BODY><P>Welcome</P></BODY></HTML>",
    "/rt/active.htm": """<HTML><HEAD><META HTTP-EQUIV="refresh" CONTENT="0; url=active2.htm">
</HEAD><BODY>Moving</BODY></HTML>""",
    "/rt/active2.htm": """<HTML><BODY><TABLE>
<TR><TH> Meter </TH><TH> Watts </TH><TH> kWh delivered </TH><TH> kWh received </TH></TR>
<TR><TD>Unit 101</TD><TD>1234</TD><TD>5678.9</TD><TD>0.0</TD></TR>
<TR><TD>Unit 102</TD><TD>250</TD><TD>321.0</TD><TD>12.5</TD></TR>
</TABLE></BODY></HTML>""",
    "/rt/reactive.htm": """<HTML><BODY><TABLE>
<TR><TH> Meter </TH><TH> var </TH><TH> VA </TH><TH> kvarh received </TH></TR>
<TR><TD>Unit 101</TD><TD>120</TD><TD>1240</TD><TD>4.0</TD></TR>
</TABLE></BODY></HTML>""",
}


@contextlib.contextmanager
def web_server(pages: dict[str, str]) -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on loopback serving ``pages``; yields its port and the paths asked."""
    asked: list[str] = []

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write((body or "<html>not found</html>").encode())

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_a_meter_serving_only_web_pages_is_found_by_its_pages() -> None:
    with web_server(POWERHAWK) as (http_port, asked):
        report = await probe_tcp("127.0.0.1", free_port(), http_port=http_port)
    assert report.verdict is Verdict.WEB_PAGES
    assert report.units == []
    assert any("connection refused" in e for e in report.errors)
    assert report.http is not None
    paths = [p.url.split(str(http_port), 1)[1] for p in report.http.pages]
    assert set(paths) == {
        "/", "/header.htm", "/nav.htm", "/main.htm",
        "/rt/active.htm", "/rt/active2.htm", "/rt/reactive.htm",
    }  # fmt: skip
    assert "/setup.htm" not in asked  # only the real-time pages are followed
    active = next(p for p in report.http.pages if p.url.endswith("/rt/active2.htm"))
    assert active.table[0] == ["Meter", "Watts", "kWh delivered", "kWh received"]
    assert active.table[1] == ["Unit 101", "1234", "5678.9", "0.0"]
    dump = report.to_json()
    assert "00:21:b6:0a:0b:0c" not in dump.lower()  # a MAC on a page is redacted too
    assert "00:21:b6:0a:0b:0c" in report.to_json(redact=False)
    assert "Building A Submeter" in dump


async def test_quick_fetches_only_the_root_page_and_plain_pages_are_web_other() -> None:
    with web_server(POWERHAWK) as (http_port, asked):
        report = await probe_tcp(
            "127.0.0.1", free_port(), http_port=http_port, options=ProbeOptions(quick=True)
        )
    assert report.verdict is Verdict.WEB_PAGES  # the frameset says so already
    assert asked == ["/"]
    with web_server({"/": "<html><title>Router</title>Hello</html>"}) as (http_port, _):
        other = await probe_tcp("127.0.0.1", free_port(), http_port=http_port)
    assert other.verdict is Verdict.WEB_OTHER
    assert other.http is not None
    assert other.http.pages[0].title == "Router"


# -- the time bound ------------------------------------------------------------------------


class Slow(Image):
    """Registers that take their time (a device on a busy gateway)."""

    async def read(self, address: int, count: int) -> list[int]:
        await asyncio.sleep(0.2)
        return await super().read(address, count)


async def test_a_slow_device_is_cut_short_at_the_bound_with_what_it_said() -> None:
    async with serving(Slow(0, list(range(3000)))) as port:
        report = await probe_tcp(
            "127.0.0.1", port, http_port=None, options=ProbeOptions(timeout_total=2.0)
        )
    assert report.cut_short == "the time bound of 2 s was reached"
    assert report.units[0].answered
    assert report.verdict is Verdict.MODBUS_UNKNOWN
    dump = report.to_dict()
    assert dump["complete"] is False
    assert dump["finished"] is not None
    assert "cut short" in report.summary()


async def test_a_device_that_never_answers_is_cut_short_too() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, listens, never answers
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        report = await probe_tcp(
            "127.0.0.1", port, http_port=None, timeout=1.0,
            options=ProbeOptions(timeout_total=1.5),
        )  # fmt: skip
    finally:
        server.close()
        await server.wait_closed()
    assert report.cut_short is not None
    assert report.verdict is Verdict.NOTHING
    assert report.to_dict()["complete"] is False


# -- bad input ---------------------------------------------------------------------------


async def test_bad_input_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unit id 256 is not 0–255"):
        await probe_tcp("127.0.0.1", units=[256])
    with pytest.raises(ValueError, match="block: 0 is not 1–125 registers"):
        ProbeOptions(block=0)
    with pytest.raises(ValueError, match="register window"):
        ProbeOptions(windows=((10, 5),))
    with pytest.raises(S8000ConnectionError, match="unknown host"):
        await probe_tcp("no-such-host.invalid")
    with pytest.raises(S8000ConnectionError, match="could not open serial port"):
        await probe_serial(str(tmp_path / "ttyUSB9"))
    with pytest.raises(ValueError, match="unit id 248 is not 0–247"):
        await probe_serial(str(tmp_path / "ttyUSB9"), units=[248])


# -- an RS-485 bus -------------------------------------------------------------------------


SERVING_RTU = re.compile(r"serving Modbus RTU")


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A bus with the local meter's process at unit 7; yields the end the probe
    uses and two free ends for the test's other devices."""
    cable = Bus(4)
    process = subprocess.Popen(
        [engine(), "run", "--simulate", "--data", str(tmp_path), "--speed", "20",
         "--modbus-tcp", "127.0.0.1:0", "--modbus-rtu", cable.paths[0], "--unit-id", "7"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stderr = StderrLines(process)
    try:
        if stderr.wait_for(SERVING_RTU, 60) is None:
            pytest.fail(f"the meter did not start: {stderr.text()}")
        yield cable.paths[1], cable.paths[2:]
    finally:
        process.terminate()
        process.wait(10)
        stderr.close()
        cable.close()


async def test_probing_a_bus_finds_each_device_with_its_verdict(
    bus: tuple[str, list[str]],
) -> None:
    """The local meter at unit 7, a Leviton device without SunSpec at unit 2 and
    another maker's SunSpec device at unit 3, on one bus; the rest silent."""
    end, free = bus
    devices = [
        RtuServer(
            Handler(Says({0: b"Leviton", 1: b"Series 4000", 2: b"V1.003"}, words=range(300))),
            free[0],
            unit_id=2,
        ),
        RtuServer(Handler(sunspec_device("Fronius", "Symo")), free[1], unit_id=3),
    ]
    for device in devices:
        await device.start()
    try:
        report = await probe_serial(
            end,
            units=range(1, 9),
            timeout=0.5,
            options=ProbeOptions(delay=0.01, windows=((0, 120),), timeout_total=120),
        )
    finally:
        for device in devices:
            await device.close()
    verdicts = {u.unit_id: u.verdict for u in report.units}
    assert verdicts == {
        1: Verdict.NOTHING, 2: Verdict.LEVITON_MODBUS, 3: Verdict.SUNSPEC_OTHER,
        4: Verdict.NOTHING, 5: Verdict.NOTHING, 6: Verdict.NOTHING,
        7: Verdict.S8000_SUNSPEC, 8: Verdict.NOTHING,
    }  # fmt: skip
    assert report.verdict is Verdict.S8000_SUNSPEC
    assert report.cut_short is None
    meter = next(u for u in report.units if u.unit_id == 7)
    assert meter.found_sunspec is not None
    assert [(c.profile, c.read) for c in meter.profiles] == [("sunspec", True)]
    leviton = next(u for u in report.units if u.unit_id == 2)
    assert [(r.kind, r.start, len(r.words)) for r in leviton.ranges] == [
        ("holding", 0, 120), ("input", 0, 120)
    ]  # fmt: skip
    dump = json.loads(report.to_json())
    assert dump["link"]["transport"] == "rtu"
    assert [u["verdict"] for u in dump["units"]][6] == "s8000-sunspec"
