"""Filling the Energy dashboard's gaps from the meter's interval memory.

The meter keeps 120 days of interval records: at the end of each interval,
the four energy registers of every point.  When Home Assistant was down, or
could not reach the meter, its long-term statistics have a hole: no hourly
row for those hours, or *flat* rows (the sum does not move) that the
recorder compiled from the last state it had while the meter was out of
reach, and the whole outage's energy lands in the first hour after it (the
recorder adds the change since its last state).

The backfill finds those holes in each energy entity's own hourly
statistics and imports the hours from the meter's records, read over Modbus
(function 20, one record per hour).  Each imported hour's *state* is the
entity's total at the hour's end (the register plus the entity's offset,
see :mod:`.counters`) and its *sum* continues the series from the row
before the hole, so the hour after a hole (which the recorder wrote from
its own five-minute sums, which already hold the outage's energy) keeps its
own consumption only, and nothing is counted twice.

Rules that keep it honest:

* A hole is an hour with no statistics, or an hour in which no energy
  statistic of the meter moved (the meter-wide signature of an outage: Home
  Assistant saw nothing, whatever the meter metered).  A flat hour is
  rewritten only where the meter's records differ from it; an hour the
  recorder is about to compile (five-minute rows, no hourly row yet) is
  left to it.
* A hole is filled from a row before it; a series that starts with the gap
  has nothing to continue and is left alone.
* Every record is checked before it is used: the "no record" value
  (2^64 - 1), a record whose configuration changed in the hour, and energy
  beyond what the point's CT rating can deliver in the seconds the record
  says the meter metered (the bound the readings' guard uses, see
  :func:`.counters.max_energy`) are rejected, and the hole stops there.
* An inner hole (a row after it) is filled only if the meter's energy over
  it fits under what that next row added, so the next hour never goes
  negative; a hole at the end of a series only up to the entity's live
  total, which the recorder's next row continues from.
* Rows are written in the statistic's own unit (kWh, Wh, MWh; kvarh, varh).
* A hole whose last hours the meter has not recorded yet (its clock behind)
  is filled as far as it can be and tried again later
  (:class:`BackfillScheduler`).
* The automatic backfill (at setup, when the meter is back) reads only the
  statistics since Home Assistant last had a reading, and the last row of
  each; the ``backfill`` action scans the range it is given, or the whole
  interval memory.  Running it again finds no holes and writes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Final

from homeassistant.components.recorder.models import StatisticData, StatisticMeanType
from homeassistant.components.recorder.statistics import (
    async_import_statistics,
    get_last_statistics,
    get_metadata,
    statistics_during_period,
)
from homeassistant.const import UnitOfEnergy, UnitOfReactiveEnergy
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.recorder import get_instance
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.unit_conversion import (
    BaseUnitConverter,
    EnergyConverter,
    ReactiveEnergyConverter,
)

from s8000_engine.client import NO_RECORD, IntervalRow, RowFlag, S8000Error

from .const import DOMAIN, LOGGER, OPT_REVERSED
from .counters import bound_volts, max_energy, max_kw
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
#: The hours before now whose five-minute rows are read: the recorder
#: compiles an hour's row a little after it ends, from them.
COMPILING: Final = 2 * HOUR
#: Between two backfills the meter's returns ask for (a flapping link).
COOLDOWN: Final = timedelta(minutes=5)
#: When, and how often, a hole the meter has not recorded yet is tried again.
RETRY_DELAY: Final = timedelta(minutes=10)
RETRIES: Final = 6
#: The version of what the scheduler keeps on disk.
STORAGE_VERSION: Final = 1
#: The unit each energy counter's entity has, and its converter.
_NATIVE: Final[dict[str, tuple[str, type[BaseUnitConverter]]]] = {
    "energy_delivered": (UnitOfEnergy.KILO_WATT_HOUR, EnergyConverter),
    "energy_received": (UnitOfEnergy.KILO_WATT_HOUR, EnergyConverter),
    "reactive_energy_delivered": (
        UnitOfReactiveEnergy.KILO_VOLT_AMPERE_REACTIVE_HOUR,
        ReactiveEnergyConverter,
    ),
    "reactive_energy_received": (
        UnitOfReactiveEnergy.KILO_VOLT_AMPERE_REACTIVE_HOUR,
        ReactiveEnergyConverter,
    ),
}


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What one backfill did."""

    hours: int  # hourly rows imported, over every statistic
    statistics: int  # statistic ids that got rows
    read: int = 0  # statistics rows read from the recorder to find the holes
    #: Whether a hole waits for records the meter has not made yet.
    pending: bool = False
    #: Whether it could not run (no recorder, another one running, the
    #: meter's records unreadable).
    failed: bool = False


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
    limit: float | None  # the room: what the row after it added, or up to the live total
    #: Flat rows the hole replaces, by hour start timestamp.
    existing: dict[float, Mapping[str, Any]] = field(default_factory=dict)
    #: No row after it: ``limit`` is the room up to the live total.
    trailing: bool = False


