"""The local meter's Modbus server: TCP and RTU, written to the specification.

The protocol handling is our own, small and strict, rather than a general
server library's: the checks below are exactly what a meter on a shared
RS-485 bus must get right, and pymodbus 3.13 gets several of them wrong
(reads of 0 or 126+ registers answered, unknown function codes answered with
a malformed frame, unknown unit ids answered with exception 04, dummy file
records).

Functions served (Modbus Application Protocol V1.1b3):

==== =================================== ====================================
FC   function                            notes
==== =================================== ====================================
03   Read Holding Registers              1–125 registers, else exception 03
04   Read Input Registers                the same registers as 03
06   Write Single Register               writable registers only
16   Write Multiple Registers            1–123 registers, byte count = 2N
17   Report Server ID                    model and serial, run indicator ON
20   Read File Record                    interval memory (reference type 6)
43   Read Device Identification (MEI 14) basic and regular objects 0–6
==== =================================== ====================================

Checks in the specification's order: function supported (else **01**),
quantity and byte count (else **03**), every address inside the map and, for
writes, writable (else **02**), the value in range (else **03**), the
write's effect (else **04**).  A request for another unit id gets no answer
at all on RTU (a shared bus) — on TCP the server answers its unit id, 0 and
255.  Broadcasts (unit 0) on RTU are executed for writes and never answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from s8000_engine.const import DEFAULT_BAUDRATE, DEFAULT_PARITY
from s8000_engine.modbus.serialport import SerialPort

_LOGGER = logging.getLogger(__name__)

MAX_READ: Final = 125
MAX_WRITE: Final = 123
MAX_PDU: Final = 253
FILE_REFERENCE_TYPE: Final = 6


class Exc(IntEnum):
    """Modbus exception codes."""

    ILLEGAL_FUNCTION = 1
    ILLEGAL_ADDRESS = 2
    ILLEGAL_VALUE = 3
    DEVICE_FAILURE = 4


class ModbusError(Exception):
    """Raised by a backend to answer with an exception code."""

    def __init__(self, code: Exc, message: str = "") -> None:
        super().__init__(message or code.name)
        self.code = code


class Backend:
    """What the protocol handler serves; the local meter implements it."""

    async def read(self, address: int, count: int) -> list[int]:
        """Registers [address, address + count); ModbusError(02) outside the map."""
        raise ModbusError(Exc.ILLEGAL_ADDRESS)

    async def write(self, address: int, values: Sequence[int]) -> None:
        """Write registers; 02 if any is not writable, 03 if a value is out of range."""
        raise ModbusError(Exc.ILLEGAL_ADDRESS)

    async def read_file(self, file: int, record: int, length: int) -> list[int]:
        """A file record (function 20); 02 if it does not exist."""
        raise ModbusError(Exc.ILLEGAL_ADDRESS)

    def identification(self) -> dict[int, bytes]:
        """Device identification objects (function 43/14), ids 0–6."""
        return {}

    def server_id(self) -> bytes:
        """The server id of function 17."""
        return b""


def exception(function: int, code: Exc) -> bytes:
    """An exception response PDU."""
    return bytes([(function | 0x80) & 0xFF, code])


@dataclass(slots=True)
class Stats:
    """Counters of one server."""

    requests: int = 0
    exceptions: int = 0
    dropped: int = 0
    by_function: dict[int, int] = field(default_factory=dict)


class Handler:
    """Turns a request PDU into a response PDU, for one backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.stats = Stats()

    async def handle(self, pdu: bytes) -> bytes:
        """The response PDU to a request PDU (never raises)."""
        self.stats.requests += 1
        if not pdu:
            self.stats.dropped += 1
            return exception(0, Exc.ILLEGAL_FUNCTION)
        function = pdu[0]
        self.stats.by_function[function] = self.stats.by_function.get(function, 0) + 1
        try:
            handler = self._functions.get(function)
            if handler is None:
                raise ModbusError(Exc.ILLEGAL_FUNCTION)
            return await handler(self, pdu)
        except ModbusError as error:
            self.stats.exceptions += 1
            return exception(function, error.code)
        except Exception:  # a bug must not take the server down
            _LOGGER.exception("request %s failed", pdu[:8].hex())
            self.stats.exceptions += 1
            return exception(function, Exc.DEVICE_FAILURE)

    async def _read_registers(self, pdu: bytes) -> bytes:
        if len(pdu) != 5:
            raise ModbusError(Exc.ILLEGAL_VALUE)
        address, count = struct.unpack(">HH", pdu[1:5])
        if not 1 <= count <= MAX_READ:
            raise ModbusError(Exc.ILLEGAL_VALUE)
        if address + count > 0x10000:
            raise ModbusError(Exc.ILLEGAL_ADDRESS)
        values = await self.backend.read(address, count)
        return bytes([pdu[0], 2 * count]) + struct.pack(f">{count}H", *values)

    async def _write_single(self, pdu: bytes) -> bytes:
        if len(pdu) != 5:
            raise ModbusError(Exc.ILLEGAL_VALUE)
        address, value = struct.unpack(">HH", pdu[1:5])
        await self.backend.write(address, [value])
        return pdu

    async def _write_multiple(self, pdu: bytes) -> bytes:
        if len(pdu) < 6:
            raise ModbusError(Exc.ILLEGAL_VALUE)
        address, count, size = struct.unpack(">HHB", pdu[1:6])
        if not 1 <= count <= MAX_WRITE or size != 2 * count or len(pdu) != 6 + size:
            raise ModbusError(Exc.ILLEGAL_VALUE)
        if address + count > 0x10000:
            raise ModbusError(Exc.ILLEGAL_ADDRESS)
        values = list(struct.unpack(f">{count}H", pdu[6:]))
        await self.backend.write(address, values)
        return pdu[:5]

    async def _report_server_id(self, pdu: bytes) -> bytes:
        if len(pdu) != 1:
            raise ModbusError(Exc.ILLEGAL_VALUE)
        data = self.backend.server_id()[:240] + b"\xff"
        return bytes([pdu[0], len(data)]) + data

    async def _read_file_record(self, pdu: bytes) -> bytes:
        if len(pdu) < 2:
            raise ModbusError(Exc.ILLEGAL_VALUE)
        size = pdu[1]
        if not 0x07 <= size <= 0xF5 or size % 7 or len(pdu) != 2 + size:
            raise ModbusError(Exc.ILLEGAL_VALUE)
        answers = b""
        for offset in range(2, 2 + size, 7):
            kind, file, record, length = struct.unpack(">BHHH", pdu[offset : offset + 7])
            if kind != FILE_REFERENCE_TYPE or file == 0 or record > 9999 or length == 0:
                raise ModbusError(Exc.ILLEGAL_ADDRESS)
            if record + length > 10000:
                raise ModbusError(Exc.ILLEGAL_ADDRESS)
            if 2 + 2 * length > 0xF5:
                raise ModbusError(Exc.ILLEGAL_ADDRESS)  # a length no response can carry
            words = await self.backend.read_file(file, record, length)
            answers += bytes([1 + 2 * length, FILE_REFERENCE_TYPE]) + struct.pack(
                f">{length}H", *words
            )
            if len(answers) > 0xF5:
                raise ModbusError(Exc.ILLEGAL_VALUE)
        return bytes([pdu[0], len(answers)]) + answers

    async def _device_identification(self, pdu: bytes) -> bytes:
        if len(pdu) >= 2 and pdu[1] != 0x0E:
            raise ModbusError(Exc.ILLEGAL_FUNCTION)  # another MEI type
        if len(pdu) != 4:
            raise ModbusError(Exc.ILLEGAL_VALUE)
        code, first = pdu[2], pdu[3]
        objects = self.backend.identification()
        if code not in (1, 2, 3, 4):
            raise ModbusError(Exc.ILLEGAL_VALUE)
        if code == 4:
            if first not in objects:
                raise ModbusError(Exc.ILLEGAL_ADDRESS)
            chosen = [first]
        else:
            top = {1: 0x02, 2: 0x06, 3: 0xFF}[code]
            ids = sorted(i for i in objects if i <= top)
            if first not in ids:
                first = 0
            chosen = [i for i in ids if i >= first]
        body = b""
        count = 0
        more, next_id = 0, 0
        for object_id in chosen:
            value = objects[object_id][:240]
            item = bytes([object_id, len(value)]) + value
            if len(body) + len(item) > MAX_PDU - 7:
                more, next_id = 0xFF, object_id
                break
            body += item
            count += 1
        conformity = 0x82
        return bytes([pdu[0], 0x0E, code, conformity, more, next_id, count]) + body

    _functions: Final[dict[int, Callable[[Handler, bytes], Awaitable[bytes]]]] = {
        0x03: _read_registers,
        0x04: _read_registers,
        0x06: _write_single,
        0x10: _write_multiple,
        0x11: _report_server_id,
        0x14: _read_file_record,
        0x2B: _device_identification,
    }


