"""The register image the local meter serves: its values at one instant."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from s8000_engine.config.meter import MeterConfig, PointConfig, ServiceType
from s8000_engine.protocol.intervals import row_words, rows_per_file
from s8000_engine.protocol.profile import (
    METER_ROLES,
    POINT_ROLES,
    Profile,
    builtin_profile,
    convert,
    get_profile,
)
from s8000_engine.protocol.regmap import (
    Field,
    RegisterMap,
    meter_model_id,
    registers_map,
    sunspec_map,
)
from s8000_engine.protocol.sunspec import (
    END_MODEL,
    MANUFACTURER,
    PHASES,
    SUNSPEC_MARKER,
    DataType,
    DemandKind,
    energy_scale_factor,
    scale_factor,
)
from s8000_engine.protocol.types import Point, encode

# -- the map of a configured meter ---------------------------------------------------------


def build_map(
    config: MeterConfig, base: int | None = None, profile: str | Profile = "sunspec"
) -> RegisterMap:
    """The map of a configured meter in a profile: a built-in one by name
    (``sunspec``), a profile file by path, or a loaded :class:`Profile`.
    Raises :class:`~s8000_engine.exceptions.S8000ProfileError` for a bad profile."""
    chosen = get_profile(profile) if isinstance(profile, str) else profile
    delta = config.service is ServiceType.DELTA_3W
    meters = [meter_model_id(delta=delta, elements=len(point.phases)) for point in config.points]
    if chosen.sunspec is not None:
        models = chosen.sunspec
        return sunspec_map([models.common.model_id, *meters, models.vendor_id], base, chosen)
    return registers_map(chosen, len(config.points), meters)


# -- the register image -------------------------------------------------------------------


@dataclass(slots=True)
class MeterSnapshot:
    """Everything the register image shows, taken at one instant."""

    config: MeterConfig
    serial: str
    firmware: str = "1.00"
    firmware_build: int = 1
    mac: str | None = None
    device_address: int = 1
    utc: float = 0.0
    status: int = 0
    readings: Any = None
    """The last :class:`~s8000_engine.metering.Readings`, or None before the first."""
    registers: Sequence[Sequence[int]] = ()
    """Per point the eight registers in mWh."""
    demand_w: Sequence[float] = ()
    peak_w: Sequence[float] = ()
    peak_time: Sequence[float] = ()
    pulse_counts: Sequence[int] = (0, 0)
    pulse_errors: Sequence[int] = (0, 0)
    pulse_scales: Sequence[float] = (1.0, 1.0)
    recording_minutes: int = 15
    interval_count: int = 0
    interval_oldest: int | None = None
    interval_newest: int | None = None


def point_scale_factors(config: MeterConfig, point: PointConfig) -> dict[str, int]:
    """Static scale factors of a point's meter model, from its CTs and voltages."""
    amps = 1.2 * point.ct_primary_a
    volts_ln = config.nominal_voltage * config.pt_ratio * 1.3
    volts = volts_ln * (math.sqrt(3.0) if config.service is not ServiceType.DELTA_3W else 1.0)
    watts = (
        volts_ln
        * amps
        * len(point.phases)
        * (math.sqrt(3.0) if config.service is ServiceType.DELTA_3W else 1.0)
    )
    return {
        "A_SF": scale_factor(amps * len(point.phases), -3),
        "V_SF": scale_factor(volts, -2),
        "Hz_SF": -2,
        "W_SF": scale_factor(watts, -1),
        "VA_SF": scale_factor(watts, -1),
        "VAR_SF": scale_factor(watts, -1),
        "PF_SF": -2,
        "TotWh_SF": energy_scale_factor(watts),
        "TotVAh_SF": energy_scale_factor(watts),
        "TotVArh_SF": energy_scale_factor(watts),
    }


def _scaled(value: float | None, sf: int) -> int | None:
    if value is None or math.isnan(value):
        return None
    return round(value / 10.0**sf)


