"""The metering engine: waveform samples in, energy registers out.

What the S8000's measuring board does, in software, vectorised with numpy.

Input
    Blocks of simultaneous samples at a fixed rate ``fs`` (any rate from
    4 kHz up; 8 kHz is the engine's default, see docs/metering.md): the three
    voltage terminals in volts at the meter (secondary of any PTs), shape
    ``(3, n)``, and every CT channel of the model in amperes of CT secondary,
    shape ``(channels, n)``, in the model's channel order.  Blocks may have
    any length; the engine keeps what it has not used yet.

Measurement windows
    The engine tracks the line frequency from positive-going zero crossings
    of a reference voltage (a Schmitt trigger at 10 % of nominal peak, then
    linear interpolation between the samples around zero).  Every window
    spans exactly ``K`` line cycles from one crossing to another, ``K`` = 10
    at 50 Hz and 12 at 60 Hz (about 200 ms, as IEC 61000-4-7 does).  Windows
    abut at fractional sample positions, and the samples at each edge are
    weighted by the fraction inside, so no energy is lost or counted twice
    between windows.  Without a usable voltage (power off, a dead phase) the
    engine falls back to windows of nominal length.

Quantities per window
    * RMS of every voltage and CT channel (all content, harmonics included);
      frequency = K / window length.
    * Active power per element: the mean of v·i over the window, harmonics
      included (IEC 62053-22's harmonic test expects them registered).
    * Fundamental phasors V1, I1 by a DFT at the tracked frequency over the
      window's exact K cycles (a rectangular window on an integer number of
      cycles: harmonics fall on the DFT's nulls).
    * Reactive power = fundamental reactive power Q1 = Im(V1·conj(I1))/2, the
      IEEE 1459 definition that IEC 62053-24 meters register.  Budeanu's
      summed Q (what a 90° shift of the whole waveform gives) is deprecated by
      IEEE 1459 because harmonic terms of opposite sign cancel; Q1 is what
      capacitors can compensate and is reproducible between meters.
    * Apparent power per element S = V_rms·I_rms (IEEE 1459 S, all content);
      per point the arithmetic sum of its elements; PF = P / S, signed like P.
    * Calibration: channel gains divide the samples; each channel's phase
      error rotates its fundamental phasor back.  The active power is
      corrected by the change this makes to the fundamental active power
      (P = P_raw + P1_corrected − P1_raw), so harmonics stay registered
      without a fractional-delay filter.

Registers (four quadrants)
    Per point the elements' powers are summed first (a polyphase point is
    one meter), then split by sign: active energy goes to *delivered* (utility
    to load, +P, quadrants I and IV) or *received* (−P, II and III); reactive
    energy to kvarh delivered (+Q, I and II) or received (−Q, III and IV); the
    magnitude of Q also goes to the quadrant register of (sign P, sign Q).
    Registers are integers in mWh/mvarh plus a sub-unit remainder, so they
    only ever go up and never lose resolution, however long the meter runs.

Starting current and no-load (creep)
    A point registers nothing while |P| is below its no-load threshold, half
    the power of one element at starting current (Ist = 0.1 % of the CT
    rating, IEC 62053-22 class 0.2S) at nominal voltage; the same for Q.  At
    Ist and unity PF a point is at least twice its threshold, so it starts
    and keeps registering; with no current, noise and offsets (which average
    to nothing over whole cycles) stay orders of magnitude below it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from s8000_engine.config.demand import DemandConfig
from s8000_engine.config.meter import MeterConfig, Phase, ServiceType
from s8000_engine.const import ENERGY_REGISTERS, QUADRANT_REGISTERS
from s8000_engine.metering.arrays import FloatArray, IntArray
from s8000_engine.metering.demand import DemandCalculator
from s8000_engine.models import CT_SECONDARY_A

#: Starting current as a fraction of the CT rating (IEC 62053-22, class 0.2S).
STARTING_CURRENT: Final = 0.001
#: Lowest and highest line frequency the engine tracks, in Hz.
MIN_FREQUENCY: Final = 42.0
MAX_FREQUENCY: Final = 70.0
#: Lowest sample rate the engine accepts (7th harmonic of 70 Hz with margin).
MIN_SAMPLE_RATE: Final = 4000.0
#: Schmitt-trigger threshold of the zero-crossing detector, fraction of nominal peak.
HYSTERESIS: Final = 0.1

#: Register columns of :attr:`Meter.energy`.
KWH_DELIVERED: Final = 0
KWH_RECEIVED: Final = 1
KVARH_DELIVERED: Final = 2
KVARH_RECEIVED: Final = 3
KVARH_Q1: Final = 4
KVARH_Q2: Final = 5
KVARH_Q3: Final = 6
KVARH_Q4: Final = 7
REGISTER_NAMES: Final = (*ENERGY_REGISTERS, *QUADRANT_REGISTERS)


@dataclass(frozen=True, slots=True)
class Readings:
    """What one measurement window showed, in primary units.

    Arrays by point have one entry per configured point; by element one per
    element of every point (in point order, see :attr:`Meter.element_point`);
    by channel one per CT channel of the model; by phase three (A, B, C).
    """

    time: float
    """End of the window: the meter's start_time plus seconds of samples."""
    duration: float
    """Length of the window in seconds."""
    frequency: float
    """Tracked line frequency in Hz (nominal while no voltage is usable)."""
    voltage: FloatArray
    """RMS voltage per phase terminal (V_AB and V_CB in a delta), primary volts."""
    current: FloatArray
    """RMS current per CT channel, primary amperes."""
    element_power: FloatArray
    """Active power per element (the point's power on that phase), W."""
    element_reactive: FloatArray
    """Fundamental reactive power per element, var."""
    power: FloatArray
    """Active power per point, W (positive: delivered to the load)."""
    reactive: FloatArray
    """Fundamental reactive power per point, var."""
    apparent: FloatArray
    """Apparent power per point, VA (arithmetic sum of its elements)."""
    power_factor: FloatArray
    """P / S per point, signed like P; NaN where S is 0."""
    voltage_valid: bool
    """Whether the window was synchronised to a usable voltage."""
    registers: IntArray
    """Every point's registers after this window, whole mWh (points × 8)."""
    voltage_phasor: npt.NDArray[np.complex128]
    """Fundamental voltage phasor (peak) per terminal, primary volts; for
    line-to-line voltages (|V_A − V_B| / √2 is the fundamental's RMS)."""