@dataclass(frozen=True, slots=True)
class _Bound:
    """What one point's records are held to."""

    kw: float | None  # the largest power its CT rating allows; None: unknown
    live: float | None  # the entity's live total (kWh), None: unknown


@dataclass(slots=True)
class _Filled:
    """One hole's rows, and why it stopped short (if it did)."""

    rows: list[StatisticData]
    rejected: str | None = None  # why a record was refused
    missing: datetime | None = None  # the first hour end with no record


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


def _valid(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in rows if r.get("sum") is not None and r.get("state") is not None]


def _flat_hours(series: Mapping[str, Sequence[Mapping[str, Any]]], first: datetime) -> set[float]:
    """The hours from ``first`` in which no statistic of the meter moved.

    While the meter is out of reach (or Home Assistant is down), the
    recorder compiles rows from the last state it has: every statistic of
    the meter stands still at once.  Home Assistant polling a meter does
    not see every point idle for a whole hour unless the meter metered
    nothing, which its records then show, and nothing is rewritten."""
    seen: set[float] = set()
    moved: set[float] = set()
    for rows in series.values():
        for before, row in pairwise(rows):
            if row["start"] < first.timestamp():
                continue
            seen.add(row["start"])
            if row["sum"] != before["sum"] or row["state"] != before["state"]:
                moved.add(row["start"])
    return seen - moved


def _holes(
    target: _Target,
    rows: Sequence[Mapping[str, Any]],
    busy: set[float],
    first: datetime,
    end: datetime,
    *,
    flat: set[float] | None = None,
    live: float | None = None,
) -> list[_Hole]:
    """The holes of one statistic's hourly rows within [first, end).

    Rows at ``flat`` hours (but the first, which anchors the rest) count as
    missing; ``live`` (the entity's total now) bounds a hole at the end."""
    holes: list[_Hole] = []
    rows = _valid(rows)
    flat = flat or set()
    existing = {r["start"]: r for r in rows[1:] if r["start"] in flat}
    rows = rows[:1] + [r for r in rows[1:] if r["start"] not in flat]
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
        if after is not None and not complete:
            continue  # a hole cut short by a busy hour cannot be matched to its next row
        if after is not None:
            limit: float | None = float(after["sum"]) - float(anchor["sum"])
        elif live is not None:
            # The recorder's next row continues from the live total: more
            # than that in the hole would make it go back.
            limit = live - float(anchor["state"])
        else:
            limit = None
        replaced = {
            h.timestamp(): existing[h.timestamp()] for h in hours if h.timestamp() in existing
        }
        holes.append(_Hole(target, anchor, hours, limit, replaced, after is None))
    return holes


