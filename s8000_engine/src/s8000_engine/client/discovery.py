"""Finding S8000 meters, as the configuration tool's "Unit" list does.

:func:`scan` tries every address of the given IPv4 networks on the Modbus
TCP port, with bounded concurrency and a time limit per address;
:func:`scan_serial` asks every unit id of an RS-485 bus in turn, one request
at a time as a bus requires.  Either way a device that answers is asked for
its Modbus device identification (function 43/14), and one that says
Leviton and an S8000 model is then identified the way
:class:`~s8000_engine.client.S8000Client` identifies a meter it polls (the
SunSpec chain, the Common model, the vendor model): the serial number,
firmware, build and MAC come from there, so a meter listed here is one the
client can read.  The result is the configuration tool's "Unit Discovery"
table: IP address, model, name, MAC address, firmware, build, serial number
and status ("Found", or "Network Error" for a device that answered the
identification but could not be identified from its registers).

Every Modbus request goes through modbus-connection (the tmodbus backend
unless told otherwise); this module frames nothing itself.  The networks to
scan are always explicit: nothing is scanned that the caller did not name.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from modbus_connection import (
    ModbusConnection,
    ModbusConnectionError,
    ModbusError,
    ModbusSerialParams,
    ModbusTcpParams,
    ModbusUnit,
)

from s8000_engine.client.client import BackendName, S8000Client, connection_class
from s8000_engine.const import DEFAULT_PARITY
from s8000_engine.exceptions import S8000ConnectionError, S8000Error
from s8000_engine.models import MODELS
from s8000_engine.protocol.sunspec import MANUFACTURER

_LOGGER = logging.getLogger(__name__)

#: Addresses a scan may cover at once (a /20), to keep a typo from scanning the world.
MAX_ADDRESSES: Final = 4096
#: Seconds per request for a serial unit that answered the identification.  A
#: silent unit id is waited for only ``wait_s``, but the identification then
#: reads up to 125 registers at once: 255 bytes, 0.29 s on the wire at 9600 baud.
ANSWER_WAIT_S: Final = 1.0

#: The status of a meter identified from its registers.
FOUND: Final = "Found"
#: The status of a device that said S8000 but could not be identified.
NETWORK_ERROR: Final = "Network Error"

type Parity = Literal["N", "E", "O"]


@dataclass(frozen=True, slots=True)
class Found:
    """One row of the discovery table."""

    ip: str
    port: int
    model: str
    name: str
    mac: str
    firmware: str
    build: str
    serial: str
    status: str

    def as_dict(self) -> dict[str, Any]:
        """The row as a dictionary."""
        return asdict(self)


def _claimed(objects: Mapping[int, bytes]) -> tuple[str, str] | None:
    """The model and firmware a device identification names, if it is an S8000's."""
    vendor, model, firmware = (objects.get(i, b"").decode("ascii", "replace") for i in (0, 1, 2))
    if vendor != MANUFACTURER or model not in MODELS:
        return None
    return model, firmware


async def _row(unit: ModbusUnit, where: str, port: int, claimed: tuple[str, str]) -> Found:
    """The table row of a device that says it is an S8000, from what the client identifies."""
    model, firmware = claimed
    try:
        identity = await S8000Client(unit).identify()
    except S8000Error as err:
        _LOGGER.debug("%s (%s): says %s but cannot be identified: %s", where, port, model, err)
        return Found(where, port, model, "", "", firmware, "", "", NETWORK_ERROR)
    return Found(
        where,
        port,
        identity.model,
        f"{identity.model}-{identity.serial}",
        identity.mac or "",
        identity.firmware,
        "" if identity.firmware_build is None else str(identity.firmware_build),
        identity.serial,
        FOUND,
    )


def _check_unit(unit: int) -> None:
    if not 0 <= unit <= 255:
        raise ValueError(f"unit id {unit} is not 0–255")


# -- Modbus TCP ----------------------------------------------------------------------------


