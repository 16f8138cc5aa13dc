"""Serving a local meter's registers over Modbus.

:class:`MeterBackend` answers the protocol handler of
:mod:`s8000_engine.modbus` from the register image the local meter renders
after every metered second (a consistent snapshot: a 32-bit value and its
scale factor always come from the same second).

A write is checked against the register map's declared access (else 02)
and, whole fields decoded, handed on:

* the configuration registers (:data:`CONFIGURATION`: CT primaries, pulse
  scales, recording interval, demand) are a change of the meter's
  configuration, like one made in the web page: :attr:`MeterBackend.configure`
  hands them to the meter, which validates them with the configuration's own
  validators, stores them with a change-log entry (origin ``modbus``) and
  applies them between two seconds (see :mod:`s8000_engine.local.changes`)
  before the write is answered.  The validators' refusal is exception 03
  (ILLEGAL DATA VALUE); their message is logged;
* the meter clock and the commands (:data:`COMMANDS`), which are not
  configuration, are checked against the map's declared range (else 03) and
  queued (:attr:`MeterBackend.writes`) for the meter to apply before its
  next second.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

from s8000_engine import __version__
from s8000_engine.exceptions import ConfigError
from s8000_engine.modbus.server import Backend, Exc, ModbusError
from s8000_engine.protocol.intervals import encode_row, row_words, rows_per_file
from s8000_engine.protocol.profile import convert
from s8000_engine.protocol.regmap import Field, RegisterMap, builtin_field
from s8000_engine.protocol.sunspec import Command, DataType
from s8000_engine.storage.store import IntervalRecord

_LOGGER = logging.getLogger(__name__)

#: Writable registers that are the meter's configuration: their values are
#: for the configuration's validators to judge, in the meter.
CONFIGURATION: Final = frozenset(
    {"s8000.P1Scale", "s8000.P2Scale", "s8000.RecInt"}
    | {"s8000.DmdType", "s8000.DmdInt", "s8000.DmdSub"}
    | {f"s8000.Pt{n}CT" for n in range(1, 25)}
)
#: Writable registers that are not configuration: the clock and the commands.
COMMANDS: Final = frozenset({"s8000.UTC", "s8000.Cmd"})
#: Writable registers the running local meter applies.
APPLIED: Final = CONFIGURATION | COMMANDS
#: How long a write waits for the meter to take a configuration change (it
#: does between two seconds, at once when idle).
CONFIGURE_TIMEOUT_S: Final = 5.0


def _check_range(f: Field, value: Any) -> None:
    """A value in the field's declared range (else 03)."""
    low, high = f.minimum, f.maximum
    if f.type is DataType.FLOAT32 and low is not None:
        low *= 1 - 1e-6  # the float32 nearest to a decimal minimum may fall below it
    if low is not None and high is not None and not low <= value <= high:
        raise ModbusError(Exc.ILLEGAL_VALUE)
    if f.role == "command" and value not in {c.value for c in Command}:
        raise ModbusError(Exc.ILLEGAL_VALUE)


def _writable(regmap: RegisterMap) -> dict[int, Field]:
    """Each writable register's field."""
    writable: dict[int, Field] = {}
    for f in regmap.fields:
        if f.access == "RW":
            for offset in range(f.size):
                writable[f.address + offset] = f
    return writable


@dataclass(frozen=True, slots=True)
class Write:
    """A validated write, for the meter to apply: a field and its new value."""

    name: str
    value: Any


type Configure = Callable[[tuple[Write, ...]], Future[Any]]
"""Hands a request's configuration writes to the meter: the future of the
change, failing with ConfigError when the configuration's validators refuse it."""