class BackfillScheduler:
    """When the automatic backfill runs: at setup, when the meter is back
    (at most once per :data:`COOLDOWN`, however often the link flaps), and
    again while a hole waits for hours the meter has not recorded yet.

    It logs what it could not do; the ``backfill`` action raises instead.

    The earliest "last reading" a request has asked to backfill from is kept
    on disk until a backfill from it has run to its end: a restart, a reload
    or a failed run in between would otherwise lose it, and the hours Home
    Assistant compiled flat during the outage (before a last reading that
    is now recent) would never be looked at again."""

    def __init__(self, hass: HomeAssistant, entry: S8000ConfigEntry) -> None:
        """Idle until asked."""
        self.hass = hass
        self.entry = entry
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry.entry_id}.backfill"
        )
        #: The earliest "last reading" asked for and not yet backfilled from.
        self._unfilled: float | None = None
        #: The earliest "last reading" of the requests not yet served.
        self._since: float | None = None
        self._asked = False
        self._retries = 0
        self._cancel_retry: CALLBACK_TYPE | None = None
        self._debouncer: Debouncer[None] = Debouncer(
            hass, LOGGER, cooldown=COOLDOWN.total_seconds(), immediate=True, function=self._start
        )

    async def async_load(self) -> None:
        """Take up what a previous run asked for and did not finish."""
        stored = await self._store.async_load()
        unfilled = (stored or {}).get("since")
        self._unfilled = float(unfilled) if unfilled is not None else None

    def _saved(self) -> dict[str, Any]:
        return {"since": self._unfilled}

    async def async_save(self) -> None:
        """Write what is still to be backfilled now (on unload)."""
        await self._store.async_save(self._saved())

    @callback
    def request(self, since: float | None) -> None:
        """Backfill what was missed since ``since`` (s since 1970: the last
        reading Home Assistant had; None: only what follows each statistic's
        last row), and since what an unfinished earlier request asked for."""
        if since is not None and (self._unfilled is None or since < self._unfilled):
            self._unfilled = since
            self._store.async_delay_save(self._saved, 0)
        if self._unfilled is not None:
            since = self._unfilled
        if since is not None:
            self._since = since if self._since is None else min(self._since, since)
        self._asked = True
        self._retries = 0
        self._debouncer.async_schedule_call()

    @callback
    def _start(self) -> None:
        if not self._asked:
            return
        since, self._since, self._asked = self._since, None, False
        self.entry.async_create_background_task(
            self.hass, self._run(since), f"{DOMAIN} backfill {self.entry.entry_id}"
        )

    async def _run(self, since: float | None) -> None:
        result = await async_backfill(
            self.hass,
            self.entry,
            since=None if since is None else dt_util.utc_from_timestamp(since),
        )
        if not result.failed and not result.pending and self._since is None:
            # Done: nothing earlier is waiting (a request meanwhile would
            # have set _since, and is served by the run it starts).
            self._unfilled = None
            self._store.async_delay_save(self._saved, 0)
        if not result.pending:
            return
        if self._retries >= RETRIES:
            LOGGER.info(
                "%s: the meter has still not recorded every hour of a hole; giving up",
                self.entry.title,
            )
            return
        self._retries += 1
        LOGGER.info(
            "%s: the meter has not recorded every hour of a hole yet; will retry in %s",
            self.entry.title,
            RETRY_DELAY,
        )

        @callback
        def retry(_now: datetime) -> None:
            self._cancel_retry = None
            if since is not None:
                self._since = since if self._since is None else min(self._since, since)
            self._asked = True
            self._start()

        self._cancel_retry = async_call_later(self.hass, RETRY_DELAY, retry)

    @callback
    def shutdown(self) -> None:
        """Stop (the entry unloads)."""
        self._debouncer.async_shutdown()
        if self._cancel_retry is not None:
            self._cancel_retry()
            self._cancel_retry = None


async def async_backfill(
    hass: HomeAssistant,
    entry: S8000ConfigEntry,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    since: datetime | None = None,
    raise_errors: bool = False,
) -> BackfillResult:
    """Fill the holes of the entry's energy statistics from the meter's records.

    With ``start`` or ``end``, the holes in [start, end) (by default the
    whole interval memory up to now), as the action asks; otherwise those
    since ``since`` (the last reading Home Assistant had) and after each
    statistic's last row.  What cannot be done (no recorder, another
    backfill of the meter running, the meter's records unreadable) raises a
    translated :class:`HomeAssistantError` with ``raise_errors``, and is
    logged otherwise."""
    progress = entry.runtime_data.backfill

    def fail(key: str, placeholders: dict[str, str], message: str) -> BackfillResult:
        if raise_errors:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key=key,
                translation_placeholders={"title": entry.title, **placeholders},
            )
        LOGGER.warning("%s: %s", entry.title, message)
        return BackfillResult(0, 0, failed=True)

    if "recorder" not in hass.config.components:
        return fail("backfill_no_recorder", {}, "no recorder: nothing to backfill")
    if progress.running:
        return fail("backfill_running", {}, "a backfill already runs; this one is skipped")
    progress.running = True
    progress.set(0.0)
    try:
        return await _async_run(hass, entry, progress, start=start, end=end, since=since)
    except _ReadError as err:
        return fail(
            "backfill_read_error",
            {"error": str(err.__cause__)},
            f"could not read the meter's records: {err.__cause__}",
        )
    finally:
        progress.running = False
        progress.set(None)


