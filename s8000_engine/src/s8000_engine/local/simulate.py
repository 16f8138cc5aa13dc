"""The simulated panel: the waveforms an S8000 would see on a real building.

:class:`PanelSimulator` makes the samples ``s8000-engine run --simulate``
meters: the three voltage terminals and every CT channel of the configured
model, for any span of UTC time.  Everything is a pure function of the
configuration, the seed and the time, so the panel is the same whatever was
asked before: a local meter that crashes and restarts goes on metering the
same panel, and ``samples(t, 1)`` then ``samples(t + 1, 1)`` are exactly
``samples(t, 2)``.

The line
    The frequency drifts around nominal as two slow sinusoids, ±0.012 Hz over
    7 minutes and ±0.008 Hz over 23 minutes (±0.02 Hz at most), with their
    phases from the seed.  The phase of the fundamental is their exact
    integral at every sample, computed from the absolute sample index since
    the epoch with integer arithmetic, so it is continuous across calls and
    exact however far from the epoch.  The voltage RMS follows the day
    (±2 % at most): about 0.8 % high in the small hours, sagging about 1.5 %
    at the evening peak (18:30), with a slow wander of ±0.2 % and a fixed
    imbalance of ±0.3 % between phases.  Every terminal carries the
    harmonics of :data:`~s8000_engine.synth.VOLTAGE_HARMONICS` (1.5 % 3rd,
    3 % 5th, 1.5 % 7th).

    The terminals see the configured service at ``config.nominal_voltage``
    (secondary of any PTs): ``1p2w`` A only; ``1p3w`` A and B at 180°;
    ``3p4w`` A, B at −120° and C at +120°; ``3p3w`` A = V_AB at +30° and
    C = V_CB at +90° of the (virtual) V_AN, B unused.

The loads
    Each configured point draws one kind of load, :class:`LoadKind`.  Points
    1 to 8 have, in this order, lighting, HVAC, an EV charger, solar PV,
    plug loads, a refrigerator, laundry and a base load (the circuits of
    ``local.meter.DEMO_CONFIG``); points 9 to 24 get a kind drawn from the seed
    and the point's index, weighted towards the common circuits (lighting
    and plug loads 3, HVAC and base load 2, the others 1).  The size of the
    load, its timing and its randomness come from the seed and the point
    index too; :func:`assign_load` and :meth:`PanelSimulator.describe` say
    which load a point has.  Sizes are fractions of the point's CT rating,
    so every load fits its CT (at most about 112 % of the rating, during
    a compressor's first second on the heavier CT of a point).

    ``lighting``
        LED lighting, up to 25–45 % of the rating: in the morning from
        5:45–6:30 until a little after sunrise (at least half an hour), and
        in the evening from around sunset to 22:15–23:45.  A dimmer changes
        the level every 10 minutes (40–100 %, lowered to 60 % of that after
        21:30).  LED drivers: PF 0.95 leading at full brightness (down to
        about 0.87 dimmed), with the current harmonics of an electronic load
        (20 % 3rd, 10 % 5th, 5 % 7th).
    ``hvac``
        An air-conditioning compressor of 45–70 % of the rating at PF 0.85
        lagging, cycling on and off in cycles of 15–25 minutes.  Its duty
        (±15 % from cycle to cycle) follows the day and the season: about
        10 % at night, most in the afternoon (up to about 80 % at 15:30 on
        a hot summer day, a quarter of that in winter), a little more on
        winter mornings, on days of random heat.  A cycle runs at least 3
        minutes or not at all.  The first second of each start draws 1.6
        times the running current (at most 110 %) at PF 0.6; the blower
        (5 %, PF 0.75) runs with the compressor and two minutes after it.
    ``ev_charger``
        On 85 % of the nights a charging session starts between 18:30 and
        23:00 and lasts 1.5 to 6 hours, at a constant current of 38–40 % of
        the rating (PF 0.99), tapering to 10 % over its last 15 minutes.
    ``solar``
        A PV inverter that feeds power back: the current is about 180° from
        the voltage, so the point's active power is negative and the
        meter's *received* registers move.  Output follows a daytime bell
        (a sine of the time between sunrise and sunset, to the power 1.3)
        peaking at 60–90 % of the rating in summer, 80 % of that in
        winter, under the sky of the day (clear, partly cloudy with clouds
        passing every few minutes, or overcast), zero at night.  The
        inverter works at PF 0.98 absorbing reactive power (quadrant II).
        Day length follows the season at a latitude of about 40°N (9.2 to
        14.8 hours).
    ``plug_loads``
        A kitchen: 2–4 % of standby and small loads (PF 0.9, ±10 % from
        second to second) and, in five-minute slots whose chance follows
        meal times, one appliance for 30 seconds to 4.5 minutes: a kettle or
        toaster (20–35 %, PF 1), a microwave (15–25 %, PF 0.9) or a mixer
        (4–8 %, PF 0.7).
    ``refrigerator``
        A compressor of 8–14 % at PF 0.8 cycling every 40–60 minutes with a
        duty of 35–50 % (highest in the evening), 2.5 times the current at
        PF 0.55 in the first second of a start; a 25-minute defrost heater
        (12 %, PF 1) every 8 hours; 0.3 % of controls and fans always on.
    ``laundry``
        On 45 % of weekdays and 80 % of weekend days, a washer (50 minutes
        of agitation every other 15 s at 5–8 %, PF 0.65, then an 8-minute
        spin at twice that) and five minutes later a dryer (an hour: a
        40–55 % heater cycling on its thermostat, PF 1, plus the drum
        motor), starting between 9:00 and 19:30.
    ``base_load``
        An office's always-on circuit: 3–6 % at night and weekends, 12–22 %
        in business hours on weekdays (ramps 7:30–8:30 and 17:30–18:30),
        wandering ±15 % over quarter hours and ±4 % from second to second,
        PF 0.93.

    Every load is a pure function of (seed, point, UTC second): its random
    events come from a hash of the seed, the point, what is drawn and the
    hour, slot or day it is drawn for; nothing is kept between calls.  A
    load is constant within each second of UTC time.  Local time, for the
    daily shapes, is UTC plus ``utc_offset_hours`` (default 0: the panel
    lives at UTC, its solar noon is about 12:00 UTC).

How a point's load is connected
    A point with one CT draws its load line to neutral on that phase (in a
    delta, line to line: A–B with the CT on A, C–B with it on C; a lone CT
    on B sees an A–B load the meter does not meter).  A point with CTs on
    all phases of a three-phase service (A and C in a delta, with or
    without B) draws a balanced three-phase load, and one with two CTs of a
    wye or split-phase service a line-to-line load (120/240 V or 208 V).
    Each CT of a multi-element point carries its own imbalance of ±2 %.
    The current the load draws is the fraction of the CT rating the load
    gives, so the CT secondary is ``0.1 A × fraction``.

The meter's inputs
    Voltages are in volts at the meter's terminals (secondary of the PTs),
    currents in amperes of CT secondary, in the model's channel order;
    channels no configured CT uses carry no signal.  Each channel has the
    gain and phase error its calibration in the configuration describes
    (the channel reads ``gain`` × the true value, leading by ``phase_deg``
    at the fundamental), so a meter with that calibration reads the true
    values.  With ``noise`` (the default) the samples go through the
    16-bit ADCs of :class:`~s8000_engine.synth.Adc` (0.5 LSB RMS of
    Gaussian dither, full scales of :mod:`~s8000_engine.synth`); without,
    they are exact.  The noise is deterministic per one-second block of UTC
    time: its generator is seeded from the seed, the sample rate and the
    second.  A request that covers part of a second computes the whole
    second (the last one is kept), so callers should ask for whole seconds
    aligned to the second, as the local meter does; any other span gives
    the same samples, only slower.

:meth:`PanelSimulator.load_at` gives the fundamental active and reactive
power a point draws at any time (primary units, + delivered), which is what
its meter reads apart from the small harmonic active power (well under 1 %).
"""