# -- Modbus TCP ----------------------------------------------------------------------------


class TcpServer:
    """Modbus TCP on asyncio: many clients at once, each request in order."""

    def __init__(
        self,
        handler: Handler,
        unit_id: int = 1,
        *,
        max_clients: int = 100,
        idle_timeout: float = 120.0,
        frame_timeout: float = 5.0,
    ) -> None:
        self.handler = handler
        self.unit_id = unit_id
        self.max_clients = max_clients
        self.idle_timeout = idle_timeout
        """A client silent this long is disconnected (so idle clients cannot
        hold every slot)."""
        self.frame_timeout = frame_timeout
        """A frame must arrive whole within this time once it has begun."""
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; return the bound (host, port)."""
        self._server = await asyncio.start_server(self._serve, host, port)
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def close(self) -> None:
        """Stop listening and drop every client."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._clients) >= self.max_clients:
            writer.close()
            return
        self._clients.add(writer)
        try:
            while True:
                first = await asyncio.wait_for(reader.readexactly(1), self.idle_timeout)
                header = first + await asyncio.wait_for(reader.readexactly(6), self.frame_timeout)
                transaction, protocol, length, unit = struct.unpack(">HHHB", header)
                if protocol != 0 or not 2 <= length <= MAX_PDU + 1:
                    # Not Modbus (or a length we cannot trust): the stream
                    # cannot be resynchronised, so the connection ends.
                    self.handler.stats.dropped += 1
                    break
                pdu = await asyncio.wait_for(reader.readexactly(length - 1), self.frame_timeout)
                if unit in (self.unit_id, 0, 0xFF):
                    reply = await self.handler.handle(pdu)
                else:
                    # Like a gateway with no such device behind it: 0B, at
                    # once, rather than a silence the client must time out on.
                    self.handler.stats.dropped += 1
                    reply = bytes([(pdu[0] | 0x80) & 0xFF, 0x0B])
                writer.write(struct.pack(">HHHB", transaction, 0, len(reply) + 1, unit) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        finally:
            self._clients.discard(writer)
            writer.close()


# -- Modbus RTU ----------------------------------------------------------------------------


def crc16(data: bytes) -> int:
    """The Modbus RTU CRC (polynomial 0xA001 reflected, initial 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    """An RTU frame: address, PDU, CRC (low byte first)."""
    body = bytes([unit]) + pdu
    return body + struct.pack("<H", crc16(body))


def frame_gap(baudrate: int) -> float:
    """t3.5: the silence that ends an RTU frame (fixed 1.75 ms above 19200 baud)."""
    return 3.5 * 11 / baudrate if baudrate <= 19200 else 0.00175


class RtuProtocol:
    """Frames RTU bytes by silence and CRC; answers only its own unit id."""

    def __init__(self, handler: Handler, unit_id: int, baudrate: int) -> None:
        self.handler = handler
        self.unit_id = unit_id
        self.gap = frame_gap(baudrate)
        self.buffer = bytearray()
        self.frames_bad = 0

    async def frame(self, data: bytes) -> bytes | None:
        """The answer to one complete frame (None: stay silent)."""
        if len(data) < 4 or len(data) > 256:
            self.frames_bad += 1
            return None
        body, crc = data[:-2], struct.unpack("<H", data[-2:])[0]
        if crc16(body) != crc:
            self.frames_bad += 1
            return None
        unit, pdu = body[0], bytes(body[1:])
        if unit == 0:
            if pdu and pdu[0] in (0x06, 0x10):
                await self.handler.handle(pdu)  # broadcast write: no answer
            return None
        if unit != self.unit_id:
            return None  # another device on the bus
        return rtu_frame(unit, await self.handler.handle(pdu))


class RtuServer:
    """Modbus RTU on a serial device (a real port, or a pseudo-terminal)."""

    def __init__(
        self,
        handler: Handler,
        device: str,
        *,
        unit_id: int = 1,
        baudrate: int = DEFAULT_BAUDRATE,
        parity: str = DEFAULT_PARITY,
        stopbits: int = 1,
    ) -> None:
        self.protocol = RtuProtocol(handler, unit_id, baudrate)
        self.port = SerialPort(device, baudrate=baudrate, parity=parity, stopbits=stopbits)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the device and serve."""
        await self.port.open()
        self._task = asyncio.create_task(self._serve())

    async def close(self) -> None:
        """Stop and close the device."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.port.close()

    async def _serve(self) -> None:
        while True:
            frame = await self.port.read_frame(self.protocol.gap)
            reply = await self.protocol.frame(frame)
            if reply is not None:
                await self.port.write(reply)
