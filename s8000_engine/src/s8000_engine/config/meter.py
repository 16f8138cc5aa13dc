"""Services and meter configuration, validated with voluptuous.

Service types (user guide, sections 1.1 and 3.1.6):

``1p2w``
    Single-phase 2-wire: terminal A to the line, N to neutral.  CTs on A.
``1p3w``
    Single-phase 3-wire, "network": A and B to the two lines (120/240 V
    split phase, or two phases of a 120/208 V wye), N to neutral.  CTs on A
    and B.
``3p4w``
    Three-phase wye 4-wire: A, B, C and N.  120/208 V and 277/480 V directly
    (the 277 V variant, or the 120 V variant for 120/208), 347/600 V through
    wye-wye potential transformers (PTs) that bring line to neutral down to
    120 V, with the PT ratio configured.
``3p3w``
    Three-phase delta 3-wire through two PTs that bring line to line down to
    120 V: meter terminal A to phase A, C to phase C, and the meter's neutral
    to phase B.  So the meter's "A" voltage is V_AB and its "C" voltage is
    V_CB, and each point is a two-element (Blondel) meter with CTs on A and
    C.  A CT on B is optional: its current is measured, it adds no power.

Voltages are configured as the meter sees them (secondary of any PTs); the
PT ratio scales them to the service's primary voltages.  CTs have 100 mA
secondaries; each point has a CT primary rating (the current that gives
100 mA), used for every element of the point.

Calibration is per channel (``VA``, ``VB``, ``VC`` and every CT channel such
as ``P3-2``): a gain and a phase error in degrees at the fundamental
(positive when the channel's output leads the true quantity).  The metering
engine removes both.

The ``unit`` section holds the configuration tool's *Unit Field
Configuration* that is not metering: the default IP configuration (used when
DHCP is off, or when no DHCP server answers: the factory default is DHCP with
192.168.0.9 as the fallback address), the NTP host, the PPP login and the
modem (see :class:`UnitConfig`).

Every wrong value raises :class:`ConfigError`, whose message names the field,
e.g. ``points[2].ct_primary: value must be at most 10000``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

import voluptuous as vol

from s8000_engine.config.demand import DemandConfig, demand_config
from s8000_engine.config.pulses import PULSE_INPUTS, PulseInputConfig, pulse_input_config
from s8000_engine.config.reporting import ReportingConfig, reporting_config
from s8000_engine.config.unit import UnitConfig, unit_config
from s8000_engine.exceptions import ConfigError
from s8000_engine.models import MeterModel, get_model


class ServiceType(StrEnum):
    """The electrical service the meter's sense voltages are wired to."""

    SINGLE_PHASE_2W = "1p2w"
    SINGLE_PHASE_3W = "1p3w"
    WYE_4W = "3p4w"
    DELTA_3W = "3p3w"


class Phase(StrEnum):
    """A phase (voltage terminal) of the meter."""

    A = "A"
    B = "B"
    C = "C"

    @property
    def row(self) -> int:
        """Row of this phase in voltage sample arrays (A=0, B=1, C=2)."""
        return "ABC".index(self.value)


#: Angle of each terminal's voltage in degrees from V_AN, per service as it is
#: wired (user guide, section 3.1.6).  1p3w is the 120/240 V split phase, B
#: opposite A; on two phases of a 120/208 V wye ("network") B is at -120°,
#: as in :data:`SOURCE_ANGLES`.  On a delta through two PTs, terminal A sees
#: V_AB (30° ahead of V_AN) and terminal C sees V_CB (90°).
TERMINAL_ANGLES: Final[Mapping[ServiceType, Mapping[Phase, float]]] = MappingProxyType(
    {
        ServiceType.SINGLE_PHASE_2W: {Phase.A: 0.0},
        ServiceType.SINGLE_PHASE_3W: {Phase.A: 0.0, Phase.B: 180.0},
        ServiceType.WYE_4W: {Phase.A: 0.0, Phase.B: -120.0, Phase.C: 120.0},
        ServiceType.DELTA_3W: {Phase.A: 30.0, Phase.C: 90.0},
    }
)
#: Angle of each phase's line-to-neutral voltage, the current of a unity
#: power factor load on it (a delta's phases from its virtual neutral).
SOURCE_ANGLES: Final[Mapping[ServiceType, Mapping[Phase, float]]] = MappingProxyType(
    {
        **TERMINAL_ANGLES,
        ServiceType.DELTA_3W: {Phase.A: 0.0, Phase.B: -120.0, Phase.C: 120.0},
    }
)

