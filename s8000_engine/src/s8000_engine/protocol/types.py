"""Register encodings: the types a profile's fields may have, and how each is
put into and read from 16-bit registers.

Two conventions differ between meter makers, so both are parameters here
rather than constants: the **word order** of a value wider than one register
(SunSpec and Leviton's sister meters put the most significant register first;
some devices put it last), and the **sentinel** a device reads for a value it
does not have (SunSpec's "not implemented" values by default; Leviton's
Series 4000 reads QNAN, 0x8000, for an integer it lacks).  A profile states
both (:mod:`s8000_engine.protocol.profile`)."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal


class DataType(StrEnum):
    """Register encodings."""

    UINT16 = "uint16"
    INT16 = "int16"
    UINT32 = "uint32"
    INT32 = "int32"
    UINT64 = "uint64"
    INT64 = "int64"
    FLOAT32 = "float32"
    ACC32 = "acc32"
    BITFIELD32 = "bitfield32"
    ENUM16 = "enum16"
    SUNSSF = "sunssf"
    STRING = "string"
    EUI48 = "eui48"
    PAD = "pad"

    @property
    def json_type(self) -> str:
        """The type as the published JSON names it (the seven numeric kinds, or string)."""
        return {
            DataType.ACC32: "uint32",
            DataType.BITFIELD32: "uint32",
            DataType.ENUM16: "uint16",
            DataType.SUNSSF: "int16",
            DataType.PAD: "uint16",
        }.get(self, self.value)


SIZES: Final = {
    DataType.UINT16: 1,
    DataType.INT16: 1,
    DataType.UINT32: 2,
    DataType.INT32: 2,
    DataType.UINT64: 4,
    DataType.INT64: 4,
    DataType.FLOAT32: 2,
    DataType.ACC32: 2,
    DataType.BITFIELD32: 2,
    DataType.ENUM16: 1,
    DataType.SUNSSF: 1,
    DataType.EUI48: 3,
    DataType.PAD: 1,
}

#: "Not implemented" values per type (SunSpec): the default sentinels.
NOT_IMPLEMENTED: Final[dict[DataType, int | float | None]] = {
    DataType.UINT16: 0xFFFF,
    DataType.INT16: -0x8000,
    DataType.UINT32: 0xFFFFFFFF,
    DataType.INT32: -0x80000000,
    DataType.UINT64: 0xFFFFFFFFFFFFFFFF,
    DataType.INT64: -0x8000000000000000,
    DataType.FLOAT32: math.nan,
    DataType.ACC32: 0,
    DataType.BITFIELD32: 0xFFFFFFFF,
    DataType.ENUM16: 0xFFFF,
    DataType.SUNSSF: -0x8000,
    DataType.PAD: 0,
}

_SIGNED: Final = frozenset({DataType.INT16, DataType.INT32, DataType.INT64, DataType.SUNSSF})

type WordOrder = Literal["msw-first", "lsw-first"]
"""Where a value wider than one register keeps its most significant register."""


@dataclass(frozen=True, slots=True)
class Encoding:
    """How a profile puts values into registers: its word order and, per type,
    the value read for "not there" (the types it does not name keep SunSpec's)."""

    word_order: WordOrder = "msw-first"
    sentinels: tuple[tuple[DataType, int], ...] = ()
    """(type, value) pairs: hashable, so maps built from one profile compare equal."""

    def sentinel(self, kind: DataType) -> int | float | None:
        """The value that means "not there" for ``kind``."""
        for named, value in self.sentinels:  # a handful at most, often none
            if named is kind:
                return value
        return NOT_IMPLEMENTED.get(kind)


#: SunSpec's encoding: most significant register first, its own sentinels.
SUNSPEC_ENCODING: Final = Encoding()


@dataclass(frozen=True, slots=True)
class Point:
    """One register point of a model or block, at an offset from its start."""

    name: str
    type: DataType
    offset: int
    size: int
    unit: str = ""
    scale: int | str | None = None
    """Power of ten, or the name of the scale-factor point in the same model."""
    access: str = "R"
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    role: str | None = None
    """What the value is to the client (``kwh_delivered``, ``serial``…), or None."""
    default: float | None = None
    """What the local meter serves for a point it has no value for (a fixed
    scale factor of a profile that is not SunSpec's)."""
    point: int | None = None
    """The 1-based meter point a vendor model's per-point field is of."""


@dataclass(frozen=True, slots=True)
class Model:
    """A model definition: its ID and points (the header ID, L included)."""

    model_id: int
    name: str
    points: tuple[Point, ...]

    @property
    def length(self) -> int:
        """L: data registers after the two-register header."""
        return max(p.offset + p.size for p in self.points) - 2

    def point(self, name: str) -> Point:
        """A point by name."""
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(f"model {self.model_id} has no point {name!r}")


# -- encoding -----------------------------------------------------------------------------


def _ordered(words: Sequence[int], encoding: Encoding) -> Sequence[int]:
    """Registers in most-significant-first order, from the profile's order (and
    back); SunSpec's order is the words as they are (no copy: a poll decodes
    every field through here)."""
    return words if encoding.word_order == "msw-first" else words[::-1]


def _in_order(words: list[int], encoding: Encoding) -> list[int]:
    """Registers most significant first, put in the profile's order."""
    return words if encoding.word_order == "msw-first" else words[::-1]


def encode(
    kind: DataType, value: Any, size: int = 1, encoding: Encoding = SUNSPEC_ENCODING
) -> list[int]:
    """Registers for a value (None or NaN: the type's sentinel)."""
    if kind is DataType.STRING:
        raw = (value or "").encode("ascii", "replace")[: size * 2].ljust(size * 2, b"\0")
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, size * 2, 2)]
    if kind is DataType.EUI48:
        mac = value or "FF:FF:FF:FF:FF:FF"
        data = bytes(int(part, 16) for part in mac.replace("-", ":").split(":"))
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, 6, 2)]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = encoding.sentinel(kind)
        if kind is DataType.FLOAT32 and (value is None or math.isnan(value)):
            return _in_order([0x7FC0, 0x0000], encoding)
    if kind is DataType.FLOAT32:
        hi, lo = struct.unpack(">HH", struct.pack(">f", float(value)))
        return _in_order([hi, lo], encoding)
    words = SIZES[kind]
    bits = 16 * words
    number = int(value)
    signed = kind in _SIGNED
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not low <= number <= high:
        raise OverflowError(f"{number} does not fit {kind.value}")
    number &= (1 << bits) - 1
    return _in_order([(number >> (16 * (words - 1 - i))) & 0xFFFF for i in range(words)], encoding)


