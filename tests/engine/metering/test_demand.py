"""Block and sliding window demand (s8000_engine.demand)."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime

import numpy as np
import pytest
from numpy.typing import ArrayLike, NDArray

from s8000_engine.config.demand import DEMAND_SCHEMA, DemandConfig, DemandType, demand_config
from s8000_engine.exceptions import ConfigError
from s8000_engine.metering.demand import DemandCalculator

BLOCK_15 = DemandConfig(DemandType.BLOCK, 15)
SLIDING_15_5 = DemandConfig(DemandType.SLIDING, 15, 5)


def at(hour: int, minute: int, second: int = 0, day: int = 4) -> float:
    """UTC epoch seconds of a time on 2025-03-``day``."""
    return datetime(2025, 3, day, hour, minute, second, tzinfo=UTC).timestamp()


def feed(
    calc: DemandCalculator, start: float, end: float, watts: ArrayLike, step: float = 60.0
) -> None:
    """Add constant power ``watts`` (per channel or one for all) from start to end."""
    power = np.broadcast_to(np.asarray(watts, dtype=np.float64), (calc.channels,))
    t = start
    while t < end:
        u = min(t + step, end)
        calc.add_energy(t, u, power * (u - t) / 3600.0)
        t = u


# --------------------------------------------------------------------------- constant power


@pytest.mark.parametrize(
    "config",
    [
        BLOCK_15,
        SLIDING_15_5,
        DemandConfig(DemandType.BLOCK, 1),
        DemandConfig(DemandType.BLOCK, 60),
        DemandConfig(DemandType.SLIDING, 60, 20),
        DemandConfig(DemandType.SLIDING, 5, 1),
        DemandConfig(DemandType.SLIDING, 30, 15),
    ],
    ids=str,
)
def test_constant_power_gives_exactly_that_demand_after_one_interval(
    config: DemandConfig,
) -> None:
    calc = DemandCalculator(config, 1)
    start = at(10, 0)
    interval = config.interval_minutes * 60
    # 1200 W for 60 s is exactly 20 Wh, and every scale factor 3600/interval is exact.
    feed(calc, start, start + interval - 60, 1200.0)
    assert math.isnan(calc.demand_w[0])
    assert [calc.demand_time] == [None]
    feed(calc, start + interval - 60, start + interval, 1200.0)
    assert calc.demand_w.tolist() == [1200.0]
    assert calc.demand_time == start + interval
    assert calc.demand_partial is False
    assert calc.demand_covered_s == interval
    assert calc.demand_missing == 0
    assert calc.peak_w.tolist() == [1200.0]
    assert calc.peak_time.tolist() == [start + interval]


@pytest.mark.parametrize("config", [BLOCK_15, SLIDING_15_5], ids=str)
def test_constant_odd_power_in_one_second_spans(config: DemandConfig) -> None:
    calc = DemandCalculator(config, 2)
    feed(calc, at(10, 0), at(10, 15), [1234.567, 0.001], step=1.0)
    assert calc.demand_w == pytest.approx([1234.567, 0.001], rel=1e-12)
    assert calc.demand_partial is False
    # The window in progress holds the last N - 1 subintervals and the (empty) current one.
    rising = (config.subintervals - 1) / config.subintervals
    assert calc.present_w == pytest.approx([1234.567 * rising, 0.001 * rising], rel=1e-12)


def test_sliding_demand_is_not_available_before_n_subintervals() -> None:
    calc = DemandCalculator(SLIDING_15_5, 1)
    feed(calc, at(10, 0), at(10, 10), 900.0)
    assert math.isnan(calc.demand_w[0])
    assert calc.demand_time is None
    assert calc.demand_partial is False
    assert math.isnan(calc.peak_w[0])
    assert math.isnan(calc.peak_time[0])
    # The rising demand is already there: 10 of 15 minutes at 900 W.
    assert calc.present_w.tolist() == [600.0]
    feed(calc, at(10, 10), at(10, 15), 900.0)
    assert calc.demand_w.tolist() == [900.0]


# ---------------------------------------------------------------- block: clock-aligned ends


def test_block_demand_updates_only_at_clock_aligned_interval_ends() -> None:
    calc = DemandCalculator(BLOCK_15, 1)
    seen: list[tuple[float, float, bool]] = []
    t = at(10, 7)
    while t < at(10, 45):
        feed(calc, t, t + 30.0, 1200.0)
        t += 30.0
        if calc.demand_time is not None and (not seen or seen[-1][0] != calc.demand_time):
            seen.append((calc.demand_time, float(calc.demand_w[0]), calc.demand_partial))
        if t == at(10, 22):
            # 7 minutes into the 10:15-10:30 block at 1200 W: 1200 * 7/15.
            assert calc.present_w[0] == pytest.approx(560.0, rel=1e-12)
            assert calc.demand_time == at(10, 15)
    # First value at 10:15 covers 10:07-10:15 only: partial, over the full 15 minutes.
    assert seen[0][0] == at(10, 15)
    assert seen[0][1] == pytest.approx(1200.0 * 8 / 15, rel=1e-12)
    assert seen[0][2] is True
    assert seen[1:] == [(at(10, 30), pytest.approx(1200.0), False), (at(10, 45), 1200.0, False)]


def test_block_first_interval_partial_coverage_reported() -> None:
    calc = DemandCalculator(BLOCK_15, 1)
    feed(calc, at(10, 7), at(10, 15), 1200.0)
    assert calc.demand_partial is True
    assert calc.demand_covered_s == 8 * 60
    assert calc.demand_missing == 0


# -------------------------------------------------------------------- sliding window 15/5


def test_sliding_15_5_follows_a_step_change_every_5_minutes() -> None:
    calc = DemandCalculator(SLIDING_15_5, 1)
    # 1200 W then 4800 W from 10:10 (20 and 80 Wh a minute: exact in binary).
    feed(calc, at(10, 0), at(10, 10), 1200.0)
    values: dict[float, float] = {}
    t = at(10, 10)
    while t < at(10, 35):
        feed(calc, t, t + 60.0, 4800.0)
        t += 60.0
        if calc.demand_time is not None:
            values[calc.demand_time] = float(calc.demand_w[0])
        if t == at(10, 17):
            # Not yet a new value; rising: (1200*5 + 4800*5 + 4800*2) / 15.
            assert calc.demand_time == at(10, 15)
            assert calc.present_w[0] == 2640.0
    assert values == {
        at(10, 15): 2400.0,  # (1200*5 + 1200*5 + 4800*5) / 15
        at(10, 20): 3600.0,  # (1200*5 + 4800*5 + 4800*5) / 15
        at(10, 25): 4800.0,
        at(10, 30): 4800.0,
        at(10, 35): 4800.0,
    }
    assert calc.peak_w.tolist() == [4800.0]
    assert calc.peak_time.tolist() == [at(10, 25)]


# ------------------------------------------------------------------ proportional splitting


def test_a_span_crossing_a_boundary_is_split_in_proportion_to_time() -> None:
    calc = DemandCalculator(BLOCK_15, 1)
    feed(calc, at(10, 0), at(10, 13), 0.0)
    # 600 Wh from 10:13 to 10:19: 2 minutes (200 Wh) before 10:15, 4 minutes (400 Wh) after.
    calc.add_energy(at(10, 13), at(10, 19), np.array([600.0]))
    assert calc.demand_time == at(10, 15)
    assert calc.demand_w[0] == pytest.approx(200.0 * 4, rel=1e-12)
    assert calc.demand_partial is False
    assert calc.present_w[0] == pytest.approx(400.0 * 4, rel=1e-12)


def test_a_span_over_several_subintervals_spreads_evenly() -> None:
    calc = DemandCalculator(SLIDING_15_5, 1)
    # 4000 Wh over 20 minutes is 12 kW throughout.
    calc.add_energy(at(10, 0), at(10, 20), np.array([4000.0]))
    assert calc.demand_time == at(10, 20)
    assert calc.demand_w[0] == pytest.approx(12000.0, rel=1e-12)
    assert calc.peak_time.tolist() == [at(10, 15)]
    assert calc.demand_partial is False


def test_a_long_span_equals_many_short_ones() -> None:
    one = DemandCalculator(SLIDING_15_5, 1)
    many = DemandCalculator(SLIDING_15_5, 1)
    one.add_energy(at(10, 2), at(12, 3), np.array([2000.0 * 121 / 60]))
    feed(many, at(10, 2), at(12, 3), 2000.0, step=30.0)
    assert one.demand_time == many.demand_time == at(12, 0)
    assert one.demand_w == pytest.approx(many.demand_w, rel=1e-12)
    assert one.present_w == pytest.approx(many.present_w, rel=1e-12)
    assert one.demand_w[0] == pytest.approx(2000.0, rel=1e-12)
    # The first full window (10:05-10:20) is the peak; the 10:15 one lacks 10:00-10:02.
    assert one.peak_time.tolist() == many.peak_time.tolist() == [at(10, 20)]
    assert one.to_dict()["seen"] == many.to_dict()["seen"]


def test_a_zero_length_span_adds_its_energy_to_the_bucket_in_progress() -> None:
    calc = DemandCalculator(BLOCK_15, 1)
    feed(calc, at(10, 0), at(10, 5), 0.0)
    calc.add_energy(at(10, 5), at(10, 5), np.array([50.0]))
    feed(calc, at(10, 5), at(10, 15), 0.0)
    assert calc.demand_w.tolist() == [200.0]
    assert calc.demand_partial is False


# ---------------------------------------------------------------------------------- peaks


def test_block_peak_demand_and_its_time_then_reset() -> None:
    calc = DemandCalculator(BLOCK_15, 1)
    t = at(10, 0)
    # Multiples of 60 W: whole watt-hours a minute, so equal intervals are exactly equal.
    for watts in (600.0, 2400.0, 1200.0, 2400.0, 840.0):
        feed(calc, t, t + 900.0, watts)
        t += 900.0
    assert calc.peak_w.tolist() == [2400.0]
    assert calc.peak_time.tolist() == [at(10, 30)]  # an equal later value does not move it
    assert [calc.last_reset] == [None]
    calc.reset_peaks(at(11, 15))
    assert math.isnan(calc.peak_w[0])
    assert math.isnan(calc.peak_time[0])
    assert calc.last_reset == at(11, 15)
    assert calc.demand_w.tolist() == [840.0]  # the demand itself is not reset
    feed(calc, t, t + 900.0, 1080.0)
    feed(calc, t + 900.0, t + 1800.0, 300.0)
    assert calc.peak_w.tolist() == [1080.0]
    assert calc.peak_time.tolist() == [at(11, 30)]
    assert calc.demand_w.tolist() == [300.0]


def test_sliding_peak_is_updated_at_every_subinterval_end() -> None:
    block = DemandCalculator(BLOCK_15, 1)
    sliding = DemandCalculator(SLIDING_15_5, 1)
    for calc in (block, sliding):
        feed(calc, at(10, 0), at(10, 15), 1200.0)
        feed(calc, at(10, 15), at(10, 20), 6000.0)  # a 5-minute spike
        feed(calc, at(10, 20), at(10, 45), 1200.0)
    # Sliding: (1200 + 1200 + 6000) / 3, first at 10:20, again at 10:25 and 10:30.
    assert sliding.peak_w.tolist() == [2800.0]
    assert sliding.peak_time.tolist() == [at(10, 20)]
    assert sliding.demand_w.tolist() == [1200.0]
    # Block: the same average, but only seen at the block end 10:30.
    assert block.peak_w.tolist() == [2800.0]
    assert block.peak_time.tolist() == [at(10, 30)]


# ----------------------------------------------------------------------------------- gaps


def test_block_gap_of_40_minutes_marks_partial_and_missing_intervals() -> None:
    calc = DemandCalculator(BLOCK_15, 1)
    feed(calc, at(10, 0), at(10, 20), 1500.0)
    # Power fails at 10:20; the meter notices time passing at 10:30.
    calc.advance(at(10, 30))
    assert calc.demand_time == at(10, 30)
    assert calc.demand_w[0] == pytest.approx(500.0, rel=1e-12)  # 5 of 15 minutes, full length
    assert calc.demand_partial is True
    assert calc.demand_covered_s == 300.0
    assert calc.demand_missing == 0
    # Power returns at 11:00: 10:30-10:45 and 10:45-11:00 saw nothing and count zero.
    feed(calc, at(11, 0), at(11, 5), 1500.0)
    assert calc.demand_time == at(11, 0)
    assert calc.demand_w.tolist() == [0.0]
    assert calc.demand_partial is True
    assert calc.demand_covered_s == 0.0
    assert calc.demand_missing == 1
    assert calc.peak_w.tolist() == [1500.0]
    assert calc.peak_time.tolist() == [at(10, 15)]
    feed(calc, at(11, 5), at(11, 15), 1500.0)
    assert calc.demand_w[0] == pytest.approx(1500.0, rel=1e-12)
    assert calc.demand_partial is False


def test_sliding_gap_of_40_minutes_counts_missing_subintervals_as_zero() -> None:
    stepped = DemandCalculator(SLIDING_15_5, 1)
    jumped = DemandCalculator(SLIDING_15_5, 1)
    for calc in (stepped, jumped):
        feed(calc, at(10, 0), at(10, 20), 3000.0)
    expected = [
        (at(10, 25), 2000.0, 2),  # 10:10 and 10:15 full, 10:20 missing
        (at(10, 30), 1000.0, 1),
        (at(10, 35), 0.0, 0),
        (at(10, 40), 0.0, 0),
    ]
    for now, watts, full in expected:
        stepped.advance(now)
        assert stepped.demand_time == now
        assert stepped.demand_w[0] == pytest.approx(watts, rel=1e-12)
        assert stepped.demand_partial is True
        assert stepped.demand_missing == 3 - full
        assert stepped.demand_covered_s == full * 300.0
    # The other one jumps straight from 10:20 to 11:00.
    jumped.add_energy(at(11, 0), at(11, 1), np.array([50.0]))
    stepped.add_energy(at(11, 0), at(11, 1), np.array([50.0]))
    for calc in (stepped, jumped):
        assert calc.demand_time == at(11, 0)
        assert calc.demand_w.tolist() == [0.0]
        assert calc.demand_missing == 3
        assert calc.peak_w[0] == pytest.approx(3000.0)
        assert calc.peak_time.tolist() == [at(10, 15)]
        assert calc.present_w[0] == pytest.approx(50.0 * 4, rel=1e-12)
    assert stepped.to_dict() == jumped.to_dict()


def test_a_gap_of_a_month_with_one_minute_subintervals() -> None:
    calc = DemandCalculator(DemandConfig(DemandType.SLIDING, 60, 1), 2)
    feed(calc, at(10, 0), at(11, 0), [600.0, 0.0])
    later = at(11, 0) + 30 * 86400.0
    calc.add_energy(later + 30.0, later + 50.0, np.array([1.0, 1.0]))
    assert calc.demand_time == later
    assert calc.demand_w.tolist() == [0.0, 0.0]
    assert calc.demand_missing == 60
    assert calc.peak_w.tolist() == [pytest.approx(600.0), 0.0]
    assert calc.peak_time.tolist() == [at(11, 0), at(11, 0)]
    calc.advance(later + 60.0)
    assert calc.demand_time == later + 60.0
    assert calc.demand_covered_s == 20.0
    assert calc.demand_w[0] == pytest.approx(1.0, rel=1e-12)  # 1 Wh in an hour


def test_zero_power_is_covered_not_missing() -> None:
    calc = DemandCalculator(BLOCK_15, 1)
    feed(calc, at(10, 0), at(10, 15), 0.0)
    assert calc.demand_w.tolist() == [0.0]
    assert calc.demand_partial is False
    assert calc.demand_missing == 0


def test_advance_before_any_data_starts_the_clock() -> None:
    calc = DemandCalculator(BLOCK_15, 1)
    calc.advance(at(10, 3))
    assert calc.last_time == at(10, 3)
    assert calc.demand_time is None
    feed(calc, at(10, 3), at(10, 15), 600.0)
    assert calc.demand_covered_s == 12 * 60
    assert calc.demand_w[0] == pytest.approx(480.0, rel=1e-12)
    calc.advance(at(10, 15))  # no time passes: nothing changes
    assert calc.demand_time == at(10, 15)


# ----------------------------------------------------------------------- reference check


def _reference_energy(
    spans: list[tuple[float, float, NDArray[np.float64]]], a: float, b: float
) -> tuple[NDArray[np.float64], float]:
    energy = np.zeros_like(spans[0][2])
    covered = 0.0
    for start, end, e in spans:
        if end == start:
            if a <= start < b:
                energy = energy + e
            continue
        overlap = min(end, b) - max(start, a)
        if overlap > 0:
            energy = energy + e * overlap / (end - start)
            covered += overlap
    return energy, covered


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "config",
    [
        BLOCK_15,
        SLIDING_15_5,
        DemandConfig(DemandType.SLIDING, 10, 1),
        DemandConfig(DemandType.BLOCK, 5),
    ],
    ids=str,
)
def test_random_load_matches_a_direct_computation(config: DemandConfig, seed: int) -> None:
    rng = np.random.default_rng(seed)
    channels = 4
    calc = DemandCalculator(config, channels)
    sub = config.subinterval_seconds
    interval = config.interval_seconds
    spans: list[tuple[float, float, NDArray[np.float64]]] = []
    t = at(9, 0) + float(rng.uniform(0, 3600))
    first_bucket = math.floor(t / sub)
    for _ in range(300):
        if rng.random() < 0.03:
            t += float(rng.uniform(0, 5000))  # a power failure
        duration = float(rng.choice([0.0, 1.0, 7.5, 60.0, 300.0, 1111.0]))
        energy = rng.uniform(0, 50, channels) * rng.integers(0, 2, channels)
        calc.add_energy(t, t + duration, energy)
        spans.append((t, t + duration, energy))
        t += duration
        if calc.demand_time is None:
            assert calc.demand_time is None
            assert (math.floor(t / sub) - first_bucket) < config.subintervals
            continue
        end = calc.demand_time
        assert end % sub == 0
        assert end <= t < end + sub
        expected, covered = _reference_energy(spans, end - interval, end)
        assert calc.demand_w == pytest.approx(expected * 3600 / interval, rel=1e-9, abs=1e-9)
        assert calc.demand_covered_s == pytest.approx(covered, abs=1e-6)
        assert calc.demand_partial is (covered < interval - 1e-3)
    # Peaks: every window end from the first complete one to the last.
    assert calc.demand_time is not None
    ends = np.arange((first_bucket + config.subintervals) * sub, calc.demand_time + 1, sub)
    demands = np.array(
        [_reference_energy(spans, float(e) - interval, float(e))[0] * 3600 / interval for e in ends]
    )
    assert calc.peak_w == pytest.approx(demands.max(axis=0), rel=1e-9, abs=1e-9)
    for ch in range(channels):
        first = np.flatnonzero(demands[:, ch] >= demands[:, ch].max() * (1 - 1e-9))[0]
        assert calc.peak_time[ch] == ends[first]


# ----------------------------------------------------------------------------- snapshots


def _observe(calc: DemandCalculator) -> tuple[object, ...]:
    return (
        calc.demand_w.tolist(),
        calc.demand_time,
        calc.demand_partial,
        calc.demand_covered_s,
        calc.demand_missing,
        calc.present_w.tolist(),
        calc.peak_w.tolist(),
        calc.peak_time.tolist(),
        calc.last_reset,
        calc.last_time,
    )


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    # NaN-aware equality of observations.
    return json.dumps(a) == json.dumps(b)


@pytest.mark.parametrize("config", [BLOCK_15, SLIDING_15_5], ids=str)
def test_snapshot_round_trip_mid_interval_gives_identical_later_results(
    config: DemandConfig,
) -> None:
    rng = np.random.default_rng(7)
    calc = DemandCalculator(config, 3)
    t = at(10, 1, 13)
    steps: list[tuple[float, float, NDArray[np.float64]]] = []
    for i in range(120):
        duration = float(rng.choice([1.0, 13.0, 60.0, 420.0]))
        t += 2400.0 if i == 80 else 0.0  # a power failure after the snapshot
        steps.append((t, t + duration, rng.uniform(0, 20, 3)))
        t += duration
    for step in steps[:40]:
        calc.add_energy(*step)
    calc.reset_peaks(calc.last_time or 0.0)
    for step in steps[40:50]:
        calc.add_energy(*step)
    assert calc.last_time is not None
    assert calc.last_time % config.subinterval_seconds != 0  # mid-bucket
    snapshot = json.loads(json.dumps(calc.to_dict(), allow_nan=False))
    restored = DemandCalculator.from_dict(config, 3, snapshot)
    assert _same(_observe(restored), _observe(calc))
    for step in steps[50:]:
        calc.add_energy(*step)
        restored.add_energy(*step)
        assert _same(_observe(restored), _observe(calc))
    assert restored.to_dict() == calc.to_dict()


def test_snapshot_of_a_fresh_calculator() -> None:
    calc = DemandCalculator(SLIDING_15_5, 2)
    restored = DemandCalculator.from_dict(
        SLIDING_15_5, 2, json.loads(json.dumps(calc.to_dict(), allow_nan=False))
    )
    assert restored.to_dict() == calc.to_dict()
    assert restored.last_time is None
    feed(restored, at(10, 0), at(10, 15), 100.0)
    assert restored.demand_w.tolist() == [100.0, 100.0]


def test_snapshot_refuses_another_config_or_channel_count() -> None:
    calc = DemandCalculator(SLIDING_15_5, 2)
    feed(calc, at(10, 0), at(10, 7), 100.0)
    snapshot = calc.to_dict()
    with pytest.raises(ValueError, match="taken with"):
        DemandCalculator.from_dict(BLOCK_15, 2, snapshot)
    with pytest.raises(ValueError, match="taken with"):
        DemandCalculator.from_dict(DemandConfig(DemandType.SLIDING, 15, 1), 2, snapshot)
    with pytest.raises(ValueError, match="taken with 2 meter points, not 3"):
        DemandCalculator.from_dict(SLIDING_15_5, 3, snapshot)
    broken = dict(snapshot)
    del broken["ring_energy_wh"]
    with pytest.raises(ValueError, match="malformed"):
        DemandCalculator.from_dict(SLIDING_15_5, 2, broken)
    with pytest.raises(ValueError, match="peak_w"):
        DemandCalculator.from_dict(SLIDING_15_5, 2, {**snapshot, "peak_w": [1.0]})
    with pytest.raises(ValueError, match="bucket_index"):
        DemandCalculator.from_dict(
            SLIDING_15_5, 2, {**snapshot, "bucket_index": snapshot["bucket_index"] + 1}
        )


# -------------------------------------------------------------------------- configuration


def test_config_defaults_and_resolved_subintervals() -> None:
    assert demand_config({}) == DemandConfig() == BLOCK_15
    assert BLOCK_15.subinterval_minutes == 15
    assert BLOCK_15.subintervals == 1
    resolved = {
        m: demand_config({"type": "sliding", "interval_minutes": m}).subinterval_minutes
        for m in (5, 10, 15, 30, 60)
    }
    assert resolved == {5: 1, 10: 1, 15: 5, 30: 10, 60: 20}
    assert SLIDING_15_5.subintervals == 3
    assert demand_config({"type": "sliding", "interval_minutes": 15.0}) == SLIDING_15_5
    assert demand_config(
        {"type": "block", "interval_minutes": 30, "subinterval_minutes": 30}
    ) == DemandConfig(DemandType.BLOCK, 30)
    assert demand_config(SLIDING_15_5.to_dict()) == SLIDING_15_5
    assert DEMAND_SCHEMA({})["interval_minutes"] == 15


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "rolling"}, "demand.type: must be one of block, sliding"),
        ({"type": 3}, "demand.type: must be one of block, sliding"),
        ({"interval_minutes": 7}, "demand.interval_minutes: must be one of 1, 5, 10, 15, 30, 60"),
        ({"interval_minutes": 0}, "demand.interval_minutes: must be one of 1, 5, 10, 15, 30, 60"),
        ({"interval_minutes": "15"}, "demand.interval_minutes: must be a whole number"),
        ({"interval_minutes": 15.5}, "demand.interval_minutes: must be a whole number"),
        ({"interval_minutes": True}, "demand.interval_minutes: must be a whole number"),
        ({"type": "sliding", "interval_minutes": 1}, "demand.interval_minutes: sliding"),
        ({"subinterval_minutes": 0}, "demand.subinterval_minutes: must be a whole number"),
        ({"subinterval_minutes": 5}, "demand.subinterval_minutes: block demand has no"),
        (
            {"type": "sliding", "subinterval_minutes": 4},
            "demand.subinterval_minutes: must divide",
        ),
        (
            {"type": "sliding", "subinterval_minutes": 15},
            "demand.subinterval_minutes: must divide",
        ),
        (
            {"type": "sliding", "subinterval_minutes": 30},
            "demand.subinterval_minutes: must divide",
        ),
        ({"interval": 15}, "demand.interval: extra keys not allowed"),
    ],
)
def test_config_errors_name_their_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(message)) as raised:
        demand_config(data)
    field = message.split(":", maxsplit=1)[0].split(".")[1]
    assert [path for path, _ in raised.value.errors] == [("demand", field)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": "weekly"}, "type"),
        ({"interval_minutes": 20}, "interval_minutes"),
        ({"interval_minutes": 15, "subinterval_minutes": 10}, "subinterval_minutes"),
        ({"type": DemandType.SLIDING, "subinterval_minutes": 7}, "subinterval_minutes"),
    ],
)
def test_config_constructor_checks_too(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^demand\.{field}: ") as raised:
        DemandConfig(**kwargs)  # type: ignore[arg-type]
    assert raised.value.path == ("demand", field)


# ------------------------------------------------------------------------- invalid inputs


@pytest.mark.parametrize(
    ("start", "end", "energy", "match"),
    [
        (at(10, 5), at(10, 6), [1.0, 2.0], "shape"),
        (at(10, 5), at(10, 6), [[1.0, 2.0, 3.0]], "shape"),
        (at(10, 5), at(10, 6), [1.0, math.nan, 3.0], "finite"),
        (at(10, 5), at(10, 6), [1.0, math.inf, 3.0], "finite"),
        (at(10, 5), at(10, 6), [1.0, -0.5, 3.0], "delivered"),
        (at(10, 6), at(10, 5), [1.0, 2.0, 3.0], "before start"),
        (at(10, 4), at(10, 6), [1.0, 2.0, 3.0], "time order"),
        (math.nan, at(10, 6), [1.0, 2.0, 3.0], "finite"),
        (at(10, 5), math.inf, [1.0, 2.0, 3.0], "finite"),
    ],
)
def test_invalid_energy_spans_raise_and_change_nothing(
    start: float, end: float, energy: list[float], match: str
) -> None:
    calc = DemandCalculator(BLOCK_15, 3)
    feed(calc, at(10, 0), at(10, 5), [1.0, 2.0, 3.0])
    before = calc.to_dict()
    with pytest.raises(ValueError, match=match):
        calc.add_energy(start, end, np.array(energy))
    assert calc.to_dict() == before


def test_invalid_advance_and_reset_and_channels() -> None:
    calc = DemandCalculator(BLOCK_15, 1)
    calc.advance(at(10, 5))
    with pytest.raises(ValueError, match="time order"):
        calc.advance(at(10, 4))
    with pytest.raises(ValueError, match="finite"):
        calc.advance(math.nan)
    with pytest.raises(ValueError, match="finite"):
        calc.reset_peaks(math.inf)
    for channels in (0, -3):
        with pytest.raises(ValueError, match="channels"):
            DemandCalculator(BLOCK_15, channels)


# ----------------------------------------------------------------------------- 24 channels


def test_24_meter_points_are_computed_together() -> None:
    channels = 24
    calc = DemandCalculator(SLIDING_15_5, channels)
    base = np.arange(1, channels + 1, dtype=np.float64) * 100.0
    t = at(10, 0)
    # Eight 15-minute periods; meter point i is doubled in period i % 8.
    for period in range(8):
        watts = base.copy()
        watts[np.arange(channels) % 8 == period] *= 2
        feed(calc, t, t + 900.0, watts)
        t += 900.0
    assert calc.demand_w == pytest.approx(
        np.where(np.arange(channels) % 8 == 7, 2 * base, base), rel=1e-12
    )
    assert calc.peak_w == pytest.approx(2 * base, rel=1e-12)
    # Each peak is the first window lying wholly in its doubled period: that period's end.
    expected_times = at(10, 0) + (np.arange(channels) % 8 + 1) * 900.0
    assert calc.peak_time.tolist() == expected_times.tolist()
    assert calc.present_w.shape == (channels,)
    assert calc.demand_w.dtype == np.float64