#: The voltage terminals each service uses.
SERVICE_PHASES: Final[dict[ServiceType, tuple[Phase, ...]]] = {
    ServiceType.SINGLE_PHASE_2W: (Phase.A,),
    ServiceType.SINGLE_PHASE_3W: (Phase.A, Phase.B),
    ServiceType.WYE_4W: (Phase.A, Phase.B, Phase.C),
    ServiceType.DELTA_3W: (Phase.A, Phase.C),
}

#: Phases a CT may be on, per service (delta: B is measured, not metered).
CT_PHASES: Final[dict[ServiceType, tuple[Phase, ...]]] = {
    **SERVICE_PHASES,
    ServiceType.DELTA_3W: (Phase.A, Phase.B, Phase.C),
}

MAX_CT_PRIMARY_A: Final = 10000.0
VOLTAGE_CHANNELS: Final = ("VA", "VB", "VC")


@dataclass(frozen=True, slots=True)
class ChannelCalibration:
    """Gain and phase correction of one input channel."""

    gain: float = 1.0
    """The channel reads ``gain`` times the true value."""
    phase_deg: float = 0.0
    """The channel's fundamental leads the true one by this angle."""


@dataclass(frozen=True, slots=True)
class PointConfig:
    """One meter point: a circuit metered by one to three CTs."""

    name: str
    ct_primary_a: float
    """CT rating: the primary current that gives 100 mA on the secondary."""
    phases: tuple[Phase, ...]
    """The phase each element's CT is on, element 1 first."""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class MeterConfig:
    """Everything the metering engine needs to know about one meter."""

    model: MeterModel
    service: ServiceType
    frequency_hz: int
    """Nominal line frequency, 50 or 60 Hz (the engine tracks the real one)."""
    nominal_voltage: float
    """Nominal voltage at the meter's terminals: line to neutral, or line to
    line for delta (after the PTs)."""
    pt_ratio: float
    points: tuple[PointConfig, ...]
    calibration: Mapping[str, ChannelCalibration] = field(default_factory=dict)
    demand: DemandConfig = field(default_factory=DemandConfig)
    pulse_inputs: tuple[PulseInputConfig, ...] = (
        PulseInputConfig(name="Pulse 1"),
        PulseInputConfig(name="Pulse 2"),
    )
    reporting: ReportingConfig = field(default_factory=ReportingConfig)
    """The host server the meter reports its intervals to, and the schedule."""
    unit: UnitConfig = field(default_factory=UnitConfig)
    """Network, time server, PPP login and modem (the tool's unit settings)."""

    @property
    def phases(self) -> tuple[Phase, ...]:
        """The voltage terminals this service uses."""
        return SERVICE_PHASES[self.service]

    def calibration_of(self, channel: str) -> ChannelCalibration:
        """The calibration of a channel (identity when none is configured)."""
        return self.calibration.get(channel, ChannelCalibration())


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise vol.Invalid("value must be a finite number")
    return number


_CALIBRATION = vol.Schema(
    {
        vol.Optional("gain", default=1.0): vol.All(_finite, vol.Range(min=0.5, max=2.0)),
        vol.Optional("phase_deg", default=0.0): vol.All(_finite, vol.Range(min=-10.0, max=10.0)),
    }
)

_POINT = vol.Schema(
    {
        vol.Optional("name"): vol.All(str, vol.Strip, vol.Length(min=1, max=32)),
        vol.Required("ct_primary"): vol.All(
            _finite, vol.Range(min=0.1, max=MAX_CT_PRIMARY_A, min_included=True)
        ),
        vol.Required("phases"): vol.All(
            [vol.All(str, vol.Upper, vol.In([p.value for p in Phase]))], vol.Length(min=1, max=3)
        ),
        vol.Optional("enabled", default=True): bool,
    }
)

METER_SCHEMA: Final = vol.Schema(
    {
        vol.Required("model"): str,
        vol.Required("service"): vol.In([s.value for s in ServiceType]),
        vol.Optional("frequency", default=60): vol.All(vol.Coerce(int), vol.In([50, 60])),
        vol.Optional("nominal_voltage"): vol.All(_finite, vol.Range(min=90.0, max=300.0)),
        vol.Optional("pt_ratio", default=1.0): vol.All(_finite, vol.Range(min=1.0, max=100.0)),
        vol.Required("points"): vol.All([_POINT], vol.Length(min=1, max=24)),
        vol.Optional("calibration", default=dict): {str: _CALIBRATION},
        # Validated by demand_config and pulse_input_config below.
        vol.Optional("demand", default=dict): dict,
        vol.Optional("pulse_inputs", default=list): vol.All(list, vol.Length(max=PULSE_INPUTS)),
        vol.Optional("reporting", default=dict): dict,
        vol.Optional("unit", default=dict): dict,
    }
)


