"""The register map: SunSpec layout, encodings, the image of a metered meter."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from s8000_engine.config.meter import meter_config
from s8000_engine.local.image import MeterSnapshot, build_map, render
from s8000_engine.local.meter import DEMO_CONFIG
from s8000_engine.local.simulate import PanelSimulator
from s8000_engine.metering.meter import Meter
from s8000_engine.protocol.publish import as_csv, as_json
from s8000_engine.protocol.sunspec import (
    BASE_ADDRESS,
    COMMON,
    METER_MODELS,
    VENDOR_MODEL_ID,
    DataType,
    decode,
    encode,
    energy_scale_factor,
)

T0 = 1_795_600_000


def test_sunspec_layout_of_the_demo_meter() -> None:
    regmap = build_map(meter_config(DEMO_CONFIG))
    assert regmap.base == BASE_ADDRESS
    assert COMMON.length == 66
    assert all(model.length == 105 for model in METER_MODELS.values())
    chain = regmap.chain
    assert chain[0].address == 40002
    assert chain[1].address == 40070  # the first meter model follows Common
    assert [p.model.model_id for p in chain] == [1] + [203] * 8 + [VENDOR_MODEL_ID]
    for before, after in itertools.pairwise(chain):
        assert after.address == before.address + before.model.length + 2  # contiguous
    fields = regmap.fields
    addresses = [f.address for f in fields]
    assert addresses == sorted(addresses)
    for a, b in itertools.pairwise(fields):
        assert b.address == a.address + a.size, (a.name, b.name)  # no gap, no overlap
    assert fields[-1].address == regmap.end - 1


@pytest.mark.parametrize(
    ("service", "phases", "expected"),
    [("1p2w", [["A"]], 201), ("1p3w", [["A", "B"]], 202), ("3p4w", [["A", "B", "C"]], 203),
     ("3p4w", [["A", "B"]], 202), ("3p3w", [["A", "C"]], 204)],
)  # fmt: skip
def test_meter_model_follows_the_wiring(
    service: str, phases: list[list[str]], expected: int
) -> None:
    config = meter_config(
        {
            "model": "S8UTS-083",
            "service": service,
            "pt_ratio": 4 if service == "3p3w" else 1,
            "points": [{"ct_primary": 100, "phases": p} for p in phases],
        }
    )
    assert build_map(config).chain[1].model.model_id == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (DataType.UINT16, 65534),
        (DataType.INT16, -12345),
        (DataType.UINT32, 4_000_000_000),
        (DataType.INT32, -2_000_000_000),
        (DataType.UINT64, 18_000_000_000_000_000_000),
        (DataType.INT64, -9_000_000_000_000_000_000),
        (DataType.FLOAT32, 1234.5),
        (DataType.ACC32, 77),
        (DataType.SUNSSF, -3),
    ],
)
def test_encodings_round_trip(kind: DataType, value: float) -> None:
    assert decode(kind, encode(kind, value)) == value


def test_not_implemented_and_strings() -> None:
    assert encode(DataType.INT16, None) == [0x8000]
    assert decode(DataType.INT16, [0x8000]) is None
    assert encode(DataType.FLOAT32, math.nan) == [0x7FC0, 0]
    assert decode(DataType.ACC32, [0, 0]) is None
    assert encode(DataType.STRING, "Leviton", 4) == [0x4C65, 0x7669, 0x746F, 0x6E00]
    assert decode(DataType.STRING, encode(DataType.STRING, "S8UTS-083", 16)) == "S8UTS-083"
    assert (
        decode(DataType.EUI48, encode(DataType.EUI48, "00:21:B6:00:2A:AB")) == "00:21:B6:00:2A:AB"
    )
    with pytest.raises(OverflowError):
        encode(DataType.INT16, 40000)


def test_energy_scale_factor_does_not_wrap_in_thirty_years() -> None:
    # 10 000 A at 347 V on three phases: 12.5 MW (with 20 % margin).
    watts = 1.2 * 10000 * 347 * 3
    sf = energy_scale_factor(watts)
    assert watts * 30 * 8766 / 10**sf <= 0xFFFFFFFF
    assert watts * 30 * 8766 / 10 ** (sf - 1) > 0xFFFFFFFF  # and not coarser than needed


def test_image_of_a_metered_meter_decodes_back() -> None:
    config = meter_config(DEMO_CONFIG)
    regmap = build_map(config)
    meter = Meter(config, 8000, start_time=T0)
    panel = PanelSimulator(config, seed=1)
    for second in range(5):
        meter.process(*panel.samples(T0 + second, 1.0))
    registers = meter.energy.whole.tolist()
    snapshot = MeterSnapshot(
        config,
        serial="0212060212",
        mac="00:21:B6:00:2A:AB",
        utc=T0 + 5,
        readings=meter.readings,
        registers=registers,
        demand_w=meter.demand.demand_w.tolist(),
        peak_w=meter.demand.peak_w.tolist(),
        peak_time=meter.demand.peak_time.tolist(),
    )
    image = render(regmap, snapshot)
    assert len(image) == regmap.end - regmap.base
    fields = {f.name: f for f in regmap.fields}

    def value(name: str) -> object:
        f = fields[name]
        raw = decode(f.type, image[f.address - regmap.base : f.address - regmap.base + f.size])
        if raw is None or f.scale is None:
            return raw
        sf = value(f.scale) if isinstance(f.scale, str) else f.scale
        assert isinstance(sf, int)
        return raw * 10.0**sf

    assert value("SunS") == 0x53756E53
    assert value("common.Mn") == "Leviton"
    assert value("common.Md") == "S8UTS-083"
    assert value("common.SN") == "0212060212"
    assert value("s8000.MAC") == "00:21:B6:00:2A:AB"
    assert value("s8000.UTC") == T0 + 5
    assert value("s8000.Points") == 8
    readings = meter.readings
    assert readings is not None
    for n in range(8):
        watts = value(f"point{n + 1}.W")
        assert isinstance(watts, float)
        step = 10.0 ** value(f"point{n + 1}.W_SF")  # type: ignore[operator]
        assert watts == pytest.approx(readings.power[n], abs=step)
        assert value(f"s8000.Pt{n + 1}WhImp") == pytest.approx(registers[n][0] / 1000)
    assert value("point4.W") < 0  # type: ignore[operator]  # solar feeds back
    assert value("point1.Hz") == pytest.approx(readings.frequency, abs=0.01)
    assert image[-2:] == [0xFFFF, 0]  # the end model


def test_published_forms_carry_the_required_columns() -> None:
    regmap = build_map(meter_config(DEMO_CONFIG))
    rows = json.loads(as_json(regmap))
    assert {"name", "address", "table", "type", "unit", "scale", "access"} <= set(rows[0])
    types = {row["type"] for row in rows}
    assert types <= {
        "uint16",
        "int16",
        "uint32",
        "int32",
        "uint64",
        "int64",
        "float32",
        "string",
        "eui48",
    }
    writable = [row["name"] for row in rows if row["access"] == "read-write"]
    assert "s8000.UTC" in writable
    assert "s8000.Pt1CT" in writable
    assert as_csv(regmap).splitlines()[0].startswith("name,address,table,type")


def test_profiles_are_replaceable() -> None:
    from s8000_engine.protocol.profile import BUILTIN, builtin_profile

    config = meter_config(DEMO_CONFIG)
    assert build_map(config, profile="sunspec") == build_map(config)
    assert build_map(config, profile=builtin_profile()) == build_map(config)
    assert BUILTIN == ("sunspec",)
    # A name that is no built-in profile is a file that is not there.
    with pytest.raises(ValueError, match="cannot read leviton"):
        build_map(config, profile="leviton")
