"""Fuzzing the Modbus server with over 100 000 random and malformed frames per transport.

Every request is checked against an oracle written from the Modbus Application
Protocol V1.1b3 and docs/modbus.md, not from ``s8000_engine/modbus.py``: the
exact answer (exception 01 for an unsupported function, 03 for a bad quantity,
byte count or length, 02 for an address outside the map, a read-only register
or part of a multi-register value, 03 for a clock or command value out of its
declared range or a value that is "not implemented", 04 for a register the
running meter does not apply; normal answers equal to the register image) and
the writes it passes on (none when the request is refused; the image never
changes).  The values of configuration registers are the meter's validators'
to judge, as for the web page's changes: the meter here takes every one
(those validators, behind the same handler, are tested in test_modbus.py).

* the protocol handler directly: systematic sweeps (every function code, every
  device identification code and object id) and seeded random PDUs;
* Modbus TCP: concurrent pipelining connections, connections with broken MBAP
  headers that the server closes, and another client reading a known register
  throughout;
* Modbus RTU: :class:`RtuProtocol` frame by frame (CRC, unit ids, broadcasts),
  then :class:`RtuServer` on a pseudo-terminal pair with garbage between frames.

Everything is seeded: a failure names the request that failed and reproduces.
Timeouts only detect hangs; nothing here asserts a speed.
"""

from __future__ import annotations

import asyncio
import math
import os
import queue
import random
import struct
import tty
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pytest

from s8000_engine.config.meter import meter_config
from s8000_engine.local.image import MeterSnapshot, build_map, render
from s8000_engine.local.meter import DEMO_CONFIG
from s8000_engine.modbus.backend import MeterBackend, Write
from s8000_engine.modbus.server import Handler, RtuProtocol, RtuServer, TcpServer
from s8000_engine.protocol.regmap import Field, RegisterMap
from s8000_engine.protocol.sunspec import DataType

SEED = 8000
MODEL = "S8UTS-083"
SERIAL = "0212060212"
FIRMWARE = "1.60"
TCP_UNIT = 1
RTU_UNIT = 7

#: Function codes docs/modbus.md promises (43 only with MEI type 14).
SUPPORTED = frozenset({0x03, 0x04, 0x06, 0x10, 0x11, 0x14, 0x2B})
#: Writable registers that are configuration (docs/modbus.md): their values go
#: to the meter's validators, not the map's declared ranges.
CONFIGURATION = frozenset(
    {"s8000.P1Scale", "s8000.P2Scale", "s8000.RecInt"}
    | {"s8000.DmdType", "s8000.DmdInt", "s8000.DmdSub"}
    | {f"s8000.Pt{n}CT" for n in range(1, 25)}
)
#: Writable registers the running meter applies (docs/modbus.md): all of them;
#: a writable register not listed here would be range-checked, then refused (04).
APPLIED = CONFIGURATION | {"s8000.UTC", "s8000.Cmd"}
MAX_READ = 125  # Modbus V1.1b3 6.3: 1 to 125 registers
MAX_WRITE = 123  # 6.12: 1 to 123 registers
MAX_PDU = 253  # 4.1: 256-byte RTU ADU minus address and CRC
QUANTITIES = (0, 1, 2, 123, 124, 125, 126, 127, 255, 256, 0x7FFF, 0x8000, 0xFFFF)

HANDLER_FRAMES = 100_000  # random PDUs, on top of the systematic sweeps
TCP_CONNECTIONS = 8
TCP_FRAMES_PER_CONNECTION = 12_600  # 100 800 over the fuzzing connections
TCP_BATCH = 200  # pipelined: this many requests written before draining
TCP_GARBAGE_CONNECTIONS = 40
RTU_FRAMES = 100_000
RTU_E2E_ROUNDS = 300
HANG = 10.0  # seconds without an expected answer: the server hangs
RTU_SILENCE = 0.015  # well above t3.5 (2 ms at 19200 baud) between noise and a frame


# -- the meter -----------------------------------------------------------------------------


@dataclass(slots=True)
class Meter:
    """A register image served by a backend and the protocol handler."""

    regmap: RegisterMap
    backend: MeterBackend
    handler: Handler
    image: list[int]
    """A copy of the image as served: it must never change."""


def make_meter() -> Meter:
    config = meter_config(DEMO_CONFIG)
    regmap = build_map(config)
    backend = MeterBackend(regmap, model=MODEL, serial=SERIAL, firmware=FIRMWARE)
    backend.update(render(regmap, MeterSnapshot(config, serial=SERIAL, utc=1_795_600_000)))

    def configure(writes: tuple[Write, ...]) -> Future[None]:
        """A meter that takes every configuration write: passed on, in the
        order of the clock and command writes the backend queues after them."""
        for write in writes:
            backend.writes.put(write)
        taken: Future[None] = Future()
        taken.set_result(None)
        return taken

    backend.configure = configure
    return Meter(regmap, backend, Handler(backend), list(backend.image))


def drain(writes: queue.SimpleQueue[Write]) -> list[tuple[str, Any]]:
    out = []
    while not writes.empty():
        write = writes.get_nowait()
        out.append((write.name, write.value))
    return out


# -- the oracle ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expect:
    """The answer to a request, and the writes it queues."""

    reply: bytes
    writes: tuple[tuple[str, Any], ...] = ()
    also: bytes | None = None
    """The known deviation (see test_a_multi_field_write_is_range_checked_before_its_effect)."""


