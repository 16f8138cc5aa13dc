"""The configuration tool's settings: validation with the web form's field paths,
secrets that never leave, atomic live changes of a running local meter and the
change log — with real SQLite stores and real metering."""

from __future__ import annotations

import asyncio
import copy
import getpass
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import s8000_engine
from s8000_engine.config.meter import MeterConfig, meter_config
from s8000_engine.config.settings import (
    SECRETS,
    SettingsError,
    apply_changes,
    describe_changes,
    public_settings,
    raw_config,
)
from s8000_engine.config.unit import FACTORY_DEFAULT_IP, UnitConfig, factory_default_ip
from s8000_engine.const import FIRMWARE
from s8000_engine.exceptions import ConfigError, StorageError
from s8000_engine.local.changes import ChangeResult, Origin
from s8000_engine.local.meter import DEMO_CONFIG, LocalMeter
from s8000_engine.local.simulate import PanelSimulator
from s8000_engine.metering.meter import KWH_DELIVERED
from s8000_engine.metering.synth import Signal, sample_meter
from s8000_engine.modbus.backend import MeterBackend
from s8000_engine.protocol.sunspec import DataType, decode
from s8000_engine.storage.store import ConfigChange, Flag, Store
from tests.engine.meterproc import ManualClock, engine

T0 = 1_795_564_800  # 2026-11-25T00:00:00Z
RATE = 4000
SECRET_VALUES = ("ftp-Pass-7781", "tok-8831-xyz", "ppp-Pass-4412")


def _two_points(**changes: Any) -> dict[str, Any]:
    """A 120/208 V wye panel on an S8UTS-083 using 2 of its 8 points."""
    raw: dict[str, Any] = {
        "model": "S8UTS-083",
        "service": "3p4w",
        "points": [
            {"name": "Oven", "ct_primary": 100, "phases": ["A", "B", "C"]},
            {"name": "Dryer", "ct_primary": 100, "phases": ["A", "B", "C"]},
        ],
        "demand": {"type": "block", "interval_minutes": 1},
        "reporting": {
            "protocol": "ftp",
            "host": "10.0.0.5",
            "username": "meter",
            "password": SECRET_VALUES[0],
        },
    }
    raw.update(changes)
    return raw


def _demo() -> dict[str, Any]:
    raw = copy.deepcopy(DEMO_CONFIG)
    raw["reporting"] = {"protocol": "ftp", "host": "10.0.0.5", "password": SECRET_VALUES[0]}
    raw["unit"] = {"ppp_username": "meter", "ppp_password": SECRET_VALUES[2]}
    return raw


class ThreePhaseLoad:
    """10 A at PF 1 on every CT of the model (0.01 A of CT secondary), in phase
    with the terminal the CT's element normally sits on; phase-continuous."""

    def __init__(self, config: MeterConfig) -> None:
        angle = {1: 0.0, 2: -120.0, 3: 120.0}
        self.currents = [Signal(0.01, angle[c.element]) for c in config.model.channels]
        self.voltages = [Signal(120.0, 0.0), Signal(120.0, -120.0), Signal(120.0, 120.0)]

    def samples(self, start: float, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        return sample_meter(
            self.voltages,
            self.currents,
            frequency=60.0,
            sample_rate=RATE,
            samples=int(RATE * seconds),
            start=round(start * RATE),
        )


def _meter(
    path: Path,
    raw: dict[str, Any],
    *,
    minutes: int = 1,
    panel: bool = False,
    clock: ManualClock | None = None,
) -> tuple[LocalMeter, ManualClock]:
    """A started local meter whose store holds ``raw`` as `s8000-engine run` does."""
    store = Store.open(path)
    store.set_meta("config", raw)
    store.set_meta("recording_minutes", minutes)
    config = meter_config(raw)
    clock = clock or ManualClock(T0 + 20)
    source = PanelSimulator(config, sample_rate=RATE) if panel else ThreePhaseLoad(config)
    meter = LocalMeter(config, store, source, clock, sample_rate=RATE, recording_minutes=minutes)
    meter.start()
    return meter, clock


def _run(meter: LocalMeter, clock: ManualClock, seconds: int) -> None:
    for _ in range(seconds):
        clock.value += 1
        meter.step()


def web_change(meter: LocalMeter, changes: dict[str, Any], *, user: str) -> ChangeResult:
    """A change from the web page's settings form, as the web interface makes it."""
    return meter.apply_change(changes, origin=Origin.WEB, user=user)


def _error(raw: dict[str, Any], changes: dict[str, Any], minutes: int = 15) -> SettingsError:
    before = copy.deepcopy(raw)
    with pytest.raises(SettingsError) as caught:
        apply_changes(raw, minutes, changes)
    assert raw == before, "the stored configuration was modified"
    return caught.value


# -- validation: every section, the field path and a clear message --------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"ip": "192.168.0.256"}, "unit.ip", "must be an IPv4 address"),
        ({"ip": "192.168.0"}, "unit.ip", "must be an IPv4 address"),
        ({"ip": "192.168.000.9"}, "unit.ip", "must be an IPv4 address"),
        ({"ip": "fe80::1"}, "unit.ip", "must be an IPv4 address"),
        ({"ip": "meter.local"}, "unit.ip", "must be an IPv4 address"),
        ({"ip": 3232235529}, "unit.ip", "must be an IPv4 address"),
        ({"ip": "0.0.0.0"}, "unit.ip", "cannot be a host's address"),
        ({"ip": "224.0.0.1"}, "unit.ip", "cannot be a host's address"),
        ({"ip": "192.168.0.255"}, "unit.ip", "is the broadcast address of 192.168.0.0/24"),
        ({"netmask": "255.0.255.0"}, "unit.netmask", "ones then zeros"),
        ({"netmask": "255.255.255.255"}, "unit.netmask", "/30"),
        ({"gateway": "10.0.0.1"}, "unit.gateway", "outside the meter's network 192.168.0.0/24"),
        ({"gateway": "192.168.0.9"}, "unit.gateway", "the meter's own IP address"),
        ({"dns_primary": "300.1.1.1"}, "unit.dns_primary", "must be an IPv4 address"),
        ({"dns_secondary": "255.255.255.255"}, "unit.dns_secondary", "broadcast"),
        ({"ntp_host": "time server.example"}, "unit.ntp_host", "no spaces"),
        ({"ntp_host": "-bad.example"}, "unit.ntp_host", "must be a host name"),
        ({"ntp_host": "a" * 64 + ".example"}, "unit.ntp_host", "1 to 63 characters"),
        ({"ntp_host": "1.2.3.999"}, "unit.ntp_host", "must be an IPv4 address"),
        ({"dhcp": "yes"}, "unit.dhcp", "must be true or false"),
        ({"phone": "555-CALL"}, "unit.phone", "may only hold digits"),
        ({"alt_phone": "1" * 40}, "unit.alt_phone", "at most 32 characters"),
        ({"at_string": "X3 -STE=7"}, "unit.at_string", "must start with AT"),
        ({"ppp_username": "my meter"}, "unit.ppp_username", "without spaces"),
        ({"ppp_password": "x" * 65}, "unit.ppp_password", "at most 64 characters"),
        ({"mtu": 1500}, "unit.mtu", "unknown field"),
        ({"ppp_password_set": True}, "unit.ppp_password_set", "read-only"),
    ],
)
def test_unit_fields_are_validated(changes: dict[str, Any], field: str, message: str) -> None:
    error = _error(_demo(), {"unit": changes})
    assert error.fields == [field]
    assert message in error.message
    assert error.field == field


