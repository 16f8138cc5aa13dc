"""Run the benchmarks and write docs/benchmarks.md.

    python -m benchmarks.run            full run, rewrites docs/benchmarks.md
    python -m benchmarks.run --quick    a short run that only prints (a smoke test)
    python -m benchmarks.run --no-write a full run that only prints

scripts/bench runs this in the project's environment.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

# One core: set before numpy loads its BLAS.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import numpy as np  # noqa: E402

from benchmarks import (  # noqa: E402
    bench_backfill,
    bench_client,
    bench_ha_backfill,
    bench_ha_history,
    bench_ha_poll,
    bench_metering,
    bench_modbus,
    bench_storage,
    bench_web,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BEGIN = "<!-- benchmarks:begin -->"
END = "<!-- benchmarks:end -->"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    """Run; print the report; with no --quick, write it into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(prog="benchmarks.run")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    seconds, repeat = (2.0, 1) if args.quick else (30.0, 3)

    rows = []
    for rate in (8000, 16000):
        result = bench_metering.run(rate, seconds, repeat)
        rows.append(
            f"| {rate} | {result.seconds:g} | {result.cpu_seconds:.3f} | "
            f"{result.realtime_factor:.0f}× |"
        )
    days = 2 if args.quick else 120
    storage_rows = [
        f"| {r.name} | {r.intervals} | {r.record_ms:.2f} | {r.read_day_ms:.1f} | "
        f"{r.read_all_s:.2f} | {r.size_bytes / 1e6:.1f} |"
        for r in bench_storage.run(days)
    ]
    modbus_rows = [
        f"| {r.name} | {r.clients} | {r.transactions} | {r.bytes_on_wire} | {r.p50_ms:.2f} | "
        f"{r.p99_ms:.2f} | " + ("" if r.wire_limit_ms is None else f"{r.wire_limit_ms:.0f}") + " |"
        for r in bench_modbus.run(20 if args.quick else 200)
    ]
    client = bench_client.run(30 if args.quick else 300, 2 if args.quick else 7)
    ha = bench_ha_poll.run(5 if args.quick else 80)
    ha_rows = [
        f"| {name} | {spread.p50:.2f} | {spread.p95:.2f} |"
        for name, spread in (
            ("wall time", ha.wall_ms),
            ("… of it, the read of the map", ha.read_ms),
            ("Home Assistant's CPU time", ha.cpu_ms),
            ("… of it, in the read of the map", ha.read_cpu_ms),
        )
    ]
    backfill = bench_backfill.run((1, 7) if args.quick else (1, 7, 30, 120), repeat)
    backfill_rows = [
        f"| {r.days} | {'every row' if r.step is None else f'{r.step} s'} | {r.rows} | "
        f"{r.transactions} | {r.seconds:.2f} | {r.rows_per_s:.0f} | {r.ms_per_day:.1f} | "
        f"{r.rtu_seconds:.0f} |"
        for r in backfill.results
    ]
    hourly = [r for r in backfill.results if r.step == 3600]
    first, last = hourly[0], hourly[-1]
    backfill_growth = (
        f"Hourly reads: {last.days} days are {last.days // first.days}× the days of "
        f"{first.days}, and took {last.seconds / first.seconds:.0f}× the time "
        f"({first.ms_per_day:.0f} and {last.ms_per_day:.0f} ms per day of data)."
    )
    ha_backfill = bench_ha_backfill.run((1,) if args.quick else (1, 7, 30, 120))
    ha_backfill_rows = [
        f"| {r.days} | {r.rows} | {r.call_s:.2f} | {r.read_s:.2f} | {r.recorder_s:.1f} | "
        f"{r.total_s:.1f} | {r.rows_per_s:.0f} | {r.ms_per_day:.0f} |"
        for r in ha_backfill.results
    ]
    few, many = ha_backfill.results[0], ha_backfill.results[-1]
    ha_backfill_growth = (
        f"{many.days} days are {many.days // few.days}× the days of {few.days}, and took "
        f"{many.total_s / few.total_s:.0f}× the time ({few.ms_per_day:.0f} and "
        f"{many.ms_per_day:.0f} ms per day of data); the recorder's writing is "
        f"{many.recorder_s / many.total_s:.0%} of it."
        if many is not few
        else f"The recorder's writing is {many.recorder_s / many.total_s:.0%} of the time."
    )
    history = bench_ha_history.run(2 if args.quick else 365)
    web = bench_web.run(10 if args.quick else 100, 2 if args.quick else 5)
    web_rows = [
        f"| {t.name} | {t.requests} | {t.p50_ms:.1f} | {t.p95_ms:.1f} | "
        + (f"{t.bytes:,} |" if t.bytes else "— |")
        for t in web.timings
    ]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = "\n".join(
        [
            BEGIN,
            f"Measured {when} on {_cpu()}, one core, Python {platform.python_version()}, "
            f"numpy {np.__version__}.",
            "",
            "### Metering a 24-point meter (S8UTS-241, 3 voltages + 24 CTs)",
            "",
            "| sample rate (Hz) | signal (s) | CPU time (s) | faster than real time |",
            "|---:|---:|---:|---:|",
            *rows,
            "",
            f"### Interval memory: {days} days of 15-minute data, 24 points",
            "",
            "| store | intervals | record one interval (ms) | read one day (ms) "
            "| read everything (s) | size (MB) |",
            "|---|---:|---:|---:|---:|---:|",
            *storage_rows,
            "",
            "### Modbus: one poll of a 24-point meter (S8UTS-241)",
            "",
            "| transport | clients | transactions | bytes on the wire | p50 (ms) | p99 (ms) "
            "| wire-time limit (ms) |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *modbus_rows,
            "",
            "### The client alone: CPU of one read of a 24-point meter (in process, no socket)",
            "",
            "| read | CPU (ms) |",
            "|---|---:|",
            f"| the whole map | {client.full_ms:.3f} |",
            f"| Home Assistant's default entities | {client.default_entities_ms:.3f} |",
            "",
            "### Home Assistant: one poll of a 24-point meter (S8UTS-241, Modbus TCP)",
            "",
            f"Home Assistant {ha.home_assistant}, {ha.polls} polls. Each poll: "
            f"{ha.transactions} Modbus transactions, {ha.entities} entities, "
            f"{ha.writes:.0f} state writes of which {ha.changes:.0f} changes.",
            "",
            "| per poll | p50 (ms) | p95 (ms) |",
            "|---|---:|---:|",
            *ha_rows,
            "",
            "### Backfill: the interval memory of a 24-point meter over Modbus TCP (function 20)",
            "",
            f"{backfill.intervals} 15-minute intervals stored (filled in "
            f"{backfill.fill_seconds:.1f} s); `read_intervals` through the tmodbus backend, "
            f"best of {repeat}. A row is 390 words: four requests of at most 121.",
            "",
            "| days | step | rows | function 20 requests | seconds | rows/s | ms per day "
            "| RTU 19200 baud wire time (s) |",
            "|---:|---|---:|---:|---:|---:|---:|---:|",
            *backfill_rows,
            "",
            backfill_growth,
            "",
            "### Backfill inside Home Assistant: the records into the recorder's statistics",
            "",
            f"Home Assistant {ha_backfill.home_assistant} with its recorder on SQLite; the "
            "`s8000.backfill` action over a hole of the range in each of the "
            f"{many.statistics} energy statistics of a 24-point meter, until the recorder "
            "has committed every row. *Call*: the action (holes, the meter's records, the "
            "rows queued); *read*: its Modbus part; *recorder*: the writing after it.",
            "",
            "| days | hourly rows | call (s) | read (s) | recorder (s) | total (s) | rows/s "
            "| ms per day |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            *ha_backfill_rows,
            "",
            ha_backfill_growth,
            "",
            f"### Backfill at setup: {history.days} days of statistics already in the database",
            "",
            "The 96 energy statistics of a 24-point meter, with no hole and with the last "
            "day missing; the entry's setup, then the automatic backfill until its rows are "
            "committed, and the statistics rows it read.",
            "",
            *bench_ha_history.HEADER,
            *bench_ha_history.table(history),
            "",
            "### The local meter's web interface: a 24-point meter with 120 days of intervals",
            "",
            "| request | requests | p50 (ms) | p95 (ms) | response (bytes) |",
            "|---|---:|---:|---:|---:|",
            *web_rows,
            "",
            f"The live view the meter takes after every metered second for the web page and "
            f"the front panel: {web.live_view_ms:.2f} ms of CPU.",
            END,
        ]
    )
    print(report)
    if not (args.quick or args.no_write):
        text = DOC.read_text()
        if BEGIN not in text or END not in text:
            print(f"{DOC} lacks the {BEGIN} / {END} markers", file=sys.stderr)
            return 1
        head, rest = text.split(BEGIN, 1)
        DOC.write_text(head + report + rest.split(END, 1)[1])
        print(f"\nwrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
