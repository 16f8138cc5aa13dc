"""``s8000-engine probe``: find out, read-only, what answers at an address, in a dump to send.

``s8000-engine probe HOST[:PORT]`` (Modbus TCP, and the web pages on port
80) or ``s8000-engine probe --serial DEVICE --units 1-10`` (an RS-485 bus)
runs :mod:`s8000_engine.client.probe`: prints a short summary with a verdict
on standard output and writes the JSON dump to ``--output`` (default
``s8000-probe-<host>.json``), the serial number and MAC address redacted
unless ``--no-redact``.  ``--profile NAME|FILE`` (repeatable) names the
register profiles the client identifies and reads each answering unit
through (default: the built-in SunSpec one).  A progress line on standard
error when it is a terminal (or with ``--progress``), as ``discover`` shows
its scan.

Exit status 0 when something answered, 1 when nothing did (the dump is
written either way), 2 for a usage error, a host that does not resolve or a
serial port that cannot be opened.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import shutil
import sys
from pathlib import Path
from typing import TextIO

from s8000_engine.cli._common import UsageError, parse_address, parse_numbers, profile_argument
from s8000_engine.client.client import BACKENDS
from s8000_engine.client.probe import (
    DEFAULT_BLOCK,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_RTU_DELAY,
    DEFAULT_TIMEOUT_TOTAL,
    DEFAULT_WINDOWS,
    ProbeOptions,
    ProbeReport,
    Verdict,
    probe_serial,
    probe_tcp,
)
from s8000_engine.const import BAUDRATES, DEFAULT_BAUDRATE, DEFAULT_PARITY


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.description = (
        "Find out, read-only, what answers at an address: Modbus identification "
        "(functions 43 and 17), SunSpec markers and chain, the readable registers, "
        "and the PowerHawk web pages; a verdict on standard output and a JSON dump "
        "to attach to an issue (serial number and MAC redacted)."
    )
    parser.add_argument(
        "address", nargs="?", metavar="HOST[:PORT]", help="a Modbus TCP unit (port 502 if omitted)"
    )
    parser.add_argument("--serial", metavar="DEVICE", help="probe an RS-485 bus on this device")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUDRATE, choices=BAUDRATES)
    parser.add_argument("--parity", choices=("N", "E", "O"), default=DEFAULT_PARITY)
    parser.add_argument(
        "--units",
        "--unit",
        dest="units",
        default="1",
        help="unit ids to probe, e.g. 1 or 1-10 or 1,3,7 (default 1)",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=80,
        help="the web server's port, over TCP (default 80; 0: do not fetch web pages)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="identification, SunSpec markers and the web server's / only: no register sweep",
    )
    parser.add_argument(
        "--ranges",
        metavar="A-B,...",
        help="register ranges to sweep in both tables, besides the SunSpec chain "
        "(default " + ",".join(f"{a}-{b - 1}" for a, b in DEFAULT_WINDOWS) + ")",
    )
    parser.add_argument(
        "--block", type=int, default=DEFAULT_BLOCK, help="registers per read at most (1–125)"
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=DEFAULT_MAX_REQUESTS,
        help="requests per unit id at most",
    )
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds per request")
    parser.add_argument(
        "--timeout-total",
        type=float,
        default=DEFAULT_TIMEOUT_TOTAL,
        help="seconds for the whole probe; then it stops and writes what it got",
    )
    parser.add_argument(
        "--delay",
        type=float,
        help=f"seconds between requests (default {DEFAULT_RTU_DELAY:g} on a serial bus, 0 on TCP)",
    )
    parser.add_argument(
        "--profile",
        dest="profiles",
        action="append",
        type=profile_argument,
        metavar="NAME|FILE",
        help="a register profile the client identifies and reads each answering unit through: "
        "'sunspec' (built in) or a profile file (JSON, e.g. docs/profiles/example-fixed.json); "
        "repeatable (default: the built-in one, in a full probe)",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="tmodbus", help="Modbus library")
    parser.add_argument(
        "--output", "-o", metavar="FILE", help="the JSON dump (default s8000-probe-<host>.json)"
    )
    parser.add_argument(
        "--no-redact",
        action="store_true",
        help="keep the serial number and MAC address in the dump and summary",
    )
    parser.add_argument(
        "--progress", action="store_true", help="show progress even when stderr is no terminal"
    )


def parse_ranges(text: str) -> tuple[tuple[int, int], ...]:
    """``0-999,40000-40199`` → ((0, 1000), (40000, 40200)): inclusive ranges of
    register addresses."""
    windows = []
    for part in text.split(","):
        found = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", part)
        if found is None:
            raise UsageError(f"--ranges: not ranges such as 0-999,40000-40199: {text!r}")
        first = int(found.group(1))
        last = int(found.group(2) or first)
        if not first <= last <= 0xFFFF:
            raise UsageError(f"--ranges: {part.strip()} is not a range within 0–65535")
        windows.append((first, last + 1))
    return tuple(windows)


def default_output(name: str) -> Path:
    """``s8000-probe-<name>.json`` in the working directory, ``name`` made file-safe."""
    return Path(f"s8000-probe-{re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('_')}.json")


class Bar:
    """One line of progress on a stream: ``[#####.....] done/total what``,
    rewritten in place (``\\r``), as ``discover`` shows its scan."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False

    def __call__(self, done: int, total: int, what: str) -> None:
        width = 20
        filled = width * done // max(total, 1)
        line = f"probe [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}"
        columns = shutil.get_terminal_size((100, 20)).columns - 1
        print(f"\r{line[:columns]:<{columns}}", end="", file=self.stream, flush=True)
        self.shown = True

    def end(self) -> None:
        """Leave the line (a newline after the last progress)."""
        if self.shown:
            print(file=self.stream, flush=True)


def _options(args: argparse.Namespace, serial: bool) -> ProbeOptions:
    delay = args.delay if args.delay is not None else (DEFAULT_RTU_DELAY if serial else 0.0)
    try:
        return ProbeOptions(
            quick=args.quick,
            timeout_total=args.timeout_total,
            delay=delay,
            block=args.block,
            max_requests=args.max_requests,
            windows=parse_ranges(args.ranges) if args.ranges else DEFAULT_WINDOWS,
            profiles=tuple(args.profiles) if args.profiles else None,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    """Probe, print the summary, write the dump."""
    if (args.address is None) == (args.serial is None):
        raise UsageError("name a HOST[:PORT] or a --serial DEVICE (one of them)")
    units = parse_numbers(args.units, "--units", lowest=0 if args.serial is None else 1)
    highest = 247 if args.serial is not None else 255
    if max(units) > highest:
        raise UsageError(f"--units: unit ids are {0 if args.serial is None else 1} to {highest}")
    if not args.timeout > 0:
        raise UsageError("--timeout: must be positive")
    if not 0 <= args.http_port <= 65535:
        raise UsageError("--http-port: not a port (0 for none)")
    options = _options(args, args.serial is not None)
    bar = Bar(sys.stderr) if args.progress or sys.stderr.isatty() else None
    # pymodbus logs a failed connect on its own: the summary says it once.
    logging.getLogger("pymodbus").addHandler(logging.NullHandler())
    try:
        if args.serial is not None:
            name = Path(args.serial).name
            report = asyncio.run(
                probe_serial(
                    args.serial,
                    baudrate=args.baud,
                    parity=args.parity,
                    units=units,
                    timeout=args.timeout,
                    backend=args.backend,
                    options=options,
                    progress=bar,
                )
            )
        else:
            host, port = parse_address(args.address, "address", default_port=502, lowest_port=1)
            name = host
            report = asyncio.run(
                probe_tcp(
                    host,
                    port,
                    units=units,
                    http_port=args.http_port or None,
                    timeout=args.timeout,
                    backend=args.backend,
                    options=options,
                    progress=bar,
                )
            )
    finally:
        if bar is not None:
            bar.end()
    return _finish(report, Path(args.output) if args.output else default_output(name), args)


def _finish(report: ProbeReport, output: Path, args: argparse.Namespace) -> int:
    redact = not args.no_redact
    try:
        output.write_text(report.to_json(redact=redact), encoding="utf-8")
    except OSError as error:
        raise UsageError(f"--output: cannot write {output}: {error.strerror or error}") from None
    print(report.summary(redact=redact))
    print(
        f"dump written to {output}"
        + (" (serial number and MAC redacted)" if redact else " (NOT redacted)"),
        file=sys.stderr,
    )
    if report.verdict is Verdict.NOTHING:
        reasons = "; ".join(report.errors) or "no unit id answered"
        print(f"s8000-engine probe: nothing answered: {reasons}", file=sys.stderr)
        return 1
    return 0


__all__ = ["Bar", "configure", "default_output", "parse_ranges", "run"]