def test_a_static_address_in_another_network_is_accepted_with_its_gateway() -> None:
    raw, _ = apply_changes(
        _demo(),
        15,
        {
            "unit": {
                "dhcp": False,
                "ip": " 10.20.0.17 ",
                "netmask": "255.255.0.0",
                "gateway": "10.20.255.254",
                "ntp_host": "pool.ntp.org.",
                "phone": "+1 (613) 555-0100,,9",
                # A new number is a new destination: the password is given again.
                "ppp_password": SECRET_VALUES[2],
                "at_string": "AT X3 -STE=7",
            }
        },
    )
    unit = meter_config(raw).unit
    assert (unit.dhcp, unit.ip, unit.netmask, unit.gateway) == (
        False,
        "10.20.0.17",
        "255.255.0.0",
        "10.20.255.254",
    )
    assert unit.ppp_password == SECRET_VALUES[2]


def test_gateway_and_address_are_checked_together() -> None:
    # Moving the meter to another network needs the gateway to move with it.
    error = _error(_demo(), {"unit": {"ip": "10.0.0.9"}})
    assert error.field == "unit.gateway"
    assert "outside the meter's network 10.0.0.0/24" in error.message


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"3": {"ct_primary": 0}}, "points.3.ct_primary", "from 0.1 to 10000 A"),
        ({"3": {"ct_primary": -50}}, "points.3.ct_primary", "from 0.1 to 10000 A"),
        ({"3": {"ct_primary": 10001}}, "points.3.ct_primary", "from 0.1 to 10000 A"),
        ({"3": {"ct_primary": math.nan}}, "points.3.ct_primary", "finite number"),
        ({"3": {"ct_primary": math.inf}}, "points.3.ct_primary", "finite number"),
        ({"3": {"ct_primary": "lots"}}, "points.3.ct_primary", "must be a number"),
        ({"0": {"phases": ["A", "A"]}}, "points.0.phases", "a different phase"),
        ({"0": {"phases": ["A", "B", "C", "A"]}}, "points.0.phases", "at most 3"),
        ({"0": {"phases": ["D"]}}, "points.0.phases.0", "must be one of"),
        ({"0": {"phases": []}}, "points.0.phases", "must not be empty"),
        ({"2": {"name": "x" * 33}}, "points.2.name", "at most 32 characters"),
        ({"2": {"name": "   "}}, "points.2.name", "must not be empty"),
        ({"2": {"enabled": "no"}}, "points.2.enabled", "must be true or false"),
        ({"2": {"colour": "red"}}, "points.2.colour", "unknown field"),
        ({"2": {"cts": []}}, "points.2.cts", "read-only"),
        ({"8": {"ct_primary": 100, "phases": ["A"]}}, "points.8", "8 meter points"),
        ({"3": None}, "points.3", "only the last points can be removed"),
        ({"first": {}}, "points.first", "unknown field"),
        ({"pt_ratio": 0.5}, "points.pt_ratio", "at least 1"),
        ({"service": "2p5w"}, "points.service", "must be one of"),
    ],
)
def test_point_fields_are_validated(
    changes: dict[str, Any], field: str, message: str | None
) -> None:
    error = _error(_demo(), {"points": changes})
    assert error.field == field
    if message is not None:
        assert message in error.message


def test_a_phase_the_service_does_not_have_names_the_ct() -> None:
    raw = _two_points(service="1p3w")
    for point in raw["points"]:
        point["phases"] = ["A", "B"]
    error = _error(raw, {"points": {"1": {"phases": ["B", "C"]}}})
    assert error.field == "points.1.phases.1"
    assert error.message == "a 1p3w service has no phase C (allowed: A, B)"
    # A new service with points still wired for the old one: every point is named.
    error = _error(_two_points(), {"points": {"service": "1p2w"}})
    assert error.fields == ["points.0.phases.1", "points.1.phases.1"]


def test_a_delta_needs_its_pt_ratio() -> None:
    error = _error(_two_points(), {"points": {"service": "3p3w"}})
    assert error.field == "points.pt_ratio"
    assert "metered through two PTs; set their ratio" in error.message