def _path(error: vol.Invalid) -> str:
    parts: list[str] = []
    for item in error.path:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "configuration"


def validate(schema: vol.Schema, data: object, what: str = "") -> Any:
    """Validate ``data``; raise ConfigError naming the first offending field."""
    try:
        return schema(data)
    except vol.MultipleInvalid as errors:
        first = errors.errors[0]
        raise ConfigError(f"{what}{_path(first)}: {first.msg}") from None
    except vol.Invalid as error:
        raise ConfigError(f"{what}{_path(error)}: {error.msg}") from None


def point_config(
    data: Mapping[str, Any], index: int, model: MeterModel, service: ServiceType
) -> PointConfig:
    """Validate meter point ``index`` (0-based) of a ``model`` on a ``service``;
    ConfigError names the field, e.g. ``points[3].phases[1]: ...``."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"points[{index}]: expected a dictionary")
    return _point(validate(_POINT, dict(data), f"points[{index}]."), index, model, service)


def _point(
    point: dict[str, Any], index: int, model: MeterModel, service: ServiceType
) -> PointConfig:
    where = f"points[{index}]"
    allowed = CT_PHASES[service]
    phases = tuple(Phase(p) for p in point["phases"])
    if len(phases) > model.elements:
        raise ConfigError(
            f"{where}.phases: {model.code} has {model.elements} CT(s) per point, not {len(phases)}"
        )
    for number, phase in enumerate(phases):
        if phase not in allowed:
            raise ConfigError(
                f"{where}.phases[{number}]: a {service.value} service has no phase "
                f"{phase.value} (allowed: {', '.join(p.value for p in allowed)})"
            )
    if len(set(phases)) != len(phases):
        raise ConfigError(f"{where}.phases: each CT of a point must be on a different phase")
    return PointConfig(
        name=point.get("name") or f"Point {index + 1}",
        ct_primary_a=point["ct_primary"],
        phases=phases,
        enabled=point["enabled"],
    )


def meter_config(data: Mapping[str, Any]) -> MeterConfig:
    """Build a validated MeterConfig from plain data (e.g. parsed JSON/YAML)."""
    raw = validate(METER_SCHEMA, dict(data))
    try:
        model = get_model(raw["model"])
    except ValueError as error:
        raise ConfigError(f"model: {error}") from None
    service = ServiceType(raw["service"])
    if len(raw["points"]) > model.points:
        raise ConfigError(
            f"points: {model.code} has {model.points} meter points, not {len(raw['points'])}"
        )
    points = [_point(point, index, model, service) for index, point in enumerate(raw["points"])]
    channels = set(VOLTAGE_CHANNELS) | {channel.name for channel in model.channels}
    calibration = {}
    for channel, values in raw["calibration"].items():
        if channel not in channels:
            raise ConfigError(f"calibration.{channel}: no such channel on {model.code}")
        calibration[channel] = ChannelCalibration(values["gain"], values["phase_deg"])
    nominal = raw.get("nominal_voltage")
    if nominal is None:
        nominal = 120.0 if service is ServiceType.DELTA_3W else float(model.voltage)
    if service is ServiceType.DELTA_3W and raw["pt_ratio"] == 1.0:
        raise ConfigError("pt_ratio: a delta service is metered through two PTs; set their ratio")
    try:
        demand = demand_config(raw["demand"])
    except ValueError as error:
        raise ConfigError(str(error)) from None
    pulse_inputs = []
    for number in range(PULSE_INPUTS):
        given = raw["pulse_inputs"][number] if number < len(raw["pulse_inputs"]) else {}
        if not isinstance(given, Mapping):
            raise ConfigError(f"pulse_inputs[{number}]: expected a dictionary")
        try:
            pulse_inputs.append(pulse_input_config({"name": f"Pulse {number + 1}", **given}))
        except ValueError as error:
            raise ConfigError(f"pulse_inputs[{number}]: {error}") from None
    try:
        reporting = reporting_config(raw["reporting"])
    except ValueError as error:
        raise ConfigError(str(error)) from None
    unit = unit_config(raw["unit"])
    return MeterConfig(
        unit=unit,
        reporting=reporting,
        demand=demand,
        pulse_inputs=tuple(pulse_inputs),
        model=model,
        service=service,
        frequency_hz=raw["frequency"],
        nominal_voltage=nominal,
        pt_ratio=raw["pt_ratio"],
        points=tuple(points),
        calibration=calibration,
    )
