"""Interval data as CSV and JSON: for export, queries and reporting uploads.

CSV: one row per meter point per interval, in this column order
(documented in ``docs/storage.md``):

==========================  ===========================================================
column                      meaning
==========================  ===========================================================
interval_start              UTC, ISO 8601 (``2026-11-25T10:15:00Z``)
interval_end                UTC, ISO 8601
point                       meter point number, 1-based
point_name                  the point's name (e.g. ``Kitchen``)
kwh_delivered               register at the interval's end, kWh (3 decimals: 1 Wh)
kwh_received                register at the interval's end, kWh
kvarh_delivered             register at the interval's end, kvarh
kvarh_received              register at the interval's end, kvarh
delta_kwh_delivered         increase during the interval, kWh
delta_kwh_received          increase during the interval, kWh
delta_kvarh_delivered       increase during the interval, kvarh
delta_kvarh_received        increase during the interval, kvarh
peak_demand_kw              highest demand value that ended in the interval (empty if none)
peak_demand_time            when it ended, UTC ISO 8601
power_a_kw … power_c_kw     average active power on phases A, B, C (empty without a CT)
current_a … current_c       average RMS current on phases A, B, C, A
voltage_a … voltage_c       average RMS voltage per phase terminal, V
frequency_hz                average line frequency
pulse1_count, pulse2_count  pulse-input counts at the interval's end
pulse1_delta, pulse2_delta  pulses during the interval
covered_s                   seconds of the interval that were metered
flags                       ``|``-separated: POWER_OFF, CLOCK_SET, CONFIG_CHANGED
==========================  ===========================================================

Registers are stored in mWh; the CSV shows kWh with three decimals (1 Wh),
exact to the stored value's Wh.  JSON carries the same fields per interval
with the points nested, and the registers in Wh as integers of mWh / 1000.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from s8000_engine.const import ENERGY_REGISTERS
from s8000_engine.storage.store import Flag, IntervalRecord, PointRecord

CSV_COLUMNS: Final = (
    "interval_start",
    "interval_end",
    "point",
    "point_name",
    *ENERGY_REGISTERS,
    *(f"delta_{name}" for name in ENERGY_REGISTERS),
    "peak_demand_kw",
    "peak_demand_time",
    "power_a_kw",
    "power_b_kw",
    "power_c_kw",
    "current_a",
    "current_b",
    "current_c",
    "voltage_a",
    "voltage_b",
    "voltage_c",
    "frequency_hz",
    "pulse1_count",
    "pulse2_count",
    "pulse1_delta",
    "pulse2_delta",
    "covered_s",
    "flags",
)


def iso(t: float | None) -> str:
    """UTC ISO 8601 with a Z, or an empty string."""
    if t is None:
        return ""
    moment = datetime.fromtimestamp(t, UTC)
    text = moment.isoformat(timespec="milliseconds" if t % 1 else "seconds")
    return text.replace("+00:00", "Z")


def parse_time(text: str) -> float:
    """Parse an ISO 8601 time (UTC unless it says otherwise) to epoch seconds."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def flag_names(flags: Flag) -> str:
    """``POWER_OFF|CLOCK_SET`` style."""
    return "|".join(f.name for f in Flag if f in flags and f.name)


def _kwh(mwh: int) -> str:
    return f"{mwh / 1_000_000:.3f}"


def _num(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    if value is None:
        return ""
    text = f"{value * scale:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.000"


def to_rows(records: Sequence[IntervalRecord], names: Sequence[str] = ()) -> list[list[str]]:
    """CSV rows (without the header) for these intervals."""
    rows: list[list[str]] = []
    for record in records:
        for p in record.points:
            name = names[p.point] if p.point < len(names) else f"Point {p.point + 1}"
            rows.append(
                [
                    iso(record.start),
                    iso(record.end),
                    str(p.point + 1),
                    name,
                    *(_kwh(v) for v in p.registers),
                    *(_kwh(v) for v in p.deltas),
                    _num(p.peak_demand_w, 0.001),
                    iso(p.peak_demand_time),
                    *(_num(v, 0.001) for v in p.power_w),
                    *(_num(v) for v in p.current_a),
                    *(_num(v, digits=2) for v in record.voltage),
                    _num(record.frequency, digits=4),
                    *(str(c) for c in record.pulses),
                    *(str(c) for c in record.pulse_deltas),
                    f"{record.covered:.1f}",
                    flag_names(record.flags),
                ]
            )
    return rows


def to_csv(records: Sequence[IntervalRecord], names: Sequence[str] = ()) -> str:
    """The intervals as CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(to_rows(records, names))
    return buffer.getvalue()


def _point_json(p: PointRecord, names: Sequence[str]) -> dict[str, Any]:
    return {
        "point": p.point + 1,
        "name": names[p.point] if p.point < len(names) else f"Point {p.point + 1}",
        "registers_wh": {n: v / 1000 for n, v in zip(ENERGY_REGISTERS, p.registers, strict=True)},
        "deltas_wh": {n: v / 1000 for n, v in zip(ENERGY_REGISTERS, p.deltas, strict=True)},
        "peak_demand_w": p.peak_demand_w,
        "peak_demand_time": iso(p.peak_demand_time) or None,
        "power_w": p.power_w,
        "current_a": p.current_a,
    }


def to_json_data(
    records: Sequence[IntervalRecord], names: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The intervals as JSON-ready dictionaries."""
    return [
        {
            "start": iso(record.start),
            "end": iso(record.end),
            "flags": flag_names(record.flags).split("|") if record.flags else [],
            "covered_s": record.covered,
            "voltage": record.voltage,
            "frequency_hz": record.frequency,
            "pulses": record.pulses,
            "pulse_deltas": record.pulse_deltas,
            "reported_at": iso(record.reported_at) or None,
            "points": [_point_json(p, names) for p in record.points],
        }
        for record in records
    ]


def to_json(records: Sequence[IntervalRecord], names: Sequence[str] = ()) -> str:
    """The intervals as JSON text."""
    return json.dumps(to_json_data(records, names), indent=1)
