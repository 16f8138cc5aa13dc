"""``s8000-engine discover``: find S8000 meters, listed like the configuration
tool's "Unit Discovery": on IPv4 networks over Modbus TCP, announced with
zeroconf, or on an RS-485 bus."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable

from s8000_engine.cli._common import UsageError, parse_numbers
from s8000_engine.client import discovery
from s8000_engine.client.browse import browse
from s8000_engine.const import BAUDRATES, DEFAULT_BAUDRATE, DEFAULT_PARITY


def network_addresses(networks: Iterable[str], option: str) -> list[str]:
    """The addresses of ``networks``; a wrong or too large one is a usage error
    naming ``option``."""
    try:
        return discovery.addresses(networks)
    except ValueError as error:
        # The library's messages name no option; until client/discovery.py
        # drops it, an older "--network: " prefix is not repeated.
        raise UsageError(f"{option}: {str(error).removeprefix('--network: ')}") from None


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument(
        "--network",
        action="append",
        default=[],
        help="IPv4 network or address to scan, e.g. 192.0.2.0/24 (repeatable)",
    )
    parser.add_argument(
        "--zeroconf",
        action="append",
        default=[],
        metavar="IP",
        help="browse for announced meters on this interface address (repeatable; "
        'needs "s8000-engine[local]")',
    )
    parser.add_argument("--browse-seconds", type=float, default=3.0)
    parser.add_argument(
        "--serial",
        metavar="DEVICE",
        help="scan the unit ids of an RS-485 bus on this serial device",
    )
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUDRATE, choices=BAUDRATES)
    parser.add_argument("--parity", choices=("N", "E", "O"), default=DEFAULT_PARITY)
    parser.add_argument("--units", default="1-247", help="unit ids to try on the bus, e.g. 1-32")
    parser.add_argument("--port", type=int, default=502)
    parser.add_argument("--unit-id", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds per address")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def _browse(interfaces: list[str], seconds: float) -> list[discovery.Found]:
    return [
        discovery.Found(
            a.host, a.port, a.model, a.name, a.mac, a.firmware, "", a.serial, "Announced"
        )
        for a in asyncio.run(browse(interfaces, seconds))
    ]


def run(args: argparse.Namespace) -> int:
    """Scan, then print the meters found (a table, or JSON)."""
    if not args.network and not args.zeroconf and not args.serial:
        raise UsageError("name the networks to scan (--network), --zeroconf IP or --serial DEVICE")
    # Every option is checked before the first scan starts.
    total = len(network_addresses(args.network, "--network")) if args.network else 0
    units = parse_numbers(args.units, "--units")
    if max(units) > 247:
        raise UsageError("--units: unit ids are 1 to 247")
    rows: list[discovery.Found] = []
    if args.serial:
        rows += asyncio.run(
            discovery.scan_serial(args.serial, baudrate=args.baud, parity=args.parity, units=units)
        )
    if args.zeroconf:
        rows += _browse(args.zeroconf, args.browse_seconds)
    show = sys.stderr.isatty()

    def progress(done: int, of: int) -> None:
        if show:
            print(f"\rscanning {done}/{of} addresses", end="", file=sys.stderr, flush=True)

    if args.network:
        rows += asyncio.run(
            discovery.scan(
                args.network,
                port=args.port,
                unit=args.unit_id,
                concurrency=args.concurrency,
                wait_s=args.timeout,
                progress=progress,
            )
        )
        if show:
            print(file=sys.stderr)
    if args.format == "json":
        print(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        print(discovery.format_table(rows))
        print(f"{len(rows)} meter(s) found among {total} address(es)", file=sys.stderr)
    return 0
