"""``s8000-engine export``: interval data from the store, by time range and
point, as CSV or JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from s8000_engine.cli._common import UsageError, parse_numbers
from s8000_engine.config.meter import meter_config
from s8000_engine.storage import export
from s8000_engine.storage.export import parse_time
from s8000_engine.storage.store import DATABASE_NAME, Store


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--data", type=Path, default=Path("s8000-data"), help="data directory")
    parser.add_argument("--from", dest="start", help="first interval start, ISO 8601 UTC")
    parser.add_argument("--to", dest="end", help="end of the range (exclusive), ISO 8601 UTC")
    parser.add_argument("--points", help="meter points, e.g. 1,3-5 (default: all)")
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.add_argument("--output", type=Path, help="write to this file instead of stdout")


def _time(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as error:
        raise UsageError(f"{option}: {error}") from None


def run(args: argparse.Namespace) -> int:
    """Write the intervals."""
    points = (
        [n - 1 for n in parse_numbers(args.points, "--points")] if args.points else None
    )  # the store numbers points from 0
    start = _time(args.start, "--from")
    end = _time(args.end, "--to")
    path = args.data / DATABASE_NAME if args.data.is_dir() else args.data
    with Store.open(path, create=False) as store:
        records = store.intervals(start, end, points)
        raw = store.get_meta("config")
        names = [p.name for p in meter_config(raw).points] if raw else []
    text = export.to_csv(records, names) if args.format == "csv" else export.to_json(records, names)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
        print(f"wrote {len(records)} intervals to {args.output}", file=sys.stderr)
    return 0
