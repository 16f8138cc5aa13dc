"""The backfill at setup, on a database that already holds a year of statistics.

``bench_ha_backfill`` times a backfill into a fresh database.  A user's
database is not fresh: every setup, and every return of the meter, runs the
automatic backfill over statistics that go back a year.  This benchmark
measures what that costs.

A real Home Assistant with its recorder (SQLite) sets the 24-point meter up
once, so its 96 energy statistics exist, and is stopped.  The database is
then given a year of hourly rows for each of them (written straight into
the recorder's tables: importing 840,000 rows through the recorder would
take minutes and measure nothing of the integration), either up to the
last hour (*no hole*) or up to a day before it (*1-day hole*, which the
meter's memory holds).  Timed: the setup of the config entry, and the
automatic backfill after it until the recorder has committed its rows.
Counted, by wrapping the recorder's functions the backfill module calls:
the statistics rows it read, and the hourly rows it imported.

``python -m benchmarks.bench_ha_history --reference-tree DIR`` runs the same
measurement against another tree's integration (its ``custom_components``
first on the path) and prints both side by side, as ``reference → now``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from homeassistant.components.recorder.db_schema import Statistics, StatisticsMeta
from homeassistant.components.recorder.models import StatisticData
from homeassistant.components.recorder.statistics import async_import_statistics
from homeassistant.components.recorder.util import session_scope  # type: ignore[attr-defined]
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
from pytest_homeassistant_custom_component.components.recorder.common import (  # type: ignore[import-untyped]
    async_wait_recording_done,
)
from sqlalchemy import insert

from benchmarks.bench_backfill import DAY, HOUR, _fill, _meter
from benchmarks.bench_ha_backfill import (
    LENGTH_15,
    _register,
    _with_recorder,
    statistic_metadata,
)
from benchmarks.bench_ha_poll import loaded_entry, meter_files, quiet_logs
from benchmarks.bench_storage import SCRATCH
from custom_components.s8000 import backfill as backfill_module
from s8000_engine.storage.store import DATABASE_NAME, IntervalRecord

ROOT = Path(__file__).resolve().parent.parent
#: The recorder functions the backfill module may read statistics with.
_READERS = ("statistics_during_period", "get_last_statistics")


@dataclass(frozen=True, slots=True)
class HistoryResult:
    """One setup on a database with history."""

    case: str
    statistics_rows: int
    """Hourly rows in the database before the setup."""
    setup_s: float
    """The config entry's setup."""
    backfill_s: float
    """From the end of the setup until the backfill's rows are committed."""
    rows_read: int
    """Statistics rows the backfill read from the recorder."""
    hours: int
    """Hourly rows it imported."""


@dataclass(frozen=True, slots=True)
class HistoryRun:
    """Both cases."""

    days: int
    results: list[HistoryResult]


class _Counter:
    """Wraps the backfill module's recorder calls, counting rows."""

    def __init__(self) -> None:
        self.read = 0
        self.imported = 0
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> _Counter:
        for name in _READERS:
            original = getattr(backfill_module, name, None)
            if original is not None:
                self._wrap(name, original, self._count_read)
        self._wrap(
            "async_import_statistics",
            getattr(backfill_module, "async_import_statistics"),  # noqa: B009
            self._count_import,
        )
        return self

    def _wrap(
        self, name: str, original: Any, count: Callable[[Any, tuple[Any, ...]], None]
    ) -> None:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            count(result, args)
            return result

        setattr(backfill_module, name, wrapper)
        self._undo.append(lambda: setattr(backfill_module, name, original))

    def _count_read(self, result: Any, _args: tuple[Any, ...]) -> None:
        self.read += sum(len(rows) for rows in result.values())

    def _count_import(self, _result: Any, args: tuple[Any, ...]) -> None:
        self.imported += len(args[2])

    def __exit__(self, *_: object) -> None:
        for undo in self._undo:
            undo()


async def _history(
    hass: HomeAssistant,
    targets: list[Any],
    first: int,
    last: int,
    records: dict[int, IntervalRecord],
) -> int:
    """Hourly rows for every statistic, hours [first, last]: the last one's
    state the meter's register at its end, each hour before 0.5 kWh less."""
    for target in targets:
        async_import_statistics(
            hass,
            statistic_metadata(target.entity_id, target.key),
            [StatisticData(start=datetime.fromtimestamp(first, UTC), state=0.0, sum=0.0)],
        )
    await async_wait_recording_done(hass)
    instance = get_instance(hass)
    hours = (last - first) // HOUR + 1

    def write() -> int:
        with session_scope(session=instance.get_session()) as session:
            ids: dict[str | None, int] = dict(
                session.query(StatisticsMeta.statistic_id, StatisticsMeta.id).tuples().all()
            )
            now = time.time()
            rows = []
            for target in targets:
                end_state = _register(records[last + HOUR - LENGTH_15], target.point, target.key)
                for index in range(1, hours):
                    behind = (hours - 1 - index) * 0.5
                    rows.append(
                        {
                            "metadata_id": ids[target.entity_id],
                            "created_ts": now,
                            "start_ts": float(first + index * HOUR),
                            "state": end_state - behind,
                            "sum": index * 0.5,
                        }
                    )
            session.execute(insert(Statistics), rows)
        return len(rows) + len(targets)

    return await instance.async_add_executor_job(write)