def _meter_values(snapshot: MeterSnapshot, index: int) -> dict[str, Any]:
    """The points of one meter model (unscaled engineering values)."""
    config = snapshot.config
    point = config.points[index]
    sf = point_scale_factors(config, point)
    values: dict[str, Any] = dict(sf)
    r = snapshot.readings
    phases = [p.value for p in point.phases]
    delta = config.service is ServiceType.DELTA_3W
    if r is not None:
        # Elements of this point, in order, and the channel of each.
        first = sum(len(p.phases) for p in config.points[:index])
        amps: dict[str, float] = {}
        watts: dict[str, float] = {}
        vars_: dict[str, float] = {}
        vas: dict[str, float] = {}
        for k, phase in enumerate(phases):
            element = first + k
            channel = config.model.channel(index + 1, k + 1).index
            amps[phase] = float(r.current[channel])
            watts[phase] = float(r.element_power[element])
            vars_[phase] = float(r.element_reactive[element])
            terminal = "ABC".index(phase)
            vas[phase] = (
                float(r.voltage[terminal]) * amps[phase] if not (delta and phase == "B") else 0.0
            )
        values["A"] = sum(amps.values())
        for p in PHASES:
            values[f"Aph{p}"] = amps.get(p)
            values[f"Wph{p}"] = watts.get(p)
            values[f"VARph{p}"] = vars_.get(p)
            values[f"VAph{p}"] = vas.get(p)
            pf = watts[p] / vas[p] * 100.0 if p in vas and vas[p] > 0 else None
            values[f"PFph{p}"] = pf
        service_phases = [p.value for p in config.phases]
        if not delta:
            for p in service_phases:
                values[f"PhVph{p}"] = float(r.voltage["ABC".index(p)])
            values["PhV"] = sum(values[f"PhVph{p}"] for p in service_phases) / len(service_phases)
        v1 = r.voltage_phasor
        pairs = {"AB": (0, 1), "BC": (1, 2), "CA": (2, 0)}
        if delta:
            line = {"AB": abs(v1[0]), "BC": abs(v1[2]), "CA": abs(v1[0] - v1[2])}
        else:
            line = {
                name: abs(v1[a] - v1[b])
                for name, (a, b) in pairs.items()
                if "ABC"[a] in service_phases and "ABC"[b] in service_phases
            }
        for name, peak in line.items():
            values[f"PhVph{name}"] = float(peak) / math.sqrt(2.0)
        if line:
            values["PPV"] = sum(values[f"PhVph{n}"] for n in line) / len(line)
        values["Hz"] = float(r.frequency) if r.voltage_valid else None
        values["W"] = float(r.power[index])
        values["VAR"] = float(r.reactive[index])
        values["VA"] = float(r.apparent[index])
        pf = float(r.power_factor[index])
        values["PF"] = None if math.isnan(pf) else pf * 100.0
    if index < len(snapshot.registers):
        regs = snapshot.registers[index]
        values["TotWhImp"] = regs[0] / 1000.0
        values["TotWhExp"] = regs[1] / 1000.0
        for q in range(4):
            key = ("TotVArhImpQ1", "TotVArhImpQ2", "TotVArhExpQ3", "TotVArhExpQ4")[q]
            values[key] = regs[4 + q] / 1000.0
    values["Evt"] = 0 if r is None or r.voltage_valid else 1 << 2
    return values


def render(regmap: RegisterMap, snapshot: MeterSnapshot) -> list[int]:
    """The register image from ``regmap.base`` to ``regmap.end`` (exclusive)."""
    if regmap.layout != "sunspec":
        return _render_registers(regmap, snapshot)
    image = [0] * (regmap.end - regmap.base)

    def put(address: int, words: list[int]) -> None:
        start = address - regmap.base
        image[start : start + len(words)] = words

    put(regmap.base, list(SUNSPEC_MARKER))
    for placed in regmap.chain:
        model = placed.model
        values: dict[str, Any]
        if placed.label == "common":
            values = _common_values(snapshot)
        elif placed.point is not None:
            values = _meter_values(snapshot, placed.point)
        else:
            values = _vendor_values(snapshot)
        for p in model.points:
            if p.name == "ID":
                words = [model.model_id]
            elif p.name == "L":
                words = [model.length]
            else:
                value = values.get(p.name)
                if isinstance(p.scale, str) and value is not None:
                    value = _scaled(value, int(values[p.scale]))
                elif isinstance(p.scale, int) and value is not None:
                    value = _scaled(value, p.scale)
                elif p.type in (DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32,
                                DataType.UINT64, DataType.ACC32) and value is not None:  # fmt: skip
                    value = round(value)
                words = encode(p.type, value, p.size, regmap.encoding)
            put(placed.address + p.offset, words)
    put(regmap.end - 2, list(END_MODEL))
    return image


def _common_values(snapshot: MeterSnapshot) -> dict[str, Any]:
    config = snapshot.config
    return {
        "Mn": MANUFACTURER,
        "Md": config.model.code,
        "Opt": f"{config.service.value} {len(config.points)}x{config.model.elements}",
        "Vr": snapshot.firmware,
        "SN": snapshot.serial,
        "DA": snapshot.device_address,
        "Pad": 0,
    }