def refuse(function: int, code: int) -> Expect:
    return Expect(bytes([function | 0x80, code]))


class Oracle:
    """The answer the specification and docs/modbus.md promise, for one register image."""

    def __init__(self, meter: Meter) -> None:
        self.base = meter.regmap.base
        self.end = meter.regmap.end
        self.image = list(meter.image)
        self.writable = {f.address: f for f in meter.regmap.fields if f.access == "RW"}
        self.objects = meter.backend.identification()
        assert sorted(self.objects) == list(range(7))  # basic 0–2 and regular 3–6
        assert self.objects[0] == b"Leviton"
        assert self.objects[1] == MODEL.encode()
        assert self.objects[2] == FIRMWARE.encode()
        self.server_id = f"{MODEL} {SERIAL}".encode() + b"\xff"  # run indicator ON

    def expect(self, pdu: bytes) -> Expect:
        if not pdu:
            return refuse(0, 1)
        function = pdu[0]
        if function not in SUPPORTED:
            return refuse(function, 1)
        if function in (0x03, 0x04):
            return self._read(pdu)
        if function == 0x06:
            if len(pdu) != 5:
                return refuse(function, 3)
            address, value = struct.unpack(">HH", pdu[1:])
            return self._write(function, address, [value], pdu)
        if function == 0x10:
            if len(pdu) < 6:
                return refuse(function, 3)
            address, count, size = struct.unpack(">HHB", pdu[1:6])
            if not 1 <= count <= MAX_WRITE or size != 2 * count or len(pdu) != 6 + size:
                return refuse(function, 3)
            return self._write(
                function, address, list(struct.unpack(f">{count}H", pdu[6:])), pdu[:5]
            )
        if function == 0x11:
            if len(pdu) != 1:
                return refuse(function, 3)
            return Expect(bytes([0x11, len(self.server_id)]) + self.server_id)
        if function == 0x14:
            if len(pdu) < 2:
                return refuse(function, 3)
            size = pdu[1]
            if not 0x07 <= size <= 0xF5 or size % 7 or len(pdu) != 2 + size:
                return refuse(function, 3)
            # A bad reference type, file or record is 02, and so is every
            # well-formed one: the interval memory has no file records yet.
            return refuse(function, 2)
        return self._identification(pdu)

    def _read(self, pdu: bytes) -> Expect:
        function = pdu[0]
        if len(pdu) != 5:
            return refuse(function, 3)
        address, count = struct.unpack(">HH", pdu[1:])
        if not 1 <= count <= MAX_READ:
            return refuse(function, 3)
        if address < self.base or address + count > self.end:
            return refuse(function, 2)
        words = self.image[address - self.base : address - self.base + count]
        return Expect(bytes([function, 2 * count]) + struct.pack(f">{count}H", *words))

    def _write(self, function: int, address: int, words: list[int], echo: bytes) -> Expect:
        end = address + len(words)
        parts: list[tuple[Field, Any]] = []
        at = address
        while at < end:  # whole writable fields, one after the other
            f = self.writable.get(at)
            if f is None or at + f.size > end:
                return refuse(function, 2)
            parts.append((f, value_of(f, words[at - address : at - address + f.size])))
            at += f.size
        # Every value is checked before any effect: "not implemented" is no
        # value; the clock and the commands have their declared ranges.
        if any(not_implemented(f, value) for f, value in parts):
            return refuse(function, 3)
        if any(not in_range(f, value) for f, value in parts if f.name not in CONFIGURATION):
            return refuse(function, 3)
        if any(f.name not in APPLIED for f, _ in parts):
            return refuse(function, 4)
        return Expect(echo, tuple((f.name, value) for f, value in parts))

    def _identification(self, pdu: bytes) -> Expect:
        if len(pdu) < 2:
            return refuse(0x2B, 3)
        if pdu[1] != 0x0E:
            return refuse(0x2B, 1)  # another MEI type: not served
        if len(pdu) != 4:
            return refuse(0x2B, 3)
        code, first = pdu[2], pdu[3]
        if code not in (1, 2, 3, 4):
            return refuse(0x2B, 3)
        if code == 4:  # one object, by id
            if first not in self.objects:
                return refuse(0x2B, 2)
            ids = [first]
        else:  # a stream: basic 0–2, regular 0–127, extended 0–255
            top = {1: 0x02, 2: 0x7F, 3: 0xFF}[code]
            known = sorted(i for i in self.objects if i <= top)
            start = first if first in known else 0  # an unknown id restarts at 0
            ids = [i for i in known if i >= start]
        body = b"".join(bytes([i, len(self.objects[i])]) + self.objects[i] for i in ids)
        assert 7 + len(body) <= MAX_PDU, "the oracle does not model 'more follows'"
        return Expect(bytes([0x2B, 0x0E, code, 0x82, 0x00, 0x00, len(ids)]) + body)


def value_of(f: Field, words: list[int]) -> Any:
    """A written value, decoded from the map's declared type (big-endian words)."""
    if f.type in (DataType.UINT16, DataType.ENUM16):
        return words[0]
    if f.type is DataType.UINT32:
        return words[0] << 16 | words[1]
    if f.type is DataType.FLOAT32:
        return struct.unpack(">f", struct.pack(">HH", *words))[0]
    raise AssertionError(f"the oracle does not know writable {f.type} ({f.name})")


