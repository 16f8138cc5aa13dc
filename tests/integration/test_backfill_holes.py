"""Finding and filling holes in hourly statistics, on their own: which hours
are written, and when a hole is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from custom_components.s8000.backfill import _fill, _Hole, _holes, _Target

H = timedelta(hours=1)
T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
TARGET = _Target("sensor.point_1_energy_delivered", 1, "energy_delivered")


def row(hour: int, total: float, state: float) -> dict[str, Any]:
    return {"start": (T0 + hour * H).timestamp(), "sum": total, "state": state}


def registers(kwh_by_hour: dict[int, float]) -> dict[float, tuple[tuple[int, int, int, int], ...]]:
    """Point 1's delivered register (kWh) at the end of the given hours."""
    return {
        (T0 + hour * H).timestamp(): ((round(kwh * 1e6), 0, 0, 0),)
        for hour, kwh in kwh_by_hour.items()
    }


def fill(
    hole: _Hole,
    ends: dict[float, tuple[tuple[int, int, int, int], ...]],
    *,
    offset: float = 0.0,
    reversed_point: bool = False,
) -> list[Any]:
    return _fill(hole, ends, offset=offset, reversed_point=reversed_point).rows


def test_a_trailing_hole_runs_to_the_end_of_the_range() -> None:
    (hole,) = _holes(TARGET, [row(0, 0.0, 10.0), row(1, 1.0, 11.0)], set(), T0, T0 + 5 * H)
    assert hole.hours == [T0 + 2 * H, T0 + 3 * H, T0 + 4 * H]
    assert hole.limit is None


def test_an_inner_hole_knows_what_its_next_row_added() -> None:
    rows = [row(0, 0.0, 10.0), row(3, 5.0, 15.0), row(4, 6.0, 16.0)]
    (hole,) = _holes(TARGET, rows, set(), T0, T0 + 5 * H)
    assert hole.hours == [T0 + H, T0 + 2 * H]
    assert hole.limit == 5.0


def test_hours_the_recorder_has_in_hand_stop_a_hole() -> None:
    busy = {(T0 + 2 * H).timestamp()}
    (hole,) = _holes(TARGET, [row(0, 0.0, 10.0)], busy, T0, T0 + 5 * H)
    assert hole.hours == [T0 + H]
    # An inner hole cut short cannot be matched to its next row.
    assert _holes(TARGET, [row(0, 0.0, 10.0), row(4, 5.0, 15.0)], busy, T0, T0 + 5 * H) == []


def test_a_hole_before_the_range_and_rows_without_sums_are_skipped() -> None:
    assert _holes(
        TARGET, [row(0, 0.0, 10.0), row(3, 3.0, 13.0)], set(), T0 + 5 * H, T0 + 6 * H
    ) == [_Hole(TARGET, row(3, 3.0, 13.0), [T0 + 4 * H, T0 + 5 * H], None, trailing=True)]
    assert (
        _holes(
            TARGET, [{"start": T0.timestamp(), "sum": None, "state": None}], set(), T0, T0 + 2 * H
        )
        == []
    )


def test_filling_continues_the_anchor() -> None:
    hole = _Hole(TARGET, row(0, 100.0, 10.5), [T0 + H, T0 + 2 * H], None)
    rows = fill(hole, registers({1: 10.0, 2: 11.0, 3: 13.0}))
    assert [r["state"] for r in rows] == [11.0, 13.0]
    assert [r["sum"] for r in rows] == [100.5, 102.5]


def test_a_reset_inside_the_hole_counts_from_zero() -> None:
    hole = _Hole(TARGET, row(0, 100.0, 50.0), [T0 + H, T0 + 2 * H, T0 + 3 * H], None)
    rows = fill(hole, registers({1: 50.0, 2: 51.0, 3: 0.5, 4: 1.5}))
    assert [r["sum"] for r in rows] == [101.0, 101.5, 102.5]


def test_a_missing_record_stops_the_fill_and_an_inner_hole_must_fit() -> None:
    hole = _Hole(TARGET, row(0, 0.0, 10.0), [T0 + H, T0 + 2 * H], None)
    assert len(fill(hole, registers({1: 10.0, 2: 11.0}))) == 1
    inner = _Hole(TARGET, row(0, 0.0, 10.0), [T0 + H, T0 + 2 * H], 1.0)
    assert fill(inner, registers({1: 10.0, 2: 11.0})) == []  # incomplete
    assert fill(inner, registers({1: 10.0, 2: 11.0, 3: 13.0})) == []  # too much
    fits = fill(inner, registers({1: 10.0, 2: 10.5, 3: 11.0}))
    assert [r["sum"] for r in fits] == [0.5, 1.0]


def test_the_guard_offset_puts_records_on_the_entity_scale() -> None:
    hole = _Hole(TARGET, row(0, 0.0, 1010.0), [T0 + H], None)
    (filled,) = fill(hole, registers({1: 10.0, 2: 12.0}), offset=1000.0)
    assert filled["state"] == 1012.0
    assert filled["sum"] == 2.0


def test_a_reversed_point_follows_its_received_register() -> None:
    hole = _Hole(TARGET, row(0, 0.0, 10.0), [T0 + H], None)
    received = {
        (T0 + hour * H).timestamp(): ((0, round(kwh * 1e6), 0, 0),)
        for hour, kwh in {1: 10.0, 2: 12.5}.items()
    }
    (filled,) = fill(hole, received, reversed_point=True)
    assert filled["sum"] == 2.5