class MeterBackend(Backend):
    """The register image of one meter, and its writable registers."""

    def __init__(
        self,
        regmap: RegisterMap,
        *,
        model: str,
        serial: str,
        firmware: str,
        history: Callable[[float, float], list[IntervalRecord]] | None = None,
        interval_s: int = 900,
    ) -> None:
        self.regmap = regmap
        self.history = history
        """Intervals starting in [start, end): the interval memory, for function 20."""
        self.interval_s = interval_s
        self.points = regmap.points
        self.image: list[int] = [0] * (regmap.end - regmap.base)
        self.model = model
        self.serial = serial
        self.firmware = firmware
        self.writes: queue.SimpleQueue[Write] = queue.SimpleQueue()
        """Clock and command writes, for the meter to apply before its next second."""
        self.configure: Configure | None = None
        """The meter's way in for configuration writes (none: a register image
        without a meter behind it, whose configuration cannot change)."""
        self._writable = _writable(regmap)

    def update(self, image: list[int]) -> None:
        """Serve a new image (one assignment: readers see all of it or none)."""
        self.image = image

    def set_map(self, regmap: RegisterMap, image: list[int]) -> None:
        """Serve another register map (the meter was reconfigured: other points or
        services) with its first image; writes are checked against the new map."""
        if len(image) != regmap.end - regmap.base:
            raise ValueError(
                f"the image has {len(image)} registers, the map {regmap.end - regmap.base}"
            )
        writable = _writable(regmap)
        points = regmap.points
        self.image = image
        self._writable = writable
        self.points = points
        self.regmap = regmap

    async def read(self, address: int, count: int) -> list[int]:
        """Registers of the current image."""
        base = self.regmap.base
        image = self.image  # bounds from the image itself: the map may be swapped
        if address < base or address + count > base + len(image):
            raise ModbusError(Exc.ILLEGAL_ADDRESS)
        return image[address - base : address - base + count]

    async def write(self, address: int, values: Sequence[int]) -> None:
        """Check a write against the map; hand its configuration registers to
        the meter and queue its clock and commands."""
        end = address + len(values)
        fields: list[Field] = []
        for a in range(address, end):
            f = self._writable.get(a)
            if f is None:
                raise ModbusError(Exc.ILLEGAL_ADDRESS)
            if not fields or fields[-1] is not f:
                fields.append(f)
        if fields[0].address < address or fields[-1].address + fields[-1].size > end:
            raise ModbusError(Exc.ILLEGAL_ADDRESS)  # part of a multi-register value
        # Every value is checked (03) before any effect is (04), as the
        # specification orders them; nothing is applied unless all pass.
        decoded: list[Write] = []
        for f in fields:
            start = f.address - address
            value = f.decode(list(values[start : start + f.size]))
            if value is None:
                raise ModbusError(Exc.ILLEGAL_VALUE)
            # The meter applies writes by the built-in map's names and units,
            # whichever profile it serves.
            known = builtin_field(f)
            if known is None:
                raise ModbusError(Exc.DEVICE_FAILURE)
            if known.name not in CONFIGURATION:
                # The configuration's values are judged by its validators (in
                # the meter, below), the same ones as the web page's changes.
                _check_range(f, value)
            if isinstance(f.scale, int) and f.scale:
                value = value * 10**f.scale
            if f.unit != known.unit:
                value = convert(value, f.unit, known.unit)
            decoded.append(Write(known.name, value))
        for write in decoded:
            if write.name not in APPLIED:
                # Declared writable in the map, not changeable on a running
                # meter yet: refused, nothing changes.
                raise ModbusError(Exc.DEVICE_FAILURE)
        configuration = tuple(w for w in decoded if w.name in CONFIGURATION)
        if configuration:
            await self._configure(configuration)
        for write in decoded:
            if write.name in COMMANDS:
                self.writes.put(write)

    async def _configure(self, writes: tuple[Write, ...]) -> None:
        """The meter's change of its configuration, done (or refused) before
        the write is answered."""
        if self.configure is None:
            raise ModbusError(Exc.DEVICE_FAILURE)
        future = self.configure(writes)
        waiter = asyncio.wrap_future(future)
        done, _ = await asyncio.wait({waiter}, timeout=CONFIGURE_TIMEOUT_S)
        if not done and future.cancel():
            _LOGGER.warning("Modbus write of %s not applied: the meter is not metering",
                            ", ".join(w.name for w in writes))  # fmt: skip
            raise ModbusError(Exc.DEVICE_FAILURE)
        try:
            await waiter  # under way when the time ran out: its outcome is the answer
        except ConfigError as error:
            _LOGGER.info("Modbus write refused: %s", error)
            raise ModbusError(Exc.ILLEGAL_VALUE) from None
        except Exception:
            _LOGGER.exception("Modbus write of %s failed", ", ".join(w.name for w in writes))
            raise ModbusError(Exc.DEVICE_FAILURE) from None

    async def read_file(self, file: int, record: int, length: int) -> list[int]:
        """Rows of the interval memory: file ``1 + (n // R) % 65535``, record
        ``(n % R) × W`` for interval ``n = start // length`` (see registers.md)."""
        if self.history is None:
            raise ModbusError(Exc.ILLEGAL_ADDRESS)
        width = row_words(self.points)
        per_file = rows_per_file(self.points)
        if record + length > per_file * width:
            raise ModbusError(Exc.ILLEGAL_ADDRESS)
        now = self._utc()
        newest = now // self.interval_s
        # The latest interval index n <= newest whose file is ``file``.
        cycle = 65535 * per_file
        base = (file - 1) * per_file
        first_n = base + ((newest - base) // cycle) * cycle if newest >= base else base
        first_row, last_row = record // width, (record + length - 1) // width
        start = (first_n + first_row) * self.interval_s
        end = (first_n + last_row + 1) * self.interval_s
        stored = {r.start: r for r in self.history(start, end)}
        words: list[int] = []
        for row in range(first_row, last_row + 1):
            words += encode_row(stored.get((first_n + row) * self.interval_s), self.points)
        offset = record - first_row * width
        return words[offset : offset + length]

    def _utc(self) -> int:
        """The meter clock as served."""
        f = self.regmap.role("utc")
        if f is None:
            return 0
        address = f.address - self.regmap.base
        value = f.decode(self.image[address : address + f.size])
        return int(value or 0)

    def identification(self) -> dict[int, bytes]:
        """Objects 0–6 of function 43/14."""
        return {
            0: b"Leviton",
            1: self.model.encode(),
            2: self.firmware.encode(),
            3: b"https://github.com/s8000-project/s8000",
            4: b"Series 8000 multi-point submeter",
            5: self.model.encode(),
            6: f"s8000-engine {__version__}".encode(),
        }

    def server_id(self) -> bytes:
        """Function 17: model and serial number."""
        return f"{self.model} {self.serial}".encode()
