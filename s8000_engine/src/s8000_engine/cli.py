"""The ``s8000-engine`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from s8000_engine import __version__


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``s8000-engine``."""
    parser = argparse.ArgumentParser(
        prog="s8000-engine",
        description=(
            "The Leviton Series 8000 multi-point submeter in software: "
            "models, metering, interval memory, Modbus, and a local meter."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return 0
