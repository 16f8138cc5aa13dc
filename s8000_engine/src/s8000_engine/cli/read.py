"""``s8000-engine read``: one meter's identity and readings."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import math
from datetime import UTC, datetime
from typing import Any

from s8000_engine.cli._common import UsageError, add_profile_option, parse_address
from s8000_engine.client.client import BACKENDS, BackendName, connect_tcp
from s8000_engine.client.data import Identity, MeterData
from s8000_engine.protocol.profile import Profile
from s8000_engine.protocol.sunspec import Status


def _time(value: float | None) -> str:
    if value is None:
        return "—"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def format_table(identity: Identity, data: MeterData) -> str:
    """A reading as the text ``s8000-engine read`` prints."""
    service = identity.service.name.lower() if identity.service is not None else "?"
    flags = [s.name.lower().replace("_", " ") for s in Status if s & (data.status or 0) and s.name]
    status = ", ".join(flags) or "ok"
    # Line to neutral; line to line where there is no neutral (delta).
    volts = data.voltage if any(data.voltage.values()) else data.line_voltage
    lines = [
        f"{identity.manufacturer} {identity.model}  serial {identity.serial}  "
        f"firmware {identity.firmware} (build {identity.firmware_build})  MAC {identity.mac}",
        f"service {service} ({identity.options}), {identity.points} points × "
        f"{identity.elements} elements",
        f"clock {_time(data.utc)}  status {status}",
        "voltage "
        + ("  ".join(f"{p} {v:.1f} V" for p, v in volts.items() if v is not None) or "—")
        + (f"  frequency {data.frequency:.2f} Hz" if data.frequency is not None else ""),
        "",
        f"{'point':>5} {'model':>5} {'kWh D':>12} {'kWh R':>12} {'W':>9} {'var':>9} {'PF':>6}",
    ]
    lines += [
        f"{p.number:>5} {p.model_id:>5} {_fmt(p.kwh_delivered, '12.3f')} "
        f"{_fmt(p.kwh_received, '12.3f')} {_fmt(p.w, '9.0f')} {_fmt(p.var, '9.0f')} "
        f"{_fmt(p.pf, '6.2f')}"
        for p in data.points
    ]
    lines.append(f"{data.transactions} Modbus reads")
    return "\n".join(lines)


def as_dict(identity: Identity, data: MeterData) -> dict[str, Any]:
    """A reading as the JSON ``s8000-engine read --format json`` prints."""
    out = {"identity": dataclasses.asdict(identity), "data": dataclasses.asdict(data)}
    out["data"]["utc_iso"] = None if data.utc is None else _time(data.utc)
    return out


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


async def _read_once(
    host: str,
    port: int,
    unit_id: int,
    backend: BackendName,
    request_timeout: float,
    *,
    profile: Profile,
) -> tuple[Identity, MeterData]:
    async with connect_tcp(
        host, port, unit_id, backend=backend, timeout=request_timeout, profile=profile
    ) as client:
        identity = await client.identify()
        return identity, await client.read()


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.description = "Read an S8000 over Modbus TCP once and print what it shows."
    parser.add_argument("address", metavar="HOST[:PORT]", help="the meter (port 502 if omitted)")
    parser.add_argument("--unit-id", type=int, default=1, help="Modbus unit id (default 1)")
    parser.add_argument("--backend", choices=BACKENDS, default="tmodbus", help="Modbus library")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per request")
    add_profile_option(parser, "to read the meter by")


def run(args: argparse.Namespace) -> int:
    """Identify the meter over Modbus TCP, read it once and print a table (or JSON).

    A usage error, a meter that cannot be read or is no S8000 raise (one
    line on standard error, exit status 2)."""
    host, port = parse_address(args.address, "address", default_port=502, lowest_port=1)
    if not 0 <= args.unit_id <= 255:
        raise UsageError(f"--unit-id: {args.unit_id} is not 0–255")
    if not args.timeout > 0:
        raise UsageError("--timeout: must be positive")
    # pymodbus logs a failed connect on its own (to standard error, for want of
    # a handler): the command says it once, in its one line.
    logging.getLogger("pymodbus").addHandler(logging.NullHandler())
    identity, data = asyncio.run(
        _read_once(host, port, args.unit_id, args.backend, args.timeout, profile=args.profile)
    )
    if args.format == "json":
        print(json.dumps(as_dict(identity, data), indent=2, default=_json_default))
    else:
        print(format_table(identity, data))
    return 0


__all__ = ["as_dict", "configure", "format_table", "run"]