async def _listening(host: str, port: int, wait_s: float) -> bool:
    """Whether ``host`` accepts a TCP connection on ``port`` within ``wait_s``.

    modbus-connection's tmodbus link connects with tmodbus's own 10 s limit
    whatever its request timeout (modbus-connection 4.12), and closing it waits
    for a connection attempt under way; an address that drops the SYN would
    hold its probe that long.  So the connection is tried here first, bounded,
    and only an address that accepts is spoken Modbus to."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), wait_s)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _probe(
    link: type[ModbusConnection], host: str, port: int, unit: int, wait_s: float
) -> Found | None:
    if not await _listening(host, port, wait_s):
        return None
    connection = link(ModbusTcpParams(host=host, port=port), timeout=wait_s)
    try:
        device = connection.for_unit(unit)
        try:
            objects = await device.read_device_identification()
        except (ModbusError, OSError, TimeoutError):
            return None  # not a Modbus device, or one without identification
        claimed = _claimed(objects)
        return None if claimed is None else await _row(device, host, port, claimed)
    finally:
        with contextlib.suppress(ModbusError, OSError):
            await connection.close()


async def probe(
    host: str,
    port: int = 502,
    unit: int = 1,
    wait_s: float = 1.0,
    *,
    backend: BackendName = "tmodbus",
) -> Found | None:
    """The discovery row of one address, or None if no S8000 answers there
    (each step may take ``wait_s`` seconds)."""
    _check_unit(unit)
    return await _probe(connection_class(backend), host, port, unit, wait_s)


def addresses(networks: Iterable[str]) -> list[str]:
    """The host addresses of the networks (a /32 is its one address).

    Raises ValueError for a text that is not an IPv4 network, and when the
    networks hold more than :data:`MAX_ADDRESSES` addresses together."""
    result: list[str] = []
    for text in networks:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv4 network") from None
        if network.version != 4:
            raise ValueError(f"{text} is an IPv6 network; only IPv4 networks can be scanned")
        # Counted before listing: a /8 would take seconds to list only to be refused.
        if len(result) + network.num_addresses - 2 > MAX_ADDRESSES:
            raise ValueError(
                f"more than {MAX_ADDRESSES} addresses (a /20) to scan; scan a smaller network"
            )
        hosts = (
            [str(network.network_address)]
            if network.num_addresses == 1
            else [str(h) for h in network.hosts()]
        )
        result.extend(hosts)
    return result


async def scan(
    networks: Iterable[str],
    *,
    port: int = 502,
    unit: int = 1,
    concurrency: int = 64,
    wait_s: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
    backend: BackendName = "tmodbus",
) -> list[Found]:
    """Probe every address of ``networks``; return the S8000 meters found, by address.

    ``progress(done, total)`` is called after every address.  Raises
    ValueError for a wrong network (:func:`addresses`), unit id or backend
    name, before anything is scanned."""
    targets = addresses(networks)
    _check_unit(unit)
    link = connection_class(backend)
    gate = asyncio.Semaphore(max(1, concurrency))
    done = 0
    found: list[Found] = []

    async def one(host: str) -> None:
        nonlocal done
        async with gate:
            row = await _probe(link, host, port, unit, wait_s)
        done += 1
        if row is not None:
            found.append(row)
        if progress is not None:
            progress(done, len(targets))

    await asyncio.gather(*(one(host) for host in targets))
    return sorted(found, key=lambda row: ipaddress.ip_address(row.ip))


# -- Modbus RTU ----------------------------------------------------------------------------


async def _identification(unit: ModbusUnit, wait_s: float) -> dict[int, bytes]:
    """A unit's device identification, or nothing if it is silent for ``wait_s``.

    The connection's own timeout is :data:`ANSWER_WAIT_S`, for a meter that
    answered; a silent unit id is given up on sooner by cancelling the request,
    which tmodbus treats as timed out (an answer arriving late is recognised and
    dropped, not taken for the next unit's)."""
    try:
        return await asyncio.wait_for(unit.read_device_identification(), wait_s)
    except ModbusConnectionError as err:
        raise S8000ConnectionError(f"the serial link failed: {err}") from err
    except (ModbusError, TimeoutError):
        return {}  # silent, garbled, or a device without identification


async def scan_serial(
    device: str,
    *,
    baudrate: int = 19200,
    parity: Parity = DEFAULT_PARITY,
    units: Iterable[int] = range(1, 248),
    wait_s: float = 0.2,
    progress: Callable[[int, int], None] | None = None,
) -> list[Found]:
    """Ask every unit id on an RS-485 bus whether it is an S8000.

    One identification request (function 43/14) per unit id, one at a time as
    a bus requires, each waited for ``wait_s``; a unit that says Leviton and an
    S8000 model is then identified from its registers.  Rows carry the device
    as ``ip`` and the unit id as ``port``.  ``progress(done, total)`` is called
    after every unit id.  Always the tmodbus backend.  Raises
    :class:`S8000ConnectionError` when the serial port cannot be opened or is
    lost."""
    if parity not in ("N", "E", "O"):
        raise ValueError(f"parity {parity!r} is not N, E or O")
    chosen = [u for u in units if 1 <= u <= 247]
    connection = connection_class("tmodbus")(
        ModbusSerialParams(device=device, baudrate=baudrate, parity=parity),
        timeout=max(wait_s, ANSWER_WAIT_S),
    )
    found: list[Found] = []
    try:
        try:
            await connection.connect()
        except ModbusError as err:
            raise S8000ConnectionError(str(err)) from err
        for done, unit_id in enumerate(chosen, start=1):
            unit = connection.for_unit(unit_id)
            claimed = _claimed(await _identification(unit, wait_s))
            if progress is not None:
                progress(done, len(chosen))
            if claimed is not None:
                found.append(await _row(unit, device, unit_id, claimed))
    finally:
        with contextlib.suppress(ModbusError, OSError):
            await connection.close()
    return found


def format_table(rows: list[Found]) -> str:
    """The discovery table as text."""
    header = (
        "IP Address",
        "Model",
        "Name",
        "MAC Address",
        "Firmware",
        "Build",
        "Serial Number",
        "Status",
    )
    lines = [header]
    lines += [
        (
            f"{r.ip}:{r.port}" if r.port != 502 else r.ip,
            r.model,
            r.name,
            r.mac.replace(":", ""),
            r.firmware,
            r.build,
            r.serial,
            r.status,
        )
        for r in rows
    ]
    widths = [max(len(str(line[k])) for line in lines) for k in range(len(header))]
    return "\n".join(
        "  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)) for line in lines
    )
