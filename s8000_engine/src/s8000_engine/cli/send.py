"""``s8000-engine send``: the display's "Send" command.

Reports every unreported interval to the configured host (FTP/FTPS or
HTTP(S) POST); intervals are marked reported only once the host
acknowledged them."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from s8000_engine.config.meter import meter_config
from s8000_engine.exceptions import ConfigError
from s8000_engine.storage.reporting import Reporter
from s8000_engine.storage.store import DATABASE_NAME, Store


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--data", type=Path, default=Path("s8000-data"), help="data directory")


def run(args: argparse.Namespace) -> int:
    """Report now; 1 if the host did not take everything."""
    path = args.data / DATABASE_NAME if args.data.is_dir() else args.data
    with Store.open(path, create=False) as store:
        raw = store.get_meta("config")
        if raw is None:
            raise ConfigError(f"{path}: no meter configuration stored; run the meter first")
        config = meter_config(raw)
        reporter = Reporter(
            store,
            config.reporting,
            serial=str(store.get_meta("serial") or "unknown"),
            names=[p.name for p in config.points],
        )
        result = reporter.send_now(time.time())
    for destination in result.destinations:
        print(f"sent: {destination}")
    if result.error:
        print(f"s8000-engine send: {result.error}", file=sys.stderr)
        return 1
    print(f"{result.intervals} intervals in {result.files} files acknowledged")
    return 0