from __future__ import annotations

import cmath
import functools
import math
import numbers
import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt

from s8000_engine.config.meter import (
    SOURCE_ANGLES,
    TERMINAL_ANGLES,
    MeterConfig,
    Phase,
    ServiceType,
)
from s8000_engine.metering.arrays import FloatArray
from s8000_engine.metering.meter import MIN_SAMPLE_RATE
from s8000_engine.metering.synth import (
    CURRENT_FULL_SCALE,
    CURRENT_HARMONICS,
    VOLTAGE_FULL_SCALE,
    VOLTAGE_HARMONICS,
    Adc,
    Harmonic,
)
from s8000_engine.models import CT_SECONDARY_A

ComplexArray = npt.NDArray[np.complex128]

DAY_S: Final = 86400
#: Slow frequency drift: (amplitude Hz, period s) of each sinusoid.
FREQUENCY_DRIFT: Final[tuple[tuple[float, int], ...]] = ((0.012, 420), (0.008, 1380))
#: Highest sample rate accepted (well above anything a meter needs).
MAX_SAMPLE_RATE: Final = 1_000_000

#: Current harmonics of motors (compressors, washers): small.
MOTOR_HARMONICS: Final = (
    Harmonic(3, 0.03, 20.0),
    Harmonic(5, 0.02, -40.0),
    Harmonic(7, 0.01, 10.0),
)
#: An EV charger's power-factor-corrected rectifier.
CHARGER_HARMONICS: Final = (
    Harmonic(3, 0.04, 15.0),
    Harmonic(5, 0.03, -30.0),
    Harmonic(7, 0.015, 20.0),
)
#: A grid-tied PV inverter (IEEE 1547: current THD under 5 %).
INVERTER_HARMONICS: Final = (
    Harmonic(3, 0.02, 0.0),
    Harmonic(5, 0.015, 30.0),
    Harmonic(7, 0.01, -20.0),
)
#: A mix of appliances and switch-mode supplies.
PLUG_HARMONICS: Final = (
    Harmonic(3, 0.14, 30.0),
    Harmonic(5, 0.07, -60.0),
    Harmonic(7, 0.035, 15.0),
)

_MASK: Final = (1 << 64) - 1
#: Multiply-adds of one matrix product that BLAS libraries do single-threaded.
_SMALL_GEMM: Final = 200_000
_TAU: Final = 2.0 * math.pi


def _is_number(value: object) -> bool:
    """A finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(float(value))


def _is_integer(value: object) -> bool:
    """An integer (not a bool)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, numbers.Integral)


# -- pure pseudo-randomness ---------------------------------------------------------------


