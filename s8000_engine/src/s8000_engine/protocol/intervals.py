"""The interval memory's rows as function 20 (Read File Record) carries them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntFlag
from typing import Any, Final

from s8000_engine.protocol.sunspec import NOT_IMPLEMENTED, DataType, encode

# -- interval memory over function 20 -------------------------------------------------------


def row_words(points: int) -> int:
    """Words of one interval row: start (2), length, flags, covered, reserved,
    then per point four uint64 registers in mWh."""
    return 6 + 16 * points


def rows_per_file(points: int) -> int:
    """Whole rows in one file (a file holds records 0–9999)."""
    return 10000 // row_words(points)


def file_position(start: int, length: int, points: int) -> tuple[int, int]:
    """(file number, first record) of the row of the interval starting at ``start``."""
    index = start // length
    per_file = rows_per_file(points)
    return 1 + (index // per_file) % 65535, (index % per_file) * row_words(points)


def encode_row(record: Any, points: int) -> list[int]:
    """The words of one interval row (``record`` an IntervalRecord, or None)."""
    if record is None:
        return [0xFFFF, 0xFFFF] + [0] * (row_words(points) - 2)
    words = encode(DataType.UINT32, record.start)
    words += [record.length, int(record.flags), min(0xFFFF, round(record.covered)), 0]
    by_point = {p.point: p for p in record.points}
    for index in range(points):
        p = by_point.get(index)
        for value in p.registers if p is not None else (None, None, None, None):
            words += encode(DataType.UINT64, value)
    return words


#: The start word pair of a row where no interval is stored.
NO_INTERVAL: Final = 0xFFFFFFFF
#: A register of a row for a point the interval has no record of (SunSpec's
#: "not implemented" for a 64-bit register).
NO_RECORD: Final = NOT_IMPLEMENTED[DataType.UINT64]


class RowFlag(IntFlag):
    """Status flags of an interval record, as the meter keeps and serves them."""

    POWER_OFF = 1
    """The meter was not metering for part of the interval (outage, crash, start-up)."""
    CLOCK_SET = 2
    """The clock was stepped (set, or corrected by NTP) during the interval."""
    CONFIG_CHANGED = 4
    """The configuration changed during the interval."""


@dataclass(frozen=True, slots=True)
class IntervalRow:
    """One row of the interval memory as function 20 reads it (see :func:`decode_row`)."""

    start: int
    """UTC seconds since 1970, a multiple of ``length``."""
    length: int
    """Seconds."""
    flags: int
    """Bit 0 power off, bit 1 clock set, bit 2 configuration changed
    (:class:`RowFlag`)."""
    seconds: int
    """Seconds of the interval the meter was metering."""
    registers: tuple[tuple[int, int, int, int], ...]
    """Per point (in point order), the registers at the interval's end in mWh
    (mvarh): kWh delivered, kWh received, kvarh delivered, kvarh received.
    A point the interval has no record of reads :data:`NO_RECORD` (2^64 − 1)."""

    @property
    def end(self) -> int:
        """UTC seconds of the interval's end: where its registers were taken."""
        return self.start + self.length


def decode_row(words: Sequence[int], points: int) -> IntervalRow | None:
    """The interval of one row's words (:func:`encode_row`'s inverse); None for an empty row.

    Raises ValueError unless there are exactly :func:`row_words` words."""
    width = row_words(points)
    if len(words) != width:
        raise ValueError(f"an interval row of {points} points is {width} words, not {len(words)}")
    start = (words[0] << 16) | words[1]
    if start == NO_INTERVAL:
        return None
    registers = []
    for index in range(points):
        at = 6 + 16 * index
        values = [
            (words[k] << 48) | (words[k + 1] << 32) | (words[k + 2] << 16) | words[k + 3]
            for k in range(at, at + 16, 4)
        ]
        registers.append((values[0], values[1], values[2], values[3]))
    return IntervalRow(start, words[2], words[3], words[4], tuple(registers))