class _ReadError(Exception):
    """The meter's records could not be read (the cause says why)."""


#: The units rows are read in: the entities' own, whatever the statistic keeps.
_READ_UNITS: Final[dict[str, str]] = {
    EnergyConverter.UNIT_CLASS: UnitOfEnergy.KILO_WATT_HOUR,
    ReactiveEnergyConverter.UNIT_CLASS: UnitOfReactiveEnergy.KILO_VOLT_AMPERE_REACTIVE_HOUR,
}


def _read_statistics(
    hass: HomeAssistant,
    ids: set[str],
    first: datetime | None,
    last: datetime,
    whole_range: bool,
) -> tuple[dict[str, list[Any]], dict[str, list[Any]], dict[str, list[Any]], int]:
    """The hourly rows the holes are looked for in (in the entities' units),
    each statistic's last row (in its own unit), the five-minute rows of the
    hours the recorder may be compiling, and how many rows were read.

    The action's range is scanned from a memory before it, so a hole that
    starts before the range finds its anchor.  Otherwise each statistic's
    last row is read, and the rows since ``first`` (the last reading Home
    Assistant had), or since the earliest last row: a few rows, not months."""
    read = 0
    lasts: dict[str, list[Any]] = {}
    if whole_range:
        assert first is not None
        since = first - MEMORY
    else:
        for statistic_id in ids:
            found = get_last_statistics(hass, 1, statistic_id, False, {"state", "sum"})
            lasts.update(found)
            read += len(found.get(statistic_id, []))
        starts = [rows[0]["start"] for rows in lasts.values() if rows]
        if not starts:
            return {}, {}, {}, read
        since = dt_util.utc_from_timestamp(min(starts))
        if first is not None:
            since = min(since, first - HOUR)
        since = max(since, last - MEMORY)
    hourly = statistics_during_period(
        hass, since, last + HOUR, ids, "hour", _READ_UNITS, {"state", "sum"}
    )
    short = statistics_during_period(
        hass, last - COMPILING, last + HOUR, ids, "5minute", None, {"sum"}
    )
    read += sum(len(rows) for rows in hourly.values())
    read += sum(len(rows) for rows in short.values())
    return hourly, lasts, short, read


def _converters(
    target: _Target, unit: str | None
) -> tuple[Callable[[float], float], Callable[[float], float]] | None:
    """From the statistic's unit to the entity's, and back; None if the two
    do not convert (another unit class)."""
    native, converter = _NATIVE[target.key]
    if unit is None:
        unit = native
    if unit not in converter.VALID_UNITS:
        return None
    to_native = converter.converter_factory(unit, native)
    from_native = converter.converter_factory(native, unit)
    return to_native, from_native