def not_implemented(f: Field, value: Any) -> bool:
    """SunSpec's "not implemented" value of the field's type: no value at all."""
    if f.type is DataType.FLOAT32:
        return math.isnan(value)
    return bool(value == {DataType.UINT32: 0xFFFFFFFF}.get(f.type, 0xFFFF))


def in_range(f: Field, value: Any) -> bool:
    assert f.minimum is not None, f.name
    assert f.maximum is not None, f.name
    low = f.minimum
    if f.type.value == "float32":
        low *= 1 - 1e-6  # the float32 nearest to a decimal minimum counts as the minimum
    return bool(low <= value <= f.maximum)  # NaN is in no range


# -- RTU framing, written again ------------------------------------------------------------


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC_TABLE = _crc_table()


def crc(data: bytes) -> int:
    """The Modbus RTU CRC-16, table-driven (Modbus over serial line V1.02, 6.2.2)."""
    value = 0xFFFF
    for byte in data:
        value = (value >> 8) ^ CRC_TABLE[(value ^ byte) & 0xFF]
    return value


def adu(unit: int, pdu: bytes) -> bytes:
    body = bytes([unit]) + pdu
    return body + crc(body).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 3 and crc(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def test_the_independent_crc_matches_the_specification() -> None:
    assert adu(1, bytes.fromhex("030000000a")) == bytes.fromhex("01030000000ac5cd")
    assert adu(1, bytes.fromhex("0300000001"))[-2:] == b"\x84\x0a"


# -- the fuzzer ----------------------------------------------------------------------------


class Fuzzer:
    """Seeded requests: random, malformed, at the map's edges, and mutations of valid ones."""

    def __init__(self, rng: random.Random, regmap: RegisterMap) -> None:
        self.rng = rng
        self.base, self.end = regmap.base, regmap.end
        fields = regmap.fields
        self.at = {f.address: f for f in fields}
        self.rw = [f for f in fields if f.access == "RW"]
        self.ro = [f for f in fields if f.access != "RW"]
        self.applied = [f for f in self.rw if f.name in APPLIED]
        self.edges = [self.base - 1, self.base, self.base + 1, self.end - 1, self.end, self.end + 1,
                      self.end - MAX_READ, self.end - MAX_READ - 1, 0, 1, 0xFFFF - MAX_READ, 0xFFFE, 0xFFFF]  # fmt: skip
        self.near_rw = sorted({f.address + d for f in self.rw for d in (-1, 0, 1, f.size)})
        self.kinds = (
            (10, self.random_bytes),
            (6, self.random_function),
            (18, self.read),
            (14, self.write_single),
            (18, self.write_multiple),
            (2, self.server_id),
            (8, self.file_record),
            (8, self.identification),
            (16, self.mutated),
        )
        self.choose = [kind for weight, kind in self.kinds for _ in range(weight)]

    def pdu(self) -> bytes:
        return self.rng.choice(self.choose)()

    def short_pdu(self) -> bytes:
        """A PDU that fits an MBAP or RTU frame."""
        while len(pdu := self.pdu()) > MAX_PDU or not pdu:
            pass
        return pdu

    def address(self) -> int:
        r = self.rng
        x = r.random()
        if x < 0.3:
            return r.choice(self.edges)
        if x < 0.6:
            return r.randrange(self.base, self.end)
        if x < 0.8:
            return r.choice(self.near_rw)
        return r.randrange(0x10000)

    def writable(self) -> Field:
        """A writable field; half the time one that the running meter applies."""
        return self.rng.choice(self.applied if self.rng.random() < 0.5 else self.rw)

    def quantity(self, top: int) -> int:
        r = self.rng
        return r.choice(QUANTITIES) if r.random() < 0.3 else r.randint(1, top)

    def words_for(self, f: Field, good: bool) -> list[int]:
        """A value for a writable field, in its range or not."""
        r = self.rng
        assert f.minimum is not None
        assert f.maximum is not None
        if f.type is DataType.FLOAT32:
            if r.random() < 0.1:
                return [r.randrange(0x10000), r.randrange(0x10000)]
            if good:
                value = r.choice([1e-5, 0.01, 1.0, 10.0, 1e6, r.uniform(1e-5, 1e6)])
            else:  # float32(1e-6) rounds below the declared minimum
                value = r.choice([0.0, -0.0, -1.0, 1e-6, 1e-7, 1.0000001e6, 2e6, 1e30,
                                  math.inf, -math.inf, math.nan])  # fmt: skip
            return list(struct.unpack(">HH", struct.pack(">f", value)))
        low, high, top = int(f.minimum), int(f.maximum), (1 << (16 * f.size)) - 1
        if good:
            number = r.choice([low, high, r.randint(low, high)])
        else:
            number = r.choice(
                [x for x in (low - 1, high + 1, 0, top, r.randint(high, top)) if 0 <= x <= top]
            )
        return [number >> 16, number & 0xFFFF] if f.size == 2 else [number]

    def random_bytes(self) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, 260))

    def random_function(self) -> bytes:
        r = self.rng
        return bytes([r.randrange(256)]) + r.randbytes(r.choice([0, 1, 4, 4, 5, r.randint(0, 12)]))

    def read(self) -> bytes:
        r = self.rng
        function = r.choice((3, 4))
        count = self.quantity(MAX_READ)
        if r.random() < 0.5:  # inside the map, or just past its end
            address = r.randint(self.base, max(self.base, self.end - min(count, MAX_READ)))
            address += r.choice((0, 0, 0, 1))
        else:
            address = self.address()
        pdu = struct.pack(">BHH", function, address, count & 0xFFFF)
        return self.wrong_length(pdu, 0.05)

    def write_single(self) -> bytes:
        r = self.rng
        x = r.random()
        if x < 0.55:  # a writable register: one of a single-register field, or half of a pair
            f = self.writable()
            offset = r.randrange(f.size) if r.random() < 0.4 else 0
            address = f.address + offset
            value = self.words_for(f, r.random() < 0.6)[offset]
        elif x < 0.75:  # a read-only register, with a plausible value
            address = r.choice(self.ro).address
            value = r.choice([0, 1, 0xFFFF, r.randrange(0x10000)])
        else:
            address = self.address()
            value = r.choice([0, 1, 15, 0xFFFF, r.randrange(0x10000)])
        return self.wrong_length(struct.pack(">BHH", 6, address, value), 0.05)

    def write_multiple(self) -> bytes:
        r = self.rng
        x = r.random()
        words: list[int] = []
        if x < 0.6:  # a run of whole fields from a writable one
            address = self.writable().address
            at = address
            for _ in range(r.choice((1, 1, 1, 2, 2, 3, 5, 8))):
                f = self.at.get(at)
                if f is None:
                    break
                if f.access == "RW":
                    words += self.words_for(f, r.random() < 0.75)
                else:
                    words += [r.randrange(0x10000) for _ in range(f.size)]
                at += f.size
            if r.random() < 0.1:
                address += r.choice((-1, 1))  # part of a field
            if r.random() < 0.1:
                words = words[:-1] if len(words) > 1 else [*words, r.randrange(0x10000)]
        else:
            address = self.address()
            words = [
                r.randrange(0x10000) for _ in range(min(self.quantity(MAX_WRITE), MAX_WRITE + 4))
            ]
        count = len(words)
        if r.random() < 0.08:
            count = r.choice(QUANTITIES)  # a quantity that is not the data's
        size = 2 * count
        if r.random() < 0.08:
            size = r.choice((0, 1, size - 1, size + 1, size + 2, 0xFF))
        pdu = struct.pack(">BHHB", 16, address, count & 0xFFFF, size & 0xFF)
        pdu += struct.pack(f">{len(words)}H", *words)
        return self.wrong_length(pdu, 0.05)

    def server_id(self) -> bytes:
        r = self.rng
        return b"\x11" + (r.randbytes(r.randint(1, 4)) if r.random() < 0.3 else b"")

    def file_record(self) -> bytes:
        r = self.rng
        subs = b""
        for _ in range(r.choice((1, 1, 2, 3, 34, 35, 36)) if r.random() < 0.9 else 0):
            subs += struct.pack(
                ">BHHH",
                r.choice((6, 6, 6, 0, 5, 7, 0xFF, r.randrange(256))),
                r.choice((0, 1, 2, 4, 0xFFFF, r.randrange(0x10000))),
                r.choice((0, 1, 9998, 9999, 10000, 0xFFFF, r.randrange(10000))),
                r.choice((0, 1, 2, 120, 121, 122, 125, 10000, 0xFFFF, r.randint(1, MAX_READ))),
            )
        size = len(subs)
        x = r.random()
        if x < 0.1:
            size = r.choice((0, 6, 8, size - 1, size + 1, size + 7, 0xF6, 0xFF))
        elif x < 0.15 and subs:
            subs = subs[: -r.randint(1, 7)]
        elif x < 0.2:
            subs += r.randbytes(r.randint(1, 8))
        return bytes([0x14, size & 0xFF]) + subs

    def identification(self) -> bytes:
        r = self.rng
        mei = 0x0E if r.random() < 0.8 else r.choice((0x0D, 0x00, 0x0F, 0xFF, r.randrange(256)))
        code = r.choice((0, 1, 2, 3, 4, 4, 5, 0xFF, r.randrange(256)))
        first = r.choice((*range(8), 0x7F, 0x80, 0xFF, r.randrange(256)))
        return self.wrong_length(bytes([0x2B, mei, code, first]), 0.1)

    def valid(self) -> bytes:
        """A well-formed request (whose answer may still be an exception)."""
        r = self.rng
        x = r.random()
        if x < 0.35:
            count = r.randint(1, MAX_READ)
            address = r.randint(self.base, self.end - count)
            return struct.pack(">BHH", r.choice((3, 4)), address, count)
        if x < 0.75:
            f = self.writable()
            words = self.words_for(f, True)
            if f.size == 1 and r.random() < 0.5:
                return struct.pack(">BHH", 6, f.address, words[0])
            return struct.pack(f">BHHB{f.size}H", 16, f.address, f.size, 2 * f.size, *words)
        if x < 0.8:
            return b"\x11"
        if x < 0.9:
            n = r.randint(1, 3)
            return bytes([0x14, 7 * n]) + struct.pack(">BHHH", 6, 1, 0, 1) * n
        return bytes([0x2B, 0x0E, r.randint(1, 4), r.randint(0, 6)])

    def mutated(self) -> bytes:
        r = self.rng
        pdu = bytearray(self.valid())
        op = r.randrange(5)
        if op == 0:  # bit flips
            for _ in range(r.randint(1, 3)):
                pdu[r.randrange(len(pdu))] ^= 1 << r.randrange(8)
        elif op == 1:  # truncation
            del pdu[r.randrange(len(pdu)) :]
        elif op == 2:  # extension
            pdu += r.randbytes(r.randint(1, 8))
        elif op == 3:  # a wrong byte count (or a wrong field where there is none)
            at = {0x10: 5, 0x14: 1}.get(pdu[0], r.randrange(len(pdu)))
            pdu[at] = (pdu[at] + r.choice((-2, -1, 1, 2, 7, 128))) & 0xFF
        else:  # another function code
            pdu[0] = r.randrange(256)
        return bytes(pdu)

    def wrong_length(self, pdu: bytes, probability: float) -> bytes:
        r = self.rng
        if r.random() >= probability:
            return pdu
        if r.random() < 0.5:
            return pdu[: r.randrange(len(pdu))]
        return pdu + r.randbytes(r.randint(1, 4))