class EnergyRegisters:
    """Monotonic energy registers: integer milli-units plus a remainder."""

    def __init__(self, points: int, registers: int = len(REGISTER_NAMES)) -> None:
        self.whole: IntArray = np.zeros((points, registers), dtype=np.int64)
        self.fraction: FloatArray = np.zeros((points, registers), dtype=np.float64)

    def add(self, increment_wh: FloatArray) -> None:
        """Add non-negative increments (Wh or varh), shape (points, registers)."""
        self.fraction += increment_wh * 1000.0
        carry = np.floor(self.fraction)
        self.whole += carry.astype(np.int64)
        self.fraction -= carry

    @property
    def value_wh(self) -> FloatArray:
        """Register values in Wh (varh)."""
        result: FloatArray = (self.whole + self.fraction) / 1000.0
        return result

    def restore(self, whole_mwh: IntArray, fraction_mwh: FloatArray | None = None) -> None:
        """Set the registers (e.g. from non-volatile storage)."""
        self.whole = np.array(whole_mwh, dtype=np.int64).reshape(self.whole.shape)
        self.fraction = (
            np.zeros_like(self.fraction)
            if fraction_mwh is None
            else np.array(fraction_mwh, dtype=np.float64).reshape(self.fraction.shape)
        )


class Meter:
    """One S8000's measuring board: feed samples with :meth:`process`."""

    def __init__(
        self, config: MeterConfig, sample_rate: float = 8000.0, start_time: float = 0.0
    ) -> None:
        """A meter for ``config`` fed at ``sample_rate``; sample 0 is at ``start_time``
        (UTC epoch seconds: demand intervals align to the UTC clock)."""
        if not sample_rate >= MIN_SAMPLE_RATE:
            raise ValueError(
                f"sample rate {sample_rate} Hz is below the minimum {MIN_SAMPLE_RATE:g} Hz"
            )
        self.config = config
        self.sample_rate = float(sample_rate)
        model = config.model
        self.channels = model.channel_count
        self.cycles_per_window = 10 if config.frequency_hz == 50 else 12

        element_ct: list[int] = []
        element_v: list[int] = []
        element_point: list[int] = []
        element_phase: list[Phase] = []
        ct_ratio = np.ones(self.channels)
        metered = {Phase.A, Phase.C} if config.service is ServiceType.DELTA_3W else set(Phase)
        for number, point in enumerate(config.points):
            for element, phase in enumerate(point.phases, start=1):
                channel = model.channel(number + 1, element)
                element_ct.append(channel.index)
                element_v.append(phase.row if phase in metered else -1)
                element_point.append(number)
                element_phase.append(phase)
                ct_ratio[channel.index] = point.ct_primary_a / CT_SECONDARY_A
        self.element_ct = np.array(element_ct, dtype=np.int64)
        self.element_v = np.array(element_v, dtype=np.int64)
        self.element_point = np.array(element_point, dtype=np.int64)
        self.element_phase = tuple(element_phase)
        self.points = len(config.points)
        self.enabled = np.array([p.enabled for p in config.points], dtype=bool)

        ct_cal = [config.calibration_of(channel.name) for channel in model.channels]
        v_cal = [config.calibration_of(name) for name in ("VA", "VB", "VC")]
        # Samples are scaled to primary units and divided by the channel gain.
        self._i_scale = ct_ratio / np.array([c.gain for c in ct_cal])
        self._v_scale = config.pt_ratio / np.array([c.gain for c in v_cal])
        self._i_rotation = np.exp(-1j * np.radians([c.phase_deg for c in ct_cal]))
        self._v_rotation = np.exp(-1j * np.radians([c.phase_deg for c in v_cal]))

        # No-load thresholds per point, primary units.
        nominal = config.nominal_voltage * config.pt_ratio
        ratings = np.array([p.ct_primary_a for p in config.points])
        self.no_load_threshold = 0.5 * nominal * STARTING_CURRENT * ratings

        phases = [p.row for p in config.phases]
        self._reference_phases = phases
        self._reference = phases[0]
        # Threshold in the scaled (primary) units of the buffered samples.
        self._hysteresis = HYSTERESIS * config.nominal_voltage * math.sqrt(2.0) * config.pt_ratio

        self.energy = EnergyRegisters(self.points)
        self.start_time = float(start_time)
        #: Demand of delivered active power per point (config.demand).
        self.demand = DemandCalculator(config.demand, self.points)
        self._buffer_v: FloatArray = np.zeros((3, 0))
        self._buffer_i: FloatArray = np.zeros((self.channels, 0))
        self._buffer_start = 0  # absolute index of the buffer's first sample
        self._received = 0  # absolute index one past the last sample received
        self._window_start = 0.0  # absolute fractional sample position
        self._crossings: list[float] = []
        self._at_crossing = False  # whether _window_start is a zero crossing
        self._schmitt = 0  # -1 low, +1 high, 0 unknown
        self._last_crossing_scan = 0
        self.readings: Readings | None = None
        self.windows = 0

    # -- public ---------------------------------------------------------------

    def set_ct_primary(self, point: int, amps: float) -> None:
        """A new CT rating for a point (0-based): samples from now on scale with it."""
        config = self.config
        if not 0 <= point < self.points:
            raise ValueError(f"no point {point + 1}")
        if not 0.1 <= amps <= 10000:
            raise ValueError("CT primary must be between 0.1 and 10000 A")
        for element in range(1, len(config.points[point].phases) + 1):
            channel = config.model.channel(point + 1, element)
            gain = config.calibration_of(channel.name).gain
            self._i_scale[channel.index] = amps / CT_SECONDARY_A / gain
        nominal = config.nominal_voltage * config.pt_ratio
        self.no_load_threshold[point] = 0.5 * nominal * STARTING_CURRENT * amps
        points = list(config.points)
        points[point] = dataclasses.replace(points[point], ct_primary_a=float(amps))
        self.config = dataclasses.replace(config, points=tuple(points))

    def reconfigured(self, config: MeterConfig) -> Meter:
        """A meter for ``config`` (the same meter model: the same channels) that
        goes on where this one is.

        It keeps the samples received and not metered yet (rescaled to the new
        CT ratios, PT ratio and calibration: samples are kept scaled), the
        zero-crossing tracking and the window count, so the sample stream
        continues without a gap; the energy registers, whole and fraction, and
        the demand of the points kept (a point added starts at zero; new demand
        settings start demand again); and the last readings when every element
        is wired as before.
        """
        if config.model.channel_count != self.channels:
            raise ValueError(
                f"{config.model.code} has {config.model.channel_count} CT channels, "
                f"this meter {self.channels}: a meter model cannot change while it meters"
            )
        meter = Meter(config, self.sample_rate, self.start_time)
        meter._buffer_v = self._buffer_v * (meter._v_scale / self._v_scale)[:, None]
        meter._buffer_i = self._buffer_i * (meter._i_scale / self._i_scale)[:, None]
        meter._buffer_start = self._buffer_start
        meter._received = self._received
        meter._window_start = self._window_start
        meter._crossings = list(self._crossings)
        meter._at_crossing = self._at_crossing
        meter._schmitt = self._schmitt
        meter._last_crossing_scan = self._last_crossing_scan
        meter.windows = self.windows
        same_layout = np.array_equal(self.element_ct, meter.element_ct) and np.array_equal(
            self.element_point, meter.element_point
        )
        meter.readings = self.readings if same_layout else None
        kept = min(meter.points, self.points)
        whole = np.zeros((meter.points, len(REGISTER_NAMES)), dtype=np.int64)
        fraction = np.zeros((meter.points, len(REGISTER_NAMES)))
        whole[:kept] = self.energy.whole[:kept]
        fraction[:kept] = self.energy.fraction[:kept]
        meter.energy.restore(whole, fraction)
        meter.demand = _resized_demand(self.demand, config.demand, meter.points)
        return meter

    @property
    def position(self) -> float:
        """Fractional sample position up to which samples have been metered."""
        return self._window_start

    @property
    def metered_seconds(self) -> float:
        """Seconds of the stream metered so far."""
        return self._window_start / self.sample_rate

    def process(self, voltages: npt.ArrayLike, currents: npt.ArrayLike) -> list[Readings]:
        """Meter a block of samples; return the readings of every window it completed."""
        v = np.asarray(voltages, dtype=np.float64)
        i = np.asarray(currents, dtype=np.float64)
        if v.ndim != 2 or v.shape[0] != 3:
            raise ValueError(f"voltages must have shape (3, n), not {v.shape}")
        if i.ndim != 2 or i.shape != (self.channels, v.shape[1]):
            raise ValueError(
                f"currents must have shape ({self.channels}, {v.shape[1]}) for "
                f"{self.config.model.code}, not {i.shape}"
            )
        if not (np.isfinite(v).all() and np.isfinite(i).all()):
            raise ValueError("samples must be finite numbers")
        self._buffer_v = np.concatenate([self._buffer_v, v * self._v_scale[:, None]], axis=1)
        self._buffer_i = np.concatenate([self._buffer_i, i * self._i_scale[:, None]], axis=1)
        self._received += v.shape[1]
        self._find_crossings()
        done: list[Readings] = []
        while (window := self._next_window()) is not None:
            start, end, cycles, at_crossing = window
            done.append(self._measure(start, end, cycles))
            self._at_crossing = at_crossing
        self._trim()
        return done

    # -- windows ----------------------------------------------------------------

    def _find_crossings(self) -> None:
        """Add the positive-going zero crossings of the reference voltage in new samples."""
        x_all = self._buffer_v[self._reference]
        new_from = self._last_crossing_scan - self._buffer_start
        x = x_all[new_from:]
        self._last_crossing_scan = self._received
        if x.size == 0:
            return
        level = np.zeros(x.size, dtype=np.int8)
        level[x > self._hysteresis] = 1
        level[x < -self._hysteresis] = -1
        # The Schmitt trigger's state at every sample: the last level seen.
        last_seen = np.maximum.accumulate(np.where(level != 0, np.arange(x.size), -1))
        state = np.where(last_seen >= 0, level[np.maximum(last_seen, 0)], self._schmitt)
        previous = np.concatenate([[self._schmitt], state[:-1]])
        rises = np.flatnonzero((previous == -1) & (state == 1)) + new_from
        self._schmitt = int(state[-1])
        if rises.size == 0:
            return
        low = np.flatnonzero(x_all <= 0.0)
        spacing = self.sample_rate / MAX_FREQUENCY
        for rise in rises:
            k = int(np.searchsorted(low, rise)) - 1
            if k < 0:
                continue  # the last sample at or below zero has been dropped
            j = int(low[k])
            step = x_all[j + 1] - x_all[j]
            fraction = float(-x_all[j] / step) if step != 0 else 0.0
            position = self._buffer_start + j + fraction
            if position <= self._window_start:
                continue
            if self._crossings and position - self._crossings[-1] < spacing:
                continue
            self._crossings.append(position)

    def _next_window(self) -> tuple[float, float, int, bool] | None:
        """The next window: (start, end, whole cycles or 0, whether it ends on a crossing)."""
        fs = self.sample_rate
        k = self.cycles_per_window
        start = self._window_start
        crossings = self._crossings
        while crossings and crossings[0] <= start + 1e-9:
            crossings.pop(0)
        cycle = fs / MIN_FREQUENCY
        longest = k * cycle
        nominal = k * fs / self.config.frequency_hz
        if crossings and (not self._at_crossing or crossings[0] - start > cycle):
            # Not on a crossing yet (start of the stream, or the voltage came
            # back): meter up to the next one unsynchronised.
            end = min(crossings[0], start + nominal)
            return start, end, 0, end == crossings[0]
        if len(crossings) >= k and crossings[k - 1] - start <= longest:
            return start, crossings[k - 1], k, True
        if self._received - start <= longest + 2:
            return None  # wait for more samples
        # Time has passed without K crossings: cycles were missed, or the
        # voltage is gone.
        usable = [c for c in crossings if c - start <= longest]
        if usable:
            return start, usable[-1], len(usable), True
        return start, start + nominal, 0, False

    def _trim(self) -> None:
        keep_from = max(math.floor(self._window_start) - 1, self._buffer_start)
        drop = keep_from - self._buffer_start
        if drop > 0:
            self._buffer_v = self._buffer_v[:, drop:]
            self._buffer_i = self._buffer_i[:, drop:]
            self._buffer_start = keep_from

    # -- measurement --------------------------------------------------------------

    def _per_point(self, values: FloatArray) -> FloatArray:
        """Sum per-element values into their points."""
        total = np.bincount(self.element_point, values, minlength=self.points)
        return np.asarray(total, dtype=np.float64)

    def _measure(self, start: float, end: float, cycles: int) -> Readings:
        fs = self.sample_rate
        # Sample n stands for the time span [n - 1/2, n + 1/2): the window
        # [start, end) weighs each sample by the part of its span inside.
        first = math.floor(start + 0.5)
        last = math.ceil(end + 0.5)  # exclusive
        lo = first - self._buffer_start
        hi = last - self._buffer_start
        v = self._buffer_v[:, lo:hi]
        i = self._buffer_i[:, lo:hi]
        weight = np.ones(last - first)
        weight[0] -= start + 0.5 - first
        weight[-1] -= last - end - 0.5
        total = float(weight.sum())  # = end - start, in samples
        duration = total / fs
        synchronised = cycles > 0
        frequency = cycles * fs / total if synchronised else float(self.config.frequency_hz)

        v_rms = np.sqrt((v * v) @ weight / total)
        i_rms = np.sqrt((i * i) @ weight / total)

        n = np.arange(first, last, dtype=np.float64) - start
        kernel = weight * np.exp(-2j * np.pi * frequency / fs * n) * (2.0 / total)
        v1 = (v @ kernel) * self._v_rotation
        i1_raw = i @ kernel
        i1 = i1_raw * self._i_rotation

        ev = self.element_v
        has_v = ev >= 0
        ev_safe = np.where(has_v, ev, 0)
        ec = self.element_ct
        products = v[ev_safe] * i[ec]
        p_raw = np.where(has_v, products @ weight / total, 0.0)
        v1_raw = v @ kernel
        s1_raw = v1_raw[ev_safe] * np.conj(i1_raw[ec]) / 2.0
        s1 = v1[ev_safe] * np.conj(i1[ec]) / 2.0
        s1 = np.where(has_v, s1, 0.0)
        s1_raw = np.where(has_v, s1_raw, 0.0)
        element_p = p_raw + s1.real - s1_raw.real
        # Without whole cycles the fundamental is unknown: no reactive power
        # for such a window (at most one cycle at the start or after an outage).
        element_q = s1.imag if synchronised else np.zeros_like(p_raw)
        element_s = np.where(has_v, v_rms[ev_safe] * i_rms[ec], 0.0)

        points = self.points
        power = self._per_point(element_p)
        reactive = self._per_point(element_q)
        apparent = self._per_point(element_s)

        # No-load: below the threshold a point registers (and shows) nothing.
        threshold = self.no_load_threshold
        live = self.enabled
        power = np.where((np.abs(power) >= threshold) & live, power, 0.0)
        reactive = np.where((np.abs(reactive) >= threshold) & live, reactive, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            power_factor = np.where(apparent > 0, power / apparent, np.nan)

        hours = duration / 3600.0
        increment = np.zeros((points, len(REGISTER_NAMES)))
        increment[:, KWH_DELIVERED] = np.maximum(power, 0.0) * hours
        increment[:, KWH_RECEIVED] = np.maximum(-power, 0.0) * hours
        increment[:, KVARH_DELIVERED] = np.maximum(reactive, 0.0) * hours
        increment[:, KVARH_RECEIVED] = np.maximum(-reactive, 0.0) * hours
        q_abs = np.abs(reactive) * hours
        p_neg = power < 0
        q_neg = reactive < 0
        increment[:, KVARH_Q1] = np.where(~p_neg & ~q_neg, q_abs, 0.0)
        increment[:, KVARH_Q2] = np.where(p_neg & ~q_neg, q_abs, 0.0)
        increment[:, KVARH_Q3] = np.where(p_neg & q_neg, q_abs, 0.0)
        increment[:, KVARH_Q4] = np.where(~p_neg & q_neg, q_abs, 0.0)
        self.energy.add(increment)
        t0 = self.start_time
        self.demand.add_energy(t0 + start / fs, t0 + end / fs, increment[:, KWH_DELIVERED])

        self._window_start = end
        self.windows += 1
        readings = Readings(
            time=self.start_time + end / fs,
            duration=duration,
            frequency=frequency,
            voltage=v_rms,
            current=i_rms,
            element_power=element_p,
            element_reactive=element_q,
            power=power,
            reactive=reactive,
            apparent=apparent,
            power_factor=power_factor,
            voltage_valid=synchronised,
            registers=self.energy.whole.copy(),
            voltage_phasor=v1,
        )
        self.readings = readings
        return readings


def _resized_demand(
    calculator: DemandCalculator, config: DemandConfig, points: int
) -> DemandCalculator:
    """The demand of the points kept (new points start empty); new demand
    settings start demand again (peaks cleared)."""
    if calculator.config != config:
        return DemandCalculator(config, points)
    if calculator.channels == points:
        return calculator
    data = calculator.to_dict()

    def fit(values: list[Any], missing: Any) -> list[Any]:
        return [values[k] if k < len(values) else missing for k in range(points)]

    for name, missing in (
        ("bucket_energy_wh", 0.0),
        ("demand_w", None),
        ("peak_w", None),
        ("peak_time", None),
    ):
        data[name] = fit(data[name], missing)
    data["ring_energy_wh"] = [fit(row, 0.0) for row in data["ring_energy_wh"]]
    data["channels"] = points
    return DemandCalculator.from_dict(config, points, data)