async def _one(  # noqa: PLR0917 - the run's plan, one argument each
    case: str,
    port: int,
    days: int,
    end: int,
    hole_days: int,
    records: dict[int, IntervalRecord],
    config_dir: Path,
) -> HistoryResult:
    async with _with_recorder(config_dir) as hass:
        # A first setup registers the entities; the year goes in after it.
        entry = await loaded_entry(hass, port)
        await hass.async_block_till_done(wait_background_tasks=True)
        targets = backfill_module._targets(hass, entry)
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        last = end - HOUR - hole_days * DAY  # the last hour with a row
        rows = await _history(hass, targets, end - days * DAY, last, records)
        await async_wait_recording_done(hass)

        with _Counter() as counter:
            began = time.perf_counter()
            if not await hass.config_entries.async_setup(entry.entry_id):
                raise RuntimeError("the config entry did not set up again")
            set_up = time.perf_counter()
            await hass.async_block_till_done(wait_background_tasks=True)
            await async_wait_recording_done(hass)
            done = time.perf_counter()
        expected = hole_days * 24 * len(targets)
        if counter.imported != expected:
            raise AssertionError(f"{case}: {counter.imported} rows imported, {expected} expected")
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    return HistoryResult(case, rows, set_up - began, done - set_up, counter.read, counter.imported)


def run(days: int = 365) -> HistoryRun:
    """A year (``days``) of statistics, then a setup with no hole and with a 1-day hole."""
    end = math.floor(time.time() / HOUR) * HOUR  # the last full hour
    SCRATCH.mkdir(exist_ok=True)
    with quiet_logs(), tempfile.TemporaryDirectory(dir=SCRATCH, prefix="ha-history-") as name:
        scratch = Path(name)
        data, config = meter_files(scratch)
        # The meter's memory: the day of the hole and the anchor's hour.
        records = {r.start: r for r in _fill(data / DATABASE_NAME, 2, end)}
        results = []
        with _meter(data, config, 9) as port:
            for case, hole in (("no hole", 0), ("1-day hole", 1)):
                home = scratch / f"ha-{hole}"
                home.mkdir()
                results.append(asyncio.run(_one(case, port, days, end, hole, records, home)))
    return HistoryRun(days, results)


#: The table's head.
HEADER: Final = (
    "| case | hourly rows in the database | setup (s) | backfill (s) | rows read | rows imported |",
    "|---|---:|---:|---:|---:|---:|",
)


def table(run_: HistoryRun) -> list[str]:
    """The report's rows."""
    return [
        f"| {r.case} | {r.statistics_rows} | {r.setup_s:.2f} | {r.backfill_s:.2f} | "
        f"{r.rows_read} | {r.hours} |"
        for r in run_.results
    ]


def _reference(tree: Path, days: int) -> HistoryRun:
    """The same run with ``tree``'s integration."""
    shim = Path(tempfile.mkdtemp(dir=SCRATCH, prefix="reference-"))
    (shim / "custom_components").symlink_to(tree.resolve() / "custom_components")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(shim), str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        # -P: not this tree's directory before the shim on the path.
        [sys.executable, "-P", "-m", "benchmarks.bench_ha_history", "--days", str(days), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the reference run failed:\n{done.stderr[-4000:]}")
    raw = json.loads(done.stdout.splitlines()[-1])
    return HistoryRun(raw["days"], [HistoryResult(**r) for r in raw["results"]])


def main(argv: list[str] | None = None) -> int:
    """Run (and with --reference-tree, the reference first); print the table."""
    parser = argparse.ArgumentParser(prog="benchmarks.bench_ha_history")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--reference-tree", type=Path)
    parser.add_argument("--json", action="store_true", help="print the run as JSON")
    args = parser.parse_args(argv)
    reference = None if args.reference_tree is None else _reference(args.reference_tree, args.days)
    current = run(args.days)
    if args.json:
        print(json.dumps({"days": current.days, "results": [asdict(r) for r in current.results]}))
        return 0
    rows = table(current)
    if reference is not None:
        from benchmarks.compare import merge  # noqa: PLC0415

        rows = merge("\n".join(table(reference)), "\n".join(rows)).splitlines()
    print("\n".join([*HEADER, *rows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