def test_points_are_added_one_after_the_other_up_to_the_model() -> None:
    raw = _two_points()
    error = _error(raw, {"points": {"3": {"ct_primary": 50, "phases": ["A"]}}})
    assert error.field == "points.3"
    assert "the next one is points.2" in error.message
    error = _error(raw, {"points": {"2": {"name": "Pump"}}})
    assert set(error.errors) == {
        (("points", 2, "ct_primary"), "required for a new point"),
        (("points", 2, "phases"), "required for a new point"),
    }
    new, _ = apply_changes(raw, 15, {"points": {"2": {"ct_primary": 50, "phases": ["A"]}}})
    assert [p.name for p in meter_config(new).points] == ["Oven", "Dryer", "Point 3"]
    # S8UTS-083: 8 points, each of 3 CTs.
    full = {str(n): {"ct_primary": 50, "phases": ["A"]} for n in range(2, 9)}
    error = _error(raw, {"points": full})
    assert error.field == "points.8"
    assert error.message == "S8UTS-083 has 8 meter points; there is no point 9"
    on_241 = _two_points(model="S8UTS-241", service="1p2w")
    on_241["points"] = [{"ct_primary": 100, "phases": ["A"]}]
    error = _error(on_241, {"points": {"0": {"phases": ["A", "B"]}}})
    assert error.field == "points.0.phases"
    assert error.message == "S8UTS-241 has 1 CT(s) per point, not 2"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"recording_minutes": 7}, "report.recording_minutes", "one of 1, 5, 10, 15, 30, 60"),
        ({"recording_minutes": True}, "report.recording_minutes", "one of 1, 5, 10"),
        ({"recording_minutes": "15"}, "report.recording_minutes", "one of 1, 5, 10"),
        (
            {"demand_subinterval_minutes": 4},
            "report.demand_subinterval_minutes",
            "must divide the interval (15)",
        ),
        (
            {"demand_interval_minutes": 5},
            "report.demand_subinterval_minutes",
            "must divide the interval (5) and be smaller than it",
        ),
        ({"demand_interval_minutes": 20}, "report.demand_interval_minutes", "must be one of"),
        ({"demand_type": "rolling"}, "report.demand_type", "block, sliding"),
        ({"protocol": "gopher"}, "report.protocol", "must be one of none, ftp"),
        ({"port": 0}, "report.port", "at least 1"),
        ({"port": 65536}, "report.port", "at most 65535"),
        ({"host": "ftp://x/y"}, "report.host", "host name or IP address"),
        ({"protocol": "ftp", "host": ""}, "report.host", "required for protocol ftp"),
        ({"every_minutes": 7}, "report.every_minutes", "must be one of 0, 5, 15"),
        ({"upload_directory": "in\r\nDELE x"}, "report.upload_directory", "control characters"),
        ({"download_directory": "out"}, "report.download_directory", "unknown field"),
        ({"password_set": False}, "report.password_set", "read-only"),
    ],
)
def test_report_fields_are_validated(changes: dict[str, Any], field: str, message: str) -> None:
    error = _error(_demo(), {"report": changes})
    assert error.field == field
    assert message in error.message


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"0": {"scale": 0}}, "pulses.0.scale", "from 1e-06 to 1e+06"),
        ({"1": {"scale": -2}}, "pulses.1.scale", "from 1e-06 to 1e+06"),
        ({"1": {"scale": "many"}}, "pulses.1.scale", "expected a number"),
        ({"0": {"name": "x" * 33}}, "pulses.0.name", "at most 32 characters"),
        ({"0": {"name": ""}}, "pulses.0.name", "must not be empty"),
        ({"0": {"unit": "x" * 17}}, "pulses.0.unit", "at most 16 characters"),
        ({"2": {"scale": 1}}, "pulses.2", "2 pulse inputs"),
        ({"0": {"bounce_s": 0.01}}, "pulses.0.bounce_s", "unknown field"),
    ],
)
def test_pulse_fields_are_validated(changes: dict[str, Any], field: str, message: str) -> None:
    error = _error(_demo(), {"pulses": changes})
    assert error.field == field
    assert message in error.message


def test_unknown_sections_and_every_wrong_field_are_reported_together() -> None:
    error = _error(_demo(), {"network": {}})
    assert (error.field, error.message) == (
        "network",
        "unknown section (unit, report, points or pulses)",
    )
    error = _error(
        _demo(),
        {
            "unit": {"ip": "1.2.3", "netmask": "255.0.255.0"},
            "report": {"recording_minutes": 2},
            "points": {"1": {"ct_primary": 0}},
            "pulses": [{"scale": 0}],
        },
    )
    assert error.fields == [
        "report.recording_minutes",
        "unit.ip",
        "unit.netmask",
        "pulses.0.scale",
        "points.1.ct_primary",
    ]
    assert error.as_dict()["errors"][0] == {
        "field": "report.recording_minutes",
        "message": "must be one of 1, 5, 10, 15, 30, 60 minutes",
    }
    assert "points.1.ct_primary: must be from 0.1 to 10000 A" in str(error)
    with pytest.raises(SettingsError, match="expected an object"):
        apply_changes(_demo(), 15, {"unit": ["ip"]})


