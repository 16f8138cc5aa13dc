"""The Modbus client against real meters: the local meter's process and in-process servers.

Nothing here mocks the meter: the live tests talk to ``s8000-engine run
--simulate`` over Modbus TCP on loopback; the exact-decoding tests serve one
fixed register image the local meter rendered after metering a few seconds,
so the client's decode and an independent one see the very same registers.
Every test runs with both of modbus-connection's backends.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import struct
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from s8000_engine.cli import main
from s8000_engine.client.client import BACKENDS, BackendName, S8000Client, connect_tcp
from s8000_engine.config.meter import MeterConfig, meter_config
from s8000_engine.const import FIRMWARE, FIRMWARE_BUILD
from s8000_engine.exceptions import (
    S8000BadData,
    S8000ConnectionError,
    S8000Error,
    S8000MapChanged,
    S8000NotAnS8000,
    S8000WrongMeter,
)
from s8000_engine.local.image import MeterSnapshot, build_map, render
from s8000_engine.local.meter import DEMO_CONFIG, LocalMeter, SimulatedPulses
from s8000_engine.local.simulate import PanelSimulator
from s8000_engine.modbus.backend import MeterBackend
from s8000_engine.protocol.regmap import RegisterMap, sunspec_map
from s8000_engine.protocol.sunspec import DataType, Service, Status, encode
from s8000_engine.storage.store import Store
from tests.engine.meterproc import Image, ManualClock, Progress, free_port, serving, serving_meter

START = "2026-11-25T12:00:00Z"
T0 = 1_795_608_000  # START: noon, when the solar point (4) exports


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> BackendName:
    """Each of modbus-connection's backends (both are in the test extra: a
    missing one is an error, not a skip)."""
    name: BackendName = request.param
    importlib.import_module(f"modbus_connection.{name}")
    return name


# -- the local meter's process -------------------------------------------------------------


@pytest.fixture(scope="module")
def running_meter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`s8000-engine run --simulate` (the demo S8UTS-083) serving Modbus TCP on loopback."""
    with serving_meter(tmp_path_factory.mktemp("meter"), "--start", START) as port:
        yield port


def demo_map() -> RegisterMap:
    return build_map(meter_config(DEMO_CONFIG))


async def test_identify_finds_the_demo_meter(running_meter: int, backend: BackendName) -> None:
    async with connect_tcp("127.0.0.1", running_meter, backend=backend) as client:
        identity = await client.identify()
        assert identity.manufacturer == "Leviton"
        assert identity.model == "S8UTS-083"
        assert identity.points == 8
        assert identity.elements == 3
        assert identity.point_models == (203,) * 8
        assert identity.service is Service.WYE_4W
        assert identity.options == "3p4w 8x3"
        assert identity.firmware == FIRMWARE
        assert identity.firmware_build == FIRMWARE_BUILD
        assert identity.serial.isdigit()
        assert identity.mac is not None
        assert identity.mac.startswith("00:21:B6:")
        # The rebuilt map is the one the meter's server is built from.
        assert client.regmap == demo_map()


async def test_read_decodes_the_live_meter(running_meter: int, backend: BackendName) -> None:
    regmap = demo_map()
    span = regmap.end - regmap.base
    async with connect_tcp("127.0.0.1", running_meter, backend=backend) as client:
        data = await client.read()  # identifies first
        static = await independent_read(running_meter, regmap)
    assert data.transactions == math.ceil(span / 125) == 10
    assert data.frequency == pytest.approx(60.0, abs=0.05)
    assert data.utc is not None
    assert data.utc >= T0
    assert data.status is not None
    assert not data.status & Status.NO_VOLTAGE
    for phase in "ABC":
        assert data.voltage[phase] == pytest.approx(120.0, rel=0.05)
    for line in ("AB", "BC", "CA"):
        assert data.line_voltage[line] == pytest.approx(208.0, rel=0.05)
    assert len(data.points) == 8
    solar = data.point(4)
    assert solar.w is not None
    assert solar.w < 0, "the solar point exports at noon"
    assert solar.kwh_received is not None
    for point in data.points:
        assert point.model_id == 203
        assert set(point.phase_w) == set(point.phase_a) == {"A", "B", "C"}
        assert point.pf is None or -1.0 <= point.pf <= 1.0
        # Energies are the vendor model's mWh registers, in kWh ...
        n = point.number
        assert point.kwh_delivered == data.raw[f"s8000.Pt{n}WhImp"] / 1000
        assert point.kwh_received == data.raw[f"s8000.Pt{n}WhExp"] / 1000
        assert point.kvarh_delivered == data.raw[f"s8000.Pt{n}VArhImp"] / 1000
        # ... and the SunSpec acc32 Wh totals of the same poll agree to their resolution.
        resolution = 10 ** data.raw[f"point{n}.TotWh_SF"]
        assert point.kwh_delivered is not None
        total = data.raw[f"point{n}.TotWhImp"] or 0  # acc32 0 is "not accumulated": None
        assert abs(point.kwh_delivered * 1000 - total) <= resolution
        assert point.ct_primary_a == DEMO_CONFIG["points"][n - 1]["ct_primary"]
    # What does not change from one second to the next equals an independent read.
    for name in ("common.SN", "common.Md", "s8000.Points", "point1.W_SF", "point8.TotWh_SF"):
        assert data.raw[name] == static[name], name


