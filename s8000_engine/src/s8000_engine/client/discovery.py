"""Finding S8000 meters on a network, as the configuration tool's "Unit" list does.

:func:`scan` tries every address of the given IPv4 networks on the Modbus
TCP port with bounded concurrency and a timeout per address, asks each
device that answers for its Modbus device identification (function 43/14)
and, when it says Leviton and an S8000 model, reads the SunSpec Common model
and the vendor model's MAC and firmware build.  The result is the seed's
"Unit Discovery" table: IP address, model, name, MAC address, firmware,
build, serial number and status ("Found", or "Network Error" for a device
that answered the identification but not the registers).

The networks to scan are always explicit (``--network``): nothing is
scanned that the user did not name.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import struct
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from s8000_engine.models import MODELS
from s8000_engine.protocol.sunspec import BASE_ADDRESS, COMMON, DataType, decode

if TYPE_CHECKING:
    from s8000_engine.modbus.serialport import SerialPort

#: Addresses a scan may cover at once (a /20), to keep a typo from scanning the world.
MAX_ADDRESSES = 4096


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


class _Link:
    """A minimal Modbus TCP client for discovery (one request at a time)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.transaction = 0

    async def ask(self, unit: int, pdu: bytes) -> bytes:
        self.transaction = (self.transaction + 1) & 0xFFFF
        self.writer.write(struct.pack(">HHHB", self.transaction, 0, len(pdu) + 1, unit) + pdu)
        await self.writer.drain()
        header = await asyncio.wait_for(self.reader.readexactly(7), self.timeout)
        length = struct.unpack(">H", header[4:6])[0]
        if not 2 <= length <= 254:
            raise ConnectionError("not a Modbus TCP answer")
        return await asyncio.wait_for(self.reader.readexactly(length - 1), self.timeout)

    async def read(self, unit: int, address: int, count: int) -> list[int]:
        reply = await self.ask(unit, struct.pack(">BHH", 3, address, count))
        if reply[0] != 3 or len(reply) != 2 + 2 * count:
            raise ConnectionError(f"exception {reply[-1]} reading {address}")
        return list(struct.unpack(f">{count}H", reply[2:]))

    async def identification(self, unit: int) -> dict[int, bytes]:
        reply = await self.ask(unit, b"\x2b\x0e\x01\x00")
        if len(reply) < 7 or reply[0] != 0x2B:
            return {}
        objects: dict[int, bytes] = {}
        offset = 7
        for _ in range(reply[6]):
            if offset + 2 > len(reply):
                break
            object_id, size = reply[offset], reply[offset + 1]
            objects[object_id] = reply[offset + 2 : offset + 2 + size]
            offset += 2 + size
        return objects


