"""What the local meter shows right now: the front panel's and the web page's values.

:func:`live_view` is taken in the meter's own thread after every metered
second (:attr:`LocalMeter.live <s8000_engine.local.meter.LocalMeter.live>`), so a
reader in another thread (the web server, the front panel) gets one
consistent, immutable picture without touching the meter's state.  The
values are those of the display's normal mode (kWh D, kWh R, W, kvarh D,
kvarh R, var) and of its diagnostics mode (CT primary and W per phase,
voltage per phase), plus what the web page adds (current, VA, power factor,
demand).  :meth:`LiveView.as_dict` is its JSON form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from s8000_engine.config.meter import MeterConfig
from s8000_engine.const import FIRMWARE, FIRMWARE_BUILD
from s8000_engine.metering.meter import (
    KVARH_DELIVERED,
    KVARH_RECEIVED,
    KWH_DELIVERED,
    KWH_RECEIVED,
    Meter,
)
from s8000_engine.metering.pulses import PulseInput


class _Now(Protocol):
    def now(self) -> float: ...


class _Recording(Protocol):
    @property
    def length(self) -> int: ...


class LiveSource(Protocol):
    """What the live view reads of a local meter.

    :class:`~s8000_engine.local.meter.LocalMeter` is one; naming only what is
    read keeps this module below the meter's run loop, which imports it."""

    @property
    def config(self) -> MeterConfig: ...
    @property
    def meter(self) -> Meter: ...
    @property
    def pulses(self) -> Sequence[PulseInput]: ...
    @property
    def pulse_scales(self) -> Sequence[float]: ...
    @property
    def clock(self) -> _Now: ...
    @property
    def serial(self) -> str: ...
    @property
    def mac(self) -> str: ...
    @property
    def recorder(self) -> _Recording: ...


def _number(value: float) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class PhaseLive:
    """One CT (element) of a point."""

    phase: str
    """The phase its CT is on (A, B or C)."""
    channel: str
    """The CT input, e.g. ``P3-2``."""
    watts: float | None
    var: float | None
    amps: float | None


@dataclass(frozen=True, slots=True)
class PointLive:
    """One meter point."""

    number: int
    """1-based."""
    name: str
    ct_primary_a: float
    enabled: bool
    kwh_delivered: float
    kwh_received: float
    kvarh_delivered: float
    kvarh_received: float
    watts: float | None
    var: float | None
    va: float | None
    power_factor: float | None
    demand_w: float | None
    peak_w: float | None
    peak_time: float | None
    phases: tuple[PhaseLive, ...]


@dataclass(frozen=True, slots=True)
class PulseLive:
    """One pulse input."""

    number: int
    name: str
    unit: str
    count: int
    value: float
    """``count`` times the input's scale, in ``unit``."""


@dataclass(frozen=True, slots=True)
class LiveView:
    """The whole meter at the end of one metered second."""

    time: float
    """The meter's clock (UTC epoch seconds)."""
    model: str
    serial: str
    mac: str
    firmware: str
    firmware_build: int
    service: str
    pt_ratio: float
    frequency: float | None
    voltage_valid: bool
    voltages: dict[str, float | None]
    """RMS volts per phase terminal the service uses (V_AB and V_CB in a delta)."""
    recording_minutes: int
    points: tuple[PointLive, ...]
    pulses: tuple[PulseLive, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for JSON."""
        return asdict(self)

    def point(self, number: int) -> PointLive:
        """Point ``number`` (1-based)."""
        return self.points[number - 1]


def live_view(meter: LiveSource) -> LiveView:
    """The meter's values now; call it in the meter's thread."""

    config = meter.config
    engine = meter.meter
    readings = engine.readings
    whole = engine.energy.whole
    demand = engine.demand
    elements: list[list[PhaseLive]] = [[] for _ in config.points]
    for index, point_index in enumerate(engine.element_point.tolist()):
        channel = int(engine.element_ct[index])
        phase = engine.element_phase[index].value
        name = config.model.channels[channel].name
        if readings is None:
            elements[point_index].append(PhaseLive(phase, name, None, None, None))
        else:
            elements[point_index].append(
                PhaseLive(
                    phase,
                    name,
                    _number(readings.element_power[index]),
                    _number(readings.element_reactive[index]),
                    _number(readings.current[channel]),
                )
            )
    points = []
    for index, point in enumerate(config.points):
        registers = whole[index]
        peak_time = float(demand.peak_time[index])
        points.append(
            PointLive(
                number=index + 1,
                name=point.name,
                ct_primary_a=point.ct_primary_a,
                enabled=point.enabled,
                kwh_delivered=int(registers[KWH_DELIVERED]) / 1e6,
                kwh_received=int(registers[KWH_RECEIVED]) / 1e6,
                kvarh_delivered=int(registers[KVARH_DELIVERED]) / 1e6,
                kvarh_received=int(registers[KVARH_RECEIVED]) / 1e6,
                watts=None if readings is None else _number(readings.power[index]),
                var=None if readings is None else _number(readings.reactive[index]),
                va=None if readings is None else _number(readings.apparent[index]),
                power_factor=None if readings is None else _number(readings.power_factor[index]),
                demand_w=_number(demand.demand_w[index]),
                peak_w=_number(demand.peak_w[index]),
                peak_time=peak_time if math.isfinite(peak_time) and peak_time > 0 else None,
                phases=tuple(elements[index]),
            )
        )
    voltages: dict[str, float | None] = {}
    for phase in config.phases:
        voltages[phase.value] = None if readings is None else _number(readings.voltage[phase.row])
    pulses = tuple(
        PulseLive(
            number=number,
            name=pulse.config.name,
            unit=pulse.config.unit,
            count=pulse.count,
            value=pulse.count * meter.pulse_scales[number - 1],
        )
        for number, pulse in enumerate(meter.pulses, start=1)
    )
    return LiveView(
        time=meter.clock.now(),
        model=config.model.code,
        serial=meter.serial,
        mac=meter.mac,
        firmware=FIRMWARE,
        firmware_build=FIRMWARE_BUILD,
        service=config.service.value,
        pt_ratio=config.pt_ratio,
        frequency=None if readings is None else _number(readings.frequency),
        voltage_valid=bool(readings is not None and readings.voltage_valid),
        voltages=voltages,
        recording_minutes=meter.recorder.length // 60,
        points=tuple(points),
        pulses=pulses,
    )


__all__ = [
    "LiveView",
    "PhaseLive",
    "PointLive",
    "PulseLive",
    "live_view",
]
