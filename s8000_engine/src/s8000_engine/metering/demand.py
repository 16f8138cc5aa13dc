"""Power demand: block and sliding window demand, for every meter point at once.

The Series 8000 configuration tool offers *Demand Interval Setup* (**Block
Demand** or **Sliding Window Demand**) and a *Demand Interval in Minutes*.
Demand is the average power over the demand interval: the active energy
delivered during the interval divided by the interval's length.  This module
computes it for all ``channels`` meter points of a meter together, with numpy
``float64`` arrays of shape ``(channels,)``; no work is done per meter point in
Python.

Configuration
-------------
:class:`DemandConfig` holds the demand type, the interval (1, 5, 10, 15, 30 or
60 minutes) and the subinterval:

- **Block demand** has one subinterval per interval; ``subinterval_minutes``
  may be left out (``None``) or equal the interval, and is stored as the
  interval.
- **Sliding window demand** adds up the last *N* subintervals, *N* = interval /
  subinterval.  The subinterval must divide the interval and be smaller than
  it.  Left out, it is a third of the interval when the interval is divisible
  by 3 (15 → 5 minutes, the North American utility convention; 30 → 10; 60 →
  20) and 1 minute otherwise (5 → 1, 10 → 1).  A 1-minute interval has no
  smaller whole-minute subinterval, so it cannot slide.

:func:`demand_config` validates a mapping (from a configuration file or entry)
with :data:`DEMAND_SCHEMA` and raises :class:`ValueError` naming the offending
field, e.g. ``demand 'interval_minutes': must be one of 1, 5, 10, 15, 30, 60``.

Time and buckets
----------------
Time is UTC epoch seconds (``float``).  Subintervals ("buckets") are aligned to
multiples of the subinterval length on the UTC epoch, so 15-minute blocks end
at :00, :15, :30 and :45 and 5-minute subintervals at every fifth minute,
whatever time the meter started.  Bucket *k* covers ``[k·s, (k+1)·s)`` for a
subinterval of *s* seconds.

Energy in
---------
Demand is computed from **delivered** active energy only: the caller passes,
per span of time, the delivered watt-hours of every meter point (≥ 0; received
energy does not reduce demand) to :meth:`DemandCalculator.add_energy`.  Spans
arrive in time order; one that starts before the last time seen raises
:class:`ValueError` (a clock going backwards is the caller's business).  A
span that crosses bucket boundaries is split between the buckets in
proportion to time, i.e. its power is taken as constant over the span.  A
zero-length span adds its energy to the bucket in progress.

The first call (of :meth:`~DemandCalculator.add_energy` or
:meth:`~DemandCalculator.advance`) starts the clock; the bucket containing
that moment is the first bucket seen.

Closing buckets and producing demand
------------------------------------
A bucket closes when time reaches its end, through a span that ends at or
after it or through :meth:`~DemandCalculator.advance`.

- **Block**: at each interval end, ``demand_w`` = interval energy * 3600 /
  interval seconds.  It changes only at interval ends.
- **Sliding**: at each subinterval end, ``demand_w`` = energy of the last *N*
  subintervals * 3600 / interval seconds.  A value is produced only once *N*
  subintervals have been seen since the clock started; before that
  ``demand_w`` is NaN (not yet available).

``demand_time`` is the end time of the interval the last value covers.  The
peak demand (``peak_w``, per meter point, and ``peak_time``) is updated every
time a demand value is produced (for sliding demand at every subinterval end);
a later equal value does not move the peak's time.  :meth:`reset_peaks`
clears the peaks (NaN) and records ``last_reset``.

``present_w`` is the rising demand of the interval in progress: the energy so
far of the window that will close at the end of the current subinterval (for
block demand, the current interval; for sliding demand, the last *N* - 1
closed subintervals and the current one) over the full interval length.  It
reaches ``demand_w`` at the moment that window closes.

Gaps and partial intervals
--------------------------
Every bucket records the seconds it was *covered* by spans of energy.  Time
that passes without energy — a jump between two spans, or
:meth:`~DemandCalculator.advance` — is not covered: the meter was not metering
(a power failure, a restart).  A bucket with no coverage at all is *missing*
and counts zero energy.  An interval whose coverage falls short of its length
(by more than a millisecond) is **partial**: its demand is still its energy
divided by the **full nominal interval length** (the practice of Echelon
meters, on which the Series 8000 is built), so a partial interval
under-reports rather than extrapolates.  ``demand_partial`` flags the last
value, ``demand_covered_s`` gives its covered seconds and
``demand_missing`` the number of missing subintervals in its window.  The
first interval after the clock starts mid-interval is partial too: starting
at 10:07 with 15-minute block demand, the value at 10:15 covers 8 minutes and
is partial; the one at 10:30 is the first full one.

Cost
----
Each call does a fixed number of numpy operations on arrays of
``channels`` (a sliding window sums its ring of *N* subinterval buckets,
the only buckets kept).  A span or a gap covering many buckets closes at
most *N* + 1 of them one by one: after *N* alike buckets the window, and so
the demand, no longer changes.

Persistence
-----------
:meth:`DemandCalculator.to_dict` returns a JSON-serialisable snapshot (lists,
``None`` for NaN) including the configuration;
:meth:`DemandCalculator.from_dict` restores it and refuses a snapshot taken
with another configuration or number of meter points.  A calculator restored
mid-interval gives exactly the results the original would have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final, Self, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from s8000_engine.config.demand import DemandConfig, _is_whole, demand_config

__all__ = [
    "DemandCalculator",
]


_COVERAGE_TOLERANCE_S: Final = 1e-3
"""An interval covered to within this many seconds of its length is complete."""

_SNAPSHOT_VERSION: Final = 1

type _Floats = NDArray[np.float64]


def _nan_to_none(values: _Floats) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


def _none_to_nan(values: object, channels: int, name: str) -> _Floats:
    if not isinstance(values, list) or len(values) != channels:
        raise ValueError(f"demand snapshot: '{name}' must be a list of {channels} numbers")
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


class DemandCalculator:
    """Block or sliding window demand for ``channels`` meter points.

    See the module documentation for the semantics.  All arrays have shape
    ``(channels,)`` and are returned as copies.
    """

    def __init__(self, config: DemandConfig, channels: int) -> None:
        """Create a calculator with no data yet (the first call starts the clock)."""
        if not isinstance(config, DemandConfig):
            raise TypeError("config must be a DemandConfig")
        if not _is_whole(channels) or channels < 1:
            raise ValueError(f"channels must be a positive integer, not {channels!r}")
        self._config = config
        self._channels = channels
        self._sub_s = config.subinterval_seconds
        self._interval_s = float(config.interval_seconds)
        self._n = config.subintervals
        self._scale = 3600.0 / self._interval_s
        # The clock: last time seen and the index of the bucket in progress.
        self._last: float | None = None
        self._index = 0
        self._cur_energy: _Floats = np.zeros(channels)
        self._cur_cov = 0.0
        # Closed buckets: bucket k lives in slot k % N.
        self._ring_energy: _Floats = np.zeros((self._n, channels))
        self._ring_cov: _Floats = np.zeros(self._n)
        self._seen = 0
        # Outputs.
        self._demand: _Floats = np.full(channels, math.nan)
        self._demand_time: float | None = None
        self._demand_cov = 0.0
        self._demand_missing = 0
        self._peak: _Floats = np.full(channels, math.nan)
        self._peak_time: _Floats = np.full(channels, math.nan)
        self._last_reset: float | None = None

    # ------------------------------------------------------------------ outputs

    @property
    def config(self) -> DemandConfig:
        """The demand settings."""
        return self._config

    @property
    def channels(self) -> int:
        """The number of meter points."""
        return self._channels

    @property
    def last_time(self) -> float | None:
        """The last time seen (epoch seconds), or ``None`` before the clock started."""
        return self._last

    @property
    def demand_w(self) -> _Floats:
        """The demand of the last completed interval (W); NaN until the first."""
        return self._demand.copy()

    @property
    def demand_time(self) -> float | None:
        """The end time of the interval ``demand_w`` covers, or ``None``."""
        return self._demand_time

    @property
    def demand_partial(self) -> bool:
        """Whether that interval was covered by energy for less than its length."""
        return (
            self._demand_time is not None
            and self._demand_cov < self._interval_s - _COVERAGE_TOLERANCE_S
        )

    @property
    def demand_covered_s(self) -> float:
        """The seconds of that interval that were covered by energy (0 before the first)."""
        return self._demand_cov

    @property
    def demand_missing(self) -> int:
        """The number of missing (never covered) subintervals in that interval."""
        return self._demand_missing

    @property
    def present_w(self) -> _Floats:
        """The rising demand of the window in progress: its energy so far / interval (W)."""
        slot = self._index % self._n
        others = np.arange(self._n) != slot
        energy = self._cur_energy + self._ring_energy[others].sum(axis=0)
        return cast("_Floats", energy * self._scale)

    @property
    def peak_w(self) -> _Floats:
        """The highest demand since the last reset (W); NaN before the first value."""
        return self._peak.copy()

    @property
    def peak_time(self) -> _Floats:
        """The end time of the interval of each peak (epoch seconds); NaN if none."""
        return self._peak_time.copy()

    @property
    def last_reset(self) -> float | None:
        """When the peaks were last reset (epoch seconds), or ``None``."""
        return self._last_reset

    # ------------------------------------------------------------------- inputs

    def add_energy(self, start: float, end: float, energy_wh: ArrayLike) -> None:
        """Add the delivered energy (Wh ≥ 0 per meter point) of the span ``[start, end]``.

        Time between the last time seen and ``start`` is a gap (not covered).
        Raises :class:`ValueError` on a wrong shape, a negative or non-finite
        energy, non-finite times, ``end < start``, or ``start`` before the last
        time seen; the calculator is then unchanged.
        """
        energy = np.asarray(energy_wh, dtype=np.float64)
        if energy.shape != (self._channels,):
            raise ValueError(f"energy_wh must have shape ({self._channels},), not {energy.shape}")
        if not np.isfinite(energy).all():
            raise ValueError("energy_wh must be finite (no NaN or infinity)")
        if (energy < 0).any():
            raise ValueError("energy_wh must be delivered energy, ≥ 0")
        start = self._check_time(start, "start")
        end = self._check_time(end, "end")
        if end < start:
            raise ValueError(f"end ({end}) is before start ({start})")
        if self._last is None:
            self._start_clock(start)
        elif start > self._last:
            self._run(self._last, start, None)
        self._run(start, end, energy.copy())

    def advance(self, now: float) -> None:
        """Move the clock to ``now`` without energy, closing the buckets that end by then.

        The time since the last time seen is not covered (the meter was not
        metering).  Before any data this starts the clock.  Raises
        :class:`ValueError` if ``now`` is not finite or before the last time seen.
        """
        now = self._check_time(now, "now")
        if self._last is None:
            self._start_clock(now)
        elif now > self._last:
            self._run(self._last, now, None)

    def reset_peaks(self, now: float) -> None:
        """Clear the peak demands and record ``now`` as ``last_reset``."""
        if not math.isfinite(now):
            raise ValueError("now must be a finite time")
        self._peak.fill(math.nan)
        self._peak_time.fill(math.nan)
        self._last_reset = float(now)

    # ----------------------------------------------------------------- workings

    def _check_time(self, value: float, name: str) -> float:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite time, not {value}")
        if self._last is not None and value < self._last:
            raise ValueError(
                f"{name} ({value}) is before the last time seen ({self._last}); "
                "spans must arrive in time order"
            )
        return value

    def _bucket_of(self, t: float) -> int:
        """The index of the bucket containing ``t``, exact at boundaries."""
        k = math.floor(t / self._sub_s)
        while k * self._sub_s > t:
            k -= 1
        while (k + 1) * self._sub_s <= t:
            k += 1
        return k

    def _start_clock(self, t: float) -> None:
        self._last = t
        self._index = self._bucket_of(t)

    def _add_part(
        self, energy: _Floats | None, a: float, b: float, start: float, end: float
    ) -> None:
        """Add the part ``[a, b]`` of the span ``[start, end]`` to the bucket in progress."""
        if energy is None:
            return
        self._cur_cov += b - a
        if a == start and b == end:
            self._cur_energy += energy
        elif b > a:
            self._cur_energy += energy * ((b - a) / (end - start))

    def _run(self, start: float, end: float, energy: _Floats | None) -> None:
        """Take time from ``start`` (the last time seen) to ``end``, with or without energy."""
        target = self._bucket_of(end)
        if target == self._index:
            self._add_part(energy, start, end, start, end)
            self._last = end
            return
        boundary = float((self._index + 1) * self._sub_s)
        self._add_part(energy, start, boundary, start, end)
        self._close_bucket()
        full = target - self._index
        if full > 0:
            if energy is None:
                self._close_run(full, np.zeros(self._channels), 0.0)
            else:
                share = self._sub_s / (end - start)
                self._close_run(full, energy * share, float(self._sub_s))
        self._add_part(energy, float(target * self._sub_s), end, start, end)
        self._last = end

    def _close_run(self, count: int, energy: _Floats, cov: float) -> None:
        """Close ``count`` alike buckets; after N of them the window no longer changes."""
        for _ in range(min(count, self._n)):
            self._cur_energy = energy.copy()
            self._cur_cov = cov
            self._close_bucket()
        skipped = count - self._n
        if skipped > 0:
            self._index += skipped
            self._seen += skipped
            self._demand_time = float(self._index * self._sub_s)

    def _close_bucket(self) -> None:
        """Close the bucket in progress and produce a demand value if one is due."""
        slot = self._index % self._n
        self._ring_energy[slot] = self._cur_energy
        self._ring_cov[slot] = self._cur_cov
        self._index += 1
        self._seen += 1
        self._cur_energy = np.zeros(self._channels)
        self._cur_cov = 0.0
        if self._seen < self._n:
            return
        when = float(self._index * self._sub_s)
        demand = self._ring_energy.sum(axis=0) * self._scale
        self._demand = demand
        self._demand_time = when
        self._demand_cov = float(self._ring_cov.sum())
        self._demand_missing = int(np.count_nonzero(self._ring_cov == 0.0))
        higher = np.isnan(self._peak) | (demand > self._peak)
        self._peak = np.where(higher, demand, self._peak)
        self._peak_time = np.where(higher, when, self._peak_time)

    # -------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable snapshot of the state (NaN as ``None``)."""
        return {
            "version": _SNAPSHOT_VERSION,
            "config": self._config.to_dict(),
            "channels": self._channels,
            "last_time": self._last,
            "bucket_index": self._index,
            "bucket_energy_wh": self._cur_energy.tolist(),
            "bucket_covered_s": self._cur_cov,
            "ring_energy_wh": self._ring_energy.tolist(),
            "ring_covered_s": self._ring_cov.tolist(),
            "seen": self._seen,
            "demand_w": _nan_to_none(self._demand),
            "demand_time": self._demand_time,
            "demand_covered_s": self._demand_cov,
            "demand_missing": self._demand_missing,
            "peak_w": _nan_to_none(self._peak),
            "peak_time": _nan_to_none(self._peak_time),
            "last_reset": self._last_reset,
        }

    def restart_clock(self) -> None:
        """Forget the buckets in progress, keep demand, peaks and last reset.

        For a clock set back: the next call starts the clock anew, so the
        intervals the clock re-enters are not counted against buckets that
        were already closed."""
        self._last = None
        self._index = 0
        self._cur_energy = np.zeros(self._channels)
        self._cur_cov = 0.0
        self._ring_energy = np.zeros((self._n, self._channels))
        self._ring_cov = np.zeros(self._n)
        self._seen = 0

    @classmethod
    def from_dict(cls, config: DemandConfig, channels: int, data: Mapping[str, Any]) -> Self:
        """Restore a calculator from :meth:`to_dict`'s snapshot.

        Raises :class:`ValueError` if the snapshot was taken with another
        configuration or number of meter points, or is malformed.
        """
        calc = cls(config, channels)
        try:
            if data["version"] != _SNAPSHOT_VERSION:
                raise ValueError(f"demand snapshot: unknown version {data['version']!r}")
            stored = demand_config(data["config"])
            if stored != config:
                raise ValueError(
                    f"demand snapshot: taken with {stored.to_dict()}, not {config.to_dict()}"
                )
            if data["channels"] != channels:
                raise ValueError(
                    f"demand snapshot: taken with {data['channels']} meter points, not {channels}"
                )
            calc._restore(data)
        except (KeyError, TypeError) as err:
            raise ValueError(f"demand snapshot: malformed ({err!r})") from None
        return calc

    def _restore(self, data: Mapping[str, Any]) -> None:
        n, channels = self._n, self._channels
        last = data["last_time"]
        self._last = None if last is None else float(last)
        self._index = int(data["bucket_index"])
        if self._last is not None and self._index != self._bucket_of(self._last):
            raise ValueError("demand snapshot: 'bucket_index' does not match 'last_time'")
        self._cur_energy = _none_to_nan(data["bucket_energy_wh"], channels, "bucket_energy_wh")
        self._cur_cov = float(data["bucket_covered_s"])
        ring = np.array(data["ring_energy_wh"], dtype=np.float64)
        if ring.shape != (n, channels):
            raise ValueError(f"demand snapshot: 'ring_energy_wh' must be {n} * {channels}")
        self._ring_energy = ring
        self._ring_cov = _none_to_nan(data["ring_covered_s"], n, "ring_covered_s")
        self._seen = int(data["seen"])
        self._demand = _none_to_nan(data["demand_w"], channels, "demand_w")
        demand_time = data["demand_time"]
        self._demand_time = None if demand_time is None else float(demand_time)
        self._demand_cov = float(data["demand_covered_s"])
        self._demand_missing = int(data["demand_missing"])
        self._peak = _none_to_nan(data["peak_w"], channels, "peak_w")
        self._peak_time = _none_to_nan(data["peak_time"], channels, "peak_time")
        reset = data["last_reset"]
        self._last_reset = None if reset is None else float(reset)
