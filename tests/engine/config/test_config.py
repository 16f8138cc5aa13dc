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
    ("changes", "path", "message"),
    [
        ({"model": "S9000"}, ("model",), r"^model: unknown S8000 model 'S9000'"),
        ({"service": "2p5w"}, ("service",), r"^service: value must be one of"),
        ({"frequency": 55}, ("frequency",), r"^frequency: value must be one of"),
        ({"pt_ratio": 0.5}, ("pt_ratio",), r"^pt_ratio: value must be at least 1"),
        ({"pt_ratio": "nan"}, ("pt_ratio",), r"^pt_ratio: value must be a finite number"),
        ({"pt_ratio": "high"}, ("pt_ratio",), r"^pt_ratio: must be a number$"),
        (
            {"nominal_voltage": 480},
            ("nominal_voltage",),
            r"^nominal_voltage: value must be at most 300",
        ),
        ({"points": []}, ("points",), r"^points: length of value must be at least 1"),
        (
            {"points": [{"ct_primary": 20000, "phases": ["A"]}]},
            ("points", 0, "ct_primary"),
            r"^points\[0\]\.ct_primary: must be from 0\.1 to 10000 A \(the CT's rated primary",
        ),
        (
            {"points": [{"ct_primary": 100, "phases": ["D"]}]},
            ("points", 0, "phases", 0),
            r"^points\[0\]\.phases\[0\]: value must be one of",
        ),
        (
            {"points": [{"phases": ["A"]}]},
            ("points", 0, "ct_primary"),
            r"^points\[0\]\.ct_primary: required key not provided",
        ),
        (
            {"points": [{"ct_primary": 100, "phases": ["A", "A"]}]},
            ("points", 0, "phases"),
            r"^points\[0\]\.phases: each CT of a point must be on a different phase",
        ),
        (
            {"points": [{"ct_primary": 100, "phases": []}]},
            ("points", 0, "phases"),
            r"^points\[0\]\.phases: must not be empty",
        ),
        (
            {"points": [{"ct_primary": 100, "phases": ["A"], "enabled": "no"}]},
            ("points", 0, "enabled"),
            r"^points\[0\]\.enabled: must be true or false",
        ),
        (
            {"points": [{"ct_primary": 100, "phases": ["A"], "colour": "red"}]},
            ("points", 0, "colour"),
            r"^points\[0\]\.colour: extra keys",
        ),
        (
            {"calibration": {"P9-1": {"gain": 1.0}}},
            ("calibration", "P9-1"),
            r"^calibration\.P9-1: no such channel on S8UTS-083",
        ),
        (
            {"calibration": {"P1-1": {"gain": 3}}},
            ("calibration", "P1-1", "gain"),
            r"^calibration\.P1-1\.gain: value must be at most 2",
        ),
        (
            {"calibration": {"VA": {"phase_deg": -45}}},
            ("calibration", "VA", "phase_deg"),
            r"^calibration\.VA\.phase_deg: value must be at least -10",
        ),
        (
            {"demand": {"interval_minutes": 7}},
            ("demand", "interval_minutes"),
            r"^demand\.interval_minutes: must be one of 1, 5",
        ),
        (
            {"reporting": {"port": 0}},
            ("reporting", "port"),
            r"^reporting\.port: value must be at least 1",
        ),
        (
            {"pulse_inputs": [{}, {"scale": 0}]},
            ("pulse_inputs", 1, "scale"),
            r"^pulse_inputs\[1\]\.scale: value must be from 1e-06 to 1e\+06",
        ),
        (
            {"pulse_inputs": [{}, "water"]},
            ("pulse_inputs", 1),
            r"^pulse_inputs\[1\]: expected a dictionary",
        ),
        (
            {"pulse_inputs": [{}, {}, {}]},
            ("pulse_inputs",),
            r"^pulse_inputs: length of value must be at most 2",
        ),
        ({"unit": {"mtu": 1500}}, ("unit", "mtu"), r"^unit\.mtu: unknown field"),
    ],
)
def test_every_wrong_value_names_its_field(
    changes: dict[str, Any], path: tuple[str | int, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        meter_config(_base(**changes))
    assert [where for where, _ in raised.value.errors] == [path]
    assert raised.value.path == path


def test_every_wrong_field_of_every_section_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        meter_config(
            _base(
                frequency=55,
                points=[
                    {"ct_primary": 100, "phases": ["A", "B", "C"]},
                    {"ct_primary": 0, "phases": ["A", "D"]},
                ],
                unit={"ip": "1.2.3", "netmask": "255.0.255.0"},
                demand={"type": "rolling"},
                reporting={"port": 0, "every_minutes": 7},
                pulse_inputs=[{"scale": 0}],
                calibration={"VA": {"gain": 9}},
            )
        )
    error = raised.value
    # Voluptuous's own paths: the top level, then each section in turn.
    assert [path for path, _ in error.errors] == [
        ("frequency",),
        ("unit", "ip"),
        ("unit", "netmask"),
        ("demand", "type"),
        ("reporting", "every_minutes"),
        ("reporting", "port"),
        ("pulse_inputs", 0, "scale"),
        ("points", 1, "ct_primary"),
        ("points", 1, "phases", 1),
        ("calibration", "VA", "gain"),
    ]
    # The text names them all, as the command line prints it.
    assert str(error).split("; ")[:2] == [
        "frequency: value must be one of [50, 60]",
        "unit.ip: must be an IPv4 address: four numbers from 0 to 255 separated by dots, "
        "e.g. 192.168.0.9",
    ]
    assert "; points[1].phases[1]: value must be one of ['A', 'B', 'C']; " in str(error)


def test_a_configuration_error_is_its_list_of_fields_and_messages() -> None:
    plain = ConfigError("--speed: must be positive")
    assert plain.errors == (((), "--speed: must be positive"),)
    assert str(plain) == "--speed: must be positive"
    one = ConfigError.at(("scale",), "value must be greater than 0")
    placed = one.within("pulse_inputs", 1)
    assert placed.errors == ((("pulse_inputs", 1, "scale"), "value must be greater than 0"),)
    assert str(placed) == "pulse_inputs[1].scale: value must be greater than 0"
    assert (placed.path, placed.message) == (("pulse_inputs", 1, "scale"), placed.errors[0][1])
    assert isinstance(placed, ValueError)
    with pytest.raises(ValueError, match="at least one"):
        ConfigError([])


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