def test_a_change_merges_into_the_stored_configuration() -> None:
    raw = _demo()
    new, minutes = apply_changes(
        raw,
        15,
        {
            "report": {"recording_minutes": 5, "demand_type": "block"},
            "points": {"1": {"ct_primary": "200", "name": " Heat pump "}},
            "pulses": {"1": {"scale": 0.5}},
        },
    )
    assert minutes == 5
    config = meter_config(new)
    assert config.points[1].name == "Heat pump"
    assert config.points[1].ct_primary_a == 200.0
    assert new["points"][1]["ct_primary"] == 200.0  # stored as validated
    assert config.demand.type.value == "block"  # the sliding subinterval is dropped
    assert config.pulse_inputs[1].scale == 0.5
    assert config.pulse_inputs[1].name == "Gas"
    assert config.points[2:] == meter_config(raw).points[2:]
    assert raw == _demo()  # the input is left alone
    assert describe_changes(raw, new, 15, minutes) == [
        "Recording interval (minutes): 15 → 5",
        "Demand type: sliding → block",
        "Point 2 (Heat pump) name: HVAC → Heat pump",
        "Point 2 (Heat pump) CT primary (A): 100 → 200",
        "Pulse input 2 scale (units per pulse): 0.01 → 0.5",
    ]
    # Sending the values shown changes nothing, not even the raw form.
    shown = public_settings(raw, 15)
    same, _ = apply_changes(
        raw,
        15,
        {
            "unit": {k: v for k, v in shown["unit"].items() if not k.endswith("_set")},
            "points": {"0": {"ct_primary": 50.0, "name": "Lighting", "phases": ["A", "B", "C"]}},
            "report": {"demand_subinterval_minutes": 5, "protocol": "ftp"},
        },
    )
    assert same == raw


def test_removing_the_last_points() -> None:
    raw = _demo()
    new, _ = apply_changes(raw, 15, {"points": {"6": None, "7": None}})
    assert len(meter_config(new).points) == 6
    assert describe_changes(raw, new, 15, 15) == [
        "Point 7 (Laundry) removed",
        "Point 8 (Office) removed",
    ]
    error = _error(raw, {"points": {"6": None}})
    assert error.field == "points.6"


# -- secrets ---------------------------------------------------------------------------------


def _with_all_secrets() -> dict[str, Any]:
    raw = _demo()
    raw["reporting"] = {
        "protocol": "https",
        "url": "https://host.example/in",
        "token": SECRET_VALUES[1],
        "password": SECRET_VALUES[0],
    }
    return raw


def test_public_settings_never_contain_a_secret() -> None:
    raw = _with_all_secrets()
    shown = public_settings(raw, 15)
    text = json.dumps(shown)
    for secret in SECRET_VALUES:
        assert secret not in text
    assert shown["unit"]["ppp_password_set"] is True
    assert shown["report"]["password_set"] is True
    assert shown["report"]["token_set"] is True
    assert "ppp_password" not in shown["unit"]
    assert "password" not in shown["report"]
    assert "token" not in shown["report"]
    assert {"reporting.password", "reporting.token", "unit.ppp_password"} == SECRETS
    empty = public_settings(DEMO_CONFIG, 15)
    assert empty["unit"]["ppp_password_set"] is False
    assert empty["report"]["password_set"] is False
    assert empty["report"]["token_set"] is False


def test_a_secret_is_kept_when_absent_changed_or_cleared_with_empty_text() -> None:
    raw = _with_all_secrets()
    kept, _ = apply_changes(
        raw, 15, {"report": {"token": None, "host": ""}, "unit": {"ppp_username": "m2"}}
    )
    assert meter_config(kept).reporting.token == SECRET_VALUES[1]
    assert meter_config(kept).unit.ppp_password == SECRET_VALUES[2]
    changed, _ = apply_changes(raw, 15, {"unit": {"ppp_password": "new-Secret-99"}})
    assert meter_config(changed).unit.ppp_password == "new-Secret-99"
    cleared, _ = apply_changes(raw, 15, {"report": {"token": "", "password": ""}})
    assert meter_config(cleared).reporting.token is None
    assert meter_config(cleared).reporting.password == ""
    lines = describe_changes(raw, changed, 15, 15) + describe_changes(raw, cleared, 15, 15)
    assert lines == [
        "PPP password: changed",
        "FTP password: cleared",
        "Report token: cleared",
    ]
    # Wrong values of secrets are refused without being repeated.
    error = _error(raw, {"unit": {"ppp_password": "bad\x07" + SECRET_VALUES[2]}})
    assert error.field == "unit.ppp_password"
    assert SECRET_VALUES[2] not in str(error)
    assert "ppp_password" not in repr(meter_config(raw).unit)


def test_public_settings_give_the_form_what_it_needs() -> None:
    shown = public_settings(_demo(), 15)
    assert set(shown) == {"model", "unit", "report", "points", "pulses"}
    assert shown["model"] == {
        "code": "S8UTS-083",
        "points": 8,
        "elements": 3,
        "voltage": 120,
        "connection": "terminal strip",
    }
    assert shown["unit"]["ip"] == "192.168.0.9"
    assert shown["unit"]["dhcp"] is True
    report = shown["report"]
    assert (report["demand_type"], report["demand_interval_minutes"]) == ("sliding", 15)
    assert report["demand_subinterval_minutes"] == 5
    assert report["recording_minutes"] == 15
    assert report["choices"]["recording_minutes"] == [1, 5, 10, 15, 30, 60]
    points = shown["points"]
    assert (points["service"], points["pt_ratio"]) == ("3p4w", 1.0)
    services = {s["value"]: s["phases"] for s in points["services"]}
    assert services == {
        "1p2w": ["A"],
        "1p3w": ["A", "B"],
        "3p4w": ["A", "B", "C"],
        "3p3w": ["A", "B", "C"],
    }
    first, second = points["items"][0], points["items"][1]
    assert first["name"] == "Lighting"
    assert first["ct_primary"] == 50.0
    # The seed's table 1: the X1/X2 colours of the CT cable's pairs.
    assert [(c["channel"], c["x1"], c["x2"], c["phase"]) for c in first["cts"]] == [
        ("P1-1", "Black", "Green", "A"),
        ("P1-2", "Black", "White", "B"),
        ("P1-3", "Black", "Red", "C"),
    ]
    assert [(c["channel"], c["x1"], c["x2"]) for c in second["cts"]] == [
        ("P2-1", "Red", "Green"),
        ("P2-2", "Red", "White"),
        ("P2-3", "Black", "Orange"),
    ]
    assert points["unused"] == []
    two = public_settings(_two_points(), 1)
    assert [u["number"] for u in two["points"]["unused"]] == [3, 4, 5, 6, 7, 8]
    assert two["points"]["unused"][-1]["cts"][-1] == {
        "element": 3,
        "channel": "P8-3",
        "x1": "Blue",
        "x2": "Brown",
        "phase": None,
    }
    assert shown["pulses"][0] == {
        "index": 0,
        "number": 1,
        "name": "Water",
        "unit": "L",
        "scale": 10.0,
    }


