"""The whole backfill inside Home Assistant: the meter's records into the recorder.

``bench_backfill`` times the Modbus half of a backfill.  This one times all
of it, as a user gets it: a real Home Assistant (run in this process as the
integration's tests run it) with its real recorder writing a SQLite file,
the integration set up through a config entry against the engine's local
meter (``s8000-engine run --simulate``, a 24-point S8UTS-241, Modbus TCP on
loopback, in a process of its own) whose interval memory holds
``bench_backfill``'s store of 120 days.

For each range of days, a Home Assistant of its own (a fresh recorder
database) sets the meter up, and the 96 energy statistics (4 counters × 24
points) are given one hourly row at the hour before the range, as the
recorder leaves them when Home Assistant goes down: the range is then a
hole in every one of them.  The ``s8000.backfill`` action fills it, and the
clock stops when the recorder has committed the last imported row.  Timed:
the action's call (finding the holes in the statistics, reading the meter's
records, building the rows and queueing them to the recorder), the Modbus
read within it, and the whole until the rows are in the database.  Checked
afterwards, in the database: every statistic has one row per hour of the
range, and its sum grew by exactly the meter's register growth.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from unittest.mock import patch

from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import (
    async_import_statistics,
    statistics_during_period,
)
from homeassistant.const import UnitOfEnergy, UnitOfReactiveEnergy
from homeassistant.const import __version__ as ha_version
from homeassistant.core import HomeAssistant
from homeassistant.helpers import recorder as recorder_helper
from homeassistant.helpers.recorder import get_instance
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.components.recorder.common import (  # type: ignore[import-untyped]
    async_wait_recording_done,
)

from benchmarks.bench_backfill import DAY, HOUR, _fill, _meter
from benchmarks.bench_ha_poll import _home_assistant, loaded_entry, meter_files, quiet_logs
from benchmarks.bench_storage import SCRATCH
from custom_components.s8000.backfill import REGISTER_INDEX, _targets
from custom_components.s8000.const import DOMAIN
from custom_components.s8000.services import SERVICE_BACKFILL
from s8000_engine.client.client import S8000Client
from s8000_engine.protocol.intervals import IntervalRow
from s8000_engine.storage.store import DATABASE_NAME, IntervalRecord

#: A 15-minute interval, s: the record before an hour ends at its start.
LENGTH_15 = 900


@dataclass(frozen=True, slots=True)
class HaBackfillResult:
    """One backfill of a range."""

    days: int
    statistics: int
    """Statistic ids filled."""
    rows: int
    """Hourly rows imported, over every statistic."""
    call_s: float
    """The action's call: holes, the meter's records, the rows queued."""
    read_s: float
    """The read of the meter's records over Modbus within it."""
    total_s: float
    """Until the recorder has committed every row."""

    @property
    def recorder_s(self) -> float:
        """The recorder's share: what the whole took after the call returned."""
        return self.total_s - self.call_s

    @property
    def rows_per_s(self) -> float:
        """Rows in the database per second of the whole."""
        return self.rows / self.total_s

    @property
    def ms_per_day(self) -> float:
        """The whole, per day of data, ms."""
        return self.total_s / self.days * 1000


@dataclass(frozen=True, slots=True)
class HaBackfillRun:
    """Every range."""

    home_assistant: str
    results: list[HaBackfillResult]


#: The unit class and unit of each energy counter's statistic.
UNITS: Final = {
    key: (
        ("reactive_energy", UnitOfReactiveEnergy.KILO_VOLT_AMPERE_REACTIVE_HOUR)
        if key.startswith("reactive")
        else ("energy", UnitOfEnergy.KILO_WATT_HOUR)
    )
    for key in REGISTER_INDEX
}


def statistic_metadata(entity_id: str, key: str) -> StatisticMetaData:
    """The metadata of an energy entity's statistic, as the recorder keeps it:
    in the entity's own unit (kWh, or kvarh for reactive energy)."""
    unit_class, unit = UNITS[key]
    return {
        "mean_type": StatisticMeanType.NONE,
        "has_sum": True,
        "name": None,
        "source": "recorder",
        "statistic_id": entity_id,
        "unit_class": unit_class,
        "unit_of_measurement": unit,
    }


def _register(record: IntervalRecord, point: int, key: str) -> float:
    """The energy register of ``key`` for ``point`` at the record's end, kWh."""
    return record.points[point - 1].registers[REGISTER_INDEX[key]] / 1e6