def _mix(x: int) -> int:
    """SplitMix64's finaliser: a 64-bit integer hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


@functools.cache
def _tag(name: str) -> int:
    return zlib.crc32(name.encode()) << 20


class _Random:
    """Uniform numbers in [0, 1) as a pure function of (seed, stream, tag, keys)."""

    def __init__(self, seed: int, stream: int) -> None:
        self._base = _mix(_mix(seed & _MASK) ^ (stream & _MASK))

    def u(self, tag: str, *keys: int) -> float:
        """The number drawn for ``tag`` at ``keys`` (an hour, a slot, a day...)."""
        h = _mix(self._base ^ _tag(tag))
        for key in keys:
            h = _mix(h ^ (key & _MASK))
        return (h >> 11) * 2.0**-53

    def smooth(self, tag: str, t: int, slot: int) -> float:
        """A number in [0, 1) drawn every ``slot`` seconds, cosine-interpolated at ``t``."""
        j, r = divmod(t, slot)
        a = self.u(tag, j)
        b = self.u(tag, j + 1)
        return a + (b - a) * (0.5 - 0.5 * math.cos(math.pi * r / slot))


# -- time of day ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LocalTime:
    """One UTC second seen in the panel's local time."""

    day: int
    """Local days since 1970-01-01."""
    second: int
    """Second of the local day."""
    midnight: int
    """UTC epoch second of this local day's start."""
    season: float
    """+1 at the June solstice, −1 at the December one."""

    @property
    def hour(self) -> float:
        return self.second / 3600.0

    @property
    def weekday(self) -> int:
        """Monday 0 to Sunday 6 (1970-01-01 was a Thursday)."""
        return (self.day + 3) % 7

    @property
    def daylight(self) -> float:
        """Hours from sunrise to sunset (about 40°N)."""
        return 12.0 + 2.8 * self.season

    @property
    def sunrise(self) -> float:
        return 12.0 - self.daylight / 2.0

    @property
    def sunset(self) -> float:
        return 12.0 + self.daylight / 2.0


def _local(utc_second: int, offset_s: int) -> _LocalTime:
    day, second = divmod(utc_second + offset_s, DAY_S)
    # Days since 2000-01-01 (epoch day 10957); the March equinox is about day 79.5.
    year = ((day - 10957 + 0.5) % 365.2425) / 365.2425
    season = math.sin(_TAU * (year - 79.5 / 365.2425))
    return _LocalTime(day, second, day * DAY_S - offset_s, season)


def _bell(hour: float, center: float, width: float) -> float:
    """A Gaussian bump around ``center`` o'clock, wrapping around midnight."""
    d = (hour - center + 12.0) % 24.0 - 12.0
    return math.exp(-((d / width) ** 2))


def _ramp(x: float, low: float, high: float) -> float:
    return min(1.0, max(0.0, (x - low) / (high - low)))


def _lag(x: float, pf: float) -> complex:
    """A current of ``x`` lagging its voltage at power factor ``pf``."""
    return complex(x * pf, -x * math.sqrt(max(0.0, 1.0 - pf * pf)))


def _lead(x: float, pf: float) -> complex:
    """A current of ``x`` leading its voltage at power factor ``pf``."""
    return _lag(x, pf).conjugate()


# -- loads -----------------------------------------------------------------------------------


class LoadKind(StrEnum):
    """The kind of load a simulated point draws."""

    LIGHTING = "lighting"
    HVAC = "hvac"
    EV_CHARGER = "ev_charger"
    SOLAR = "solar"
    PLUG_LOADS = "plug_loads"
    REFRIGERATOR = "refrigerator"
    LAUNDRY = "laundry"
    BASE_LOAD = "base_load"


#: The loads of points 1 to 8, in order.
FIRST_LOADS: Final = (
    LoadKind.LIGHTING,
    LoadKind.HVAC,
    LoadKind.EV_CHARGER,
    LoadKind.SOLAR,
    LoadKind.PLUG_LOADS,
    LoadKind.REFRIGERATOR,
    LoadKind.LAUNDRY,
    LoadKind.BASE_LOAD,
)
#: Points from the 9th on draw from this list (the repeats are the weights).
MORE_LOADS: Final = (
    *(LoadKind.LIGHTING,) * 3,
    *(LoadKind.PLUG_LOADS,) * 3,
    *(LoadKind.HVAC,) * 2,
    *(LoadKind.BASE_LOAD,) * 2,
    LoadKind.REFRIGERATOR,
    LoadKind.LAUNDRY,
    LoadKind.EV_CHARGER,
    LoadKind.SOLAR,
)


def assign_load(seed: int, point_index: int) -> LoadKind:
    """The kind of load the simulated panel puts on a point (0-based index)."""
    if point_index < 0:
        raise ValueError(f"point index must be at least 0, not {point_index}")
    if point_index < len(FIRST_LOADS):
        return FIRST_LOADS[point_index]
    draw = _Random(seed, point_index).u("kind")
    return MORE_LOADS[min(len(MORE_LOADS) - 1, math.floor(draw * len(MORE_LOADS)))]


class _Load:
    """A load: its current, as a fraction of the CT rating, at every UTC second.

    The current is a phasor relative to the voltage the load is connected
    to: its real part draws active power, a negative imaginary part lags.
    """

    kind: ClassVar[LoadKind]
    harmonics: ClassVar[tuple[Harmonic, ...]]

    def __init__(self, rand: _Random, offset_s: int) -> None:
        self.rand = rand
        self.offset_s = offset_s

    def current(self, s: int, lt: _LocalTime) -> complex:
        """The current at UTC second ``s`` (``lt`` is the same second in local time)."""
        raise NotImplementedError

    def summary(self) -> str:
        """One line saying what the load is."""
        raise NotImplementedError

    def _local_at(self, s: int) -> _LocalTime:
        return _local(s, self.offset_s)