def role_values(snapshot: MeterSnapshot) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What the meter shows, by role (:mod:`s8000_engine.protocol.profile`),
    in each role's unit: the meter's, and each point's.

    The values are the built-in SunSpec map's, through the roles that map
    declares, so a map of any profile shows what this one shows."""
    models = builtin_profile().sunspec
    assert models is not None
    meter: dict[str, Any] = {}
    points: list[dict[str, Any]] = [{} for _ in snapshot.config.points]

    def take(into: dict[str, Any], p: Point, value: Any, units: dict[str, str | None]) -> None:
        unit = units[p.role] if p.role is not None else None
        if p.role is None or value is None:
            return
        into[p.role] = (
            value if unit is None or isinstance(value, str) else convert(value, p.unit, unit)
        )

    common = _common_values(snapshot)
    for p in models.common.points:
        take(meter, p, common.get(p.name), METER_ROLES)
    vendor = _vendor_values(snapshot)
    for p in models.vendor:
        take(meter, p, vendor.get(p.name), METER_ROLES)
    for index, into in enumerate(points):
        values = _meter_values(snapshot, index)
        for p in models.meter:
            take(into, p, values.get(p.name), POINT_ROLES)
        n = str(index + 1)
        for p in models.per_point:
            take(into, p, vendor.get(p.name.replace("{n}", n)), POINT_ROLES)
    return meter, points


def _render_registers(regmap: RegisterMap, snapshot: MeterSnapshot) -> list[int]:
    """The image of a map of fixed addresses: each field's role's value, in
    the field's unit and scale (a fixed one, or its block's scale field,
    which serves the profile's ``default``); what the meter lacks reads the
    profile's sentinel, and registers between blocks read 0."""
    image = [0] * (regmap.end - regmap.base)
    meter, points = role_values(snapshot)
    fields = regmap.fields
    scales = {
        f.name: int(f.default)
        for f in fields
        if f.type is DataType.SUNSSF and f.default is not None
    }
    for f in fields:
        value: Any
        if f.type is DataType.SUNSSF:
            value = scales.get(f.name)
        elif f.role is not None:
            source = meter if f.point is None else points[f.point - 1]
            value = source.get(f.role)
            if value is None and f.point is None and f.role in POINT_ROLES and points:
                value = points[0].get(f.role)  # the meter's voltages are the first point's
            unit = (METER_ROLES if f.point is None else POINT_ROLES)[f.role]
            if value is not None and unit is not None and not isinstance(value, str):
                value = convert(value, unit, f.unit)
        else:
            value = f.default
        value = _field_value(f, value, scales)
        try:
            words = f.encode(value)
        except OverflowError:
            words = f.encode(None)  # beyond what the profile's field can hold
        start = f.address - regmap.base
        image[start : start + f.size] = words
    return image


def _field_value(f: Field, value: Any, scales: dict[str, int]) -> Any:
    """``value`` as the field stores it: scaled and rounded to its type, or
    None (the sentinel) when it does not fit."""
    if value is None or isinstance(value, str) or f.type in (DataType.FLOAT32, DataType.SUNSSF):
        return value
    sf = scales.get(f.scale) if isinstance(f.scale, str) else f.scale
    if isinstance(f.scale, str) and sf is None:
        return None
    return _scaled(float(value), sf or 0)


def _vendor_values(snapshot: MeterSnapshot) -> dict[str, Any]:
    config = snapshot.config
    values: dict[str, Any] = {
        "FwBuild": snapshot.firmware_build,
        "MAC": snapshot.mac,
        "Points": len(config.points),
        "Elements": config.model.elements,
        "Service": list(ServiceType).index(config.service) + 1,
        "PTRatio": config.pt_ratio,
        "NomV": config.nominal_voltage,
        "NomHz": config.frequency_hz,
        "UTC": int(snapshot.utc),
        "Status": snapshot.status,
        "RecInt": snapshot.recording_minutes,
        "DmdType": DemandKind.SLIDING if config.demand.subintervals > 1 else DemandKind.BLOCK,
        "DmdInt": config.demand.interval_minutes,
        "DmdSub": config.demand.subinterval_minutes,
        "Cmd": 0,
        "IntLen": snapshot.recording_minutes * 60,
        "IntCount": snapshot.interval_count,
        "IntOldest": snapshot.interval_oldest,
        "IntNewest": snapshot.interval_newest,
        "IntRowWords": row_words(len(config.points)),
        "IntRowsPerFile": rows_per_file(len(config.points)),
    }
    for n in (1, 2):
        count = snapshot.pulse_counts[n - 1]
        scale = snapshot.pulse_scales[n - 1]
        values[f"P{n}Count"] = count
        values[f"P{n}Errors"] = snapshot.pulse_errors[n - 1]
        values[f"P{n}Scale"] = scale
        values[f"P{n}Value"] = count * scale
    for index, point in enumerate(config.points):
        n = index + 1
        values[f"Pt{n}CT"] = point.ct_primary_a
        if index < len(snapshot.registers):
            regs = snapshot.registers[index]
            values[f"Pt{n}WhImp"] = regs[0] / 1000.0
            values[f"Pt{n}WhExp"] = regs[1] / 1000.0
            values[f"Pt{n}VArhImp"] = regs[2] / 1000.0
            values[f"Pt{n}VArhExp"] = regs[3] / 1000.0
        values[f"Pt{n}Dmd"] = snapshot.demand_w[index] if index < len(snapshot.demand_w) else None
        values[f"Pt{n}PkDmd"] = snapshot.peak_w[index] if index < len(snapshot.peak_w) else None
        peak_time = snapshot.peak_time[index] if index < len(snapshot.peak_time) else None
        values[f"Pt{n}PkDmdT"] = (
            None if peak_time is None or math.isnan(peak_time) else int(peak_time)
        )
    return values
