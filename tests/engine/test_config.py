"""Meter configuration: services, CTs, calibration, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from s8000_engine.config.meter import Phase, ServiceType, meter_config
from s8000_engine.exceptions import ConfigError


def _base(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "model": "S8UTS-083",
        "service": "3p4w",
        "points": [{"name": "HVAC", "ct_primary": 200, "phases": ["A", "B", "C"]}],
    }
    config.update(changes)
    return config


def test_defaults_follow_the_model_variant() -> None:
    config = meter_config(_base())
    assert config.service is ServiceType.WYE_4W
    assert config.frequency_hz == 60
    assert config.nominal_voltage == 120.0
    assert config.pt_ratio == 1.0
    assert config.points[0].phases == (Phase.A, Phase.B, Phase.C)
    assert meter_config(_base(model="277TS-083")).nominal_voltage == 277.0
    assert config.calibration_of("P1-1").gain == 1.0


def test_delta_defaults_to_120_v_line_to_line_and_needs_a_pt_ratio() -> None:
    delta = _base(
        model="S8UTS-122", service="3p3w", points=[{"ct_primary": 100, "phases": ["A", "C"]}]
    )
    with pytest.raises(ConfigError, match=r"^pt_ratio: a delta service"):
        meter_config(delta)
    config = meter_config({**delta, "pt_ratio": 4})
    assert config.nominal_voltage == 120.0
    assert config.points[0].name == "Point 1"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "S9000"}, r"^model: unknown S8000 model 'S9000'"),
        ({"service": "2p5w"}, r"^service: value must be one of"),
        ({"frequency": 55}, r"^frequency: value must be one of"),
        ({"pt_ratio": 0.5}, r"^pt_ratio: value must be at least 1"),
        ({"pt_ratio": "nan"}, r"^pt_ratio: value must be a finite number"),
        ({"nominal_voltage": 480}, r"^nominal_voltage: value must be at most 300"),
        ({"points": []}, r"^points: length of value must be at least 1"),
        (
            {"points": [{"ct_primary": 20000, "phases": ["A"]}]},
            r"^points\[0\]\.ct_primary: value must be at most 10000",
        ),
        (
            {"points": [{"ct_primary": 100, "phases": ["D"]}]},
            r"^points\[0\]\.phases\[0\]: value must be one of",
        ),
        ({"points": [{"phases": ["A"]}]}, r"^points\[0\]\.ct_primary: required key not provided"),
        (
            {"points": [{"ct_primary": 100, "phases": ["A", "A"]}]},
            r"^points\[0\]\.phases: each CT of a point must be on a different phase",
        ),
        (
            {"points": [{"ct_primary": 100, "phases": ["A"], "colour": "red"}]},
            r"^points\[0\]\.colour: extra keys",
        ),
        (
            {"calibration": {"P9-1": {"gain": 1.0}}},
            r"^calibration\.P9-1: no such channel on S8UTS-083",
        ),
        (
            {"calibration": {"P1-1": {"gain": 3}}},
            r"^calibration\.P1-1\.gain: value must be at most 2",
        ),
        (
            {"calibration": {"VA": {"phase_deg": -45}}},
            r"^calibration\.VA\.phase_deg: value must be at least -10",
        ),
        ({"demand": {"interval_minutes": 7}}, r"^demand 'interval_minutes': must be one of 1, 5"),
        ({"pulse_inputs": [{}, {"scale": 0}]}, r"^pulse_inputs\[1\]: pulse input 'scale'"),
        ({"pulse_inputs": [{}, {}, {}]}, r"^pulse_inputs: length of value must be at most 2"),
    ],
)
def test_every_wrong_value_names_its_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        meter_config(_base(**changes))


def test_demand_and_pulse_inputs_are_configured_with_the_meter() -> None:
    config = meter_config(
        _base(
            demand={"type": "sliding", "interval_minutes": 15, "subinterval_minutes": 5},
            pulse_inputs=[{"name": "Water", "unit": "m³", "scale": 0.01}],
        )
    )
    assert config.demand.subintervals == 3
    assert config.pulse_inputs[0].name == "Water"
    assert config.pulse_inputs[0].scale == 0.01
    assert config.pulse_inputs[1].name == "Pulse 2"


def test_model_limits_points_and_elements() -> None:
    with pytest.raises(ConfigError, match=r"^points: S8120-032 has 3 meter points, not 4"):
        meter_config(_base(model="S8120-032", points=[{"ct_primary": 50, "phases": ["A"]}] * 4))
    with pytest.raises(
        ConfigError, match=r"^points\[0\]\.phases: S8UTS-241 has 1 CT\(s\) per point"
    ):
        meter_config(_base(model="S8UTS-241", points=[{"ct_primary": 50, "phases": ["A", "B"]}]))


def test_phases_must_exist_in_the_service() -> None:
    with pytest.raises(ConfigError, match=r"a 1p2w service has no phase B \(allowed: A\)"):
        meter_config(_base(service="1p2w", points=[{"ct_primary": 50, "phases": ["B"]}]))
    with pytest.raises(ConfigError, match=r"a 1p3w service has no phase C"):
        meter_config(_base(service="1p3w", points=[{"ct_primary": 50, "phases": ["A", "C"]}]))
    # Delta: a CT on B is allowed (measured, not metered).
    delta = meter_config(
        _base(service="3p3w", pt_ratio=4, points=[{"ct_primary": 50, "phases": ["A", "B", "C"]}])
    )
    assert delta.points[0].phases == (Phase.A, Phase.B, Phase.C)