class _Lighting(_Load):
    kind = LoadKind.LIGHTING
    harmonics = CURRENT_HARMONICS

    def __init__(self, rand: _Random, offset_s: int) -> None:
        super().__init__(rand, offset_s)
        self.full = 0.25 + 0.2 * rand.u("lighting-size")

    def current(self, s: int, lt: _LocalTime) -> complex:
        r, day, hour = self.rand, lt.day, lt.hour
        morning_on = 5.75 + 0.75 * r.u("lighting-morning-on", day)
        morning_off = max(morning_on + 0.5, lt.sunrise + 0.25) + 0.75 * r.u(
            "lighting-morning-off", day
        )
        evening_on = lt.sunset - 0.5 + 0.75 * r.u("lighting-evening-on", day)
        evening_off = 22.25 + 1.5 * r.u("lighting-evening-off", day)
        if not (morning_on <= hour < morning_off or evening_on <= hour < evening_off):
            return 0j
        level = 0.4 + 0.1 * math.floor(7.0 * r.u("lighting-dimmer", s // 600))
        if hour >= 21.5:
            level *= 0.6
        return _lead(self.full * level, 0.95 - 0.1 * (1.0 - level))

    def summary(self) -> str:
        return (
            f"LED lighting up to {self.full:.0%} of the CT rating, mornings and evenings, "
            "dimmed every 10 min, PF 0.95 leading"
        )


class _Hvac(_Load):
    kind = LoadKind.HVAC
    harmonics = MOTOR_HARMONICS

    def __init__(self, rand: _Random, offset_s: int) -> None:
        super().__init__(rand, offset_s)
        self.size = 0.45 + 0.25 * rand.u("hvac-size")
        self.period = 900 + 60 * math.floor(11.0 * rand.u("hvac-period"))
        self.phase = math.floor(self.period * rand.u("hvac-phase"))

    def current(self, s: int, lt: _LocalTime) -> complex:
        r = self.rand
        cycle, since = divmod(s - self.phase, self.period)
        began = self._local_at(s - since)
        # Cooling on the afternoons of warm days, some heating on winter mornings.
        heat = (0.5 + 0.5 * r.u("hvac-heat", began.day)) * (0.65 + 0.35 * began.season)
        cold = 0.5 - 0.5 * began.season
        duty = (
            0.1
            + 0.7 * heat * _bell(began.hour, 15.5, 3.5)
            + 0.15 * cold * _bell(began.hour, 6.5, 2.0)
        )
        on_s = self.period * min(0.95, duty * (0.85 + 0.3 * r.u("hvac-cycle", cycle)))
        if on_s < 180.0:  # anti-short-cycle: at least 3 minutes, or skip the cycle
            on_s = 180.0 if r.u("hvac-short", cycle) < on_s / 180.0 else 0.0
        blower = _lag(0.05, 0.75)
        if since < on_s:
            if since == 0:
                return _lag(min(1.1, 1.6 * self.size), 0.6) + blower
            running = self.size * (1.0 + 0.02 * (r.u("hvac-ripple", s) - 0.5))
            return _lag(running, 0.85) + blower
        if since < on_s + 120.0:
            return blower
        return 0j

    def summary(self) -> str:
        return (
            f"HVAC compressor of {self.size:.0%} of the CT rating, PF 0.85 lagging, "
            f"{self.period // 60}-min cycles, most in the afternoon"
        )


class _EvCharger(_Load):
    kind = LoadKind.EV_CHARGER
    harmonics = CHARGER_HARMONICS

    def __init__(self, rand: _Random, offset_s: int) -> None:
        super().__init__(rand, offset_s)
        self.size = 0.4 * (0.95 + 0.05 * rand.u("ev-size"))

    def session(self, day: int) -> tuple[int, int] | None:
        """The charging session that starts on a local day: (UTC start, seconds)."""
        r = self.rand
        if r.u("ev-plugged", day) >= 0.85:
            return None
        begin = day * DAY_S - self.offset_s + round((18.5 + 4.5 * r.u("ev-start", day)) * 3600)
        return begin, round((1.5 + 4.5 * r.u("ev-hours", day)) * 3600)

    def current(self, s: int, lt: _LocalTime) -> complex:
        for day in (lt.day, lt.day - 1):
            session = self.session(day)
            if session is None:
                continue
            begin, length = session
            left = begin + length - s
            if begin <= s and left > 0:
                x = self.size if left > 900 else self.size * (0.1 + 0.9 * left / 900)
                return _lag(x, 0.99)
        return 0j

    def summary(self) -> str:
        return (
            f"EV charger at {self.size:.0%} of the CT rating, PF 0.99, sessions of "
            "1.5-6 h starting 18:30-23:00 on 85 % of nights"
        )


class _Solar(_Load):
    kind = LoadKind.SOLAR
    harmonics = INVERTER_HARMONICS
    PF: ClassVar[float] = 0.98

    def __init__(self, rand: _Random, offset_s: int) -> None:
        super().__init__(rand, offset_s)
        self.peak = 0.6 + 0.3 * rand.u("solar-peak")
        self.noon = 12.0 + 0.5 * (rand.u("solar-noon") - 0.5)

    def _cloud(self, sky: float, slot: int) -> float:
        r = self.rand
        depth = r.u("solar-cloud-depth", slot)
        if sky < 0.45:  # clear
            return 1.0 - 0.03 * depth
        if sky < 0.8:  # partly cloudy
            return 1.0 - 0.03 * depth if r.u("solar-cloud", slot) > 0.35 else 0.25 + 0.5 * depth
        return 0.18 + 0.2 * depth  # overcast

    def current(self, s: int, lt: _LocalTime) -> complex:
        f = (lt.hour - self.noon) / lt.daylight + 0.5
        if not 0.0 < f < 1.0:
            return 0j
        sky = self.rand.u("solar-sky", lt.day)
        slot, r = divmod(s, 120)
        a = self._cloud(sky, slot)
        b = self._cloud(sky, slot + 1)
        cloud = a + (b - a) * (0.5 - 0.5 * math.cos(math.pi * r / 120))
        out = self.peak * (0.9 + 0.1 * lt.season) * math.sin(math.pi * f) ** 1.3 * cloud
        if out < 0.01 * self.peak:
            return 0j  # the inverter sleeps
        # Feeding power back (−P) while absorbing reactive power (+Q): quadrant II.
        return -_lead(out, self.PF)

    def summary(self) -> str:
        return (
            f"solar PV feeding back up to {self.peak:.0%} of the CT rating at noon, "
            "clouds, PF 0.98 absorbing vars; zero at night"
        )


class _PlugLoads(_Load):
    kind = LoadKind.PLUG_LOADS
    harmonics = PLUG_HARMONICS

    def __init__(self, rand: _Random, offset_s: int) -> None:
        super().__init__(rand, offset_s)
        self.base = 0.02 + 0.02 * rand.u("plug-base")

    def current(self, s: int, lt: _LocalTime) -> complex:
        r = self.rand
        total = _lag(self.base * (0.9 + 0.2 * r.u("plug-noise", s)), 0.9)
        slot, within = divmod(s, 300)
        hour = ((lt.second - within) % DAY_S) / 3600.0
        chance = (
            0.04
            + 0.45 * _bell(hour, 7.5, 1.0)
            + 0.3 * _bell(hour, 12.5, 0.8)
            + 0.55 * _bell(hour, 18.5, 1.2)
        )
        if r.u("plug-event", slot) < chance:
            begin = math.floor(60.0 * r.u("plug-begin", slot))
            length = 30 + math.floor(210.0 * r.u("plug-length", slot))
            if begin <= within < begin + length:
                which = r.u("plug-appliance", slot)
                size = r.u("plug-size", slot)
                if which < 0.45:
                    total += _lag(0.2 + 0.15 * size, 1.0)  # kettle, toaster
                elif which < 0.8:
                    total += _lag(0.15 + 0.1 * size, 0.9)  # microwave
                else:
                    total += _lag(0.04 + 0.04 * size, 0.7)  # mixer
        return total

    def summary(self) -> str:
        return (
            f"kitchen plug loads: {self.base:.0%} of the CT rating of small loads, "
            "appliances of up to 35 % at meal times"
        )


class _Refrigerator(_Load):
    kind = LoadKind.REFRIGERATOR
    harmonics = MOTOR_HARMONICS

    def __init__(self, rand: _Random, offset_s: int) -> None:
        super().__init__(rand, offset_s)
        self.size = 0.08 + 0.06 * rand.u("fridge-size")
        self.period = 2400 + 60 * math.floor(21.0 * rand.u("fridge-period"))
        self.phase = math.floor(self.period * rand.u("fridge-phase"))
        self.defrost_phase = math.floor(28800 * rand.u("fridge-defrost"))

    def current(self, s: int, lt: _LocalTime) -> complex:
        r = self.rand
        total = _lag(0.003, 0.6)  # controls and fans
        if (s - self.defrost_phase) % 28800 < 1500:
            return total + _lag(0.12, 1.0)
        cycle, since = divmod(s - self.phase, self.period)
        hour = self._local_at(s - since).hour
        duty = (0.35 + 0.15 * _bell(hour, 18.0, 4.0)) * (0.9 + 0.2 * r.u("fridge-cycle", cycle))
        if since < duty * self.period:
            if since == 0:
                return total + _lag(2.5 * self.size, 0.55)
            return total + _lag(self.size * (1.0 + 0.03 * (r.u("fridge-ripple", s) - 0.5)), 0.8)
        return total

    def summary(self) -> str:
        return (
            f"refrigerator compressor of {self.size:.0%} of the CT rating, PF 0.8, "
            f"{self.period // 60}-min cycles, defrost every 8 h"
        )


class _Laundry(_Load):
    kind = LoadKind.LAUNDRY
    harmonics = MOTOR_HARMONICS

    def __init__(self, rand: _Random, offset_s: int) -> None:
        super().__init__(rand, offset_s)
        self.motor = 0.05 + 0.03 * rand.u("laundry-motor")
        self.heater = 0.4 + 0.15 * rand.u("laundry-heater")

    def current(self, s: int, lt: _LocalTime) -> complex:
        r = self.rand
        if r.u("laundry-day", lt.day) >= (0.8 if lt.weekday >= 5 else 0.45):
            return 0j
        since = s - lt.midnight - round((9.0 + 10.5 * r.u("laundry-start", lt.day)) * 3600)
        if 0 <= since < 3000:  # washer
            if since >= 2520:
                return _lag(2.0 * self.motor, 0.75)  # spin
            if (since // 15) % 2 == 0:
                return _lag(self.motor, 0.65)  # agitate
            return _lag(0.005, 0.5)
        since -= 3300
        if 0 <= since < 3600:  # dryer
            total = _lag(0.04, 0.7)
            if since < 3000 and since % 330 < 240:
                total += _lag(self.heater, 1.0)
            return total
        return 0j

    def summary(self) -> str:
        return (
            f"laundry: washer motor {self.motor:.0%}, dryer heater {self.heater:.0%} of the "
            "CT rating, on some days between 9:00 and 21:30"
        )


class _BaseLoad(_Load):
    kind = LoadKind.BASE_LOAD
    harmonics = tuple(Harmonic(h.order, 0.7 * h.magnitude, h.phase_deg) for h in CURRENT_HARMONICS)

    def __init__(self, rand: _Random, offset_s: int) -> None:
        super().__init__(rand, offset_s)
        self.night = 0.03 + 0.03 * rand.u("base-night")
        self.day = 0.12 + 0.1 * rand.u("base-day")

    def current(self, s: int, lt: _LocalTime) -> complex:
        r, hour = self.rand, lt.hour
        occupied = _ramp(hour, 7.5, 8.5) - _ramp(hour, 17.5, 18.5)
        if lt.weekday >= 5:
            occupied *= 0.15
        level = self.night + (self.day - self.night) * occupied
        level *= 0.85 + 0.3 * r.smooth("base-wander", s, 900)
        level *= 0.96 + 0.08 * r.u("base-noise", s)
        return _lag(level, 0.93)

    def summary(self) -> str:
        return (
            f"base load: {self.night:.0%} of the CT rating always on, {self.day:.0%} in "
            "business hours, noisy, PF 0.93"
        )


_LOADS: Final[dict[LoadKind, type[_Load]]] = {
    cls.kind: cls
    for cls in (
        _Lighting,
        _Hvac,
        _EvCharger,
        _Solar,
        _PlugLoads,
        _Refrigerator,
        _Laundry,
        _BaseLoad,
    )
}


# -- wiring ------------------------------------------------------------------------------------


def _connection(service: ServiceType, phases: tuple[Phase, ...]) -> tuple[str, list[float]]:
    """How a point's load is connected, and each CT's current angle in degrees."""
    source = SOURCE_ANGLES[service]
    if service is ServiceType.DELTA_3W:
        if len(phases) == 1:
            line = {Phase.A: ("A-B", 30.0), Phase.B: ("A-B", 210.0), Phase.C: ("C-B", 90.0)}
            name, angle = line[phases[0]]
            return f"line to line {name}", [angle]
        if {Phase.A, Phase.C} <= set(phases):
            return "three-phase", [source[p] for p in phases]
        pair = (
            {Phase.A: 30.0, Phase.B: 210.0}
            if Phase.A in phases
            else {Phase.C: 90.0, Phase.B: 270.0}
        )
        return "line to line " + ("A-B" if Phase.A in phases else "C-B"), [pair[p] for p in phases]
    if len(phases) == 1:
        return f"line to neutral {phases[0].value}-N", [source[phases[0]]]
    if len(phases) == 3:
        return "three-phase", [source[p] for p in phases]
    first, second = phases
    across = cmath.rect(1.0, math.radians(source[first])) - cmath.rect(
        1.0, math.radians(source[second])
    )
    angle = math.degrees(cmath.phase(across))
    return f"line to line {first.value}-{second.value}", [angle, angle + 180.0]


def _spectrum(
    harmonics: tuple[Harmonic, ...], orders: tuple[int, ...]
) -> tuple[list[float], list[float]]:
    """Magnitudes and phase offsets (radians) on the grid of ``orders``."""
    by_order = {h.order: h for h in harmonics}
    magnitude = [
        1.0 if n == 1 else (by_order[n].magnitude if n in by_order else 0.0) for n in orders
    ]
    delta = [math.radians(by_order[n].phase_deg) if n in by_order else 0.0 for n in orders]
    return magnitude, delta


# -- the panel -----------------------------------------------------------------------------------


class PanelSimulator:
    """A simulated electrical panel feeding one S8000: see the module's documentation."""

    def __init__(
        self,
        config: MeterConfig,
        seed: int = 0,
        sample_rate: int = 8000,
        noise: bool = True,
        *,
        utc_offset_hours: float = 0.0,
    ) -> None:
        """A panel for ``config``; ``utc_offset_hours`` places its local day (default UTC)."""
        if not isinstance(config, MeterConfig):
            raise ValueError(f"config must be a MeterConfig, not {type(config).__name__}")
        if not _is_integer(seed):
            raise ValueError(f"seed must be an integer, not {seed!r}")
        if not (
            _is_number(sample_rate)
            and float(sample_rate).is_integer()
            and MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE
        ):
            raise ValueError(
                f"sample rate must be a whole number of Hz from {MIN_SAMPLE_RATE:g} to "
                f"{MAX_SAMPLE_RATE}, not {sample_rate!r}"
            )
        if not (_is_number(utc_offset_hours) and -14 <= utc_offset_hours <= 14):
            raise ValueError(f"utc_offset_hours must be from -14 to 14, not {utc_offset_hours!r}")
        seed = int(seed)
        self.config = config
        self.seed = seed
        self.sample_rate = int(sample_rate)
        self.noise = bool(noise)
        self.offset_s = round(utc_offset_hours * 3600)
        model = config.model
        self.channels = model.channel_count
        self._rand = _Random(seed, -1)
        self._drift = tuple(
            (amplitude, period, _TAU * self._rand.u("drift", period))
            for amplitude, period in FREQUENCY_DRIFT
        )

        kinds = [assign_load(seed, index) for index in range(len(config.points))]
        self._loads: list[_Load] = [
            _LOADS[kind](_Random(seed, index), self.offset_s) for index, kind in enumerate(kinds)
        ]
        orders = tuple(
            sorted(
                {1}
                | {h.order for h in VOLTAGE_HARMONICS}
                | {h.order for load in self._loads for h in load.harmonics}
            )
        )
        self._orders = np.array(orders, dtype=np.float64)

        # Voltage terminals: true RMS factor (× nominal × daily factor) and angle.
        terminal_angles = TERMINAL_ANGLES[config.service]
        self._v_true = np.zeros(3)  # RMS per unit of nominal, phase imbalance included
        self._v_angle = np.zeros(3)  # true angle, radians
        v_gain = np.ones(3)
        v_shift = np.zeros(3)
        for phase in Phase:
            row = phase.row
            calibration = config.calibration_of(f"V{phase.value}")
            v_gain[row], v_shift[row] = calibration.gain, math.radians(calibration.phase_deg)
            if phase in terminal_angles:
                self._v_true[row] = 1.0 + 0.006 * (self._rand.u("imbalance", row) - 0.5)
                self._v_angle[row] = math.radians(terminal_angles[phase])

        # CT elements: channel, point, current angle and imbalance, metered terminal.
        rows: list[int] = []
        element_point: list[int] = []
        element_current: list[complex] = []  # true: imbalance × e^{j angle}
        element_gain: list[float] = []
        element_shift: list[float] = []
        element_terminal: list[int] = []
        magnitude: list[list[float]] = []
        delta: list[list[float]] = []
        self._connections: list[str] = []
        self._rated_va: list[float] = []
        nominal = config.nominal_voltage * config.pt_ratio
        for index, point in enumerate(config.points):
            connection, angles = _connection(config.service, point.phases)
            self._connections.append(connection)
            rand = _Random(seed, index)
            rated = 0j
            spectrum = _spectrum(self._loads[index].harmonics, orders)
            for element, (phase, angle) in enumerate(zip(point.phases, angles, strict=True)):
                channel = model.channel(index + 1, element + 1)
                calibration = config.calibration_of(channel.name)
                share = 1.0
                if len(point.phases) > 1:
                    share += 0.04 * (rand.u("imbalance", element) - 0.5)
                current = cmath.rect(share, math.radians(angle))
                terminal = phase.row if phase in terminal_angles else -1
                rows.append(3 + channel.index)
                element_point.append(index)
                element_current.append(current)
                element_gain.append(calibration.gain)
                element_shift.append(math.radians(calibration.phase_deg))
                element_terminal.append(terminal)
                magnitude.append(spectrum[0])
                delta.append(spectrum[1])
                if terminal >= 0:
                    voltage = cmath.rect(nominal, self._v_angle[terminal])
                    rated += voltage * cmath.rect(1.0, -math.radians(angle)) * point.ct_primary_a
            self._rated_va.append(abs(rated))
        v_magnitude, v_delta = _spectrum(VOLTAGE_HARMONICS, orders)
        self._rows = np.array([0, 1, 2, *rows], dtype=np.int64)
        self._element_point = np.array(element_point, dtype=np.int64)
        self._element_current = np.array(element_current, dtype=np.complex128)
        self._element_terminal = element_terminal
        # What the samples carry: true values with each channel's calibration error.
        sqrt2 = math.sqrt(2.0)
        self._v_amplitude = sqrt2 * config.nominal_voltage * self._v_true * v_gain
        self._v_phase = self._v_angle + v_shift
        self._i_amplitude = sqrt2 * CT_SECONDARY_A * np.array(element_gain)
        self._i_shift = np.array(element_shift)
        self._magnitude = np.array([v_magnitude] * 3 + magnitude, dtype=np.float64)
        self._delta = np.array([v_delta] * 3 + delta, dtype=np.float64)
        self._cache: tuple[int, FloatArray, FloatArray] | None = None

    # -- the line ------------------------------------------------------------------------------

    def frequency_at(self, t: float) -> float:
        """The line frequency in Hz at UTC time ``t``."""
        f = float(self.config.frequency_hz)
        for amplitude, period, phase in self._drift:
            f += amplitude * math.sin(_TAU * (t % period) / period + phase)
        return f

    def _voltage_factor(self, s: int, lt: _LocalTime) -> float:
        hour = lt.hour
        return (
            1.0
            + 0.008 * math.cos(_TAU * (hour - 3.0) / 24.0)
            - 0.01 * _bell(hour, 18.5, 1.8)
            + 0.002 * (2.0 * self._rand.smooth("voltage", s, 600) - 1.0)
        )

    def voltage_at(self, t: float) -> tuple[float, float, float]:
        """True RMS voltage at terminals A, B, C (secondary of the PTs) at UTC time ``t``."""
        s = self._second(t)
        factor = self._voltage_factor(s, _local(s, self.offset_s))
        a, b, c = (self.config.nominal_voltage * factor * self._v_true).tolist()
        return a, b, c

    def _phase(self, first: int, count: int) -> FloatArray:
        """Phase of the fundamental (radians) at absolute samples first..first+count-1."""
        fs = self.sample_rate
        k = np.arange(first, first + count, dtype=np.int64)
        theta: FloatArray = ((k * self.config.frequency_hz) % fs).astype(np.float64) * (_TAU / fs)
        for amplitude, period, phase in self._drift:
            # ∫ 2π·a·sin(2πt/T + φ) dt = −a·T·cos(2πt/T + φ)
            span = period * fs
            theta -= amplitude * period * np.cos((k % span) * (_TAU / span) + phase)
        return theta

    # -- the loads -----------------------------------------------------------------------------

    def _second(self, t: float) -> int:
        if not _is_number(t):
            raise ValueError(f"time must be a finite number of UTC epoch seconds, not {t!r}")
        return math.floor(t)

    def _currents(self, s: int, lt: _LocalTime) -> ComplexArray:
        return np.array([load.current(s, lt) for load in self._loads], dtype=np.complex128)

    def load_at(self, point_index: int, t: float) -> tuple[float, float]:
        """(active W, reactive var) point ``point_index`` (0-based) draws at UTC time ``t``.

        Fundamental power in primary units as its meter sees it, positive
        when delivered (utility to load); a CT on B in a delta adds nothing.
        """
        if not _is_integer(point_index):
            raise ValueError(f"point index must be an integer, not {point_index!r}")
        if not 0 <= point_index < len(self._loads):
            raise ValueError(
                f"point index must be from 0 to {len(self._loads) - 1}, not {point_index}"
            )
        s = self._second(t)
        lt = _local(s, self.offset_s)
        current = self._loads[point_index].current(s, lt)
        rating = self.config.points[point_index].ct_primary_a
        voltage = self.config.nominal_voltage * self.config.pt_ratio
        voltage *= self._voltage_factor(s, lt)
        power = 0j
        for element in np.flatnonzero(self._element_point == point_index):
            terminal = self._element_terminal[element]
            if terminal < 0:
                continue
            v = cmath.rect(voltage * self._v_true[terminal], self._v_angle[terminal])
            i = current * complex(self._element_current[element]) * rating
            power += v * i.conjugate()
        return power.real, power.imag

    def describe(self) -> list[dict[str, Any]]:
        """What each configured point simulates."""
        return [
            {
                "index": index,
                "point": index + 1,
                "name": point.name,
                "load": load.kind.value,
                "description": load.summary(),
                "connection": self._connections[index],
                "phases": [p.value for p in point.phases],
                "ct_primary_a": point.ct_primary_a,
                "rated_va": self._rated_va[index],
            }
            for index, (point, load) in enumerate(zip(self.config.points, self._loads, strict=True))
        ]

    # -- samples -------------------------------------------------------------------------------

    def _coefficients(self, s: int) -> FloatArray:
        """Cosine and sine coefficients of every row (3 voltages + channels) in second ``s``."""
        lt = _local(s, self.offset_s)
        currents = self._currents(s, lt)[self._element_point] * self._element_current
        amplitude = np.concatenate(
            (self._v_amplitude * self._voltage_factor(s, lt), self._i_amplitude * np.abs(currents))
        )
        phase = np.concatenate((self._v_phase, np.angle(currents) + self._i_shift))
        psi = phase[:, None] * self._orders + self._delta
        scaled = amplitude[:, None] * self._magnitude
        signals = np.empty((len(phase), 2 * len(self._orders)))
        signals[:, 0::2] = scaled * np.cos(psi)
        signals[:, 1::2] = -scaled * np.sin(psi)
        coefficients = np.zeros((3 + self.channels, signals.shape[1]))
        coefficients[self._rows] = signals
        return coefficients

    def _block(self, s: int) -> tuple[FloatArray, FloatArray]:
        """The samples of UTC second ``s``: voltages (3, fs) and currents (channels, fs)."""
        fs = self.sample_rate
        angles = np.multiply.outer(self._phase(s * fs, fs), self._orders)
        basis = np.empty((fs, 2 * len(self._orders)))
        basis[:, 0::2] = np.cos(angles)
        basis[:, 1::2] = np.sin(angles)
        coefficients = self._coefficients(s)
        rows = np.empty((coefficients.shape[0], fs))
        # Products small enough that BLAS does them on this thread: a multithreaded
        # GEMM this small is slower, and much slower when the other cores are busy.
        step = max(64, _SMALL_GEMM // coefficients.size)
        for a in range(0, fs, step):
            np.matmul(coefficients, basis[a : a + step].T, out=rows[:, a : a + step])
        voltages: FloatArray = rows[:3]
        currents: FloatArray = rows[3:]
        if self.noise:
            # SFC64: the fastest of numpy's bit generators for this much noise.
            rng = np.random.Generator(
                np.random.SFC64(np.random.SeedSequence([self.seed & _MASK, s & _MASK, fs]))
            )
            voltages = Adc(VOLTAGE_FULL_SCALE, rng=rng).sample(voltages)
            currents = Adc(CURRENT_FULL_SCALE, rng=rng).sample(currents)
        return voltages, currents

    def _cached_block(self, s: int) -> tuple[FloatArray, FloatArray]:
        if self._cache is None or self._cache[0] != s:
            self._cache = (s, *self._block(s))
        return self._cache[1], self._cache[2]

    def samples(self, start: float, seconds: float) -> tuple[FloatArray, FloatArray]:
        """Voltages (3, n) and currents (channels, n) for UTC time [start, start + seconds).

        ``n = round(seconds × sample_rate)``; ``start`` must fall on a sample
        (``start × sample_rate`` a whole number).  Whole seconds aligned to
        the second are the fast case.
        """
        fs = self.sample_rate
        if not _is_number(start):
            raise ValueError(f"start must be a finite number of UTC epoch seconds, not {start!r}")
        position = start * fs
        first = round(position)
        if abs(position - first) > 0.01:
            raise ValueError(
                f"start {start!r} does not fall on a sample at {fs} Hz "
                "(start × sample_rate must be a whole number)"
            )
        if not (_is_number(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be a finite number at least 0, not {seconds!r}")
        n = round(seconds * fs)
        second, offset = divmod(first, fs)
        if offset == 0 and n == fs:
            return self._block(second)
        voltages = np.empty((3, n))
        currents = np.empty((self.channels, n))
        k = first
        while k < first + n:
            second, offset = divmod(k, fs)
            take = min(fs - offset, first + n - k)
            if take == fs:
                v, i = self._block(second)
            else:
                v, i = self._cached_block(second)
            voltages[:, k - first : k - first + take] = v[:, offset : offset + take]
            currents[:, k - first : k - first + take] = i[:, offset : offset + take]
            k += take
        return voltages, currents


__all__ = [
    "FIRST_LOADS",
    "FREQUENCY_DRIFT",
    "MORE_LOADS",
    "LoadKind",
    "PanelSimulator",
    "assign_load",
]
