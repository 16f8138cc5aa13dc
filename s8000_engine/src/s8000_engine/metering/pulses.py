"""The meter's two pulse inputs: contact closures counted into a named quantity.

The Series 8000 has two *Pulse In* terminal blocks (:data:`PULSE_INPUTS`).  Each
counts a dry or solid-state **form A** contact (2-wire, normally open): one pulse
per open → closed transition.  The user guide specifies a 10 Hz maximum pulse
frequency and a 20 ms minimum pulse width.  A scale factor turns the count into
units of a user-named quantity (0.01 m³ of water per pulse, 1 Wh per pulse, ...);
see :class:`PulseInputConfig`.

How a :class:`PulseInput` counts
================================

**Input.**  Either the contact level sampled at a fixed rate (:meth:`PulseInput.feed`,
``True`` = contact closed, typically 1 kHz or more), or the times of the level's
transitions (:meth:`PulseInput.feed_edges`, for simulators).  Both are streams that
arrive in pieces over many calls; the pieces form one contiguous stream, and all
state (including a burst of bounce or a pulse that straddles a boundary) carries
over, so the result never depends on how the stream was cut.  An input takes one
kind of stream for its whole life.

**The initial level.**  A fresh input has no history: the level of the first sample
(or, for transitions, the level *before* the first transition) is taken as the
contact's settled level and is not itself a transition.  A contact that is already
closed when the stream starts therefore yields no pulse for that closure, since its
closing edge was never seen.

**Debouncing (bounce_s, default 5 ms).**  The raw level goes through a stable-state
debouncer.  A *run* is a stretch of constant raw level; a run *holds* when it lasts
at least ``bounce_s``.  When the raw level leaves the settled level a *burst*
begins, at the time of that first departure.  The burst ends at the first run that
holds:

* if that run has the new level, the contact has changed: the debounced transition
  is accepted, **timestamped at the start of the burst** (when the new level first
  appeared), so 1 to 5 ms of chatter around a real transition is one transition at
  the real transition's time, and the chatter shifts neither the pulse width nor
  the interval between pulses;
* if that run has the settled level again, the burst was a glitch and is dropped
  without trace (it is bounce, not an error).

In terms of transitions: a transition followed by its reverse within ``bounce_s``
is dropped together with that reverse; in a burst, the first departure survives
and the reversals after it are what is dropped.  A run of exactly ``bounce_s``
holds.  With ``bounce_s = 0`` every transition is taken as it comes.

**Pulse rules.**  After debouncing, every closed period is a candidate pulse,
dated by its closing edge (form A).  Its width is only known when it opens, so a
candidate is decided at its (debounced) opening edge; one that is still closed at
the end of the data so far stays pending and is not in :attr:`PulseInput.count`
yet.  A candidate is **rejected**, adding one to :attr:`PulseInput.errors`
instead of to :attr:`PulseInput.count`, when

* it was closed for less than ``min_pulse_width_s`` (default 20 ms), or
* its closing edge comes less than ``1 / max_rate_hz`` (default 0.1 s) after the
  closing edge of the previous *accepted* pulse.

Both comparisons allow a tolerance so that pulses exactly at the specification
pass (20 ms closed / 80 ms open at exactly 10 Hz counts every pulse): one sample
period for sampled input, and ``resolution_s`` (default 1 µs) for transition
times.  Accepted pulses set :attr:`PulseInput.last_pulse_time` to their closing
edge; :attr:`PulseInput.value` is ``count * scale``.

**The clock.**  For samples, the time of sample *k* of the stream is
``t0 + k / sample_rate``, where ``t0`` is the first chunk's ``start_time`` (default
0.0).  Later chunks must keep the sample rate and continue where the previous chunk
ended (``start_time`` may be given and must then agree within half a sample).
Transition times are seconds on the caller's clock and must increase, also across
calls.  All reported times are on that stream clock.

**Cost.**  Samples are never looked at one by one in Python: numpy finds the raw
transitions of a chunk (``np.diff``/``np.flatnonzero``) and only those are
processed, so a day of 1 kHz samples costs about as much as its transitions.

**Persistence.**  :meth:`PulseInput.to_dict` returns the complete state as a JSON
value for a store that survives power cuts, and :meth:`PulseInput.from_dict`
restores it; a stream interrupted by a save and a restore ends with exactly the
counts of an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, NamedTuple, cast

import numpy as np
from numpy.typing import NDArray

from s8000_engine.config.pulses import DEFAULT_RESOLUTION_S, PulseInputConfig

__all__ = [
    "PulseInput",
]

_EPSILON_S: Final = 1e-9
"""Slack on every time comparison, far below any sample period."""
_STATE_VERSION: Final = 1

type _Mode = Literal["samples", "edges"]


# --------------------------------------------------------------------------- counting


class _Limits(NamedTuple):
    """The thresholds of one call, in the stream's ticks, slack included."""

    hold: float
    min_width: float
    min_interval: float


