"""Interval memory: 120 days of 15-minute data for a 24-point meter.

Fills a fresh store through :meth:`Store.commit` exactly as the local meter
does — one committed transaction per closed interval, with the register
checkpoint, in WAL mode with ``synchronous=FULL`` — then reads back one day
and the whole 120 days for all points.  As a reference the same data is
written as plain CSV files (one file per day, the export's columns, the
file flushed and fsynced after every interval, the same durability) and read
back with the csv module.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s8000_engine.storage.export import CSV_COLUMNS, to_rows
from s8000_engine.storage.store import Checkpoint, Flag, IntervalRecord, PointRecord, Store

POINTS = 24
LENGTH = 900
START = 1_785_024_000  # 2026-07-26T00:00:00Z, 120 days before 2026-11-23


@dataclass(frozen=True, slots=True)
class StorageResult:
    """Figures of one store (SQLite or CSV)."""

    name: str
    intervals: int
    record_ms: float
    """Mean time to commit one interval (all points), ms."""
    read_day_ms: float
    read_all_s: float
    size_bytes: int


def _records(days: int) -> list[IntervalRecord]:
    rng = np.random.default_rng(5)
    registers = np.zeros((POINTS, 4), dtype=np.int64)
    records = []
    for k in range(days * 96):
        deltas = rng.integers(0, 400_000, size=(POINTS, 4))
        registers += deltas
        records.append(
            IntervalRecord(
                start=START + k * LENGTH,
                length=LENGTH,
                flags=Flag(0),
                covered=900.0,
                voltage=[120.1, 119.8, 120.4],
                frequency=60.001,
                pulses=[k, 2 * k],
                pulse_deltas=[1, 2],
                points=[
                    PointRecord(
                        point=p,
                        registers=registers[p].tolist(),
                        deltas=deltas[p].tolist(),
                        peak_demand_w=float(deltas[p, 0]) * 4 / 1000,
                        peak_demand_time=float(START + k * LENGTH + 900),
                        power_w=[float(deltas[p, 0]) * 4 / 1000, None, None],
                        current_a=[float(deltas[p, 0]) / 120_000, None, None],
                    )
                    for p in range(POINTS)
                ],
            )
        )
    return records


def run_sqlite(directory: Path, records: list[IntervalRecord]) -> StorageResult:
    """Fill, read back one day and everything."""
    with Store.open(directory) as store:
        began = time.perf_counter()
        for record in records:
            checkpoint = Checkpoint(
                time=float(record.end),
                registers=[[*p.registers, 0, 0, 0, 0] for p in record.points],
                state={"recorder": {"start": record.end}},
            )
            store.commit(checkpoint, [record])
        record_ms = (time.perf_counter() - began) / len(records) * 1000
        middle = START + (len(records) // 2 // 96) * 86400
        began = time.perf_counter()
        day = store.intervals(middle, middle + 86400)
        read_day_ms = (time.perf_counter() - began) * 1000
        assert len(day) == 96
        began = time.perf_counter()
        everything = store.intervals()
        read_all_s = time.perf_counter() - began
        assert len(everything) == len(records)
        store.vacuum()
        size = store.size_bytes()
    return StorageResult(
        "SQLite (s8000-engine store)", len(records), record_ms, read_day_ms, read_all_s, size
    )


def run_csv(directory: Path, records: list[IntervalRecord]) -> StorageResult:
    """The same data as one CSV file per day, fsynced per interval."""
    began = time.perf_counter()
    for record in records:
        day = (record.start - START) // 86400
        path = directory / f"day-{day:03d}.csv"
        new = not path.exists()
        with path.open("a", newline="") as file:
            writer = csv.writer(file)
            if new:
                writer.writerow(CSV_COLUMNS)
            writer.writerows(to_rows([record]))
            file.flush()
            os.fsync(file.fileno())
    record_ms = (time.perf_counter() - began) / len(records) * 1000
    files = sorted(directory.glob("day-*.csv"))
    began = time.perf_counter()
    with files[len(files) // 2].open(newline="") as file:
        rows = list(csv.reader(file))
    read_day_ms = (time.perf_counter() - began) * 1000
    assert len(rows) == 96 * POINTS + 1
    began = time.perf_counter()
    total = 0
    for path in files:
        with path.open(newline="") as file:
            total += sum(1 for _ in csv.reader(file)) - 1
    read_all_s = time.perf_counter() - began
    assert total == len(records) * POINTS
    size = sum(path.stat().st_size for path in files)
    return StorageResult(
        "CSV files, one per day", len(records), record_ms, read_day_ms, read_all_s, size
    )


#: Scratch space on the checkout's disk: /tmp may be a tmpfs, where fsync costs nothing.
SCRATCH = Path(__file__).resolve().parent / ".scratch"


def run(days: int = 120) -> list[StorageResult]:
    """Both stores for ``days`` days of 15-minute intervals."""
    records = _records(days)
    SCRATCH.mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=SCRATCH) as sqlite_dir,
        tempfile.TemporaryDirectory(dir=SCRATCH) as csv_dir,
    ):
        return [run_sqlite(Path(sqlite_dir), records), run_csv(Path(csv_dir), records)]