def decode(kind: DataType, words: Sequence[int], encoding: Encoding = SUNSPEC_ENCODING) -> Any:
    """A value from its registers (None for the type's sentinel)."""
    if kind is DataType.STRING:
        raw = b"".join(w.to_bytes(2, "big") for w in words)
        text = raw.split(b"\0", 1)[0].decode("ascii", "replace")
        return text or None
    if kind is DataType.EUI48:
        data = b"".join(w.to_bytes(2, "big") for w in words)
        return None if data == b"\xff" * 6 else ":".join(f"{b:02X}" for b in data)
    words = _ordered(words, encoding)
    if kind is DataType.FLOAT32:
        value = struct.unpack(">f", struct.pack(">HH", words[0], words[1]))[0]
        return None if math.isnan(value) else float(value)
    number = 0
    for w in words:
        number = (number << 16) | w
    bits = 16 * len(words)
    if kind in _SIGNED and number >> (bits - 1):
        number -= 1 << bits
    if kind is not DataType.PAD and number == encoding.sentinel(kind):
        return None
    return number


__all__ = [
    "NOT_IMPLEMENTED",
    "SIZES",
    "SUNSPEC_ENCODING",
    "DataType",
    "Encoding",
    "Model",
    "Point",
    "WordOrder",
    "decode",
    "encode",
]