# -- the unit section in the configuration ------------------------------------------------------


def test_configurations_without_a_unit_section_take_the_factory_defaults() -> None:
    config = meter_config(DEMO_CONFIG)
    assert config.unit == UnitConfig()
    assert config.unit.ip == FACTORY_DEFAULT_IP["ip"] == "192.168.0.9"
    assert config.unit.dhcp is True
    with pytest.raises(ConfigError, match=r"^unit\.gateway: 10\.0\.0\.1 is outside"):
        meter_config({**DEMO_CONFIG, "unit": {"gateway": "10.0.0.1"}})
    with pytest.raises(ConfigError, match=r"^unit: expected dict"):
        meter_config({**DEMO_CONFIG, "unit": "static"})
    static = UnitConfig(dhcp=False, ip="10.0.0.2", netmask="255.0.0.0", gateway="10.0.0.1",
                        ntp_host="ntp.example", phone="555")  # fmt: skip
    reset = factory_default_ip(static)
    assert (reset.dhcp, reset.ip, reset.netmask, reset.gateway) == (
        True,
        "192.168.0.9",
        "255.255.255.0",
        "192.168.0.1",
    )
    assert (reset.ntp_host, reset.phone) == ("ntp.example", "555")


def test_the_raw_form_of_a_configuration_gives_it_back() -> None:
    config = meter_config(_with_all_secrets())
    assert meter_config(raw_config(config)) == config
    assert meter_config(json.loads(json.dumps(raw_config(config)))) == config


# -- the store: change log and atomic saves --------------------------------------------------


