"""Filling the Energy dashboard's gaps from the meter's interval memory.

The meter keeps 120 days of interval records: at the end of each interval,
the four energy registers of every point.  When Home Assistant was down, or
could not reach the meter, its long-term statistics have a hole: no hourly
row for those hours, and the whole outage's energy lands in the first hour
after it (the recorder adds the change since its last state).

The backfill finds those holes in each energy entity's own hourly
statistics and imports the hours from the meter's records, read over Modbus
(function 20, one record per hour).  Each imported hour's *state* is the
entity's total at the hour's end (the register plus the entity's offset,
see :mod:`.counters`) and its *sum* continues the series from the row
before the hole, so the hour after a hole (which the recorder wrote) keeps
its own consumption only, and nothing is counted twice.

Rules that keep it honest:

* Only hours with no statistics at all are written: not one the recorder
  compiled, nor one it is about to compile (an hour with five-minute rows).
* A hole is filled from a row before it; a series that starts with the gap
  has nothing to continue and is left alone.
* An inner hole (a recorder row after it) is filled only if the meter's
  energy over it fits under what that next row added, so the next hour never
  goes negative.
* Running it again finds no holes and writes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.components.recorder.models import StatisticData, StatisticMeanType
from homeassistant.components.recorder.statistics import (
    async_import_statistics,
    get_metadata,
    statistics_during_period,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import dt as dt_util

from s8000_engine.client import IntervalRow, S8000Error

from .const import DOMAIN, LOGGER, OPT_REVERSED
from .direction import option_points
from .models import (
    ENERGY_COUNTERS,
    BackfillProgress,
    S8000ConfigEntry,
    entity_unique_id,
    point_key,
)

HOUR: Final = timedelta(hours=1)
#: How far back a backfill looks by default: the meter's interval memory.
MEMORY: Final = timedelta(days=120)
#: Which of a record's four registers each energy entity follows.
REGISTER_INDEX: Final = {key: index for index, (key, _) in enumerate(ENERGY_COUNTERS)}
#: Energy (kWh) an inner hole may exceed its next row's change by (rounding).
TOLERANCE: Final = 1e-6


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What one backfill did."""

    hours: int  # hourly rows imported, over every statistic
    statistics: int  # statistic ids that got rows


@dataclass(frozen=True, slots=True)
class _Target:
    entity_id: str
    point: int
    key: str  # one of ENERGY_COUNTERS' keys

    @property
    def counter(self) -> str:
        """The key of the counter the entity shows."""
        return point_key(self.point, self.key)


@dataclass(slots=True)
class _Hole:
    target: _Target
    anchor: Mapping[str, Any]  # the statistics row before the hole
    hours: list[datetime]
    limit: float | None  # an inner hole's room: what the row after it added


def _floor_hour(moment: datetime) -> datetime:
    return dt_util.as_utc(moment).replace(minute=0, second=0, microsecond=0)


def _targets(hass: HomeAssistant, entry: S8000ConfigEntry) -> list[_Target]:
    registry = er.async_get(hass)
    serial = entry.runtime_data.identity.serial
    targets = []
    for point in range(1, entry.runtime_data.identity.points + 1):
        for key, _ in ENERGY_COUNTERS:
            entity_id = registry.async_get_entity_id(
                "sensor", DOMAIN, entity_unique_id(serial, key, point)
            )
            if entity_id is not None:
                targets.append(_Target(entity_id, point, key))
    return targets


def _holes(
    target: _Target,
    rows: Sequence[Mapping[str, Any]],
    busy: set[float],
    first: datetime,
    end: datetime,
) -> list[_Hole]:
    """The holes of one statistic's hourly rows within [first, end)."""
    holes: list[_Hole] = []
    rows = [r for r in rows if r.get("sum") is not None and r.get("state") is not None]
    for index, anchor in enumerate(rows):
        after = rows[index + 1] if index + 1 < len(rows) else None
        hour = dt_util.utc_from_timestamp(anchor["start"]) + HOUR
        stop = end if after is None else dt_util.utc_from_timestamp(after["start"])
        hours = []
        # The whole hole, even where it starts before the range: its first
        # hour continues from the anchor.
        while hour < stop:
            if hour.timestamp() in busy:  # the recorder has this hour in hand
                break
            hours.append(hour)
            hour += HOUR
        if not hours or hours[-1] < first:
            continue
        complete = after is not None and hours[-1] + HOUR == stop
        limit = float(after["sum"]) - float(anchor["sum"]) if complete and after else None
        if after is not None and not complete:
            continue  # a hole cut short by a busy hour cannot be matched to its next row
        holes.append(_Hole(target, anchor, hours, limit))
    return holes


