"""The configuration tool's settings, as the web page shows and changes them.

The S8000 configuration tool (user guide, section 10) has four tabs; so does
this model of the local meter's configuration:

``unit``
    The default IP configuration (DHCP, IP address, netmask, gateway, DNS
    primary and secondary), the NTP host, the PPP login and the modem.
``report``
    The recording interval, the demand type, interval and subinterval, and
    the host server the intervals are reported to (protocol, host, port,
    upload directory, FTP login, reporting schedule).
``points``
    The service type, the PT ratio and every meter point: name, CT primary,
    the phase of each CT, enabled.
``pulses``
    The two pulse inputs: name, unit and scale.

The settings live in the store as the raw configuration (the JSON-able dict
kept in meta ``config``, validated by :func:`~s8000_engine.config.meter_config`)
plus the recording interval (meta ``recording_minutes``).

* :func:`public_settings` gives the four sections as the web page needs them.
  Secrets (:data:`SECRETS`) are never in it: only whether each one is set,
  as ``<field>_set``.
* :func:`apply_changes` merges a partial update from the web page into a new
  raw configuration, validating the whole result with the configuration's own
  validators (:func:`~s8000_engine.config.meter.meter_config`).  Wrong values
  raise :class:`SettingsError`, a :class:`~s8000_engine.exceptions.ConfigError`
  whose ``errors`` name every wrong field by the web form's path
  (``unit.gateway``, ``report.recording_minutes``, ``points.3.ct_primary``,
  ``points.3.phases.1``, ``pulses.0.scale``): the configuration's paths that
  voluptuous gives, turned into the form's by a table (:func:`form_path`).
  Nothing is changed on error.
* :func:`describe_changes` lists what changed, one line each, for the change
  log; a secret shows only as "changed" or "cleared".

The changes accepted
--------------------
A dict with any subset of the sections, each with any subset of its fields::

    {
      "unit": {"dhcp": false, "ip": "10.0.0.20", "netmask": "255.255.255.0",
               "gateway": "10.0.0.1", "dns_primary": "10.0.0.1",
               "dns_secondary": "10.0.0.1", "ntp_host": "pool.ntp.org",
               "ppp_username": "meter", "ppp_password": "...", "phone": "555 0100",
               "alt_phone": "", "at_string": "AT X3 -STE=7"},
      "report": {"recording_minutes": 15, "demand_type": "sliding",
                 "demand_interval_minutes": 15, "demand_subinterval_minutes": 5,
                 "protocol": "ftp", "host": "10.0.0.5", "port": 21,
                 "upload_directory": "in", "username": "meter", "password": "...",
                 "url": "", "token": "...", "every_minutes": 60},
      "points": {"service": "3p4w", "pt_ratio": 1.0,
                 "3": {"name": "HVAC", "ct_primary": 200, "phases": ["A", "B", "C"],
                       "enabled": true},
                 "8": {"ct_primary": 50, "phases": ["A"]},
                 "7": null},
      "pulses": {"0": {"name": "Water", "unit": "L", "scale": 10}}
    }

Points and pulse inputs are keyed by their 0-based index (a string or an
integer; ``pulses`` may also be a list, position = index, ``null`` = no
change).  A point at the index one past the last is a new point (it needs
``ct_primary`` and ``phases``); ``null`` removes a point, only the last ones
(disable a point in the middle instead).  For a secret (``unit.ppp_password``,
``report.password``, ``report.token``) an absent field or ``null`` keeps the
stored value and ``""`` clears it.  With ``demand_type`` ``block`` the
subinterval is ignored; switching to ``sliding`` without a subinterval takes
the default one (a third of the interval, or 1 minute).  An unknown section or
field, or a read-only one of :func:`public_settings` (``ppp_password_set``,
``cts``, ``number`` ...), is refused.  A field sent with its current value
changes nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from s8000_engine.config.demand import (
    ALLOWED_INTERVALS,
    RECORDING_INTERVALS,
    DemandType,
)
from s8000_engine.config.meter import (
    CT_PHASES,
    MIN_CT_PRIMARY_A,
    MeterConfig,
    ServiceType,
    meter_config,
)
from s8000_engine.config.pulses import PULSE_INPUTS
from s8000_engine.config.reporting import SCHEDULE_MINUTES, ReportingProtocol
from s8000_engine.config.unit import UNIT_FIELDS
from s8000_engine.const import MAX_CT_PRIMARY_A
from s8000_engine.exceptions import ConfigError, FieldPath
from s8000_engine.models import MeterModel

__all__ = [
    "SECRETS",
    "SECTIONS",
    "SettingsError",
    "apply_changes",
    "describe_changes",
    "differences",
    "form_path",
    "public_settings",
    "raw_config",
]

#: The secret fields, as paths in the raw configuration.
SECRETS: Final = frozenset({"reporting.password", "reporting.token", "unit.ppp_password"})
#: The secret fields, as paths of the web form.
SECRET_FIELDS: Final = frozenset({"report.password", "report.token", "unit.ppp_password"})
#: Where each secret is sent: the fields that, changed, send it somewhere else
#: (another server, another number, or in clear where it went over TLS).
#: Such a change must give the secret again (or clear it), so that a
#: stored password never follows a new destination on its own.
SECRET_DESTINATIONS: Final = {
    "report.password": ("report.protocol", "report.host", "report.port"),
    "report.token": ("report.protocol", "report.url"),
    "unit.ppp_password": ("unit.phone", "unit.alt_phone"),
}
#: The sections, in the configuration tool's order.
SECTIONS: Final = ("unit", "report", "points", "pulses")

_SERVICE_LABELS: Final = {
    ServiceType.SINGLE_PHASE_2W: "Single-phase 2-wire",
    ServiceType.SINGLE_PHASE_3W: "Single-phase 3-wire",
    ServiceType.WYE_4W: "Three-phase wye 4-wire",
    ServiceType.DELTA_3W: "Three-phase delta 3-wire (two PTs)",
}

_UNIT_LABELS: Final = {
    "dhcp": "DHCP enabled",
    "ip": "Default IP address",
    "netmask": "Network mask",
    "gateway": "Gateway",
    "dns_primary": "DNS primary",
    "dns_secondary": "DNS secondary",
    "ntp_host": "NTP host",
    "ppp_username": "PPP user name",
    "ppp_password": "PPP password",
    "phone": "Modem phone #",
    "alt_phone": "Modem alternate phone #",
    "at_string": "Modem AT string",
}

#: report field -> (raw section, raw key, label)
_REPORT: Final[dict[str, tuple[str, str, str]]] = {
    "demand_type": ("demand", "type", "Demand type"),
    "demand_interval_minutes": ("demand", "interval_minutes", "Demand interval (minutes)"),
    "demand_subinterval_minutes": (
        "demand",
        "subinterval_minutes",
        "Demand subinterval (minutes)",
    ),
    "protocol": ("reporting", "protocol", "Reporting protocol"),
    "host": ("reporting", "host", "Host server"),
    "port": ("reporting", "port", "Host server port"),
    "upload_directory": ("reporting", "upload_directory", "Upload directory"),
    "username": ("reporting", "username", "FTP user name"),
    "password": ("reporting", "password", "FTP password"),
    "url": ("reporting", "url", "Report URL"),
    "token": ("reporting", "token", "Report token"),
    "every_minutes": ("reporting", "every_minutes", "Reporting schedule (minutes)"),
}
#: Where a part of the configuration is in the web form: the start of a
#: configuration path, and the start of the form path that replaces it (the
#: longest start that matches wins; a path that matches none stays as it is).
_FORM: Final[dict[FieldPath, FieldPath]] = {
    (): ("configuration",),
    ("unit",): ("unit",),
    ("demand",): ("report",),
    ("reporting",): ("report",),
    **{(section, key): ("report", name) for name, (section, key, _) in _REPORT.items()},
    ("points",): ("points",),
    **{(key,): ("points", key) for key in ("service", "pt_ratio", "frequency", "nominal_voltage")},
    ("model",): ("points", "model"),
    ("pulse_inputs",): ("pulses",),
}


def form_path(path: FieldPath) -> FieldPath:
    """The web form's path of a configuration path: ``("demand", "type")`` is
    ``("report", "demand_type")``, ``("pulse_inputs", 1, "scale")`` is
    ``("pulses", 1, "scale")``."""
    for length in range(len(path), -1, -1):
        if (start := _FORM.get(path[:length])) is not None:
            return (*start, *path[length:])
    return path  # not reached: () is in the table


_RECORDING_LABEL: Final = "Recording interval (minutes)"
_POINTS_TOP: Final = {"service": "Service type", "pt_ratio": "PT ratio"}
_POINT_FIELDS: Final = {
    "name": "name",
    "ct_primary": "CT primary (A)",
    "phases": "CT phases",
    "enabled": "enabled",
}
_PULSE_FIELDS: Final = {"name": "name", "unit": "unit", "scale": "scale (units per pulse)"}

#: Keys public_settings shows that cannot be changed.
_READ_ONLY: Final = {
    "unit": {"ppp_password_set"},
    "report": {"password_set", "token_set", "choices"},
    "points": {
        "items",
        "unused",
        "model",
        "max_points",
        "elements",
        "services",
        "nominal_voltage",
        "frequency",
        "min_ct_primary",
        "max_ct_primary",
    },
    "point": {"index", "number", "cts"},
    "pulse": {"index", "number"},
}


class SettingsError(ConfigError):
    """A configuration error in the web form's terms: each path is the form
    field's (``("points", 3, "ct_primary")``, shown dotted as the form names
    it: ``points.3.ct_primary``), each message says what is wrong (never a
    secret's value).  ``errors`` holds every wrong setting found."""

    @classmethod
    def describe(cls, path: FieldPath) -> str:
        """A form path as the web page names its field: ``points.3.ct_primary``."""
        return ".".join(str(key) for key in path)

    @classmethod
    def of(cls, error: ConfigError) -> SettingsError:
        """A configuration's error with every path turned into the form field's
        (:func:`form_path`)."""
        if isinstance(error, SettingsError):
            return error
        return cls((form_path(path), message) for path, message in error.errors)

    @property
    def field(self) -> str:
        """The first wrong field, dotted."""
        return self.describe(self.path)

    @property
    def fields(self) -> list[str]:
        """Every wrong field, dotted, in order."""
        return [self.describe(path) for path, _ in self.errors]

    def as_dict(self) -> dict[str, Any]:
        """``{"errors": [{"field": ..., "message": ...}, ...]}`` for the web page."""
        return {
            "errors": [
                {"field": self.describe(path), "message": message} for path, message in self.errors
            ]
        }


# -- reading -------------------------------------------------------------------------------


def raw_config(config: MeterConfig) -> dict[str, Any]:
    """The raw (JSON-able) configuration of a validated one, secrets included
    (for the store: ``meter_config(raw_config(c)) == c``)."""
    reporting = dataclasses.asdict(config.reporting)
    reporting["protocol"] = config.reporting.protocol.value
    return {
        "model": config.model.code,
        "service": config.service.value,
        "frequency": config.frequency_hz,
        "nominal_voltage": config.nominal_voltage,
        "pt_ratio": config.pt_ratio,
        "points": [
            {
                "name": p.name,
                "ct_primary": p.ct_primary_a,
                "phases": [x.value for x in p.phases],
                "enabled": p.enabled,
            }
            for p in config.points
        ],
        "calibration": {
            channel: {"gain": c.gain, "phase_deg": c.phase_deg}
            for channel, c in config.calibration.items()
        },
        "demand": config.demand.to_dict(),
        "pulse_inputs": [dataclasses.asdict(p) for p in config.pulse_inputs],
        "reporting": reporting,
        "unit": config.unit.to_dict(),
    }


def _config(raw: Mapping[str, Any]) -> MeterConfig:
    try:
        return meter_config(raw)
    except ConfigError as error:
        raise SettingsError.of(error) from None


def _cts(model: MeterModel, number: int, phases: Sequence[str]) -> list[dict[str, Any]]:
    """The CT inputs of point ``number`` (1-based): channel, wire colours, phase."""
    return [
        {
            "element": element,
            "channel": channel.name,
            "x1": channel.x1,
            "x2": channel.x2,
            "phase": phases[element - 1] if element <= len(phases) else None,
        }
        for element in range(1, model.elements + 1)
        for channel in (model.channel(number, element),)
    ]


def public_settings(
    raw: Mapping[str, Any], recording_minutes: int, model: MeterModel | None = None
) -> dict[str, Any]:
    """The four sections as the web page shows them, plus ``model`` (code,
    points, elements, voltage).  Secrets are never included: ``<field>_set``
    says whether each is set.  ``model`` defaults to the configuration's."""
    config = _config(raw)
    model = model or config.model
    unit = {name: getattr(config.unit, name) for name in UNIT_FIELDS if name != "ppp_password"}
    unit["ppp_password_set"] = bool(config.unit.ppp_password)
    report: dict[str, Any] = {
        "recording_minutes": recording_minutes,
        **{name: _report_value(config, name) for name in _REPORT},
    }
    del report["password"], report["token"]
    report["password_set"] = bool(config.reporting.password)
    report["token_set"] = bool(config.reporting.token)
    report["choices"] = {
        "recording_minutes": list(RECORDING_INTERVALS),
        "demand_type": [t.value for t in DemandType],
        "demand_interval_minutes": list(ALLOWED_INTERVALS),
        "protocol": [p.value for p in ReportingProtocol],
        "every_minutes": list(SCHEDULE_MINUTES),
    }
    items = []
    for index, point in enumerate(config.points):
        phases = [p.value for p in point.phases]
        items.append(
            {
                "index": index,
                "number": index + 1,
                "name": point.name,
                "ct_primary": point.ct_primary_a,
                "phases": phases,
                "enabled": point.enabled,
                "cts": _cts(model, index + 1, phases),
            }
        )
    unused = [
        {"index": n - 1, "number": n, "cts": _cts(model, n, [])}
        for n in range(len(config.points) + 1, model.points + 1)
    ]
    points = {
        "service": config.service.value,
        "pt_ratio": config.pt_ratio,
        "nominal_voltage": config.nominal_voltage,
        "frequency": config.frequency_hz,
        "max_points": model.points,
        "elements": model.elements,
        "min_ct_primary": MIN_CT_PRIMARY_A,
        "max_ct_primary": MAX_CT_PRIMARY_A,
        "services": [
            {
                "value": s.value,
                "label": _SERVICE_LABELS[s],
                "phases": [p.value for p in CT_PHASES[s]],
            }
            for s in ServiceType
        ],
        "items": items,
        "unused": unused,
    }
    pulses = [
        {"index": n, "number": n + 1, "name": p.name, "unit": p.unit, "scale": p.scale}
        for n, p in enumerate(config.pulse_inputs)
    ]
    return {
        "model": {
            "code": model.code,
            "points": model.points,
            "elements": model.elements,
            "voltage": model.voltage,
            "connection": model.connection.value,
        },
        "unit": unit,
        "report": report,
        "points": points,
        "pulses": pulses,
    }


def _report_value(config: MeterConfig, name: str) -> Any:
    section, key, _ = _REPORT[name]
    if section == "demand":
        value = getattr(config.demand, key)
        return value.value if key == "type" else value
    value = getattr(config.reporting, key)
    if key == "protocol":
        return value.value
    if key == "token":
        return value or ""
    return value


# -- the effective value of every field ------------------------------------------------------


def _effective(config: MeterConfig, minutes: int) -> dict[str, Any]:
    """Every editable field's effective value, by web-form path."""
    values: dict[str, Any] = {f"unit.{n}": getattr(config.unit, n) for n in UNIT_FIELDS}
    values["report.recording_minutes"] = minutes
    values.update({f"report.{n}": _report_value(config, n) for n in _REPORT})
    values["points.service"] = config.service.value
    values["points.pt_ratio"] = config.pt_ratio
    for index, point in enumerate(config.points):
        values[f"points.{index}.name"] = point.name
        values[f"points.{index}.ct_primary"] = point.ct_primary_a
        values[f"points.{index}.phases"] = [p.value for p in point.phases]
        values[f"points.{index}.enabled"] = point.enabled
    for index, pulse in enumerate(config.pulse_inputs):
        for key in _PULSE_FIELDS:
            values[f"pulses.{index}.{key}"] = getattr(pulse, key)
    return values


def _location(path: str) -> tuple[str | int, ...]:
    """Where a web-form field lives in the raw configuration."""
    parts = path.split(".")
    section = parts[0]
    if section == "unit":
        return ("unit", parts[1])
    if section == "report":
        raw_section, key, _ = _REPORT[parts[1]]
        return (raw_section, key)
    if section == "points":
        if len(parts) == 2:
            return (parts[1],)
        return ("points", int(parts[1]), parts[2])
    return ("pulse_inputs", int(parts[1]), parts[2])


_MISSING: Final = object()


def _get(raw: Mapping[str, Any], where: tuple[str | int, ...]) -> Any:
    node: Any = raw
    for key in where:
        if isinstance(key, int):
            if not isinstance(node, list) or key >= len(node):
                return _MISSING
            node = node[key]
        else:
            if not isinstance(node, Mapping) or key not in node:
                return _MISSING
            node = node[key]
    return node


def _set(raw: dict[str, Any], where: tuple[str | int, ...], value: Any) -> None:
    node: Any = raw
    for number, key in enumerate(where[:-1]):
        following = where[number + 1]
        if isinstance(key, int):
            while len(node) <= key:
                node.append({})
            node = node[key]
        else:
            if not isinstance(node.get(key), (dict, list)):
                node[key] = [] if isinstance(following, int) else {}
            node = node[key]
    last = where[-1]
    if value is _MISSING:
        if isinstance(node, dict):
            node.pop(last, None)
    else:
        node[last] = value


# -- changing ------------------------------------------------------------------------------


def _index(key: Any) -> int | None:
    """A 0-based index given as an integer or its decimal text."""
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key
    if isinstance(key, str) and key.isascii() and key.isdigit() and len(key) <= 3:
        return int(key)
    return None


def _mapping(value: Any, where: FieldPath) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SettingsError.at(where, "expected an object of fields")
    return value


def _unknown(where: FieldPath, read_only: Iterable[str]) -> tuple[FieldPath, str]:
    if str(where[-1]) in read_only:
        return where, "read-only: this value cannot be changed"
    return where, "unknown field"


class _Plan:
    """A change, field by field: the edits by dotted form path, and every wrong
    field by form path."""

    def __init__(self) -> None:
        self.edits: list[tuple[str, Any]] = []
        self.add: dict[int, Mapping[str, Any]] = {}
        self.remove: set[int] = set()
        self.errors: list[tuple[FieldPath, str]] = []


def _plan(changes: Mapping[str, Any], config: MeterConfig) -> _Plan:
    plan = _Plan()
    if not isinstance(changes, Mapping):
        raise SettingsError.at(("changes",), "expected an object with the sections to change")
    for section, given in changes.items():
        if section not in SECTIONS:
            plan.errors.append(
                ((str(section),), "unknown section (unit, report, points or pulses)")
            )
            continue
        try:
            if section == "unit":
                _plan_fields(plan, ("unit",), _mapping(given, ("unit",)), UNIT_FIELDS)
            elif section == "report":
                names = ("recording_minutes", *_REPORT)
                _plan_fields(plan, ("report",), _mapping(given, ("report",)), names)
            elif section == "points":
                _plan_points(plan, _mapping(given, ("points",)), config)
            else:
                _plan_pulses(plan, given)
        except SettingsError as error:
            plan.errors.extend(error.errors)
    return plan


def _plan_fields(
    plan: _Plan,
    prefix: FieldPath,
    given: Mapping[str, Any],
    names: Iterable[str],
    read_only: str | None = None,
) -> None:
    allowed = set(names)
    for key, value in given.items():
        field = SettingsError.describe((*prefix, key))
        if key not in allowed:
            plan.errors.append(_unknown((*prefix, key), _READ_ONLY[read_only or str(prefix[0])]))
        elif field in SECRET_FIELDS and value is None:
            continue  # kept
        else:
            plan.edits.append((field, value))


def _plan_points(plan: _Plan, given: Mapping[str, Any], config: MeterConfig) -> None:
    model = config.model
    count = len(config.points)
    for key, value in given.items():
        if key in _POINTS_TOP:
            plan.edits.append((f"points.{key}", value))
            continue
        index = _index(key)
        if index is None:
            plan.errors.append(_unknown(("points", key), _READ_ONLY["points"]))
            continue
        where = ("points", index)
        if index >= model.points:
            plan.errors.append(
                (
                    where,
                    f"{model.code} has {model.points} meter points; there is no point {index + 1}",
                )
            )
            continue
        if value is None:
            if index >= count:
                plan.errors.append((where, f"there is no point {index + 1} to remove"))
            else:
                plan.remove.add(index)
            continue
        if not isinstance(value, Mapping):
            plan.errors.append((where, "expected an object of fields, or null to remove the point"))
            continue
        if index >= count:
            plan.add[index] = value
        _plan_fields(plan, where, value, _POINT_FIELDS, "point")
    if plan.remove:
        first = min(plan.remove)
        if plan.remove != set(range(first, count)):
            plan.errors.append(
                (
                    ("points", first),
                    "only the last points can be removed; disable this point instead, or "
                    f"remove points {first + 1} to {count} together",
                )
            )
        elif first == 0:
            plan.errors.append((("points", 0), "the meter needs at least one point"))
        if plan.add:
            plan.errors.append((("points", min(plan.add)), "add and remove points in two changes"))
    if plan.add:
        expected = count
        for index in sorted(plan.add):
            if index != expected:
                plan.errors.append(
                    (
                        ("points", index),
                        f"points are added one after the other: the next one is "
                        f"points.{expected} (point {expected + 1})",
                    )
                )
                break
            for required in ("ct_primary", "phases"):
                if plan.add[index].get(required) is None:
                    plan.errors.append((("points", index, required), "required for a new point"))
            expected += 1


def _plan_pulses(plan: _Plan, given: Any) -> None:
    if isinstance(given, list):
        entries: Iterable[tuple[Any, Any]] = enumerate(given)
    else:
        entries = _mapping(given, ("pulses",)).items()
    for key, value in entries:
        index = _index(key)
        if index is None:
            plan.errors.append((("pulses", key), "unknown field"))
            continue
        where = ("pulses", index)
        if index >= PULSE_INPUTS:
            plan.errors.append(
                (
                    where,
                    f"the meter has {PULSE_INPUTS} pulse inputs; there is no pulse input "
                    f"{index + 1}",
                )
            )
            continue
        if value is None:
            continue
        _plan_fields(plan, where, _mapping(value, where), _PULSE_FIELDS, "pulse")


def apply_changes(
    raw: Mapping[str, Any], recording_minutes: int, changes: Mapping[str, Any]
) -> tuple[dict[str, Any], int]:
    """The raw configuration and recording interval after ``changes`` (see the
    module documentation); ``raw`` is not modified.  Raises SettingsError
    naming every wrong field; nothing is changed then."""
    old = _config(raw)
    plan = _plan(changes, old)
    if plan.errors:
        raise SettingsError(plan.errors)
    new_raw: dict[str, Any] = copy.deepcopy(dict(raw))
    minutes: Any = recording_minutes
    if plan.remove:
        new_raw["points"] = list(new_raw["points"])[: min(plan.remove)]
    for _ in plan.add:
        new_raw.setdefault("points", []).append({})
    given = dict(plan.edits)
    # Demand: block has no subinterval; turning sliding takes the default one.
    kind = given.get("report.demand_type", _report_value(old, "demand_type"))
    turning_sliding = (
        old.demand.type is DemandType.BLOCK
        and "report.demand_subinterval_minutes" not in given
        and kind == DemandType.SLIDING.value
    )
    if kind == DemandType.BLOCK.value or turning_sliding:
        given["report.demand_subinterval_minutes"] = None
    for field, value in given.items():
        if field == "report.recording_minutes":
            minutes = value
        elif field in SECRET_FIELDS and value == "":
            _set(new_raw, _location(field), None if field == "report.token" else "")
        else:
            _set(new_raw, _location(field), value)
    new = _validate(new_raw, minutes)
    # Fields sent with their effective value leave the raw configuration as it was;
    # the others are stored as validated.
    before = _effective(old, recording_minutes)
    after = _effective(new, minutes)
    _check_secret_destinations(old, before, after, given)
    for field in given:
        if field == "report.recording_minutes" or field.startswith("report.demand_"):
            continue
        where = _location(field)
        if field in before and before[field] == after.get(field):
            _set(new_raw, where, _get(raw, where))
        elif field in after:
            value = after[field]
            _set(new_raw, where, None if field == "report.token" and not value else value)
    if old.demand == new.demand:
        _set(new_raw, ("demand",), _get(raw, ("demand",)))
    else:
        new_raw["demand"] = new.demand.to_dict()
    return new_raw, int(minutes)


def _check_secret_destinations(
    old: MeterConfig, before: Mapping[str, Any], after: Mapping[str, Any], given: Mapping[str, Any]
) -> None:
    """SettingsError for every stored secret whose destination the change
    moves without giving the secret again (see :data:`SECRET_DESTINATIONS`)."""
    stored = {
        "report.password": old.reporting.password,
        "report.token": old.reporting.token,
        "unit.ppp_password": old.unit.ppp_password,
    }
    errors: list[tuple[FieldPath, str]] = []
    for secret, destination in SECRET_DESTINATIONS.items():
        moved = [f for f in destination if before.get(f) != after.get(f)]
        if moved and stored[secret] and secret not in given:
            errors.append(
                (
                    tuple(secret.split(".")),
                    f"{', '.join(moved)} changed where it is sent: enter it again, or clear it",
                )
            )
    if errors:
        raise SettingsError(errors)


# -- validation ----------------------------------------------------------------------------


def _minutes_error(minutes: Any) -> str | None:
    choices = ", ".join(str(m) for m in RECORDING_INTERVALS)
    if isinstance(minutes, bool) or not isinstance(minutes, int | float):
        return f"must be one of {choices} minutes"
    if not (math.isfinite(minutes) and minutes in RECORDING_INTERVALS):
        return f"must be one of {choices} minutes"
    return None


def _validate(raw: dict[str, Any], minutes: Any) -> MeterConfig:
    """The configuration ``raw`` describes; SettingsError with every wrong field
    (the recording interval first, then as :func:`meter_config` names them)."""
    errors: list[tuple[FieldPath, str]] = []
    if (message := _minutes_error(minutes)) is not None:
        errors.append((("report", "recording_minutes"), message))
    try:
        config = meter_config(raw)
    except ConfigError as failed:
        errors += SettingsError.of(failed).errors
    if errors:
        raise SettingsError(errors)
    return config


# -- describing ------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)


def _label(path: str, names: Mapping[int, str]) -> str:
    parts = path.split(".")
    if parts[0] == "unit":
        return _UNIT_LABELS[parts[1]]
    if parts[0] == "report":
        return _RECORDING_LABEL if parts[1] == "recording_minutes" else _REPORT[parts[1]][2]
    if parts[0] == "points" and len(parts) == 2:
        return _POINTS_TOP[parts[1]]
    index = int(parts[1])
    if parts[0] == "points":
        return f"Point {index + 1} ({names.get(index, '?')}) {_POINT_FIELDS[parts[2]]}"
    return f"Pulse input {index + 1} {_PULSE_FIELDS[parts[2]]}"


def _differences(
    old: MeterConfig, new: MeterConfig, old_minutes: int, new_minutes: int
) -> list[tuple[str, str]]:
    """(field, description) of every effective change."""
    before = _effective(old, old_minutes)
    after = _effective(new, new_minutes)
    names = {i: p.name for i, p in enumerate(old.points)}
    names.update({i: p.name for i, p in enumerate(new.points)})
    # What the web form does not change (a whole configuration replaced: ``run
    # --replace-config``) is described too, so no change goes unlogged.
    found = [
        (field, f"{label}: {_text(before)} → {_text(after)}")
        for field, label, before, after in (
            ("points.model", "Meter model", old.model.code, new.model.code),
            ("points.frequency", "Frequency (Hz)", old.frequency_hz, new.frequency_hz),
            (
                "points.nominal_voltage",
                "Nominal voltage (V)",
                float(old.nominal_voltage),
                float(new.nominal_voltage),
            ),
        )
        if before != after
    ]
    for channel in sorted(set(old.calibration) | set(new.calibration)):
        was, now = old.calibration_of(channel), new.calibration_of(channel)
        if was != now:
            found.append(
                (
                    f"calibration.{channel}",
                    f"Calibration of {channel}: gain {was.gain:g}, phase {was.phase_deg:g}° → "
                    f"gain {now.gain:g}, phase {now.phase_deg:g}°",
                )
            )
    found += [
        (f"points.{index}", f"Point {index + 1} ({names[index]}) removed")
        for index in range(len(new.points), len(old.points))
    ]
    for index in range(len(old.points), len(new.points)):
        point = new.points[index]
        found.append(
            (
                f"points.{index}",
                f"Point {index + 1} ({point.name}) added: CT primary {point.ct_primary_a:g} A, "
                f"phases {', '.join(p.value for p in point.phases)}"
                + ("" if point.enabled else ", disabled"),
            )
        )
    for field, value in after.items():
        if field not in before:
            continue  # a new point, described above
        if before[field] == value:
            continue
        if field == "report.demand_subinterval_minutes" and new.demand.type is DemandType.BLOCK:
            continue  # block demand has no subinterval: the type's change says it all
        label = _label(field, names)
        if field in SECRET_FIELDS:
            found.append((field, f"{label}: {'changed' if value else 'cleared'}"))
        else:
            found.append((field, f"{label}: {_text(before[field])} → {_text(value)}"))
    return found


def describe_changes(
    old_raw: Mapping[str, Any], new_raw: Mapping[str, Any], old_minutes: int, new_minutes: int
) -> list[str]:
    """What changed from the old settings to the new, one human-readable line
    each, e.g. ``Point 4 (HVAC) CT primary (A): 100 → 200``; a secret shows
    only as ``changed`` or ``cleared``.  Empty when nothing changed."""
    old = _config(old_raw)
    new = _config(new_raw)
    return [text for _, text in _differences(old, new, old_minutes, new_minutes)]


def differences(
    old_raw: Mapping[str, Any], new_raw: Mapping[str, Any], old_minutes: int, new_minutes: int
) -> list[tuple[str, str]]:
    """``(field, description)`` of every change: the web-form path of the field
    (``points.8`` for a point added or removed) and :func:`describe_changes`'s line."""
    return _differences(_config(old_raw), _config(new_raw), old_minutes, new_minutes)