class PulseInput:
    """One pulse input: debounces contact levels and counts form A pulses.

    See the module documentation for the exact rules.  Feed it either sampled
    levels (:meth:`feed`) or transition times (:meth:`feed_edges`), then read
    :attr:`count`, :attr:`errors`, :attr:`value` and :attr:`last_pulse_time`.
    """

    __slots__ = (
        "_burst",
        "_closed_at",
        "_config",
        "_count",
        "_errors",
        "_last_accepted",
        "_last_change",
        "_last_edge",
        "_mode",
        "_origin",
        "_position",
        "_raw",
        "_sample_rate",
        "_stable",
    )

    def __init__(self, config: PulseInputConfig | None = None) -> None:
        """Create an input with no history; ``config`` defaults to the defaults."""
        self._config = PulseInputConfig() if config is None else config
        # The stream: its kind, its clock and how far it has been seen.  Times
        # inside are "ticks": sample numbers for samples, seconds for edges.
        self._mode: _Mode | None = None
        self._sample_rate: float | None = None
        self._origin = 0.0
        self._position = 0.0
        self._last_edge: float | None = None
        # The debouncer: raw and settled level, the current burst, the last change.
        self._raw: bool | None = None
        self._stable: bool | None = None
        self._burst: float | None = None
        self._last_change = 0.0
        # The pulses.
        self._closed_at: float | None = None
        self._last_accepted: float | None = None
        self._count = 0
        self._errors = 0

    # ----------------------------------------------------------------------- readings

    @property
    def config(self) -> PulseInputConfig:
        """The input's settings."""
        return self._config

    @property
    def count(self) -> int:
        """Accepted pulses so far."""
        return self._count

    @property
    def errors(self) -> int:
        """Rejected pulses so far (too short, or too soon after the previous one)."""
        return self._errors

    @property
    def value(self) -> float:
        """The counted quantity: ``count * scale``, in the configured unit."""
        return self._count * self._config.scale

    @property
    def last_pulse_time(self) -> float | None:
        """Closing-edge time of the last accepted pulse on the stream clock, or None."""
        if self._last_accepted is None:
            return None
        return self._time(self._last_accepted)

    @property
    def closed(self) -> bool | None:
        """The debounced contact level (True = closed), or None before any input."""
        return self._stable

    @property
    def sample_rate(self) -> float | None:
        """The sample rate of a sampled stream, or None."""
        return self._sample_rate

    @property
    def stream_time(self) -> float | None:
        """The stream time up to which input has been seen, or None before any.

        For samples this is where the next chunk starts.
        """
        if self._mode is None:
            return None
        return self._time(self._position)

    def _tick_s(self) -> float:
        return 1.0 if self._sample_rate is None else 1.0 / self._sample_rate

    def _time(self, tick: float) -> float:
        if self._sample_rate is None:
            return self._origin + tick
        return self._origin + tick / self._sample_rate

    # ----------------------------------------------------------------------- sampled input

    def feed(
        self,
        levels: NDArray[np.bool_] | Sequence[bool],
        sample_rate: float,
        start_time: float | None = None,
    ) -> int:
        """Process the next chunk of sampled contact levels (True = closed).

        ``start_time`` is the time of the chunk's first sample; by default the
        chunk continues the previous one (the first chunk starts at 0.0).
        Returns the number of pulses accepted during this call.

        Raises :class:`ValueError` for a non-positive or changed ``sample_rate``,
        a ``start_time`` that does not continue the previous chunk (within half
        a sample), input that is not a 1-D boolean array, or an input already
        fed with :meth:`feed_edges`.
        """
        rate = _real("sample_rate", sample_rate)
        if not rate > 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
        if self._mode == "edges":
            raise ValueError("this pulse input is fed transition times (feed_edges), not samples")
        if self._sample_rate is not None and rate != self._sample_rate:
            raise ValueError(
                f"sample_rate changed from {self._sample_rate} Hz to {rate} Hz; "
                "a pulse input's stream has one sample rate"
            )
        start = None if start_time is None else _real("start_time", start_time)
        if self._mode is not None and start is not None:
            expected = self._time(self._position)
            if abs(start - expected) > 0.5 / rate:
                raise ValueError(
                    f"start_time {start} s does not continue the previous chunk, "
                    f"which ended at {expected} s"
                )
        samples = np.asarray(levels)
        if samples.ndim != 1:
            raise ValueError(f"levels must be a 1-D array, got shape {samples.shape}")
        if samples.size == 0:  # an empty list has no meaningful dtype
            samples = samples.astype(np.bool_)
        if samples.dtype != np.bool_:
            raise ValueError(f"levels must be boolean (True = closed), got dtype {samples.dtype}")

        if self._mode is None:
            self._mode = "samples"
            self._sample_rate = rate
            self._origin = 0.0 if start is None else start
        if samples.size == 0:
            return 0
        base = int(self._position)
        if self._raw is None:
            self._raw = self._stable = bool(samples[0])
            self._last_change = float(base)
        # Raw transitions, including one between the previous chunk and this one.
        changes = np.flatnonzero(np.diff(samples, prepend=self._raw))
        ticks: list[int] = (changes + base).tolist()
        self._position = float(base + samples.size)
        return self._run(ticks, self._position, tolerance=1.0)

    # ----------------------------------------------------------------------- event input

    def feed_edges(
        self,
        times: NDArray[np.floating[Any]] | Sequence[float],
        closed: NDArray[np.bool_] | Sequence[bool],
        *,
        until: float | None = None,
        resolution_s: float = DEFAULT_RESOLUTION_S,
    ) -> int:
        """Process the next transitions: at ``times[i]`` (s) the level became ``closed[i]``.

        Times must be finite and strictly increasing, also across calls.  An
        entry that does not change the level is ignored; on a fresh input the
        level before the first entry is the opposite of ``closed[0]``.
        ``until`` (default: the last time) says that the level after the last
        transition held at least until then, which lets a final transition be
        confirmed (debounced) and a final pulse be decided now rather than at
        the next call; later times must not be before it.  ``resolution_s`` is
        the tolerance of the width and rate comparisons (for edges taken from
        samples, the sample period makes the result equal to :meth:`feed`'s).
        Returns the number of pulses accepted during this call.
        """
        if self._mode == "samples":
            raise ValueError("this pulse input is fed samples (feed), not transition times")
        stamps = np.asarray(times)
        levels = np.asarray(closed)
        if stamps.ndim != 1 or levels.ndim != 1:
            raise ValueError("times and closed must be 1-D arrays")
        if stamps.shape != levels.shape:
            raise ValueError(f"times and closed differ in length ({stamps.size} and {levels.size})")
        if stamps.size == 0:  # an empty list has no meaningful dtype
            stamps = stamps.astype(np.float64)
            levels = levels.astype(np.bool_)
        if stamps.dtype == np.bool_ or not np.issubdtype(stamps.dtype, np.number):
            raise ValueError(f"times must be numbers (seconds), got dtype {stamps.dtype}")
        if levels.dtype != np.bool_:
            raise ValueError(f"closed must be boolean (True = closed), got dtype {levels.dtype}")
        seconds = stamps.astype(np.float64)
        if not np.isfinite(seconds).all():
            raise ValueError("times must be finite")
        if seconds.size > 1 and not (np.diff(seconds) > 0).all():
            raise ValueError("times must be strictly increasing")
        if seconds.size and self._mode is not None:
            first = float(seconds[0])
            if first < self._position or (self._last_edge is not None and first <= self._last_edge):
                raise ValueError(
                    f"times must continue after the previous call: {first} s is not after "
                    f"{self._time(self._position)} s"
                )
        end = float(seconds[-1]) if seconds.size else self._position
        if until is not None:
            limit = _real("until", until)
            if limit < end or (self._mode is not None and limit < self._position):
                raise ValueError(f"until ({limit} s) is before the last transition time")
            end = limit
        tolerance = _real("resolution_s", resolution_s)
        if tolerance < 0:
            raise ValueError(f"resolution_s must not be negative, got {resolution_s!r}")

        if seconds.size == 0 and until is None:
            return 0
        self._mode = "edges"
        self._position = end
        if seconds.size == 0:
            return self._run([], end, tolerance=tolerance)
        self._last_edge = float(seconds[-1])
        if self._raw is None:
            self._raw = self._stable = not bool(levels[0])
            self._last_change = float(seconds[0])
        before = np.empty_like(levels)
        before[0] = self._raw
        before[1:] = levels[:-1]
        ticks: list[float] = seconds[levels != before].tolist()
        return self._run(ticks, self._position, tolerance=tolerance)

    # ----------------------------------------------------------------------- the machine

    def _run(self, ticks: Iterable[float], until: float, *, tolerance: float) -> int:
        """Debounce raw transitions (each flips the raw level) seen up to ``until``."""
        if self._raw is None:
            return 0
        config = self._config
        tick_s = self._tick_s()
        slack = _EPSILON_S / tick_s
        limits = _Limits(
            hold=config.bounce_s / tick_s - slack,
            min_width=config.min_pulse_width_s / tick_s - tolerance - slack,
            min_interval=1.0 / (config.max_rate_hz * tick_s) - tolerance - slack,
        )
        before = self._count
        raw = self._raw
        burst = self._burst
        last_change = self._last_change
        for tick in ticks:
            if burst is not None and tick - last_change >= limits.hold:
                # The run that ends here held: the burst is over.
                self._settle(raw, burst, limits)
                burst = None
            if burst is None:
                burst = tick  # the raw level leaves the settled level
            raw = not raw
            last_change = tick
        if burst is not None and until - last_change >= limits.hold:
            self._settle(raw, burst, limits)
            burst = None
        self._raw = raw
        self._burst = burst
        self._last_change = last_change
        return self._count - before

    def _settle(self, level: bool, burst: float, limits: _Limits) -> None:
        """The burst that began at tick ``burst`` ended in a run of ``level`` that held."""
        if level == self._stable:
            return  # back where it was: a glitch
        self._stable = level
        if level:
            self._closed_at = burst
            return
        closed_at = self._closed_at
        self._closed_at = None
        if closed_at is None:
            return  # closed since before the stream began: no closing edge seen
        too_short = burst - closed_at < limits.min_width
        too_soon = (
            self._last_accepted is not None
            and closed_at - self._last_accepted < limits.min_interval
        )
        if too_short or too_soon:
            self._errors += 1
        else:
            self._count += 1
            self._last_accepted = closed_at

    # ----------------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """Return the complete state as a JSON-serialisable dict (for :meth:`from_dict`)."""
        return {
            "version": _STATE_VERSION,
            "mode": self._mode,
            "sample_rate": self._sample_rate,
            "origin": self._origin,
            "position": self._position,
            "last_edge": self._last_edge,
            "raw": self._raw,
            "stable": self._stable,
            "burst": self._burst,
            "last_change": self._last_change,
            "closed_at": self._closed_at,
            "last_accepted": self._last_accepted,
            "count": self._count,
            "errors": self._errors,
        }

    @classmethod
    def from_dict(cls, config: PulseInputConfig, data: Mapping[str, Any]) -> PulseInput:
        """Restore an input saved by :meth:`to_dict`, with the settings ``config``.

        Raises :class:`ValueError` if ``data`` is not such a state.
        """
        if data.get("version") != _STATE_VERSION:
            raise ValueError(f"pulse input state: unsupported version {data.get('version')!r}")
        mode = data.get("mode")
        if mode not in {None, "samples", "edges"}:
            raise ValueError(f"pulse input state: unknown mode {mode!r}")
        pulse_input = cls(config)
        pulse_input._mode = cast("_Mode | None", mode)
        pulse_input._sample_rate = _state_optional_float(data, "sample_rate")
        if (mode == "samples") != (pulse_input._sample_rate is not None):
            raise ValueError("pulse input state: 'sample_rate' does not match 'mode'")
        pulse_input._origin = _state_float(data, "origin")
        pulse_input._position = _state_float(data, "position")
        pulse_input._last_edge = _state_optional_float(data, "last_edge")
        pulse_input._raw = _state_bool(data, "raw")
        pulse_input._stable = _state_bool(data, "stable")
        if (pulse_input._raw is None) != (pulse_input._stable is None):
            raise ValueError("pulse input state: 'raw' and 'stable' must both be set or unset")
        pulse_input._burst = _state_optional_float(data, "burst")
        pulse_input._last_change = _state_float(data, "last_change")
        pulse_input._closed_at = _state_optional_float(data, "closed_at")
        pulse_input._last_accepted = _state_optional_float(data, "last_accepted")
        pulse_input._count = _state_int(data, "count")
        pulse_input._errors = _state_int(data, "errors")
        return pulse_input


# --------------------------------------------------------------------------- helpers


def _real(name: str, value: object) -> float:
    """``value`` as a finite float, or ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def _state_float(data: Mapping[str, Any], key: str) -> float:
    try:
        return _real(key, data.get(key))
    except ValueError as exc:
        raise ValueError(f"pulse input state: {exc}") from None


def _state_optional_float(data: Mapping[str, Any], key: str) -> float | None:
    return None if data.get(key) is None else _state_float(data, key)


def _state_bool(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"pulse input state: {key} must be true, false or null, got {value!r}")


def _state_int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"pulse input state: {key} must be a count, got {value!r}")
    return value