async def test_energies_grow_between_reads(running_meter: int, backend: BackendName) -> None:
    async with connect_tcp("127.0.0.1", running_meter, backend=backend) as client:
        before = await client.read()
        assert before.utc is not None
        # A minute of meter time (3 s at 20x on an idle machine), however long it takes here.
        progress = Progress("a minute of meter time")
        while True:
            after = await client.read()
            assert after.utc is not None
            if after.utc >= before.utc + 60:
                break
            progress.seen(after.utc)
            await asyncio.sleep(0.5)
    grew = 0
    for old, new in zip(before.points, after.points, strict=True):
        for attribute in ("kwh_delivered", "kwh_received", "kvarh_delivered", "kvarh_received"):
            assert getattr(new, attribute) >= getattr(old, attribute), attribute
        grew += (new.kwh_delivered or 0) > (old.kwh_delivered or 0)
    assert grew >= 2, "the loads' delivered energy grew"
    assert (after.point(4).kwh_received or 0) > (before.point(4).kwh_received or 0)


def read_command(argv: list[str]) -> int:
    """``s8000-engine read ARGV...`` in this process."""
    return main(["read", *argv])


def test_read_command_prints_a_table_and_json(
    running_meter: int, backend: BackendName, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"127.0.0.1:{running_meter}"
    assert read_command([address, "--backend", backend]) == 0
    table = capsys.readouterr().out
    assert "Leviton S8UTS-083" in table
    assert "Hz" in table
    rows = [line.split() for line in table.splitlines() if line.split()[:2][1:] == ["203"]]
    assert [int(row[0]) for row in rows] == list(range(1, 9))
    assert float(rows[3][4]) < 0  # the solar point's W
    assert "10 Modbus reads" in table

    command = [address, "--backend", backend, "--format", "json", "--unit-id", "1"]
    assert read_command(command) == 0
    reading = json.loads(capsys.readouterr().out)
    assert reading["identity"]["model"] == "S8UTS-083"
    assert len(reading["data"]["points"]) == 8
    assert reading["data"]["transactions"] == 10
    assert reading["data"]["raw"]["common.Mn"] == "Leviton"
    assert reading["data"]["frequency"] == pytest.approx(60.0, abs=0.05)


def test_read_command_errors_are_one_line(
    backend: BackendName, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = free_port()
    assert read_command([f"127.0.0.1:{closed}", "--timeout", "1", "--backend", backend]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s8000-engine read: error: ")
    assert err.count("\n") == 1
    assert "connect" in err
    for argv in (["127.0.0.1:http"], ["[::1"], ["127.0.0.1", "--unit-id", "300"], []):
        assert read_command(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("s8000-engine read: error: ")
        assert err.count("\n") == 1


async def test_set_clock_and_commands(running_meter: int, backend: BackendName) -> None:
    async with connect_tcp("127.0.0.1", running_meter, backend=backend) as client:
        data = await client.read()
        assert data.utc is not None
        target = data.utc + 86400.0
        await client.set_clock(target)
        moved = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            moved = (await client.read()).utc
            if moved is not None and moved >= target:
                break
            await asyncio.sleep(0.1)
        assert moved is not None
        # The meter applies the write before its next second (1/20 s here).
        assert target <= moved < target + 300
        # Both writes are accepted here (no reporting host is configured);
        # what Send does is checked in test_reporting, with an FTP host.
        await client.reset_peak_demand()
        await client.send_now()
        with pytest.raises(ValueError, match="UTC"):
            await client.set_clock(100.0)  # before 2000: refused before it is sent


# -- in-process servers: one fixed image ---------------------------------------------------


def metered(tmp_path: Path, seconds: int = 4) -> tuple[MeterConfig, MeterSnapshot]:
    """The demo meter's registers after metering the simulated panel from noon."""
    config = meter_config(DEMO_CONFIG)
    clock = ManualClock(T0)
    with Store.open(tmp_path) as store:
        meter = LocalMeter(config, store, PanelSimulator(config), clock, pulses=SimulatedPulses(0))
        meter.start()
        for _ in range(seconds):
            clock.value += 1
            meter.step()
        return config, meter.snapshot()


def meter_backend(config: MeterConfig, snapshot: MeterSnapshot) -> MeterBackend:
    regmap = build_map(config)
    served = MeterBackend(
        regmap, model=config.model.code, serial=snapshot.serial, firmware=FIRMWARE
    )
    served.update(render(regmap, snapshot))
    return served


async def independent_read(port: int, regmap: RegisterMap) -> dict[str, Any]:
    """Every field of the map, read with pymodbus directly and decoded by hand."""
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    await client.connect()
    words: list[int] = []
    try:
        for start in range(regmap.base, regmap.end, 125):
            count = min(125, regmap.end - start)
            reply = await client.read_holding_registers(start, count=count, device_id=1)
            assert not reply.isError(), reply
            words += reply.registers
    finally:
        client.close()
    return by_hand(regmap, words)


def by_hand(regmap: RegisterMap, words: Sequence[int]) -> dict[str, Any]:
    """Decode with struct, not with the map's decoder: raw integers, floats and strings."""
    out: dict[str, Any] = {}
    for f in regmap.fields:
        chunk = bytes(
            b
            for w in words[f.address - regmap.base : f.address - regmap.base + f.size]
            for b in w.to_bytes(2, "big")
        )
        if f.type is DataType.STRING:
            out[f.name] = chunk.split(b"\0")[0].decode()
        elif f.type is DataType.FLOAT32:
            out[f.name] = struct.unpack(">f", chunk)[0]
        elif f.type is DataType.EUI48:
            out[f.name] = chunk.hex(":").upper()
        else:
            signed = f.type in (DataType.INT16, DataType.INT32, DataType.INT64, DataType.SUNSSF)
            out[f.name] = int.from_bytes(chunk, "big", signed=signed)
    return out


async def test_read_matches_an_independent_decode(tmp_path: Path, backend: BackendName) -> None:
    config, snapshot = metered(tmp_path)
    served = meter_backend(config, snapshot)
    regmap = served.regmap
    async with serving(served) as port:
        async with connect_tcp("127.0.0.1", port, backend=backend) as client:
            data = await client.read()
        raw = await independent_read(port, regmap)

    def scaled(label: str, name: str, sf: str) -> float | None:
        value, exponent = raw[f"{label}.{name}"], raw[f"{label}.{sf}"]
        if value == -0x8000 or exponent == -0x8000:
            return None
        return float(value * 10.0**exponent)

    assert data.transactions == 10
    assert data.utc == T0 + 4
    assert data.frequency == pytest.approx(scaled("point1", "Hz", "Hz_SF"))
    for phase in "ABC":
        assert data.voltage[phase] == pytest.approx(scaled("point1", f"PhVph{phase}", "V_SF"))
    for point in data.points:
        n, label = point.number, f"point{point.number}"
        assert point.w == pytest.approx(scaled(label, "W", "W_SF"))
        assert point.var == pytest.approx(scaled(label, "VAR", "VAR_SF"))
        assert point.va == pytest.approx(scaled(label, "VA", "VA_SF"))
        pf = scaled(label, "PF", "PF_SF")
        assert point.pf == pytest.approx(None if pf is None else pf / 100)
        for phase in "ABC":
            assert point.phase_w[phase] == pytest.approx(scaled(label, f"Wph{phase}", "W_SF"))
            assert point.phase_a[phase] == pytest.approx(scaled(label, f"Aph{phase}", "A_SF"))
        assert point.kwh_delivered == pytest.approx(raw[f"s8000.Pt{n}WhImp"] / 1e6, rel=1e-15)
        assert point.kwh_received == pytest.approx(raw[f"s8000.Pt{n}WhExp"] / 1e6, rel=1e-15)
        assert point.kvarh_delivered == pytest.approx(raw[f"s8000.Pt{n}VArhImp"] / 1e6)
        assert point.kvarh_received == pytest.approx(raw[f"s8000.Pt{n}VArhExp"] / 1e6)
        assert point.kwh_delivered == pytest.approx(snapshot.registers[n - 1][0] / 1e6)
        demand = raw[f"s8000.Pt{n}Dmd"]
        assert point.demand_w == (None if math.isnan(demand) else pytest.approx(demand))
    assert sum(1 for point in data.points if point.w) >= 4, "loads are on"
    solar = data.point(4).w
    assert solar is not None
    assert solar < 0
    for pulse in data.pulses:
        assert pulse.count == raw[f"s8000.P{pulse.number}Count"]
        assert pulse.scale == pytest.approx(raw[f"s8000.P{pulse.number}Scale"])
    assert data.intervals.length_s == 900
    assert data.raw["common.SN"] == raw["common.SN"] == snapshot.serial
    assert data.raw["s8000.MAC"] == raw["s8000.MAC"]


async def test_a_reconfigured_or_replaced_meter_is_noticed(
    tmp_path: Path, backend: BackendName
) -> None:
    config, snapshot = metered(tmp_path, seconds=1)
    served = meter_backend(config, snapshot)
    async with serving(served) as port, connect_tcp("127.0.0.1", port, backend=backend) as client:
        identity = await client.identify()
        await client.read()

        # Point 1 rewired to two CTs: model 202 where 203 was, same length.
        rewired = dict(DEMO_CONFIG)
        rewired["points"] = [dict(p) for p in DEMO_CONFIG["points"]]
        rewired["points"][0]["phases"] = ["A", "B"]
        other = meter_config(rewired)
        served.update(render(build_map(other), MeterSnapshot(other, serial=identity.serial)))
        data = await client.read()  # identifies again, and reads the new map
        assert data.point(1).model_id == 202
        assert client.identity is not None
        assert client.identity.point_models == (202,) + (203,) * 7

        # Another meter of the same layout at the same address: refused by
        # reads, and checked for before a write or an interval read.
        served.update(render(build_map(other), MeterSnapshot(other, serial="0000000001")))
        with pytest.raises(S8000WrongMeter, match="0000000001") as caught:
            await client.read()
        assert (caught.value.expected, caught.value.found) == (
            identity.serial,
            "S8UTS-083 serial 0000000001",
        )
        with pytest.raises(S8000WrongMeter, match="0000000001"):
            await client.reset_peak_demand()
        with pytest.raises(S8000WrongMeter, match="0000000001"):
            await client.read_intervals(0, 2**32)

        # Another meter of another layout: identifying again (the map moved)
        # finds another meter, and adopts nothing; nor does identify().
        served.update(render(build_map(config), MeterSnapshot(config, serial="0000000002")))
        for attempt in (client.read, client.identify, client.send_now):
            with pytest.raises(S8000WrongMeter, match="0000000002"):
                await attempt()
            assert client.serial == identity.serial
            assert client.identity is not None
            assert client.identity.serial == identity.serial
        # A client of its own (none pinned) takes it; one for the first meter does not.
        other_client = S8000Client(client.unit)
        assert (await other_client.identify()).serial == "0000000002"
        with pytest.raises(S8000WrongMeter):
            await S8000Client(client.unit, serial=identity.serial).identify()
        served.update(render(build_map(other), MeterSnapshot(other, serial=identity.serial)))
        assert (await client.read()).point(1).model_id == 202
        with pytest.raises(S8000WrongMeter):
            await other_client.read()

        # A scale factor no SunSpec device may send.
        image = render(build_map(other), MeterSnapshot(other, serial=identity.serial))
        regmap = build_map(other)
        image[regmap.address_of("point2", "W_SF") - regmap.base] = 20
        served.update(image)
        with pytest.raises(S8000BadData, match=r"point2\.W_SF"):
            await client.read()


def patched(regmap: RegisterMap, image: list[int], label: str, point: str) -> list[int]:
    """The image with one string point replaced."""
    placed = regmap.placed(label)
    p = placed.model.point(point)
    start = placed.address + p.offset - regmap.base
    out = list(image)
    out[start : start + p.size] = encode(DataType.STRING, "Fronius", p.size)
    return out


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("no SunSpec marker", "No SunSpec marker found at register 40000"),
        ("nothing at 40000", "not served"),
        ("another maker", "'Fronius', not 'Leviton'"),
        ("another model", "'Fronius' is not an S8000 model"),
    ],
)
async def test_other_devices_are_not_an_s8000(
    backend: BackendName, device: str, message: str
) -> None:
    config = meter_config(DEMO_CONFIG)
    regmap = build_map(config)
    image = render(regmap, MeterSnapshot(config, serial="0212060212"))
    served = {
        "no SunSpec marker": Image(39000, [0] * 2000),
        "nothing at 40000": Image(0, [0] * 100),
        "another maker": Image(regmap.base, patched(regmap, image, "common", "Mn")),
        "another model": Image(regmap.base, patched(regmap, image, "common", "Md")),
    }[device]
    async with serving(served) as port, connect_tcp("127.0.0.1", port, backend=backend) as client:
        with pytest.raises(S8000NotAnS8000, match=message):
            await client.identify()
        with pytest.raises(S8000NotAnS8000):
            await client.read()  # identifies first


async def test_link_failures_are_connection_errors(backend: BackendName) -> None:
    closed = free_port()
    with pytest.raises(S8000ConnectionError, match=f"127.0.0.1:{closed}"):
        async with connect_tcp("127.0.0.1", closed, backend=backend, timeout=1.0):
            pytest.fail("connected to a closed port")
    config = meter_config(DEMO_CONFIG)
    served = meter_backend(config, MeterSnapshot(config, serial="1"))
    # No unit 9 behind this server: it answers exception 0B, as a gateway does.
    async with (
        serving(served) as port,
        connect_tcp("127.0.0.1", port, unit_id=9, backend=backend) as client,
    ):
        with pytest.raises(S8000ConnectionError, match="exception") as caught:
            await client.read()
        assert caught.value.exception_code == 0x0B


async def test_a_client_on_a_unit_someone_else_made(backend: BackendName) -> None:
    """How Home Assistant uses it: a unit from a connection the client does not own."""
    module = importlib.import_module(f"modbus_connection.{backend}")
    from modbus_connection import ModbusTcpParams

    config = meter_config(DEMO_CONFIG)
    served = meter_backend(config, MeterSnapshot(config, serial="0212060212", utc=T0))
    async with serving(served) as port:
        connection = module.ModbusConnection(ModbusTcpParams(host="127.0.0.1", port=port))
        try:
            client = S8000Client(connection.for_unit(1))
            data = await client.read()
            assert data.utc == T0
            assert all(p.w is None for p in data.points)  # not metered yet
            assert data.frequency is None
        finally:
            await connection.close()


@pytest.mark.parametrize(
    "points",
    [
        {"model": "S8UTS-241", "service": "1p2w", "points": [{"phases": ["A"]}] * 24},
        {"model": "S8UTS-122", "service": "1p3w", "points": [{"phases": ["A", "B"]}] * 5},
        {"model": "S8120-032", "service": "1p3w", "points": [{"phases": ["B"]}] * 3},
    ],
)
def test_the_rebuilt_map_is_the_servers_map(points: dict[str, Any]) -> None:
    data = {**points, "points": [{"ct_primary": 100, **p} for p in points["points"]]}
    regmap = build_map(meter_config(data))
    ids = [placed.model.model_id for placed in regmap.chain]
    assert sunspec_map(ids) == regmap
    with pytest.raises(ValueError, match="not an S8000 chain"):
        sunspec_map(ids[1:])


@pytest.mark.parametrize("points", range(1, 25))
def test_reads_that_never_cut_a_value_are_still_the_fewest(points: int) -> None:
    regmap = sunspec_map([1, *[201] * points, 64800])
    blocks, start = 1, regmap.base
    for f in regmap.fields:  # as modbus-connection's planner lays the blocks out
        if f.address + f.size - start > 125:
            blocks, start = blocks + 1, f.address
    assert blocks == math.ceil((regmap.end - regmap.base) / 125)


async def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown backend 'serial'"):
        async with connect_tcp("127.0.0.1", backend="serial"):  # type: ignore[arg-type]
            pytest.fail("connected")


def test_errors_are_s8000_errors() -> None:
    for error in (S8000ConnectionError, S8000NotAnS8000, S8000MapChanged, S8000WrongMeter):
        assert issubclass(error, S8000Error)