async def _async_run(
    hass: HomeAssistant,
    entry: S8000ConfigEntry,
    progress: BackfillProgress,
    *,
    start: datetime | None,
    end: datetime | None,
    since: datetime | None,
) -> BackfillResult:
    now_hour = _floor_hour(dt_util.utcnow())
    last = min(_floor_hour(end), now_hour) if end is not None else now_hour
    whole_range = start is not None or end is not None
    first: datetime | None
    if whole_range:
        first = _floor_hour(start) if start is not None else last - MEMORY
    else:
        first = None if since is None else _floor_hour(since)
    targets = _targets(hass, entry)
    if not targets or (whole_range and first is not None and first >= last):
        LOGGER.debug("%s: backfill: nothing to look at", entry.title)
        return BackfillResult(0, 0)
    ids = {t.entity_id for t in targets}
    instance = get_instance(hass)
    hourly, lasts, short, read = await instance.async_add_executor_job(
        _read_statistics, hass, ids, first, last, whole_range
    )
    metadata = await instance.async_add_executor_job(lambda: get_metadata(hass, statistic_ids=ids))
    # Every series in the entity's own unit, so records, bounds and rows agree.
    units: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {}
    series: dict[str, list[Mapping[str, Any]]] = {}
    for target in targets:
        if target.entity_id not in metadata:
            continue
        meta = metadata[target.entity_id][1]
        convert = _converters(target, meta.get("unit_of_measurement"))
        if convert is None:
            LOGGER.info(
                "%s: %s is kept in %s, which is not energy; not backfilled",
                entry.title,
                target.entity_id,
                meta.get("unit_of_measurement"),
            )
            continue
        units[target.entity_id] = convert
        to_native = convert[0]
        # The rows were read in the entity's unit; a statistic with none
        # since has its last row, in its own unit, anchor its hole.
        series[target.entity_id] = _valid(hourly.get(target.entity_id, [])) or [
            {**r, "state": to_native(float(r["state"])), "sum": to_native(float(r["sum"]))}
            for r in _valid(lasts.get(target.entity_id, []))
        ]
    if not whole_range:
        # What follows each statistic's last row is missing too, however
        # long before Home Assistant's last reading it ends.
        starts = [rows[-1]["start"] for rows in series.values() if rows]
        if not starts:
            LOGGER.debug("%s: backfill: no statistics to continue", entry.title)
            return BackfillResult(0, 0, read)
        after_last = dt_util.utc_from_timestamp(min(starts)) + HOUR
        first = after_last if first is None else min(first, after_last)
    assert first is not None
    flat = _flat_hours(series, first)
    bounds = _bounds(entry)
    holes: list[_Hole] = []
    for target in targets:
        if target.entity_id not in series:
            continue
        hours_with_rows = {row["start"] for row in series[target.entity_id]}
        busy = {
            _floor_hour(dt_util.utc_from_timestamp(row["start"])).timestamp()
            for row in short.get(target.entity_id, [])
        } - hours_with_rows
        bound = bounds.get(target.counter, _Bound(None, None))
        holes += _holes(
            target, series[target.entity_id], busy, first, last, flat=flat, live=bound.live
        )
    if not holes:
        LOGGER.debug("%s: backfill: no holes (%d statistics rows read)", entry.title, read)
        return BackfillResult(0, 0, read)
    records = await _async_read(entry, holes, progress)
    newest = max((end for end in records), default=None)
    reversed_points = option_points(entry.options, OPT_REVERSED)
    coordinator = entry.runtime_data.coordinator
    imported: dict[str, list[StatisticData]] = {}
    pending = False
    for hole in holes:
        target = hole.target
        filled = _fill(
            hole,
            records,
            offset=coordinator.counter_offset(target.counter),
            reversed_point=target.point in reversed_points,
            max_kw=bounds.get(target.counter, _Bound(None, None)).kw,
        )
        if filled.rejected is not None:
            LOGGER.info(
                "%s: %s: rejected the meter's record of the hour ending %s (%s); "
                "the hole stops before it",
                entry.title,
                target.entity_id,
                dt_util.as_local(hole.hours[len(filled.rows)] + HOUR),
                filled.rejected,
            )
        elif filled.missing is not None and (newest is None or filled.missing.timestamp() > newest):
            pending = True  # the meter has not got there yet
        if filled.rows:
            from_native = units[target.entity_id][1]
            imported.setdefault(target.entity_id, []).extend(
                StatisticData(
                    start=row["start"],
                    state=from_native(row["state"]),
                    sum=from_native(row["sum"]),
                )
                for row in filled.rows
            )
        elif hole.limit is not None and filled.rejected is None and filled.missing is None:
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
    else:
        LOGGER.debug("%s: backfill: the meter's records leave nothing to fill", entry.title)
    return BackfillResult(hours, len(imported), read, pending)


def _bounds(entry: S8000ConfigEntry) -> dict[str, _Bound]:
    """Each energy counter's bounds, from the last reading: its point's CT
    rating (the readings' guard's own bound) and its live total."""
    runtime = entry.runtime_data
    reading = runtime.coordinator.data
    data = reading.meter_data
    volts = bound_volts(data)
    elements = runtime.identity.elements
    bounds = {}
    for point in data.points:
        kw = max_kw(point, elements, volts)
        for key, _ in ENERGY_COUNTERS:
            counter = point_key(point.number, key)
            bounds[counter] = _Bound(kw, reading.totals.get(counter))
    return bounds


async def _async_read(
    entry: S8000ConfigEntry, holes: list[_Hole], progress: BackfillProgress
) -> dict[float, IntervalRow]:
    """The meter's records ending at each hour end the holes need (and at
    each hole's start), by the hour end's timestamp."""
    since = min(h.hours[0] for h in holes) - HOUR
    until = max(h.hours[-1] for h in holes) + HOUR
    client = entry.runtime_data.modbus
    if client is None:
        raise _ReadError  # the web pages hold no records (no backfill is set up for them)

    def advance(done: int, total: int) -> None:
        progress.set(100.0 * done / total if total else 100.0)

    try:
        rows: list[IntervalRow] = await client.read_intervals(
            since.timestamp(), until.timestamp(), step=3600, progress=advance
        )
    except S8000Error as err:
        raise _ReadError from err
    return {float(row.end): row for row in rows}


