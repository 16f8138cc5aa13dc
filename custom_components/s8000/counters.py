"""Energy totals that never dip and never spike.

The meter's energy registers only ever grow: the engine refuses to write a
smaller value.  A value that goes down or leaps ahead is therefore either a
bad read (a register that came back garbled, another device answering) or a
real discontinuity: the meter's memory was cleared, the meter was replaced by
one with the same serial number, a 64-bit register wrapped.

Home Assistant's Energy dashboard sums the changes of a ``total_increasing``
sensor, and treats any decrease as a new meter cycle.  Passing a bad read
through would add a spike, or a whole meter's lifetime, to one hour.  So each
counter goes through a :class:`CounterGuard`:

* a read that is plausible (not below the last one, and not above it by more
  energy than the point could have metered since, at twice its largest
  power) is accepted;
* anything else makes the counter unavailable (``None``) and is held as a
  *candidate*.  If the next read continues from the candidate plausibly, the
  discontinuity was real: it is confirmed, the total continues from where it
  was (an offset absorbs the step, so nothing reaches the statistics), and the
  caller raises a repair issue.  If the next read continues the old series
  instead, the candidate was a glitch and is forgotten.

The state is a plain dictionary so it can be stored with the config entry's
data and survive a restart: a meter cleared while Home Assistant was down is
caught on the first poll after it comes back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Final

from s8000_engine.client import MeterData, PointData

#: Energy (kWh) a counter may gain beyond its rate bound: a few register steps.
SLACK_KWH = 0.01
#: The shortest time a rate bound covers, so two polls a millisecond apart
#: still allow the meter's one-second resolution.
MIN_ELAPSED_S = 5.0
#: The voltage a counter's rate bound assumes at least: the largest
#: line-to-line voltage of a direct-connected S8000 service.  A service on
#: PTs reports its primary voltages, and the bound follows them.
MAX_VOLTS: Final = 600.0


def max_kw(point: PointData, elements: int, volts: float) -> float | None:
    """The largest power a point can meter, from its CT rating (None: no rating known)."""
    if not point.ct_primary_a:
        return None
    return elements * point.ct_primary_a * volts / 1000.0


def bound_volts(data: MeterData) -> float:
    """The voltage the rate bounds use: what the meter measures, with room."""
    measured = [v for v in (*data.voltage.values(), *data.line_voltage.values()) if v]
    return max([MAX_VOLTS, *(1.2 * v for v in measured)])


def max_energy(kw: float, seconds: float) -> float:
    """The most energy (kWh) a counter bounded by ``kw`` may gain in
    ``seconds``: twice what that power meters, and a few register steps.

    The readings' guard and the backfill's check of the meter's records
    both use it, so a record is held to the bound a live reading is."""
    return 2.0 * kw * max(seconds, MIN_ELAPSED_S) / 3600.0 + SLACK_KWH


class Outcome(StrEnum):
    """What a guard made of one reading."""

    ACCEPTED = "accepted"
    HELD = "held"  # unavailable: waiting for the next read to tell
    RESET = "reset"  # a confirmed step down (cleared memory, a wrap)
    JUMP = "jump"  # a confirmed step up (a register preset, a swapped meter)


@dataclass(slots=True)
class CounterState:
    """What a guard remembers of one counter (JSON-friendly)."""

    raw: float | None = None  # the last accepted register value (kWh)
    utc: float | None = None  # the meter time of that value (s)
    offset: float = 0.0  # added to the register to continue the total
    candidate: float | None = None  # a held value, waiting to be confirmed
    candidate_utc: float | None = None
    steps: int = 0  # confirmed discontinuities so far


@dataclass(frozen=True, slots=True)
class Verdict:
    """One reading's outcome: the total to show (None: unavailable)."""

    outcome: Outcome
    total: float | None
    previous_raw: float | None = None  # for RESET/JUMP: the register before the step
    raw: float | None = None  # for RESET/JUMP: the register after it


class CounterGuard:
    """Guards the energy counters of one meter, keyed by name.

    ``max_kw`` bounds each counter's rate of growth, ``None`` meaning
    unbounded (a counter with no known rating is only checked for going
    down)."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.counters: dict[str, CounterState] = {}
        for key, value in (state or {}).items():
            try:
                self.counters[key] = CounterState(**value)
            except TypeError:  # stored by another version: start that counter afresh
                continue

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """The state, to store."""
        return {key: asdict(state) for key, state in self.counters.items()}

    def total(self, key: str) -> float | None:
        """The counter's last accepted total, or None."""
        state = self.counters.get(key)
        if state is None or state.raw is None:
            return None
        return state.raw + state.offset

    def rebase(self, key: str, raw: float | None, utc: float) -> None:
        """Continue counter ``key`` from ``raw`` with no step: the register it
        reads changed on purpose (a point's CT marked reversed, or no more)."""
        state = self.counters.get(key)
        if raw is None or state is None or state.raw is None:
            return
        state.offset += state.raw - raw
        state.raw, state.utc = raw, utc
        state.candidate = state.candidate_utc = None

    def check(self, key: str, raw: float | None, utc: float, max_kw: float | None) -> Verdict:
        """Judge one reading of counter ``key`` made at meter time ``utc``."""
        state = self.counters.setdefault(key, CounterState())
        if raw is None:
            return Verdict(Outcome.HELD, None)
        if state.raw is None or state.utc is None:
            state.raw, state.utc = raw, utc
            return Verdict(Outcome.ACCEPTED, raw + state.offset)
        if _plausible(state.raw, state.utc, raw, utc, max_kw):
            state.raw, state.utc = raw, utc
            state.candidate = state.candidate_utc = None
            return Verdict(Outcome.ACCEPTED, raw + state.offset)
        if (
            state.candidate is not None
            and state.candidate_utc is not None
            and _plausible(state.candidate, state.candidate_utc, raw, utc, max_kw)
        ):
            # Two reads agree on the new series: a real step.  The total
            # continues from the last one shown, plus what was metered
            # since the step.
            previous = state.raw
            outcome = Outcome.RESET if state.candidate < previous else Outcome.JUMP
            state.offset += previous - state.candidate
            state.raw, state.utc = raw, utc
            state.candidate = state.candidate_utc = None
            state.steps += 1
            return Verdict(outcome, raw + state.offset, previous_raw=previous, raw=raw)
        state.candidate, state.candidate_utc = raw, utc
        return Verdict(Outcome.HELD, None)


def _plausible(last: float, last_utc: float, raw: float, utc: float, max_kw: float | None) -> bool:
    """Whether ``raw`` can follow ``last``: not lower, and not more above it
    than ``max_kw`` could meter in the time between (twice over)."""
    if raw < last:
        return False
    if max_kw is None:
        return True
    return raw - last <= max_energy(max_kw, utc - last_utc)