def test_save_config_writes_config_interval_and_log_entry(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        assert store.config_changes() == []
        first = store.save_config({"a": 1}, 5, ConfigChange(T0, "admin", ["one"]))
        second = store.save_config({"a": 2}, 15, ConfigChange(T0 + 9, "panel", ["two", "2b"]))
        assert first is not None
        assert second is not None
        assert second.id == (first.id or 0) + 1
        assert store.get_meta("config") == {"a": 2}
        assert store.get_meta("recording_minutes") == 15
    with Store.open(tmp_path) as store:
        log = store.config_changes()
        assert [(c.user, c.changes, c.time) for c in log] == [
            ("panel", ["two", "2b"], T0 + 9),
            ("admin", ["one"], T0),
        ]
        assert store.config_changes(limit=1) == log[:1]


def test_a_failing_write_inside_the_save_leaves_the_old_configuration(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.save_config({"version": "old"}, 15, ConfigChange(T0, "admin", ["old"]))
        # The last statement of the transaction fails, after both meta rows were written.
        store._db.execute(
            "CREATE TEMP TRIGGER no_log BEFORE INSERT ON config_change "
            "BEGIN SELECT RAISE(ABORT, 'simulated failure'); END"
        )
        with pytest.raises(StorageError, match="simulated failure"):
            store.save_config({"version": "new"}, 5, ConfigChange(T0 + 1, "admin", ["new"]))
        assert store.get_meta("config") == {"version": "old"}
        assert store.get_meta("recording_minutes") == 15
        assert [c.changes for c in store.config_changes()] == [["old"]]
        store._db.execute("DROP TRIGGER no_log")
        store.save_config({"version": "new"}, 5, ConfigChange(T0 + 1, "admin", ["new"]))
        assert store.get_meta("config") == {"version": "new"}


_SAVER = """
import sys
from s8000_engine.storage.store import ConfigChange, Store

store = Store.open(sys.argv[1])
done = len(store.config_changes(limit=1_000_000))
print(done, flush=True)
while True:
    name = "A" if done % 2 == 0 else "B"
    raw = {"name": name, "points": [{"ct_primary": 100 + done}] * 24, "pad": "x" * 20000}
    store.save_config(raw, 5 if name == "A" else 15, ConfigChange(done, "crash", [name, str(done)]))
    done += 1
    print(done, flush=True)
"""


def test_a_power_cut_during_saves_leaves_the_old_or_the_new_configuration(tmp_path: Path) -> None:
    path = tmp_path / "meter.db"
    Store.open(path).close()
    env = {**os.environ, "PYTHONPATH": str(Path(s8000_engine.__file__).parents[1])}
    rng = random.Random(8000)
    confirmed = 0
    for _ in range(12):
        process = subprocess.Popen(
            [sys.executable, "-c", _SAVER, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert process.stdout is not None
        started = int(process.stdout.readline())
        assert started >= confirmed  # nothing confirmed was lost
        for _ in range(rng.randint(1, 6)):
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else ""
            confirmed = int(line)
        time.sleep(rng.uniform(0.0, 0.02))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()
        with Store.open(path) as store:
            raw = store.get_meta("config")
            log = store.config_changes(limit=1_000_000)
            # The newest entry, the configuration and the interval belong together.
            assert len(log) >= confirmed
            assert log[0].changes == [raw["name"], str(len(log) - 1)]
            assert raw["points"][0]["ct_primary"] == 100 + len(log) - 1
            assert store.get_meta("recording_minutes") == (5 if raw["name"] == "A" else 15)
            assert [int(c.changes[1]) for c in log] == list(range(len(log) - 1, -1, -1))
            confirmed = len(log)


def test_a_store_from_before_the_change_log_opens_and_works(tmp_path: Path) -> None:
    old_raw = _two_points()
    with Store.open(tmp_path) as store:
        store.set_meta("config", old_raw)
    # What an older engine wrote: no change-log table, no unit section.
    db = sqlite3.connect(tmp_path / "meter.db")
    db.execute("DROP TABLE config_change")
    db.commit()
    db.close()
    with Store.open(tmp_path) as store:
        assert store.config_changes() == []
        assert meter_config(store.get_meta("config")).unit == UnitConfig()
    meter, clock = _meter(tmp_path, old_raw)
    _run(meter, clock, 2)
    result = web_change(meter, {"unit": {"ntp_host": "pool.ntp.org"}}, user="admin")
    assert result.changes == ("NTP host: (none) → pool.ntp.org",)
    assert [c.changes for c in meter.store.config_changes()] == [
        ["NTP host: (none) → pool.ntp.org"]
    ]
    meter.store.close()


def test_a_change_log_from_before_origins_opens_and_goes_on(tmp_path: Path) -> None:
    # What an older engine wrote: a change log without its origin column.
    with Store.open(tmp_path) as store:
        store.set_meta("config", _two_points())
    db = sqlite3.connect(tmp_path / "meter.db")
    db.executescript(
        "DROP TABLE config_change;"
        "CREATE TABLE config_change (id INTEGER PRIMARY KEY, time REAL NOT NULL,"
        " user TEXT NOT NULL, changes TEXT NOT NULL) STRICT;"
        f"INSERT INTO config_change (time, user, changes) VALUES ({T0}, 'admin', '[\"old\"]');"
    )
    db.close()
    with Store.open(tmp_path) as store:
        # Only the web interface wrote the log then.
        assert [(c.user, c.origin, c.changes) for c in store.config_changes()] == [
            ("admin", "web", ["old"])
        ]
    meter, clock = _meter(tmp_path, _two_points())
    _run(meter, clock, 1)
    meter.apply_change({"unit": {"ntp_host": "pool.ntp.org"}}, origin=Origin.MODBUS, user="m")
    assert [(c.origin, c.changes) for c in meter.store.config_changes()] == [
        ("modbus", ["NTP host: (none) → pool.ntp.org"]),
        ("web", ["old"]),
    ]
    meter.store.close()


def test_a_configuration_replaced_on_the_command_line_is_a_logged_change(tmp_path: Path) -> None:
    first = _two_points()
    second = copy.deepcopy(first)
    second["points"][0].update(name="Heat pump", ct_primary=200)
    second["calibration"] = {"P1-1": {"gain": 1.01}}
    wrong = copy.deepcopy(first)
    wrong["points"][1].update(ct_primary=20000, phases=["A", "D"])
    data, path = tmp_path / "data", tmp_path / "meter.json"

    def run(config: dict[str, Any], *options: str) -> subprocess.CompletedProcess[str]:
        path.write_text(json.dumps(config))
        return subprocess.run(
            [engine(), "run", "--simulate", "--data", str(data), "--config", str(path),
             "--seconds", "1", "--speed", "100", "--sample-rate", "4000", *options],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def stored() -> tuple[Any, list[ConfigChange]]:
        with Store.open(data, create=False) as store:
            return store.get_meta("config"), store.config_changes()

    assert run(first).returncode == 0
    assert stored() == (first, [])  # the first configuration: nothing changed
    assert run(second).returncode == 0  # kept: the stored one wins without --replace-config
    assert stored() == (first, [])
    done = run(second, "--replace-config")
    assert done.returncode == 0, done.stderr
    raw, log = stored()
    assert raw == second
    assert [(c.origin, c.user, c.changes) for c in log] == [
        (
            "cli",
            getpass.getuser(),
            [
                "Calibration of P1-1: gain 1, phase 0° → gain 1.01, phase 0°",
                "Point 1 (Heat pump) name: Oven → Heat pump",
                "Point 1 (Heat pump) CT primary (A): 100 → 200",
            ],
        )
    ]
    # A wrong file: every wrong field named, nothing stored or logged.
    refused = run(wrong, "--replace-config")
    assert refused.returncode == 2
    assert (
        "points[1].ct_primary: must be from 0.1 to 10000 A (the CT's rated primary current); "
        "points[1].phases[1]: value must be one of ['A', 'B', 'C']"
    ) in refused.stderr
    assert stored() == (second, log)


# -- the running meter ---------------------------------------------------------------------------


def test_a_ct_primary_change_scales_the_next_seconds_and_keeps_the_registers(
    tmp_path: Path,
) -> None:
    meter, clock = _meter(tmp_path / "a.db", _two_points())
    _run(meter, clock, 5)
    readings = meter.meter.readings
    assert readings is not None
    assert readings.power[0] == pytest.approx(3600.0, rel=1e-3)  # 3 × 120 V × 10 A
    whole = meter.meter.energy.whole.copy()
    fraction = meter.meter.energy.fraction.copy()
    result = web_change(meter, {"points": {"0": {"ct_primary": 200}}}, user="admin")
    assert result.changes == ("Point 1 (Oven) CT primary (A): 100 → 200",)
    assert result.fields == ("points.0.ct_primary",)
    assert result.registers_changed
    assert not result.map_changed
    assert np.array_equal(meter.meter.energy.whole, whole)
    assert np.array_equal(meter.meter.energy.fraction, fraction)
    _run(meter, clock, 1)  # a window begun before the change holds old samples
    before = meter.meter.energy.whole[:, KWH_DELIVERED].copy()
    _run(meter, clock, 3)
    readings = meter.meter.readings
    assert readings is not None
    assert readings.power[0] == pytest.approx(7200.0, rel=1e-3)
    assert readings.power[1] == pytest.approx(3600.0, rel=1e-3)
    gained = meter.meter.energy.whole[:, KWH_DELIVERED] - before
    assert gained[0] == pytest.approx(2 * gained[1], rel=0.01)
    assert meter.live is not None
    assert meter.live.points[0].ct_primary_a == 200.0
    assert meter.store.get_meta("config")["points"][0]["ct_primary"] == 200.0
    # The interval of the change is flagged, the next one is not.
    _run(meter, clock, 100)
    records = meter.store.intervals()
    changed = [r.start for r in records if r.flags & Flag.CONFIG_CHANGED]
    assert changed == [T0]
    assert records[-1].start > T0
    meter.store.close()


def test_a_service_change_rebuilds_the_map_and_keeps_the_registers(tmp_path: Path) -> None:
    meter, clock = _meter(tmp_path, _two_points())
    backend = MeterBackend(meter.regmap, model="S8UTS-083", serial=meter.serial, firmware=FIRMWARE)
    meter.serve(backend)
    _run(meter, clock, 10)
    old_map = meter.regmap
    whole = meter.meter.energy.whole.copy()
    peak = meter.meter.demand.peak_w
    changes = {
        "points": {
            "service": "1p3w",
            "0": {"phases": ["A", "B"]},
            "1": {"phases": ["A"], "name": "Dryer A"},
        }
    }
    result = meter.submit(lambda: web_change(meter, changes, user="installer"))
    _run(meter, clock, 1)  # the task runs between two seconds
    assert result.done()
    outcome = result.result()
    assert outcome.map_changed
    assert outcome.registers_changed
    assert outcome.fields == (
        "points.service",
        "points.0.phases",
        "points.1.name",
        "points.1.phases",
    )
    assert meter.config.service.value == "1p3w"
    assert np.all(meter.meter.energy.whole >= whole)  # kept, and counting on
    assert np.array_equal(meter.meter.demand.peak_w, peak, equal_nan=True)
    # Two elements on point 1 (SunSpec model 202), one on point 2 (201).
    assert meter.regmap is not old_map
    assert backend.regmap is meter.regmap
    assert backend.points == 2
    assert len(backend.image) == meter.regmap.end - meter.regmap.base
    ids = []
    for label in ("point1", "point2"):
        address = meter.regmap.placed(label).address
        words = asyncio.run(backend.read(address, 1))
        ids.append(decode(DataType.UINT16, words))
    assert ids == [202, 201]
    _run(meter, clock, 3)
    readings = meter.meter.readings
    assert readings is not None
    assert readings.power[0] == pytest.approx(2400.0, rel=1e-3)  # A and B
    assert readings.power[1] == pytest.approx(1200.0, rel=1e-3)  # A
    assert meter.live is not None
    assert [p.phase for p in meter.live.points[0].phases] == ["A", "B"]
    assert [p.channel for p in meter.live.points[1].phases] == ["P2-1"]
    _run(meter, clock, 100)
    records = meter.store.intervals()
    assert [r.start for r in records] == [T0, T0 + 60]
    assert records[0].flags & Flag.CONFIG_CHANGED
    assert not records[1].flags & Flag.CONFIG_CHANGED
    # Phase powers: None where the point has no CT (pytest's approx takes no None).
    powers = [p.power_w for p in records[1].points]
    assert [[w is None for w in phases] for phases in powers] == [
        [False, False, True],
        [False, True, True],
    ]
    assert [w for phases in powers for w in phases if w is not None] == pytest.approx(
        [1200.0, 1200.0, 1200.0], rel=1e-3
    )
    # The interval of the change: its registers are those of the points kept.
    assert records[0].points[0].registers[0] >= whole[0][0]
    assert meter.store.config_changes()[0].user == "installer"
    meter.store.close()
    # A restart continues with the new configuration and every register.
    with Store.open(tmp_path) as store:
        raw = store.get_meta("config")
        registers = store.load_checkpoint()
        assert registers is not None
    restarted, _ = _meter(tmp_path, raw, clock=ManualClock(clock.value + 1))
    assert restarted.config.service.value == "1p3w"
    assert restarted.meter.energy.whole.tolist() == registers.registers
    restarted.store.close()


def test_points_added_and_removed_keep_their_registers(tmp_path: Path) -> None:
    meter, clock = _meter(tmp_path, _two_points())
    _run(meter, clock, 3)
    add = {"points": {"2": {"name": "Pump", "ct_primary": 50, "phases": ["A"]}}}
    result = web_change(meter, add, user="admin")
    assert result.changes == ("Point 3 (Pump) added: CT primary 50 A, phases A",)
    assert result.map_changed
    _run(meter, clock, 5)
    readings = meter.meter.readings
    assert readings is not None
    assert readings.power[2] == pytest.approx(600.0, rel=1e-3)  # 5 A on A
    third = meter.meter.energy.whole[2].copy()
    assert third[KWH_DELIVERED] > 0
    web_change(meter, {"points": {"2": None}}, user="admin")
    assert meter.meter.points == 2
    _run(meter, clock, 3)
    web_change(meter, add, user="admin")
    # Back with the registers it had: a register never goes back.
    assert np.array_equal(meter.meter.energy.whole[2], third)
    _run(meter, clock, 3)
    assert meter.meter.energy.whole[2][KWH_DELIVERED] > third[KWH_DELIVERED]
    assert len(meter.store.config_changes()) == 3
    meter.store.close()


def test_demand_restarts_on_new_settings_and_its_peaks_survive_other_changes(
    tmp_path: Path,
) -> None:
    meter, clock = _meter(tmp_path, _two_points())
    _run(meter, clock, 150)
    peak = meter.meter.demand.peak_w
    assert peak[0] == pytest.approx(3600.0, rel=0.01)
    web_change(meter, {"points": {"2": {"ct_primary": 100, "phases": ["A"]}}}, user="admin")
    kept = meter.meter.demand.peak_w
    assert kept[:2].tolist() == peak.tolist()
    assert math.isnan(kept[2])
    result = web_change(meter, {"report": {"demand_interval_minutes": 5}}, user="admin")
    assert result.changes == ("Demand interval (minutes): 1 → 5",)
    assert np.isnan(meter.meter.demand.peak_w).all()
    assert meter.config.demand.interval_minutes == 5
    meter.store.close()


def test_names_pulses_reporting_unit_and_recording_interval_apply_live(tmp_path: Path) -> None:
    meter, clock = _meter(tmp_path, _demo(), minutes=15, panel=True)
    _run(meter, clock, 2)
    counts = [p.count for p in meter.pulses]
    result = web_change(
        meter,
        {
            "unit": {"ntp_host": "time.example", "dhcp": False},
            "report": {
                "recording_minutes": 5,
                "every_minutes": 60,
                "host": "10.0.0.6",
                "password": SECRET_VALUES[0],  # another host: given again
            },
            "points": {"4": {"name": "Cooker"}},
            "pulses": [{"unit": "m³", "scale": 0.001}, {"name": "Gas meter"}],
        },
        user="admin",
    )
    assert not result.registers_changed
    assert not result.map_changed
    assert meter.config.unit.ntp_host == "time.example"
    assert meter.config.reporting.host == "10.0.0.6"
    assert meter.config.reporting.password == SECRET_VALUES[0]
    assert meter.recorder.pending_length == 300
    assert meter.recording_minutes == 5
    assert [p.count for p in meter.pulses] == counts
    assert meter.pulse_scales[0] == 0.001
    assert meter.pulses[1].config.name == "Gas meter"
    _run(meter, clock, 1)
    assert meter.live is not None
    assert meter.live.points[4].name == "Cooker"
    assert meter.live.pulses[0].unit == "m³"
    assert meter.settings()["report"]["recording_minutes"] == 5
    assert meter.store.get_meta("recording_minutes") == 5
    meter.store.close()


def test_the_change_log_has_one_entry_per_effective_change_and_no_secret(tmp_path: Path) -> None:
    meter, clock = _meter(tmp_path, _demo(), minutes=15, panel=True)
    _run(meter, clock, 1)
    first = web_change(meter, {"points": {"0": {"ct_primary": 60}}}, user="alice")
    again = web_change(meter, {"points": {"0": {"ct_primary": 60.0}}}, user="bob")
    assert again.changed is False
    assert again.entry is None
    web_change(meter, {"report": {"password": None}}, user="bob")  # kept: no change
    web_change(
        meter,
        {"report": {"password": "n3w-" + SECRET_VALUES[0]}, "unit": {"ppp_password": ""}},
        user="carol",
    )
    log = meter.store.config_changes()
    assert [(c.user, c.origin, c.changes) for c in log] == [
        ("carol", "web", ["PPP password: cleared", "FTP password: changed"]),
        ("alice", "web", ["Point 1 (Lighting) CT primary (A): 50 → 60"]),
    ]
    assert first.entry is not None
    assert first.entry.id == log[1].id
    assert all(c.time >= T0 for c in log)
    text = json.dumps([c.changes for c in log])
    for secret in SECRET_VALUES:
        assert secret not in text
    assert meter.config.reporting.password == "n3w-" + SECRET_VALUES[0]
    meter.store.close()


def test_a_failed_change_writes_and_applies_nothing(tmp_path: Path) -> None:
    meter, clock = _meter(tmp_path, _two_points())
    _run(meter, clock, 3)
    raw = meter.store.get_meta("config")
    config = meter.config
    regmap = meter.regmap
    bad = {"points": {"service": "1p3w", "0": {"ct_primary": 500}}, "unit": {"ip": "10.1.1.1"}}
    with pytest.raises(SettingsError) as caught:
        web_change(meter, bad, user="admin")
    assert set(caught.value.fields) == {
        "unit.gateway",
        "points.0.phases.2",
        "points.1.phases.2",
    }
    assert meter.store.get_meta("config") == raw
    assert meter.store.get_meta("recording_minutes") == 1
    assert meter.store.config_changes() == []
    assert meter.config is config
    assert meter.regmap is regmap
    # The store refusing the write applies nothing either.
    meter.store._db.execute(
        "CREATE TEMP TRIGGER no_log BEFORE INSERT ON config_change "
        "BEGIN SELECT RAISE(ABORT, 'simulated failure'); END"
    )
    with pytest.raises(StorageError):
        web_change(meter, {"points": {"service": "1p2w", "0": {"phases": ["A"]},
                                      "1": {"phases": ["A"]}}}, user="admin")  # fmt: skip
    assert meter.config is config
    assert meter.regmap is regmap
    assert meter.store.get_meta("config") == raw
    _run(meter, clock, 1)
    meter.store.close()


def test_the_panel_resets_the_default_ip(tmp_path: Path) -> None:
    raw = _two_points(
        unit={"dhcp": False, "ip": "10.0.0.20", "gateway": "10.0.0.1", "ntp_host": "ntp.example"}
    )
    meter, _ = _meter(tmp_path, raw)
    result = meter.reset_default_ip(user="panel")
    assert result.changes == (
        "DHCP enabled: no → yes",
        "Default IP address: 10.0.0.20 → 192.168.0.9",
        "Gateway: 10.0.0.1 → 192.168.0.1",
    )
    assert meter.config.unit == factory_default_ip(meter_config(raw).unit)
    assert meter.config.unit.ntp_host == "ntp.example"
    assert meter.store.config_changes()[0].user == "panel"
    assert meter.store.config_changes()[0].origin == "panel"
    assert not meter.reset_default_ip(user="panel").changed
    meter.store.close()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"report": {"host": "192.0.2.99"}}, "report.password"),
        ({"report": {"port": 2121}}, "report.password"),
        ({"unit": {"phone": "555 0199"}}, "unit.ppp_password"),
    ],
)
def test_a_secret_is_asked_again_when_its_destination_moves(
    changes: dict[str, Any], field: str
) -> None:
    error = _error(_demo(), changes)
    assert error.fields == [field]
    assert "enter it again, or clear it" in error.message
    for secret in SECRET_VALUES:
        assert secret not in error.message