def _fill(
    hole: _Hole,
    records: Mapping[float, IntervalRow | tuple[tuple[int, int, int, int], ...]],
    *,
    offset: float,
    reversed_point: bool,
    max_kw: float | None = None,
) -> _Filled:
    """The hourly rows of one hole, continuing its anchor; none when the
    meter's records do not fit an inner hole.

    ``offset`` puts the registers on the entity's scale (see
    :meth:`.models.S8000Coordinator.counter_offset`); a point read reversed
    follows the other register of its pair.  A record is refused (and the
    hole stops before it) when it holds no value, its configuration changed,
    or its energy is beyond what ``max_kw`` meters in the seconds it
    covers.  Rows equal to the flat rows they would replace are left out."""
    target = hole.target
    index = REGISTER_INDEX[target.key]
    if reversed_point:
        index ^= 1  # delivered is the received register, and the other way round

    def record(moment: datetime) -> tuple[float | None, str | None, float]:
        """The register (kWh) at ``moment``, why it is refused, and the
        seconds its record metered."""
        found = records.get(moment.timestamp())
        if found is None:
            return None, None, 3600.0
        if isinstance(found, IntervalRow):
            registers, flags, seconds = found.registers, found.flags, float(found.seconds)
            if not flags & RowFlag.POWER_OFF:
                seconds = float(found.length)  # metered throughout
        else:
            registers, flags, seconds = found, 0, 3600.0
        if target.point > len(registers):
            return None, None, seconds
        value = registers[target.point - 1][index]
        if value == NO_RECORD:
            return None, "no record", seconds
        if flags & RowFlag.CONFIG_CHANGED:
            return None, "configuration changed", seconds
        return value / 1e6, None, seconds  # mWh to kWh

    state, total = float(hole.anchor["state"]), float(hole.anchor["sum"])
    previous = record(hole.hours[0])[0]  # the register at the hole's start
    filled = _Filled([])
    for hour in hole.hours:
        now, rejected, seconds = record(hour + HOUR)
        if rejected is not None:
            filled.rejected = rejected
            break
        if now is None:
            filled.missing = hour + HOUR  # the meter has no record of this hour: stop here
            break
        change = now + offset - state
        if change < 0 or not math.isfinite(change):
            # The entity's scale moved (a reset in the gap): count the
            # register's own growth, from 0 after a reset.
            change = now - previous if previous is not None and now >= previous else now
        growth = now - previous if previous is not None and now >= previous else change
        if previous is None:
            # The anchor's state was read somewhere in its hour.
            seconds = hour.timestamp() + 3600.0 - float(hole.anchor["start"])
        if max_kw is not None and growth > max_energy(max_kw, seconds):
            filled.rejected = f"{growth:.3f} kWh in {seconds:.0f} s, beyond the CT rating"
            break
        state += change
        total += change
        previous = now
        filled.rows.append(StatisticData(start=hour, state=state, sum=total))
    if hole.existing or hole.limit is not None:
        return _fit(hole, filled)
    return filled


def _fit(hole: _Hole, filled: _Filled) -> _Filled:
    """Hold a hole's rows to its room, and leave out the flat rows that
    already say the same."""
    anchor_sum = float(hole.anchor["sum"])
    complete = len(filled.rows) == len(hole.hours)
    rows = filled.rows
    if hole.limit is not None:
        if not hole.trailing:
            if not complete or rows[-1]["sum"] - anchor_sum > hole.limit + TOLERANCE:
                return _Filled([], filled.rejected, filled.missing)
        else:
            # At the end of a series: only what the live total has room for.
            fits = [r for r in rows if r["sum"] - anchor_sum <= hole.limit + TOLERANCE]
            if len(fits) < len(rows) and filled.rejected is None:
                filled.rejected = "beyond the entity's live total"
            rows = fits
    kept = []
    for row in rows:
        old = hole.existing.get(row["start"].timestamp())
        if (
            old is not None
            and abs(float(old["sum"]) - row["sum"]) <= TOLERANCE
            and abs(float(old["state"]) - row["state"]) <= TOLERANCE
        ):
            continue
        kept.append(row)
    return _Filled(kept, filled.rejected, filled.missing)
