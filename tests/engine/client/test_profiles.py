"""Register profiles end to end: a second profile, with another word order,
other addresses, other units and identification by function 43, served by the
local meter and read by the client over Modbus TCP on loopback.

The values read through the example profile are compared with those read,
from the very same metered second, through the built-in SunSpec map: two
encodings of one meter must say the same thing, within the resolution of the
example's registers (mWh energies, float32 powers in kW)."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from s8000_engine.cli import main
from s8000_engine.client import S8000Client, S8000NotAnS8000, S8000WrongMeter, Selection
from s8000_engine.client.client import connect_tcp
from s8000_engine.config.meter import MeterConfig
from s8000_engine.const import FIRMWARE
from s8000_engine.local.image import MeterSnapshot, build_map, render
from s8000_engine.modbus.backend import MeterBackend
from s8000_engine.protocol.profile import load_profile
from s8000_engine.protocol.regmap import RegisterMap
from s8000_engine.protocol.sunspec import Command
from tests.engine.client.test_client import metered
from tests.engine.meterproc import serving, serving_meter

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "docs" / "profiles" / "example-fixed.json"


def served(config: MeterConfig, snapshot: MeterSnapshot, regmap: RegisterMap) -> MeterBackend:
    backend = MeterBackend(
        regmap, model=config.model.code, serial=snapshot.serial, firmware=FIRMWARE
    )
    backend.update(render(regmap, snapshot))
    return backend


def words_lsw(chunk: Sequence[int]) -> int:
    """An unsigned integer from registers least significant first, by hand."""
    return sum(w << (16 * i) for i, w in enumerate(chunk))


async def test_the_example_profile_reads_what_the_sunspec_map_reads(tmp_path: Path) -> None:
    config, snapshot = metered(tmp_path)
    profile = load_profile(EXAMPLE)
    builtin = served(config, snapshot, build_map(config))
    example = served(config, snapshot, build_map(config, profile=profile))
    async with serving(builtin) as port, connect_tcp("127.0.0.1", port) as client:
        identity = await client.identify()
        reference = await client.read()
    async with serving(example) as port, connect_tcp("127.0.0.1", port, profile=profile) as client:
        found = await client.identify()
        data = await client.read()
        # A partial read plans from roles too.
        some = await client.read(Selection.of(meter=["utc"], points={4: ["kwh_received", "w"]}))
    assert found.serial == identity.serial
    assert found.model == identity.model
    assert found.points == identity.points == len(config.points)
    assert found.firmware == FIRMWARE  # from function 43, object 2
    assert found.service == identity.service
    assert found.point_models == identity.point_models
    assert data.utc == reference.utc
    for mine, theirs in zip(data.points, reference.points, strict=True):
        for name in ("kwh_delivered", "kwh_received", "kvarh_delivered", "kvarh_received"):
            assert getattr(mine, name) == pytest.approx(getattr(theirs, name), abs=1e-6), name
        # The powers against the meter's own floats (the SunSpec map rounds
        # them to its scale factors; the example keeps float32 kW).
        index = mine.number - 1
        readings = snapshot.readings
        exact = {
            "w": readings.power[index],
            "var": readings.reactive[index],
            "va": readings.apparent[index],
            "demand_w": snapshot.demand_w[index],
            "peak_demand_w": snapshot.peak_w[index],
        }
        for name, value in exact.items():
            if math.isnan(value):  # no demand yet in the first interval
                assert getattr(mine, name) is None is getattr(theirs, name), name
            else:
                assert getattr(mine, name) == pytest.approx(float(value), rel=1e-6), name
        # The SunSpec map rounds the current to its scale factor.
        step = 10.0 ** reference.raw[f"point{mine.number}.A_SF"]
        assert mine.a == pytest.approx(theirs.a, abs=step / 2 + 1e-6)
        assert mine.pf == pytest.approx(theirs.pf, abs=1.5e-3)
        assert mine.ct_primary_a == theirs.ct_primary_a
        assert mine.model_id == theirs.model_id
    # SunSpec's hundredths of a hertz and its voltage scale, against float32.
    assert data.frequency == pytest.approx(reference.frequency, abs=0.005 + 1e-6)
    step = 10.0 ** reference.raw["point1.V_SF"]
    assert data.voltage["A"] == pytest.approx(reference.voltage["A"], abs=step / 2 + 1e-4)
    # The solar point exports at noon: a received total that is not zero,
    # so a word-order slip could not hide behind zeros.
    received = data.point(4).kwh_received
    assert received is not None
    assert received > 0
    assert some.point(4).kwh_received == received
    assert some.point(4).w == data.point(4).w
    assert some.point(4).kwh_delivered is None


async def test_the_example_profile_is_on_the_wire_as_it_says(tmp_path: Path) -> None:
    """Decoded by hand from the raw registers: least significant word first,
    at the addresses the file gives, in mWh."""
    config, snapshot = metered(tmp_path)
    profile = load_profile(EXAMPLE)
    regmap = build_map(config, profile=profile)
    image = render(regmap, snapshot)
    document = json.loads(EXAMPLE.read_text())
    stride = document["points"]["stride"]
    address = document["points"]["address"] + 3 * stride  # point 4's kWhRec at offset 4
    raw = words_lsw(image[address + 4 - regmap.base : address + 8 - regmap.base])
    assert raw == snapshot.registers[3][1]  # the meter's own mWh register
    kw = image[address + 16 - regmap.base : address + 18 - regmap.base]
    watts = struct.unpack(">f", struct.pack(">HH", kw[1], kw[0]))[0] * 1000
    assert watts == pytest.approx(float(snapshot.readings.power[3]), rel=1e-5)
    assert image[8] == len(config.points)  # Points at register 8


async def test_the_sunspec_client_does_not_take_the_example_for_an_s8000(tmp_path: Path) -> None:
    config, snapshot = metered(tmp_path)
    example = served(config, snapshot, build_map(config, profile=load_profile(EXAMPLE)))
    async with serving(example) as port, connect_tcp("127.0.0.1", port) as client:
        with pytest.raises(S8000NotAnS8000):
            await client.identify()


async def test_writes_through_the_example_profile_reach_the_meter(tmp_path: Path) -> None:
    """The clock and the commands, written at the example's addresses in its
    word order, are the meter's own writes (named as the built-in map names them)."""
    config, snapshot = metered(tmp_path)
    profile = load_profile(EXAMPLE)
    example = served(config, snapshot, build_map(config, profile=profile))
    async with serving(example) as port, connect_tcp("127.0.0.1", port, profile=profile) as client:
        await client.set_clock(1_800_000_000)
        await client.reset_peak_demand()
    writes = [example.writes.get_nowait() for _ in range(2)]
    assert [(w.name, w.value) for w in writes] == [
        ("s8000.UTC", 1_800_000_000),
        ("s8000.Cmd", Command.RESET_PEAK_DEMAND),
    ]


