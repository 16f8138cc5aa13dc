"""What the client reads from a meter: identity, readings, interval memory."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from s8000_engine.protocol.sunspec import Service, Status

# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the meter is: the Common model and the vendor model's fixed part."""

    manufacturer: str
    model: str
    """Model code, e.g. ``S8UTS-083``."""
    serial: str
    firmware: str
    """Common model ``Vr``."""
    firmware_build: int | None
    mac: str | None
    points: int
    """Meter points configured (one SunSpec meter model each)."""
    elements: int
    """CTs per point of the model."""
    service: Service | None
    options: str | None
    """Common model ``Opt``, e.g. ``3p4w 8x3``."""
    point_models: tuple[int, ...]
    """SunSpec meter model id (201–204) of each point, in point order."""
    device_address: int | None = None
    """Common model ``DA``."""


@dataclass(frozen=True, slots=True)
class PointData:
    """One meter point."""

    number: int
    """1-based."""
    model_id: int
    """Its SunSpec meter model: 201, 202, 203 or 204."""
    kwh_delivered: float | None
    """kWh delivered (import) register, from the vendor model's mWh."""
    kwh_received: float | None
    """kWh received (export) register."""
    kvarh_delivered: float | None
    kvarh_received: float | None
    w: float | None
    """Active power, W: positive importing."""
    var: float | None
    va: float | None
    pf: float | None
    """Power factor as a fraction."""
    a: float | None
    """Total current, A."""
    phase_w: dict[str, float]
    """W per phase, for the phases the point has."""
    phase_a: dict[str, float]
    """A per phase, for the phases the point has."""
    demand_w: float | None
    """Demand of the last interval, W."""
    peak_demand_w: float | None
    """Peak demand since the last reset, W."""
    peak_demand_time: float | None
    """When the peak was, UTC seconds since 1970."""
    ct_primary_a: int | None = None


@dataclass(frozen=True, slots=True)
class PulseData:
    """One pulse input."""

    number: int
    count: int | None
    errors: int | None
    scale: float | None
    value: float | None


@dataclass(frozen=True, slots=True)
class IntervalMemory:
    """The interval memory's pointers."""

    length_s: int | None
    count: int | None
    oldest: float | None
    """Start of the oldest interval stored, UTC seconds."""
    newest: float | None


@dataclass(frozen=True, slots=True)
class MeterData:
    """One poll of the whole map."""

    utc: float | None
    """The meter clock, UTC seconds since 1970."""
    status: Status | None
    voltage: dict[str, float | None]
    """Line-to-neutral voltage per phase A, B, C (first meter model); None if absent."""
    line_voltage: dict[str, float | None]
    """Line-to-line voltage AB, BC, CA (first meter model); None if absent."""
    frequency: float | None
    points: tuple[PointData, ...]
    pulses: tuple[PulseData, ...]
    intervals: IntervalMemory
    transactions: int
    """Modbus reads this poll took (not counting an identification before it)."""
    raw: dict[str, Any] = field(repr=False)
    """Every field of the map by name (``point3.W``), decoded and scaled."""

    def point(self, number: int) -> PointData:
        """A point by its 1-based number."""
        return self.points[number - 1]


# -- what to read ------------------------------------------------------------------------

#: A value of a point :meth:`S8000Client.read` can be asked for: the name of
#: the :class:`PointData` attribute that holds it.
type PointValue = Literal[
    "kwh_delivered",
    "kwh_received",
    "kvarh_delivered",
    "kvarh_received",
    "w",
    "var",
    "va",
    "pf",
    "a",
    "phase_w",
    "phase_a",
    "demand_w",
    "peak_demand_w",
    "peak_demand_time",
    "ct_primary_a",
]
#: A value of the meter as a whole: the name of the :class:`MeterData`
#: attribute that holds it.
type MeterValue = Literal[
    "utc", "status", "voltage", "line_voltage", "frequency", "pulses", "intervals"
]


@dataclass(frozen=True, slots=True)
class Selection:
    """What one :meth:`~s8000_engine.client.S8000Client.read` reads: some values
    of the meter and of some points, and always what checks that the meter is
    still the one identified (see the client's *Reading*).  What is not
    selected is None in the result (an empty dict for ``phase_w``,
    ``phase_a``, ``voltage``, ``line_voltage``).

    Hashable, so a client keeps the plan of the selection it was last asked
    for; make one with :meth:`of`."""

    meter: frozenset[MeterValue] = frozenset()
    points: tuple[tuple[int, frozenset[PointValue]], ...] = ()
    """Per 1-based point number, in order, its values."""

    @classmethod
    def of(
        cls,
        meter: Iterable[MeterValue] = (),
        points: Mapping[int, Iterable[PointValue]] | None = None,
    ) -> Selection:
        """The selection of ``meter``'s values and, per point number, those of ``points``."""
        chosen = sorted((n, frozenset(values)) for n, values in (points or {}).items())
        return cls(frozenset(meter), tuple((n, values) for n, values in chosen if values))