def sweeps(base: int) -> Iterator[bytes]:
    """Every function code, and every device identification code and object id."""
    rng = random.Random(SEED - 1)
    for function in range(256):
        yield bytes([function])
        yield bytes([function]) + struct.pack(">HH", base, 1)
        yield bytes([function]) + rng.randbytes(rng.randint(1, 12))
    for code in range(256):
        for first in range(256) if code <= 5 else (0, 1, 6, 7, 0xFF):
            yield bytes([0x2B, 0x0E, code, first])
    for mei in range(256):
        yield bytes([0x2B, mei, 1, 0])
    yield b""


# -- bookkeeping ---------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """Requests and answers of one run, for the summary line."""

    frames: int = 0
    normal: int = 0
    silent: int = 0
    exceptions: Counter[int] = field(default_factory=Counter)
    writes: int = 0
    deviations: int = 0

    def answer(self, reply: bytes) -> None:
        if reply[0] & 0x80:
            self.exceptions[reply[1]] += 1
        else:
            self.normal += 1

    def line(self) -> str:
        codes = " ".join(f"{code:02X}:{n}" for code, n in sorted(self.exceptions.items()))
        return (f"{self.frames} frames, {self.normal} normal, exceptions {{{codes}}}, "
                f"{self.silent} silent, {self.writes} writes queued, "
                f"{self.deviations} known 04-before-03 deviations")  # fmt: skip


