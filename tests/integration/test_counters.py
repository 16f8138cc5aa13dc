"""The counter guard on its own: what is accepted, held, and confirmed."""

from __future__ import annotations

import pytest

from custom_components.s8000.counters import CounterGuard, Outcome

KW = 10.0  # the point's rate bound: 10 kW, so 20 kWh in an hour at most (twice over)


def test_growth_within_the_rate_bound_is_accepted() -> None:
    guard = CounterGuard()
    assert guard.check("e", 100.0, 0.0, KW).total == 100.0
    verdict = guard.check("e", 110.0, 3600.0, KW)
    assert verdict.outcome is Outcome.ACCEPTED
    assert verdict.total == 110.0
    assert guard.total("e") == 110.0


def test_a_single_glitch_is_held_and_forgotten() -> None:
    guard = CounterGuard()
    guard.check("e", 100.0, 0.0, KW)
    assert guard.check("e", 3.0, 10.0, KW).outcome is Outcome.HELD  # a garbled read
    assert guard.check("e", 100.01, 20.0, KW).total == 100.01  # the old series goes on
    spike = guard.check("e", 9e9, 30.0, KW)
    assert spike.outcome is Outcome.HELD
    assert spike.total is None
    assert guard.check("e", 100.02, 40.0, KW).total == 100.02
    assert guard.counters["e"].steps == 0


def test_a_confirmed_reset_continues_the_total() -> None:
    guard = CounterGuard()
    guard.check("e", 100.0, 0.0, KW)
    assert guard.check("e", 0.0, 10.0, KW).outcome is Outcome.HELD
    verdict = guard.check("e", 0.5, 300.0, KW)
    assert verdict.outcome is Outcome.RESET
    assert verdict.previous_raw == 100.0
    assert verdict.raw == 0.5
    assert verdict.total == 100.5  # continues: 100 + what was metered since the reset
    assert guard.check("e", 1.0, 600.0, KW).total == 101.0


def test_a_confirmed_jump_does_not_spike_the_total() -> None:
    guard = CounterGuard()
    guard.check("e", 100.0, 0.0, KW)
    guard.check("e", 5000.0, 10.0, KW)
    verdict = guard.check("e", 5000.05, 20.0, KW)
    assert verdict.outcome is Outcome.JUMP
    assert verdict.total == pytest.approx(100.05)


def test_a_held_value_that_does_not_continue_is_replaced() -> None:
    guard = CounterGuard()
    guard.check("e", 100.0, 0.0, KW)
    guard.check("e", 5.0, 10.0, KW)
    assert guard.check("e", 2.0, 20.0, KW).outcome is Outcome.HELD  # lower than the held one
    assert guard.check("e", 2.01, 30.0, KW).outcome is Outcome.RESET


def test_no_value_is_held_and_an_unbounded_counter_only_checks_going_down() -> None:
    guard = CounterGuard()
    assert guard.check("p", None, 0.0, None).outcome is Outcome.HELD
    assert guard.check("p", 1.0, 0.0, None).outcome is Outcome.ACCEPTED
    assert guard.check("p", 1e12, 1.0, None).outcome is Outcome.ACCEPTED
    assert guard.total("missing") is None


def test_the_state_survives_a_restart_and_ignores_a_foreign_one() -> None:
    guard = CounterGuard()
    guard.check("e", 100.0, 0.0, KW)
    guard.check("e", 0.0, 300.0, KW)
    guard.check("e", 0.25, 600.0, KW)
    again = CounterGuard({**guard.as_dict(), "old": {"not": "a counter"}})
    assert again.total("e") == guard.total("e") == 100.25
    assert "old" not in again.counters
    assert again.check("e", 0.5, 900.0, KW).total == 100.5


def test_a_rebased_counter_continues_its_total() -> None:
    guard = CounterGuard()
    guard.rebase("a", 5.0, 0.0)  # nothing to continue yet
    assert guard.check("a", 1.0, 0.0, None).total == 1.0
    guard.rebase("a", None, 10.0)  # no reading: nothing changes
    guard.rebase("a", 50.0, 10.0)  # now reads another register
    verdict = guard.check("a", 50.5, 20.0, None)
    assert verdict.outcome is Outcome.ACCEPTED
    assert verdict.total == pytest.approx(1.5)
