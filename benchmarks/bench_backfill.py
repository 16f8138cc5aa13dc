"""Backfilling statistics: the interval memory of a 24-point meter read over Modbus.

A fresh store is filled with the 15-minute intervals of a 24-point S8UTS-241
(the map of ``bench_modbus``) for the days up to the last full hour before
now — ``bench_storage``'s generated data, moved to end there, committed a
day per transaction.  The engine's local meter (``s8000-engine run
--simulate``, at the wall clock's speed, so its clock is past the filled
intervals) serves that store over Modbus TCP on loopback, in a process of
its own.  :meth:`S8000Client.read_intervals` with ``step=3600`` (one row per
hour: what hourly statistics need) then reads the last 1, 7, 30 and 120 days
through modbus-connection's tmodbus backend, Home Assistant's.  Each row is
390 words, four function 20 requests of at most 121 words.  Per range: the
rows, the function 20 requests, the wall time, rows per second and the time
per day of data (the same for every range when the time grows linearly), and
what the same requests would take on the wire of an RS-485 line at 19,200
baud.  For comparison the last 1 and 7 days are also read row by row
(``step=None``: every quarter hour, consecutive rows read as one span).
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from modbus_connection import ModbusTcpParams, ModbusUnit
from modbus_connection.tmodbus import ModbusConnection

from benchmarks.bench_modbus import CONFIG
from benchmarks.bench_storage import LENGTH, POINTS, SCRATCH, START, _records
from benchmarks.localmeter import serving
from s8000_engine.client.client import S8000Client
from s8000_engine.modbus.server import frame_gap
from s8000_engine.protocol.intervals import IntervalRow
from s8000_engine.storage.store import Checkpoint, IntervalRecord, Store

HOUR = 3600
DAY = 86400
#: RS-485 at 19200 baud, 8E1: 11 bits a byte.
BAUD = 19200


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """One read of a range."""

    days: int
    step: int | None
    rows: int
    transactions: int
    """Function 20 requests (the pointers' one function 03 read not counted)."""
    seconds: float
    """Wall time, the best of the repeats."""
    rtu_seconds: float
    """Wire time of the same requests at 19,200 baud, 8E1, with t3.5 after each frame."""

    @property
    def rows_per_s(self) -> float:
        """Rows read per second."""
        return self.rows / self.seconds

    @property
    def ms_per_day(self) -> float:
        """Wall time per day of data, ms."""
        return self.seconds / self.days * 1000


@dataclass(frozen=True, slots=True)
class BackfillRun:
    """The store and every read."""

    intervals: int
    fill_seconds: float
    results: list[BackfillResult]


class _CountingUnit:
    """A unit that records the function 20 requests going through it."""

    def __init__(self, unit: ModbusUnit) -> None:
        self._unit = unit
        self.lengths: list[int] = []

    async def read_file_record(self, file: int, record: int, length: int) -> list[int]:
        self.lengths.append(length)
        return await self._unit.read_file_record(file, record, length)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._unit, name)


def _rtu_seconds(lengths: list[int]) -> float:
    """Wire time of function 20 requests of these word counts over RTU at 19,200 baud."""
    request = 1 + 1 + 1 + 7 + 2  # unit, function, byte count, one sub-request, CRC
    total = sum(request + 1 + 1 + 1 + 1 + 1 + 2 * n + 2 for n in lengths)
    return total * 11 / BAUD + 2 * len(lengths) * frame_gap(BAUD)


def _fill(data: Path, days: int, end: int) -> list[IntervalRecord]:
    """``days`` days of 15-minute intervals ending at ``end``, committed a day at a time."""
    records = _records(days)
    shift = end - days * DAY - START
    for record in records:
        record.start += shift
        for point in record.points:
            if point.peak_demand_time is not None:
                point.peak_demand_time += shift
    with Store.open(data) as store:
        per_day = DAY // LENGTH
        for first in range(0, len(records), per_day):
            batch = records[first : first + per_day]
            last = batch[-1]
            checkpoint = Checkpoint(
                time=float(last.end),
                registers=[[*p.registers, 0, 0, 0, 0] for p in last.points],
                state={},
            )
            store.commit(checkpoint, batch)
    return records


@contextmanager
def _meter(data: Path, config: Path, retention_days: int) -> Iterator[int]:
    """The local meter serving the store in ``data`` over Modbus TCP; yields its port."""
    with serving(
        data, "--config", str(config), "--speed", "1", "--retention-days", str(retention_days)
    ) as port:
        yield port


def _check(rows: list[IntervalRow], records: dict[int, IntervalRecord], step: int | None) -> None:
    """The rows are the filled intervals (those ending on the step)."""
    for row in rows:
        record = records[row.start]
        if step is not None and row.end % step:
            raise AssertionError(f"row {row.start} does not end on the {step} s step")
        if row.registers != tuple(tuple(p.registers) for p in record.points):
            raise AssertionError(f"row {row.start} is not the interval stored")


async def _reads(
    port: int,
    end: int,
    plan: list[tuple[int, int | None]],
    records: dict[int, IntervalRecord],
    repeat: int,
) -> list[BackfillResult]:
    connection = ModbusConnection(ModbusTcpParams(host="127.0.0.1", port=port), timeout=5.0)
    try:
        unit = _CountingUnit(connection.for_unit(1))
        client = S8000Client(cast("ModbusUnit", unit))
        await client.identify()
        await client.read_intervals(end - HOUR, end)  # warm-up: connection, first rows
        results = []
        for days, step in plan:
            seconds = math.inf
            for _ in range(repeat):
                unit.lengths.clear()
                began = time.perf_counter()
                rows = await client.read_intervals(end - days * DAY, end, step=step)
                seconds = min(seconds, time.perf_counter() - began)
            expected = days * DAY // (step or LENGTH)
            if len(rows) != expected:
                raise AssertionError(f"{days} days: {len(rows)} rows read, {expected} stored")
            _check(rows, records, step)
            results.append(
                BackfillResult(
                    days, step, len(rows), len(unit.lengths), seconds, _rtu_seconds(unit.lengths)
                )
            )
        return results
    finally:
        await connection.close()


def run(days: tuple[int, ...] = (1, 7, 30, 120), repeat: int = 3) -> BackfillRun:
    """Fill ``max(days)`` days, serve them, read each range hourly (and up to 7 days
    whole), the best of ``repeat`` reads."""
    end = math.floor(time.time() / HOUR) * HOUR  # the last full hour
    filled = max(days)
    plan: list[tuple[int, int | None]] = [(d, HOUR) for d in days]
    plan += [(d, None) for d in days if d <= 7]
    SCRATCH.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=SCRATCH, prefix="backfill-") as name:
        data = Path(name) / "meter"
        data.mkdir()
        config = Path(name) / "meter.json"
        config.write_text(json.dumps(CONFIG))
        began = time.perf_counter()
        records = _fill(data, filled, end)
        fill_seconds = time.perf_counter() - began
        by_start = {r.start: r for r in records}
        assert len(CONFIG["points"]) == POINTS
        with _meter(data, config, filled + 7) as port:
            results = asyncio.run(_reads(port, end, plan, by_start, repeat))
    return BackfillRun(len(records), fill_seconds, results)