def check(pdu: bytes, got: bytes, want: Expect, tally: Tally, *, rtu: bool = False) -> bool:
    """Whether ``got`` is the expected answer (the known deviation counted)."""
    if got == want.reply:
        tally.answer(got[1:-2] if rtu else got)
        return True
    if want.also is not None and got == want.also:
        tally.answer(got[1:-2] if rtu else got)
        tally.deviations += 1
        return False  # refused: no writes
    raise AssertionError(f"request {pdu.hex()}: answered {got.hex()}, expected {want.reply.hex()}")


def summary(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n{text}")


# -- the protocol handler ------------------------------------------------------------------


def test_the_handler_answers_every_request_as_specified(capsys: pytest.CaptureFixture[str]) -> None:
    meter = make_meter()
    oracle = Oracle(meter)
    fuzz = Fuzzer(random.Random(SEED), meter.regmap)
    backend, image = meter.backend, meter.backend.image
    tally = Tally()

    def requests() -> Iterator[bytes]:
        yield from sweeps(meter.regmap.base)
        for _ in range(HANDLER_FRAMES):
            yield fuzz.pdu()

    async def run() -> None:
        for pdu in requests():
            want = oracle.expect(pdu)
            got = await meter.handler.handle(pdu)
            tally.frames += 1
            accepted = check(pdu, got, want, tally)
            queued = drain(backend.writes)
            expected = list(want.writes) if accepted else []
            assert queued == expected, f"request {pdu.hex()}: queued {queued}, expected {expected}"
            tally.writes += len(queued)
            assert backend.image is image, f"request {pdu.hex()} replaced the image"
            if pdu[:1] in (b"\x06", b"\x10"):
                assert image == meter.image, f"request {pdu.hex()} changed the image"

    asyncio.run(run())
    assert tally.frames >= 100_000
    assert tally.normal > 5_000
    assert tally.writes > 1_000
    # Every writable register is applied now, so 04 has nothing left to answer.
    assert {1, 2, 3} <= set(tally.exceptions)
    summary(capsys, f"fuzz handler: {tally.line()}")


def test_a_multi_field_write_is_range_checked_before_its_effect() -> None:
    meter = make_meter()
    rec = meter.regmap.address_of("s8000", "RecInt")  # RecInt, DmdType, DmdInt, DmdSub, Cmd
    pdu = struct.pack(">BHHB5H", 16, rec, 5, 10, 5, 1, 15, 15, 7)  # no command 7
    assert asyncio.run(meter.handler.handle(pdu)) == b"\x90\x03"
    assert drain(meter.backend.writes) == []  # the configuration was not passed on either
    pdu = struct.pack(">BHHB5H", 16, rec, 5, 10, 5, 1, 15, 15, 1)
    assert asyncio.run(meter.handler.handle(pdu)) == pdu[:5]
    assert drain(meter.backend.writes) == [
        ("s8000.RecInt", 5), ("s8000.DmdType", 1), ("s8000.DmdInt", 15), ("s8000.DmdSub", 15),
        ("s8000.Cmd", 1),
    ]  # fmt: skip


# -- Modbus TCP ----------------------------------------------------------------------------


def mbap(transaction: int, unit: int, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", transaction, 0, len(pdu) + 1, unit) + pdu


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """One MBAP answer: (transaction, unit, PDU); a hang fails."""
    async with asyncio.timeout(HANG):
        header = await reader.readexactly(7)
        transaction, protocol, length, unit = struct.unpack(">HHHB", header)
        assert protocol == 0, header.hex()
        assert 2 <= length <= MAX_PDU + 1, header.hex()
        return transaction, unit, await reader.readexactly(length - 1)


async def closed_by_server(reader: asyncio.StreamReader) -> None:
    """The server ends the connection: EOF, or a reset where bytes were left unread."""
    async with asyncio.timeout(HANG):
        try:
            rest = await reader.read()
        except ConnectionResetError:
            return
    assert rest == b"", f"answered a broken header: {rest.hex()}"


def test_tcp_survives_a_storm_and_keeps_serving_other_clients(
    capsys: pytest.CaptureFixture[str],
) -> None:
    meter = make_meter()
    oracle = Oracle(meter)
    tally = Tally()
    expected_writes: Counter[tuple[str, Any]] = Counter()
    marker = oracle.expect(struct.pack(">BHH", 3, meter.regmap.base, 2)).reply
    assert marker == bytes.fromhex("0304 5375 6e53")  # "SunS"
    other = Tally()
    garbage = Tally()

    def request(fuzz: Fuzzer, rng: random.Random, transaction: int) -> tuple[bytes, int, Expect]:
        pdu = fuzz.short_pdu()
        x = rng.random()
        # Mostly this meter, then 0 and 255 (answered on TCP), then no such device.
        if x < 0.7:
            unit = TCP_UNIT
        elif x < 0.9:
            unit = 0 if x < 0.8 else 0xFF
        else:
            unit = rng.choice((2, 7, 247, 254))
        if unit in (TCP_UNIT, 0, 0xFF):
            want = oracle.expect(pdu)
        else:  # no such device behind this gateway
            want = Expect(bytes([pdu[0] | 0x80, 0x0B]))
        return mbap(transaction, unit, pdu), unit, want

    def answered(
        pdu: bytes, want: Expect, got: tuple[int, int, bytes], sent: tuple[int, int], into: Tally
    ) -> None:
        assert got[:2] == sent, f"request {pdu.hex()}: answer for {got[:2]}, expected {sent}"
        if check(pdu, got[2], want, into):
            expected_writes.update(want.writes)

    async def fuzz_connection(port: int, index: int) -> None:
        rng = random.Random(SEED * 100 + index)
        fuzz = Fuzzer(rng, meter.regmap)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        pending: deque[tuple[int, int, Expect, bytes]] = deque()
        first = rng.randrange(0x10000)  # transaction ids wrap

        async def send() -> None:
            for start in range(0, TCP_FRAMES_PER_CONNECTION, TCP_BATCH):
                chunk = bytearray()
                for n in range(start, min(start + TCP_BATCH, TCP_FRAMES_PER_CONNECTION)):
                    transaction = (first + n) & 0xFFFF
                    frame, unit, want = request(fuzz, rng, transaction)
                    pending.append((transaction, unit, want, frame[7:]))
                    chunk += frame
                writer.write(chunk)
                async with asyncio.timeout(HANG):
                    await writer.drain()

        async def receive() -> None:
            for _ in range(TCP_FRAMES_PER_CONNECTION):
                got = await read_answer(reader)
                transaction, unit, want, pdu = pending.popleft()
                answered(pdu, want, got, (transaction, unit), tally)
                tally.frames += 1

        try:
            await asyncio.gather(send(), receive())
        finally:
            writer.close()

    async def garbage_connections(port: int) -> None:
        """Connections that end in a broken MBAP header, which the server closes."""
        rng = random.Random(SEED * 100 + 99)
        fuzz = Fuzzer(rng, meter.regmap)
        broken = [(1, 6), (0xFFFF, 6), (0, 0), (0, 1), (0, MAX_PDU + 2), (0, 300), (0, 0xFFFF)]
        for index in range(TCP_GARBAGE_CONNECTIONS):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                for transaction in range(rng.randint(0, 20)):  # good frames first, answered
                    frame, unit, want = request(fuzz, rng, transaction)
                    writer.write(frame)
                    answered(
                        frame[7:], want, await read_answer(reader), (transaction, unit), garbage
                    )
                    garbage.frames += 1
                if index % 8 == 7:  # a frame cut short, then the client hangs up
                    writer.write(struct.pack(">HHHB", 1, 0, 6, TCP_UNIT) + b"\x03\x9c")
                    writer.write_eof()
                    await closed_by_server(reader)
                    garbage.frames += 1
                    continue
                protocol, length = broken[index % len(broken)]
                writer.write(
                    struct.pack(">HHHB", rng.randrange(0x10000), protocol, length, TCP_UNIT)
                )
                if index % 2:
                    writer.write(rng.randbytes(rng.randint(1, 300)))
                garbage.frames += 1
                await closed_by_server(reader)
            finally:
                writer.close()

    async def other_client(port: int, storm: asyncio.Event) -> None:
        """Reads the SunSpec marker and a full block every few ms while the storm lasts."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        block = struct.pack(">BHH", 4, meter.regmap.end - MAX_READ, MAX_READ)
        try:
            transaction = 0
            while storm.is_set() or other.frames < 20:
                for pdu in (struct.pack(">BHH", 3, meter.regmap.base, 2), block):
                    transaction = (transaction + 1) & 0xFFFF
                    writer.write(mbap(transaction, TCP_UNIT, pdu))
                    got = await read_answer(reader)
                    assert got[:2] == (transaction, TCP_UNIT)
                    assert got[2] == oracle.expect(pdu).reply, (
                        f"the other client read {got[2].hex()}"
                    )
                    other.frames += 1
                    other.normal += storm.is_set()
                await asyncio.sleep(0.003)
        finally:
            writer.close()

    async def run() -> None:
        # The clients share the server's event loop: a pipelined batch the loop
        # has not finished writing is a frame "begun" for the server, so on a
        # loaded machine that stalls this process the 5 s mid-frame limit
        # would cut healthy connections.  The hang bound stays the client's.
        server = TcpServer(meter.handler, TCP_UNIT, frame_timeout=6 * HANG)
        _, port = await server.start("127.0.0.1", 0)
        storm = asyncio.Event()
        storm.set()
        try:
            async with asyncio.timeout(240):  # a bound on the whole run: a hang fails
                reading = asyncio.create_task(other_client(port, storm))
                await asyncio.gather(
                    *(fuzz_connection(port, i) for i in range(TCP_CONNECTIONS)),
                    garbage_connections(port),
                )
                storm.clear()
                await reading
                # Afterwards the server still answers a new client.
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(mbap(0xBEEF, TCP_UNIT, struct.pack(">BHH", 3, meter.regmap.base, 2)))
                assert await read_answer(reader) == (0xBEEF, TCP_UNIT, marker)
                writer.close()
        finally:
            await server.close()

    asyncio.run(run())
    assert tally.frames == TCP_CONNECTIONS * TCP_FRAMES_PER_CONNECTION >= 100_000
    assert other.normal > 0, "the other client was not served during the storm"
    queued = Counter(drain(meter.backend.writes))
    assert queued == expected_writes, "the writes queued are not the valid writes sent"
    tally.writes = queued.total()
    assert meter.backend.image == meter.image
    assert {1, 2, 3, 0x0B} <= set(tally.exceptions)
    summary(
        capsys,
        f"fuzz TCP: {tally.line()}; broken-header connections {TCP_GARBAGE_CONNECTIONS} "
        f"({garbage.frames} frames, all closed); other client {other.frames} reads "
        f"({other.normal} during the storm)",
    )


# -- Modbus RTU ----------------------------------------------------------------------------


class RtuOracle:
    """The answer to an RTU frame on a shared bus: None for silence."""

    def __init__(self, oracle: Oracle) -> None:
        self.oracle = oracle

    def expect(self, frame: bytes) -> tuple[Expect | None, tuple[tuple[str, Any], ...]]:
        """(the answer, or None for silence; the writes a silent broadcast executes)."""
        if not 4 <= len(frame) <= 256 or not crc_ok(frame):
            return None, ()
        unit, pdu = frame[0], frame[1:-2]
        want = self.oracle.expect(pdu)
        if unit == 0:  # broadcast: writes executed, nothing answered
            return None, want.writes if pdu[0] in (0x06, 0x10) else ()
        if unit != RTU_UNIT:
            return None, ()
        also = None if want.also is None else adu(unit, want.also)
        return Expect(adu(unit, want.reply), want.writes, also), ()


def rtu_case(rng: random.Random, fuzz: Fuzzer) -> bytes:
    """A frame for the bus: mostly well-framed requests, many corrupted or for others."""
    x = rng.random()
    if x < 0.05:
        return rng.randbytes(rng.randint(0, 260))  # noise
    if x < 0.08:
        return adu(rng.randrange(256), rng.randbytes(rng.randint(0, 256)))  # any CRC-valid frame
    pdu = fuzz.pdu() if rng.random() < 0.1 else fuzz.short_pdu()
    y = rng.random()
    unit = RTU_UNIT if y < 0.65 else 0 if y < 0.8 else rng.choice((1, 2, 8, 247, 248, 255))
    frame = bytearray(adu(unit, pdu))
    z = rng.random()
    if z < 0.08:  # line noise: a CRC catches every single-bit error
        frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
    elif z < 0.11:
        del frame[-rng.randint(1, 2) :]
    elif z < 0.13:
        frame += rng.randbytes(rng.randint(1, 3))
    return bytes(frame)


def test_rtu_frames_answer_only_this_unit_with_a_correct_crc(
    capsys: pytest.CaptureFixture[str],
) -> None:
    meter = make_meter()
    rtu = RtuOracle(Oracle(meter))
    protocol = RtuProtocol(meter.handler, RTU_UNIT, 19200)
    rng = random.Random(SEED + 2)
    fuzz = Fuzzer(rng, meter.regmap)
    tally = Tally()
    broadcasts = 0

    async def run() -> None:
        nonlocal broadcasts
        for _ in range(RTU_FRAMES):
            frame = rtu_case(rng, fuzz)
            want, executed = rtu.expect(frame)
            got = await protocol.frame(frame)
            tally.frames += 1
            queued = drain(meter.backend.writes)
            if want is None:
                assert got is None, (
                    f"frame {frame.hex()}: answered {got.hex() if got else ''}, expected silence"
                )
                tally.silent += 1
                assert queued == list(executed), (
                    f"frame {frame.hex()}: queued {queued}, expected {executed}"
                )
                broadcasts += bool(executed)
            else:
                assert got is not None, f"frame {frame.hex()}: silence, expected {want.reply.hex()}"
                assert crc_ok(got), f"frame {frame.hex()}: answer {got.hex()} has a bad CRC"
                accepted = check(frame, got, want, tally, rtu=True)
                expected = list(want.writes) if accepted else []
                assert queued == expected, (
                    f"frame {frame.hex()}: queued {queued}, expected {expected}"
                )
            tally.writes += len(queued)
            if frame[1:2] in (b"\x06", b"\x10"):
                assert meter.backend.image == meter.image

    asyncio.run(run())
    assert tally.frames >= 100_000
    assert broadcasts > 100
    assert tally.silent > 20_000
    assert tally.normal > 5_000
    summary(capsys, f"fuzz RTU frames: {tally.line()} ({broadcasts} broadcast writes executed)")


def test_rtu_on_a_pty_keeps_answering_after_garbage(capsys: pytest.CaptureFixture[str]) -> None:
    meter = make_meter()
    rtu = RtuOracle(Oracle(meter))
    rng = random.Random(SEED + 3)
    fuzz = Fuzzer(rng, meter.regmap)
    tally = Tally()
    noise = Counter[str]()

    def garbage(low: int, high: int) -> bytes:
        while True:  # noise that is no frame at all
            data = rng.randbytes(rng.randint(low, high))
            if not crc_ok(data):
                return data

    async def run(master: int, device: str) -> None:
        server = RtuServer(meter.handler, device, unit_id=RTU_UNIT, baudrate=19200)
        await server.start()
        received = bytearray()
        arrived = asyncio.Event()

        def readable() -> None:
            try:
                received.extend(os.read(master, 4096))
            except BlockingIOError:
                return
            arrived.set()

        async def answer(size: int) -> bytes:
            async with asyncio.timeout(HANG):
                while len(received) < size:
                    arrived.clear()
                    await arrived.wait()
            data = bytes(received[:size])
            del received[:size]
            return data

        async def send(noise: bytes, seen: Callable[[], bool] | None) -> None:
            """Write noise; wait until the server has taken it (when that shows), then a silence."""
            os.write(master, noise)
            if seen is not None:
                async with asyncio.timeout(HANG):
                    while not seen():  # noqa: ASYNC110 (the server's counters have no event)
                        await asyncio.sleep(0.001)
            await asyncio.sleep(RTU_SILENCE if seen else 4 * RTU_SILENCE)  # the frame ends

        def bad_frame() -> Callable[[], bool]:
            before = server.protocol.frames_bad
            return lambda: server.protocol.frames_bad > before

        def handled() -> Callable[[], bool]:
            before = meter.handler.stats.requests
            return lambda: meter.handler.stats.requests > before

        loop = asyncio.get_running_loop()
        loop.add_reader(master, readable)
        try:
            for index in range(RTU_E2E_ROUNDS):
                kind = (
                    "none",
                    "garbage",
                    "bad crc",
                    "other unit",
                    "broadcast",
                    "glued",
                    "too long",
                )[index % 7]
                noise[kind] += 1
                executed: tuple[tuple[str, Any], ...] = ()
                if kind == "garbage":
                    await send(garbage(1, 40), bad_frame())
                elif kind == "bad crc":
                    frame = bytearray(adu(RTU_UNIT, fuzz.short_pdu()))
                    frame[-1] ^= 1 << rng.randrange(8)
                    await send(bytes(frame), bad_frame())
                elif kind == "other unit":  # nothing shows that the server saw it: a longer silence
                    await send(adu(rng.choice((1, 8, 247)), fuzz.valid()), None)
                elif kind == "broadcast":  # a write, valid or not: executed, never answered
                    pdu = b""
                    while not pdu or pdu[0] not in (0x06, 0x10) or len(pdu) > MAX_PDU:
                        pdu = fuzz.write_multiple() if rng.random() < 0.5 else fuzz.write_single()
                    _, executed = rtu.expect(adu(0, pdu))
                    await send(adu(0, pdu), handled())
                elif kind == "glued":  # noise and a frame with no silence between: one bad frame
                    frame = garbage(1, 20) + adu(RTU_UNIT, fuzz.valid())
                    if crc_ok(frame):
                        continue
                    await send(frame, bad_frame())
                elif kind == "too long":
                    await send(garbage(300, 600), bad_frame())
                assert drain(meter.backend.writes) == list(executed), f"round {index}: {kind}"
                assert not received, f"round {index}: answered {kind}: {bytes(received).hex()}"
                tally.silent += kind != "none"
                # Then a frame for this meter is answered.
                frame = adu(RTU_UNIT, fuzz.short_pdu())
                want, _ = rtu.expect(frame)
                assert want is not None
                os.write(master, frame)
                got = await answer(len(want.reply))  # the deviation's answer has the same length
                tally.frames += 1
                accepted = check(frame, got, want, tally, rtu=True)
                queued = drain(meter.backend.writes)
                assert queued == (list(want.writes) if accepted else []), f"frame {frame.hex()}"
                tally.writes += len(executed) + len(queued)
            await asyncio.sleep(0.05)
            assert not received, f"a late answer: {bytes(received).hex()}"
        finally:
            loop.remove_reader(master)
            await server.close()

    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        tty.setraw(master)
        os.set_blocking(master, False)
        asyncio.run(run(master, os.ttyname(slave)))
    finally:
        os.close(master)
        os.close(slave)
    assert tally.frames >= RTU_E2E_ROUNDS - 10
    assert meter.backend.image == meter.image
    kinds = ", ".join(f"{kind} {n}" for kind, n in noise.items())
    summary(capsys, f"fuzz RTU on a pty: {tally.line()}; noise before frames: {kinds}")