async def test_another_meter_in_the_example_layout_is_refused(tmp_path: Path) -> None:
    config, snapshot = metered(tmp_path)
    profile = load_profile(EXAMPLE)
    regmap = build_map(config, profile=profile)
    example = served(config, snapshot, regmap)
    async with serving(example) as port, connect_tcp("127.0.0.1", port, profile=profile) as client:
        await client.identify()
        snapshot.serial = "9999999999"
        example.update(render(regmap, snapshot))
        with pytest.raises(S8000WrongMeter):
            await client.read()


def test_the_local_meter_serves_a_profile_the_read_command_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run --profile FILE`` and ``read --profile FILE``: the processes a user runs."""
    with serving_meter(tmp_path / "meter", "--profile", str(EXAMPLE)) as port:
        assert main(["read", f"127.0.0.1:{port}", "--format", "json"]) == 2
        assert "not" in capsys.readouterr().err  # the SunSpec client finds no S8000 there
        assert (
            main(["read", f"127.0.0.1:{port}", "--format", "json", "--profile", str(EXAMPLE)]) == 0
        )
    reading: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert reading["identity"]["points"] == 8
    assert reading["data"]["points"][0]["kwh_delivered"] is not None


def test_a_bad_profile_is_a_usage_error_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(EXAMPLE.read_text())
    document["points"]["fields"][3]["type"] = "uint128"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    assert main(["registers", "--profile", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "points.fields[3].type" in err
    assert "uint128" in err


def test_a_client_is_given_its_profile() -> None:
    profile = load_profile(EXAMPLE)

    class Unit:
        pass

    client = S8000Client(Unit(), profile=profile)  # type: ignore[arg-type]
    assert client.profile is profile
    assert client.base == 0