async def probe(host: str, port: int = 502, unit: int = 1, wait_s: float = 1.0) -> Found | None:
    """The discovery row of one address, or None if no S8000 answers there
    (each step may take ``wait_s`` seconds)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), wait_s)
    except (OSError, TimeoutError):
        return None
    link = _Link(reader, writer, wait_s)
    try:
        try:
            objects = await link.identification(unit)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return None
        vendor = objects.get(0, b"").decode("ascii", "replace")
        model = objects.get(1, b"").decode("ascii", "replace")
        if vendor != "Leviton" or model not in MODELS:
            return None
        firmware = objects.get(2, b"").decode("ascii", "replace")
        try:
            common = await link.read(unit, BASE_ADDRESS, 2 + 2 + COMMON.length)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return Found(host, port, model, "", "", firmware, "", "", "Network Error")
        values = {
            p.name: decode(p.type, common[2 + p.offset : 2 + p.offset + p.size])
            for p in COMMON.points
            if p.type is DataType.STRING
        }
        serial = str(values.get("SN") or "")
        mac, build = await _vendor_details(link, unit)
        return Found(host, port, model, f"{model}-{serial}", mac, firmware, build, serial, "Found")
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _vendor_details(link: _Link, unit: int) -> tuple[str, str]:
    """The MAC and firmware build from the vendor model (walking the chain)."""
    address = BASE_ADDRESS + 2
    with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        for _ in range(100):
            model_id, length = await link.read(unit, address, 2)
            if model_id == 0xFFFF:
                break
            if model_id == 64800:
                words = await link.read(unit, address + 2, 4)
                build = str(words[0])
                mac = decode(DataType.EUI48, words[1:4])
                return str(mac or ""), build
            address += 2 + length
    return "", ""


def addresses(networks: Iterable[str]) -> list[str]:
    """The host addresses of the networks (a /32 is its one address)."""
    result: list[str] = []
    for text in networks:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"--network: not an IPv4 network: {text!r}") from None
        if network.version != 4:
            raise ValueError(f"--network: only IPv4 networks can be scanned, not {text}")
        # Counted before listing: a /8 would take seconds to list only to be refused.
        if len(result) + network.num_addresses - 2 > MAX_ADDRESSES:
            raise ValueError(
                f"--network: more than {MAX_ADDRESSES} addresses; scan a smaller network"
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
) -> list[Found]:
    """Probe every address of ``networks``; return the S8000 meters found."""
    targets = addresses(networks)
    gate = asyncio.Semaphore(max(1, concurrency))
    done = 0
    found: list[Found] = []

    async def one(host: str) -> None:
        nonlocal done
        async with gate:
            row = await probe(host, port, unit, wait_s)
        done += 1
        if row is not None:
            found.append(row)
        if progress is not None:
            progress(done, len(targets))

    await asyncio.gather(*(one(host) for host in targets))
    return sorted(found, key=lambda row: ipaddress.ip_address(row.ip))


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


async def _rtu_ask(
    port: SerialPort, unit: int, pdu: bytes, gap: float, wait_s: float
) -> bytes | None:
    """One RTU request; the answer's PDU, or None after ``wait_s`` of silence."""
    from s8000_engine.modbus.server import crc16, rtu_frame  # noqa: PLC0415

    await port.write(rtu_frame(unit, pdu))
    try:
        frame = await asyncio.wait_for(port.read_frame(gap), wait_s)
    except TimeoutError:
        return None
    if (
        len(frame) < 4
        or frame[0] != unit
        or crc16(frame[:-2]) != struct.unpack("<H", frame[-2:])[0]
    ):
        return None
    return frame[1:-2]


async def scan_serial(
    device: str,
    *,
    baudrate: int = 19200,
    parity: str = "E",
    units: Iterable[int] = range(1, 248),
    wait_s: float = 0.2,
    progress: Callable[[int, int], None] | None = None,
) -> list[Found]:
    """Ask every unit id on an RS-485 bus whether it is an S8000.

    One identification request (function 43/14) per unit id, one at a time as
    a bus requires; a unit that says Leviton and an S8000 model is then asked
    for its SunSpec Common model.  Rows carry the device as ``ip`` and the
    unit id as ``port``."""
    from s8000_engine.modbus.serialport import SerialPort  # noqa: PLC0415
    from s8000_engine.modbus.server import frame_gap  # noqa: PLC0415

    chosen = [u for u in units if 1 <= u <= 247]
    port = SerialPort(device, baudrate=baudrate, parity=parity)
    await port.open()
    gap = frame_gap(baudrate)
    found: list[Found] = []
    try:
        for done, unit in enumerate(chosen, start=1):
            reply = await _rtu_ask(port, unit, b"\x2b\x0e\x01\x00", gap, wait_s)
            if progress is not None:
                progress(done, len(chosen))
            if reply is None or reply[0] != 0x2B or len(reply) < 7:
                continue
            objects: dict[int, bytes] = {}
            offset = 7
            for _ in range(reply[6]):
                object_id, size = reply[offset], reply[offset + 1]
                objects[object_id] = reply[offset + 2 : offset + 2 + size]
                offset += 2 + size
            model = objects.get(1, b"").decode("ascii", "replace")
            if objects.get(0) != b"Leviton" or model not in MODELS:
                continue
            firmware = objects.get(2, b"").decode("ascii", "replace")
            common = await _rtu_ask(
                port, unit, struct.pack(">BHH", 3, BASE_ADDRESS, 4 + COMMON.length), gap, wait_s
            )
            serial = ""
            if common is not None and common[0] == 3:
                words = list(struct.unpack(f">{(len(common) - 2) // 2}H", common[2:]))
                sn = COMMON.point("SN")
                serial = str(decode(sn.type, words[2 + sn.offset : 2 + sn.offset + sn.size]) or "")
            status = "Found" if serial else "Network Error"
            found.append(
                Found(device, unit, model, f"{model}-{serial}", "", firmware, "", serial, status)
            )
    finally:
        port.close()
    return found