async def async_backfill(
    hass: HomeAssistant,
    entry: S8000ConfigEntry,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> BackfillResult:
    """Fill the holes of the entry's energy statistics in [start, end) from the
    meter's records; nothing while another backfill of the meter runs."""
    progress = entry.runtime_data.backfill
    if "recorder" not in hass.config.components or progress.running:
        return BackfillResult(0, 0)
    progress.running = True
    progress.set(0.0)
    try:
        return await _async_run(hass, entry, progress, start, end)
    finally:
        progress.running = False
        progress.set(None)


async def _async_run(
    hass: HomeAssistant,
    entry: S8000ConfigEntry,
    progress: BackfillProgress,
    start: datetime | None,
    end: datetime | None,
) -> BackfillResult:
    now_hour = _floor_hour(dt_util.utcnow())
    last = min(_floor_hour(end), now_hour) if end is not None else now_hour
    first = _floor_hour(start) if start is not None else last - MEMORY
    targets = _targets(hass, entry)
    if not targets or first >= last:
        return BackfillResult(0, 0)
    ids = {t.entity_id for t in targets}
    instance = get_instance(hass)
    # Rows from well before the range, so a hole's anchor is found.
    hourly = await instance.async_add_executor_job(
        statistics_during_period,
        hass,
        first - MEMORY,
        last + HOUR,
        ids,
        "hour",
        None,
        {"state", "sum"},
    )
    short = await instance.async_add_executor_job(
        statistics_during_period,
        hass,
        first - MEMORY,
        last + HOUR,
        ids,
        "5minute",
        None,
        {"sum"},
    )
    holes: list[_Hole] = []
    for target in targets:
        busy = {
            _floor_hour(dt_util.utc_from_timestamp(row["start"])).timestamp()
            for row in short.get(target.entity_id, [])
        }
        holes += _holes(target, hourly.get(target.entity_id, []), busy, first, last)
    if not holes:
        return BackfillResult(0, 0)
    registers = await _async_read(entry, holes, progress)
    metadata = await instance.async_add_executor_job(
        lambda: get_metadata(hass, statistic_ids={h.target.entity_id for h in holes})
    )
    reversed_points = option_points(entry.options, OPT_REVERSED)
    coordinator = entry.runtime_data.coordinator
    imported: dict[str, list[StatisticData]] = {}
    for hole in holes:
        target = hole.target
        rows = _fill(
            hole,
            registers,
            offset=coordinator.counter_offset(target.counter),
            reversed_point=target.point in reversed_points,
        )
        if rows:
            imported.setdefault(target.entity_id, []).extend(rows)
        elif hole.limit is not None:
            LOGGER.debug(
                "%s: %s: the meter's records do not fit the hole before %s; left alone",
                entry.title,
                target.entity_id,
                hole.hours[-1] + HOUR,
            )
    for entity_id, rows in imported.items():
        _, meta = metadata[entity_id]
        async_import_statistics(
            hass,
            {
                "mean_type": StatisticMeanType.NONE,
                "has_sum": True,
                "name": meta.get("name"),
                "source": "recorder",
                "statistic_id": entity_id,
                "unit_class": meta.get("unit_class"),
                "unit_of_measurement": meta.get("unit_of_measurement"),
            },
            rows,
        )
    hours = sum(len(rows) for rows in imported.values())
    if hours:
        LOGGER.info(
            "%s: imported %d hours of the meter's records into %d statistics",
            entry.title,
            hours,
            len(imported),
        )
    return BackfillResult(hours, len(imported))


async def _async_read(
    entry: S8000ConfigEntry, holes: list[_Hole], progress: BackfillProgress
) -> dict[float, tuple[tuple[int, int, int, int], ...]]:
    """The meter's registers at each hour end the holes need (and at each
    hole's start), by the hour end's timestamp."""
    since = min(h.hours[0] for h in holes) - HOUR
    until = max(h.hours[-1] for h in holes) + HOUR
    client = entry.runtime_data.client

    def advance(done: int, total: int) -> None:
        progress.set(100.0 * done / total if total else 100.0)

    try:
        rows: list[IntervalRow] = await client.read_intervals(
            since.timestamp(), until.timestamp(), step=3600, progress=advance
        )
    except S8000Error as err:
        LOGGER.warning("%s: could not read the meter's records: %s", entry.title, err)
        return {}
    return {float(row.end): row.registers for row in rows}


def _fill(
    hole: _Hole,
    registers: dict[float, tuple[tuple[int, int, int, int], ...]],
    *,
    offset: float,
    reversed_point: bool,
) -> list[StatisticData]:
    """The hourly rows of one hole, continuing its anchor; none when the
    meter's records do not fit an inner hole.

    ``offset`` puts the registers on the entity's scale (see
    :meth:`.models.S8000Coordinator.counter_offset`); a point read reversed
    follows the other register of its pair."""
    target = hole.target
    index = REGISTER_INDEX[target.key]
    if reversed_point:
        index ^= 1  # delivered is the received register, and the other way round

    def raw(moment: datetime) -> float | None:
        found = registers.get(moment.timestamp())
        if found is None or target.point > len(found):
            return None
        return found[target.point - 1][index] / 1e6  # mWh to kWh

    state, total = float(hole.anchor["state"]), float(hole.anchor["sum"])
    previous = raw(hole.hours[0])  # the register at the hole's start
    rows: list[StatisticData] = []
    for hour in hole.hours:
        now = raw(hour + HOUR)
        if now is None:
            break  # the meter has no record of this hour: stop here
        change = now + offset - state
        if change < 0 or not math.isfinite(change):
            # The entity's scale moved (a reset in the gap): count the
            # register's own growth, from 0 after a reset.
            change = now - previous if previous is not None and now >= previous else now
        state += change
        total += change
        previous = now
        rows.append(StatisticData(start=hour, state=state, sum=total))
    if hole.limit is not None and (
        len(rows) < len(hole.hours) or total - float(hole.anchor["sum"]) > hole.limit + TOLERANCE
    ):
        return []
    return rows
