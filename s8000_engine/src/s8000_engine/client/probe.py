"""Finding out, read-only, what answers at an address: the probe behind ``s8000-engine probe``.

No public register map of a real S8000 exists (``docs/real-meters.md``), so
when the client cannot identify a unit the owner needs a way to say what the
unit *does* answer.  :func:`probe_tcp` and :func:`probe_serial` ask, for
each unit id:

* function 43/14 (Read Device Identification, basic objects) and function 17
  (Report Server ID), which Leviton's sister meters implement;
* the SunSpec marker ``SunS`` at registers 0, 40000 and 50000, walking the
  model chain where it is found (ids, addresses, lengths), and the Common
  model and the S8000 vendor model (64800) when they are in it;
* then, for each register profile of ``options.profiles`` (the built-in
  one in a full probe by default), whether :class:`S8000Client` identifies
  the unit through it, and what one read through it says (the first points'
  energies and power);
* then (unless ``quick``) the readable holding and input registers of a few
  windows (:data:`DEFAULT_WINDOWS`, plus the whole SunSpec chain) in blocks
  of at most 60, narrowing down where a block is refused (exception 02), at
  most ``max_requests`` requests per unit id.

Over TCP it also fetches the PowerHawk web pages (``/``, its frames, the
``active.htm`` and ``reactive.htm`` pages they link to, meta refreshes), on
the same host only, each bounded in size and time.

It never writes: only functions 03, 04, 17 and 43 are sent.  On an RS-485
bus the requests are one at a time, ``delay`` seconds apart.  ``timeout_total``
bounds the whole probe: when it runs out the probe stops and the report says
it was cut short, with what it got.

The result is a :class:`ProbeReport`: a verdict (:class:`Verdict`), a short
:meth:`~ProbeReport.summary` and a JSON dump (:meth:`~ProbeReport.to_json`,
format :data:`FORMAT` version :data:`FORMAT_VERSION`) an owner can attach to
an issue, with the serial number and MAC address redacted unless asked.
:func:`probe_unit` probes a unit handle someone else owns (Home Assistant's
shared link), by default quickly: identification, the SunSpec markers and
the web server's ``/``, no register sweep.

This module runs a probe and is its public face; the work is in three
modules by role: :mod:`~s8000_engine.client.probe_modbus` (identification,
the SunSpec walk, the register sweep), :mod:`~s8000_engine.client.probe_http`
(the web pages) and :mod:`~s8000_engine.client.probe_report` (the report,
its verdict, the JSON dump and redaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast

from modbus_connection import ModbusError, ModbusSerialParams, ModbusTcpParams, ModbusUnit

from s8000_engine.client.client import BackendName, connection_class
from s8000_engine.client.probe_http import (
    HTTP_BODY_LIMIT,
    HTTP_MAX_PAGES,
    HTTP_TIMEOUT,
    HttpFinding,
    HttpPage,
    crawl,
    http_error,
    probe_http,
)
from s8000_engine.client.probe_modbus import (
    DEFAULT_BLOCK,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_RTU_DELAY,
    DEFAULT_TIMEOUT_TOTAL,
    DEFAULT_WINDOWS,
    MIN_BLOCK,
    QUICK,
    SILENT_AFTER,
    SUNSPEC_BASES,
    ProbeOptions,
    Progress,
    Session,
)
from s8000_engine.client.probe_report import (
    FORMAT,
    FORMAT_VERSION,
    Failure,
    ProbeReport,
    ProfileCheck,
    RegisterRange,
    SunSpecFinding,
    UnitProbe,
    Unreadable,
    Verdict,
)
from s8000_engine.const import DEFAULT_BAUDRATE, DEFAULT_PARITY
from s8000_engine.exceptions import S8000ConnectionError

#: The full probe's options, over TCP and on an RS-485 bus (paced).
FULL: Final = ProbeOptions()
FULL_RTU: Final = ProbeOptions(delay=DEFAULT_RTU_DELAY)


async def _bounded(report: ProbeReport, timeout_total: float, work: Awaitable[None]) -> None:
    """``work``, stopped cleanly after ``timeout_total`` seconds (the report keeps
    what it found and says it was cut short)."""
    try:
        async with asyncio.timeout(timeout_total) as bound:
            await work
    except TimeoutError:
        if not bound.expired():
            raise
        report.cut_short = f"the time bound of {timeout_total:g} s was reached"
    finally:
        report.finished = datetime.now(UTC)


def _check_units(units: Sequence[int], highest: int) -> list[int]:
    chosen = list(dict.fromkeys(units))
    if not chosen:
        raise ValueError("no unit ids to probe")
    for unit_id in chosen:
        if not 0 <= unit_id <= highest:
            raise ValueError(f"unit id {unit_id} is not 0–{highest}")
    return chosen


async def _resolve(host: str, port: int) -> None:
    try:
        await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise S8000ConnectionError(f"{host}: unknown host ({err})") from None


async def _listening(host: str, port: int, wait_s: float) -> str | None:
    """None if ``host`` accepts a TCP connection on ``port``, else why not.  Tried
    first, bounded: tmodbus's own connect limit is 10 s whatever the timeout."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), wait_s)
    except (OSError, TimeoutError) as err:
        return http_error(err)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def _close(connection: Any) -> None:
    with contextlib.suppress(ModbusError, OSError, TimeoutError):
        await asyncio.wait_for(connection.close(), 5)


