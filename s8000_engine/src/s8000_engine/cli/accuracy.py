"""``s8000-engine accuracy``: the IEC 62053-22/-24 accuracy suite and its tables."""

from __future__ import annotations

import argparse

from s8000_engine.metering import accuracy


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--quick", action="store_true", help="the first service type only")


def run(args: argparse.Namespace) -> int:
    """Run the suite; 1 if a test failed."""
    services = accuracy.SERVICES[:1] if args.quick else accuracy.SERVICES
    results = list(accuracy.run_accuracy(services))
    print(accuracy.format_table(results))
    thresholds = list(accuracy.run_threshold_tests(services))
    print()
    print(accuracy.format_threshold_table(thresholds))
    ok = all(r.passed for r in results) and all(t.passed for t in thresholds)
    return 0 if ok else 1
