"""Interval recording: metering windows in, interval records out.

Intervals are aligned to the UTC clock (a 15-minute interval starts at :00,
:15, :30 or :45) and keyed by their start.  A metering window (about 200 ms)
belongs to the interval that holds its midpoint; an interval's registers are
those after its last window, its deltas the difference from the previous
interval's, so deltas always add up to the registers.

The sequence of interval keys has no holes and no duplicates:

* a gap in metering (outage, crash, start-up) closes the interval in
  progress and fills every interval up to the present with an empty record
  flagged POWER_OFF (deltas 0, registers unchanged);
* a clock stepped forward does the same with CLOCK_SET;
* a clock stepped back closes the interval in progress (CLOCK_SET) and
  re-enters the interval of the new time; the store merges a re-entered
  interval into the one it already holds (deltas add up), and every interval
  re-entered before the clock catches up is flagged CLOCK_SET.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from s8000_engine.config.demand import RECORDING_INTERVALS
from s8000_engine.metering.arrays import FloatArray, IntArray
from s8000_engine.metering.demand import DemandCalculator
from s8000_engine.metering.meter import Meter, Readings
from s8000_engine.storage.store import Flag, IntervalRecord, PointRecord


class IntervalRecorder:
    """Builds interval records for one meter."""

    def __init__(self, meter: Meter, interval_minutes: int, *, max_fill: int = 11520) -> None:
        if interval_minutes not in RECORDING_INTERVALS:
            raise ValueError(
                f"recording interval must be one of {', '.join(map(str, RECORDING_INTERVALS))} "
                f"minutes, not {interval_minutes}"
            )
        self.length = interval_minutes * 60
        self.points = meter.points
        self.max_fill = max_fill
        # The S8000 is powered from its sense voltage: without it, it is off.
        self._powered = 0.5 * meter.config.nominal_voltage * meter.config.pt_ratio
        self._element_point = meter.element_point
        self._element_phase = np.array([p.row for p in meter.element_phase], dtype=np.int64)
        self._element_ct = meter.element_ct
        has = np.zeros((self.points, 3), dtype=bool)
        has[self._element_point, self._element_phase] = True
        self._has_phase = has
        self.start: int | None = None
        self._reset_accumulators()
        self._start_registers = np.zeros((self.points, 4), dtype=np.int64)
        self._registers = np.zeros((self.points, 4), dtype=np.int64)
        self._pulses_start = [0, 0]
        self._pulses = [0, 0]
        self._demand_seen: float | None = None
        self._reentering_until: float | None = None
        self.pending_length: int | None = None
        """A new recording interval (seconds), taking effect at the first
        interval end that it divides, so keys of two lengths never overlap."""

    def _reset_accumulators(self) -> None:
        self._flags = Flag(0)
        self._covered = 0.0
        self._synced = 0.0
        self._v = np.zeros(3)
        self._f = 0.0
        self._p = np.zeros((self.points, 3))
        self._i = np.zeros((self.points, 3))
        self._peak = np.full(self.points, math.nan)
        self._peak_time = np.full(self.points, math.nan)

    def interval_of(self, t: float) -> int:
        """Start of the interval holding UTC time t."""
        return math.floor(t / self.length) * self.length

    # -- driving --------------------------------------------------------------------

    def begin(self, t: float, registers: IntArray, pulses: list[int], flags: Flag) -> None:
        """Start recording at t (first start, or after a restore), with these flags."""
        self.start = self.interval_of(t)
        self._reset_accumulators()
        self._flags = flags
        self._start_registers = np.array(registers[:, :4], dtype=np.int64)
        self._registers = self._start_registers.copy()
        self._pulses_start = list(pulses)
        self._pulses = list(pulses)

    def add(
        self, window: Readings, demand: DemandCalculator, pulses: list[int]
    ) -> list[IntervalRecord]:
        """Record one metering window; return the intervals it closed."""
        if self.start is None:
            raise RuntimeError("begin() first")
        middle = window.time - window.duration / 2
        closed = self._close_until(middle, Flag(0)) if middle >= self.start + self.length else []
        d = window.duration
        # Coverage decides POWER_OFF (see _record): a window counts when the
        # meter had its voltage; averages come from synchronised windows.
        if float(window.voltage.max()) >= self._powered:
            self._covered += d
        if window.voltage_valid:
            self._synced += d
            self._v += window.voltage * d
            self._f += window.frequency * d
            np.add.at(self._p, (self._element_point, self._element_phase), window.element_power * d)
            np.add.at(
                self._i,
                (self._element_point, self._element_phase),
                window.current[self._element_ct] * d,
            )
        if self._reentering_until is not None:
            if middle >= self._reentering_until:
                self._reentering_until = None
            else:
                self._flags |= Flag.CLOCK_SET
        self._registers = np.array(window.registers[:, :4], dtype=np.int64)
        self._pulses = list(pulses)
        self._note_demand(demand)
        return closed

    def gap(
        self, until: float, registers: IntArray, pulses: list[int], flag: Flag
    ) -> list[IntervalRecord]:
        """Nothing was metered from the last window up to ``until`` (an outage,
        or a clock stepped forward): flag and fill the intervals it spans."""
        if self.start is None:
            raise RuntimeError("begin() first")
        self._flags |= flag
        self._registers = np.array(registers[:, :4], dtype=np.int64)
        self._pulses = list(pulses)
        if until < self.start + self.length:
            return []
        return self._close_until(until, flag)

    def clock_set_back(self, new: float, old: float) -> list[IntervalRecord]:
        """The clock went from ``old`` back to ``new``: close the interval in
        progress and re-enter the one holding ``new``."""
        if self.start is None:
            raise RuntimeError("begin() first")
        self._flags |= Flag.CLOCK_SET
        record = self._record()
        self._start_registers = self._registers.copy()
        self._pulses_start = list(self._pulses)
        self.start = self.interval_of(new)
        self._reset_accumulators()
        self._flags = Flag.CLOCK_SET
        self._reentering_until = old
        self._demand_seen = None
        return [record]

    def set_minutes(self, minutes: int) -> None:
        """Change the recording interval from the next end both lengths share."""
        if minutes not in RECORDING_INTERVALS:
            raise ValueError(f"recording interval must be one of {RECORDING_INTERVALS}")
        self.pending_length = None if minutes * 60 == self.length else minutes * 60

    def flag(self, flag: Flag) -> None:
        """Flag the interval in progress (e.g. CONFIG_CHANGED)."""
        self._flags |= flag

    # -- closing ----------------------------------------------------------------------

    def _close_until(self, t: float, fill_flag: Flag) -> list[IntervalRecord]:
        """Close the interval in progress and every interval before the one holding t."""
        assert self.start is not None
        records = [self._record()]
        self._start_registers = self._registers.copy()
        self._pulses_start = list(self._pulses)
        next_start = self.start + self.length
        switched = self.pending_length is not None and next_start % self.pending_length == 0
        if switched:
            assert self.pending_length is not None
            self.length, self.pending_length = self.pending_length, None
        target = self.interval_of(t)
        # Empty intervals in between (only the most recent max_fill are kept).
        first_fill = max(next_start, target - self.max_fill * self.length)
        records.extend(
            self._empty(start, fill_flag) for start in range(first_fill, target, self.length)
        )
        self.start = target
        self._reset_accumulators()
        # After a gap the new interval's beginning was not metered either.
        self._flags = fill_flag | (Flag.CONFIG_CHANGED if switched else Flag(0))
        return records

    def _empty(self, start: int, flag: Flag) -> IntervalRecord:
        registers = self._registers.tolist()
        return IntervalRecord(
            start=start,
            length=self.length,
            flags=flag,
            covered=0.0,
            voltage=[None, None, None],
            frequency=None,
            pulses=list(self._pulses),
            pulse_deltas=[0, 0],
            points=[
                PointRecord(point=p, registers=registers[p], deltas=[0, 0, 0, 0])
                for p in range(self.points)
            ],
        )

    def _record(self) -> IntervalRecord:
        assert self.start is not None
        flags = self._flags
        if self._covered < self.length - 1.0 and not flags & Flag.CLOCK_SET:
            flags |= Flag.POWER_OFF
        covered = self._synced
        deltas = (self._registers - self._start_registers).tolist()
        registers = self._registers.tolist()
        points = []
        for p in range(self.points):
            has = self._has_phase[p]
            points.append(
                PointRecord(
                    point=p,
                    registers=registers[p],
                    deltas=deltas[p],
                    peak_demand_w=None if math.isnan(self._peak[p]) else float(self._peak[p]),
                    peak_demand_time=None
                    if math.isnan(self._peak_time[p])
                    else float(self._peak_time[p]),
                    power_w=[
                        float(self._p[p, k] / covered) if has[k] and covered > 0 else None
                        for k in range(3)
                    ],
                    current_a=[
                        float(self._i[p, k] / covered) if has[k] and covered > 0 else None
                        for k in range(3)
                    ],
                )
            )
        return IntervalRecord(
            start=self.start,
            length=self.length,
            flags=flags,
            covered=min(self._covered, float(self.length)),
            voltage=[float(v / covered) if covered > 0 else None for v in self._v],
            frequency=self._f / covered if covered > 0 else None,
            pulses=list(self._pulses),
            pulse_deltas=[b - a for a, b in zip(self._pulses_start, self._pulses, strict=True)],
            points=points,
        )

    def _note_demand(self, demand: DemandCalculator) -> None:
        when = demand.demand_time
        if when is None or when == self._demand_seen:
            return
        self._demand_seen = when
        assert self.start is not None
        if not self.start < when <= self.start + self.length:
            return
        values = demand.demand_w
        better = ~np.isnan(values) & (np.isnan(self._peak) | (values > self._peak))
        self._peak = np.where(better, values, self._peak)
        self._peak_time = np.where(better, when, self._peak_time)

    # -- persistence ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The interval in progress, for the checkpoint."""

        def nan_free(values: FloatArray) -> list[Any]:
            return [None if math.isnan(x) else float(x) for x in values.ravel()]

        return {
            "length": self.length,
            "start": self.start,
            "flags": int(self._flags),
            "covered": self._covered,
            "synced": self._synced,
            "v": self._v.tolist(),
            "f": self._f,
            "p": self._p.tolist(),
            "i": self._i.tolist(),
            "peak": nan_free(self._peak),
            "peak_time": nan_free(self._peak_time),
            "start_registers": self._start_registers.tolist(),
            "registers": self._registers.tolist(),
            "pulses_start": self._pulses_start,
            "pulses": self._pulses,
            "demand_seen": self._demand_seen,
            "reentering_until": self._reentering_until,
            "pending_length": self.pending_length,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Continue the interval in progress from a checkpoint."""
        wanted = self.length
        # Go on with the interval in progress at its own length; a new length
        # takes effect at an end both share.
        self.length = int(data["length"])
        pending = data.get("pending_length")
        self.pending_length = int(pending) if pending else None
        if wanted != self.length:
            self.pending_length = wanted
        self.start = data["start"]
        self._flags = Flag(data["flags"])
        self._covered = float(data["covered"])
        self._synced = float(data["synced"])
        self._v = np.array(data["v"], dtype=np.float64)
        self._f = float(data["f"])
        self._p = np.array(data["p"], dtype=np.float64).reshape(self.points, 3)
        self._i = np.array(data["i"], dtype=np.float64).reshape(self.points, 3)
        self._peak = np.array(
            [math.nan if x is None else x for x in data["peak"]], dtype=np.float64
        )
        self._peak_time = np.array(
            [math.nan if x is None else x for x in data["peak_time"]], dtype=np.float64
        )
        self._start_registers = np.array(data["start_registers"], dtype=np.int64)
        self._registers = np.array(data["registers"], dtype=np.int64)
        self._pulses_start = list(data["pulses_start"])
        self._pulses = list(data["pulses"])
        self._demand_seen = data["demand_seen"]
        self._reentering_until = data["reentering_until"]