async def probe_tcp(
    host: str,
    port: int = 502,
    *,
    units: Sequence[int] = (1,),
    http_port: int | None = 80,
    timeout: float = 1.0,  # noqa: ASYNC109 (per request, given to the connection)
    backend: BackendName = "tmodbus",
    options: ProbeOptions = FULL,
    progress: Progress | None = None,
) -> ProbeReport:
    """Probe a Modbus TCP address (each of ``units``) and, at the same time, its
    web server on ``http_port`` (None: none).

    Raises ValueError for a wrong unit id and :class:`S8000ConnectionError` for
    a host name that does not resolve; everything else (a refused connection,
    silence) is in the report."""
    chosen = _check_units(units, 255)
    link_class = connection_class(backend)
    link: dict[str, Any] = {"transport": "tcp", "host": host, "port": port, "units": chosen}
    link |= {"http_port": http_port, "timeout": timeout, "backend": backend}
    report = ProbeReport(link | options.as_dict())
    session = Session(report, options, progress)
    await _resolve(host, port)

    async def modbus() -> None:
        refused = await _listening(host, port, max(timeout, 1.0))
        if refused is not None:
            report.errors.append(f"Modbus TCP {host}:{port}: {refused}")
            return
        connection = link_class(ModbusTcpParams(host=host, port=port), timeout=timeout)
        try:
            for unit_id in chosen:
                await session.unit(connection.for_unit(unit_id), unit_id)
        finally:
            await _close(connection)

    await _bounded(report, options.timeout_total, _with_web(report, modbus(), host, http_port))
    return report


async def probe_serial(
    device: str,
    *,
    baudrate: int = DEFAULT_BAUDRATE,
    parity: Literal["N", "E", "O"] = DEFAULT_PARITY,
    units: Sequence[int] = (1,),
    timeout: float = 1.0,  # noqa: ASYNC109 (per request, given to the connection)
    backend: BackendName = "tmodbus",
    options: ProbeOptions = FULL_RTU,
    progress: Progress | None = None,
) -> ProbeReport:
    """Probe unit ids on an RS-485 bus, one request at a time, ``options.delay``
    seconds apart.

    Raises ValueError for a wrong unit id or parity and
    :class:`S8000ConnectionError` when the serial port cannot be opened."""
    if parity not in ("N", "E", "O"):
        raise ValueError(f"parity {parity!r} is not N, E or O")
    chosen = _check_units(units, 247)
    link: dict[str, Any] = {
        "transport": "rtu",
        "device": device,
        "baudrate": baudrate,
        "parity": parity,
    }
    link |= {"units": chosen, "timeout": timeout, "backend": backend}
    report = ProbeReport(link | options.as_dict())
    session = Session(report, options, progress)
    connection = connection_class(backend)(
        ModbusSerialParams(device=device, baudrate=baudrate, parity=parity), timeout=timeout
    )
    try:
        try:
            await connection.connect()
        except ModbusError as err:
            raise S8000ConnectionError(str(err)) from err

        async def work() -> None:
            for unit_id in chosen:
                await session.unit(connection.for_unit(unit_id), unit_id)

        await _bounded(report, options.timeout_total, work())
    finally:
        await _close(connection)
    return report


async def probe_unit(
    unit: ModbusUnit,
    *,
    unit_id: int,
    http_host: str | None = None,
    http_port: int = 80,
    options: ProbeOptions = QUICK,
    progress: Progress | None = None,
) -> ProbeReport:
    """Probe a unit handle someone else owns (its link, timeout and pacing are
    theirs), and the web server at ``http_host`` if given: by default
    :data:`QUICK`, what a configuration flow needs to say why a unit was not
    identified — SunSpec or not, what function 43 returned, whether web pages
    answer."""
    link: dict[str, Any] = {"transport": "unit", "units": [unit_id], "http_host": http_host}
    link |= {"http_port": http_port if http_host is not None else None}
    report = ProbeReport(link | options.as_dict())
    session = Session(report, options, progress)
    work = _with_web(report, session.unit(unit, unit_id), http_host, http_port)
    await _bounded(report, options.timeout_total, work)
    return report


async def _with_web(
    report: ProbeReport, modbus: Awaitable[None], host: str | None, port: int | None
) -> None:
    """``modbus`` and, at the same time, the web server at ``host:port`` (if any)
    into the report: a long register sweep must not leave no time for the pages."""

    async def web() -> None:
        if host is not None and port is not None:
            report.http = HttpFinding(port)
            await crawl(report.http, host, quick=bool(report.link.get("quick")))

    async with asyncio.TaskGroup() as group:
        group.create_task(cast("Coroutine[Any, Any, None]", modbus))
        group.create_task(web())


__all__ = [
    "DEFAULT_BLOCK",
    "DEFAULT_MAX_REQUESTS",
    "DEFAULT_RTU_DELAY",
    "DEFAULT_TIMEOUT_TOTAL",
    "DEFAULT_WINDOWS",
    "FORMAT",
    "FORMAT_VERSION",
    "FULL",
    "FULL_RTU",
    "HTTP_BODY_LIMIT",
    "HTTP_MAX_PAGES",
    "HTTP_TIMEOUT",
    "MIN_BLOCK",
    "QUICK",
    "SILENT_AFTER",
    "SUNSPEC_BASES",
    "Failure",
    "HttpFinding",
    "HttpPage",
    "ProbeOptions",
    "ProbeReport",
    "ProfileCheck",
    "Progress",
    "RegisterRange",
    "SunSpecFinding",
    "UnitProbe",
    "Unreadable",
    "Verdict",
    "probe_http",
    "probe_serial",
    "probe_tcp",
    "probe_unit",
]