@asynccontextmanager
async def _with_recorder(config_dir: Path) -> AsyncIterator[HomeAssistant]:
    """Home Assistant with its recorder on a SQLite file of its own."""
    async with _home_assistant(config_dir) as hass:
        url = f"sqlite:///{config_dir / 'home-assistant_v2.db'}"
        recorder_helper.async_initialize_recorder(hass)  # as Home Assistant's bootstrap does
        if not await async_setup_component(hass, "recorder", {"recorder": {"db_url": url}}):
            raise RuntimeError("the recorder did not set up")
        await hass.async_block_till_done()
        await async_wait_recording_done(hass)
        yield hass


async def _one(
    port: int, days: int, end: int, records: dict[int, IntervalRecord], config_dir: Path
) -> HaBackfillResult:
    first = end - days * DAY
    async with _with_recorder(config_dir) as hass:
        entry = await loaded_entry(hass, port)
        runtime = entry.runtime_data
        # The backfill at setup finds nothing to anchor to; wait until it is over.
        idle = asyncio.Event()
        remove = runtime.backfill.add_listener(
            lambda: None if runtime.backfill.running else idle.set()
        )
        if not runtime.backfill.running:
            idle.set()
        await idle.wait()
        remove()
        targets = _targets(hass, entry)
        anchor_hour = datetime.fromtimestamp(first - HOUR, UTC)
        for target in targets:
            async_import_statistics(
                hass,
                statistic_metadata(target.entity_id, target.key),
                [
                    StatisticData(
                        start=anchor_hour,
                        state=_register(records[first - LENGTH_15], target.point, target.key),
                        sum=0.0,
                    )
                ],
            )
        await async_wait_recording_done(hass)

        client: S8000Client = runtime.client
        read = client.read_intervals
        read_s = 0.0

        async def timed_read(*args: Any, **kwargs: Any) -> list[IntervalRow]:
            nonlocal read_s
            began = time.perf_counter()
            try:
                return await read(*args, **kwargs)
            finally:
                read_s += time.perf_counter() - began

        with patch.object(client, "read_intervals", timed_read):
            began = time.perf_counter()
            response = await hass.services.async_call(
                DOMAIN,
                SERVICE_BACKFILL,
                {
                    "config_entry_id": entry.entry_id,
                    "start": datetime.fromtimestamp(first, UTC),
                    "end": datetime.fromtimestamp(end, UTC),
                },
                blocking=True,
                return_response=True,
            )
            called = time.perf_counter()
            await async_wait_recording_done(hass)
            done = time.perf_counter()
        assert response is not None
        rows, filled = response["hours"], response["statistics"]
        assert isinstance(rows, int)
        assert isinstance(filled, int)
        expected = days * 24 * len(targets)
        if rows != expected or filled != len(targets):
            raise AssertionError(f"{days} days: {rows} rows in {filled} statistics, {expected}")
        await _check(hass, targets, first, end, records)
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    return HaBackfillResult(days, filled, rows, called - began, read_s, done - began)


async def _check(
    hass: HomeAssistant,
    targets: list[Any],
    first: int,
    end: int,
    records: dict[int, IntervalRecord],
) -> None:
    """In the database: an hourly row for every hour, the sum grown by the register."""
    stats = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime.fromtimestamp(first, UTC),
        datetime.fromtimestamp(end, UTC),
        {t.entity_id for t in targets},
        "hour",
        None,
        {"state", "sum"},
    )
    hours = (end - first) // HOUR
    for target in targets:
        rows = stats.get(target.entity_id, [])
        if len(rows) != hours:
            raise AssertionError(f"{target.entity_id}: {len(rows)} hourly rows, {hours} hours")
        grown = _register(records[end - LENGTH_15], target.point, target.key) - _register(
            records[first - LENGTH_15], target.point, target.key
        )
        total = rows[-1]["sum"]
        if total is None or not math.isclose(total, grown, abs_tol=1e-6):
            raise AssertionError(f"{target.entity_id}: sum {rows[-1]['sum']}, grown {grown}")


def run(days: tuple[int, ...] = (1, 7, 30, 120)) -> HaBackfillRun:
    """Fill ``max(days)`` days (plus the anchor's), serve them, backfill each range
    into a fresh recorder."""
    end = math.floor(time.time() / HOUR) * HOUR  # the last full hour
    filled = max(days) + 1  # and a day before, for the anchor's register
    SCRATCH.mkdir(exist_ok=True)
    with quiet_logs(), tempfile.TemporaryDirectory(dir=SCRATCH, prefix="ha-backfill-") as name:
        scratch = Path(name)
        data, config = meter_files(scratch)
        records = {r.start: r for r in _fill(data / DATABASE_NAME, filled, end)}
        results = []
        with _meter(data, config, filled + 7) as port:
            for d in days:
                home = scratch / f"ha-{d}"
                home.mkdir()
                results.append(asyncio.run(_one(port, d, end, records, home)))
    return HaBackfillRun(ha_version, results)
