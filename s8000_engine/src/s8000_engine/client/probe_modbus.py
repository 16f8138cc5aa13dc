"""The probe's Modbus side: identification, the SunSpec walk and the register sweep of a unit.

:class:`Session` asks each unit id, through :class:`Paced` (the reading
functions only, one request at a time, paced and counted against the unit's
budget): function 43/14 and function 17; the SunSpec marker at each of
:data:`SUNSPEC_BASES`, walking the model chain where it is found, and the
Common model and the S8000 vendor model when they are in it; then (unless
``quick``) the readable holding and input registers of the windows
(:class:`ProbeOptions`) and the SunSpec chain, narrowing down where a block
is refused.  What it finds goes into the :class:`~s8000_engine.client.probe_report.ProbeReport`
as it comes.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, cast

from modbus_connection import (
    ExceptionCode,
    ModbusConnectionError,
    ModbusError,
    ModbusExceptionError,
    ModbusTimeoutError,
    ModbusUnit,
)

from s8000_engine.client.client import S8000Client
from s8000_engine.client.probe_report import (
    Failure,
    Kind,
    ProbeReport,
    ProfileCheck,
    RegisterRange,
    SunSpecFinding,
    UnitProbe,
    Unreadable,
)
from s8000_engine.exceptions import S8000Error
from s8000_engine.protocol.profile import Profile, builtin_profile
from s8000_engine.protocol.sunspec import (
    BASE_ADDRESS,
    COMMON,
    END_MODEL,
    SUNSPEC_MARKER,
    VENDOR_MODEL_ID,
    DataType,
    Model,
    decode,
    vendor_model,
)

#: Where a SunSpec map may start: the built-in profile's base (40000) first,
#: then SunSpec's other two (0 and 50000).
SUNSPEC_BASES: Final = (BASE_ADDRESS, *sorted({0, 40000, 50000} - {BASE_ADDRESS}))
#: The register windows swept in both tables, besides the SunSpec chain found:
#: where Leviton's sister meters keep their registers (integers from 1,
#: configuration from 129, floats from 257; the 7000's configuration around
#: 2200–2700; the firmware register 7001) and where SunSpec maps start.
DEFAULT_WINDOWS: Final = (
    (0, 1000), (2000, 2800), (3000, 3200), (4000, 4200), (7000, 7100),
    (40000, 40200), (50000, 50200),
)  # fmt: skip
#: The largest block the sweep reads at once: the suggestion for an unknown
#: meter (docs/real-meters.md), well below the 125 a read may carry.
DEFAULT_BLOCK: Final = 60
#: The smallest block the sweep shrinks to after exception 03 (a meter that
#: limits how many registers one read may carry).
MIN_BLOCK: Final = 8
#: Requests per unit id, at most.
DEFAULT_MAX_REQUESTS: Final = 1000
#: Seconds for the whole probe.
DEFAULT_TIMEOUT_TOTAL: Final = 180.0
#: Seconds between two requests on an RS-485 bus: room for the other masters'
#: traffic and slow devices.
DEFAULT_RTU_DELAY: Final = 0.05
#: Consecutive requests without an answer after which a unit id is given up.
SILENT_AFTER: Final = 3

_END_MODEL_ID: Final = END_MODEL[0]
_MAX_MODELS: Final = 100
#: Exception codes a gateway answers for a unit id with no device behind it.
_GATEWAY_CODES: Final = (
    ExceptionCode.GATEWAY_PATH_UNAVAILABLE,
    ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND,
)
_VENDOR_FIXED: Final = vendor_model(0)

type Progress = Callable[[int, int, str], None]
"""``progress(done, total, what)``: after every request; ``total`` grows as the probe plans more."""


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """How much a probe asks, and how fast."""

    quick: bool = False
    """Identification, SunSpec markers and the web server's ``/`` only: no sweep."""
    timeout_total: float = DEFAULT_TIMEOUT_TOTAL
    """Seconds for the whole probe; then it stops and says it was cut short."""
    delay: float = 0.0
    """Seconds between two requests (a shared RS-485 bus wants some)."""
    block: int = DEFAULT_BLOCK
    """Registers per read at most (1–125)."""
    max_requests: int = DEFAULT_MAX_REQUESTS
    """Requests per unit id at most."""
    windows: tuple[tuple[int, int], ...] = DEFAULT_WINDOWS
    """Register ranges [start, end) swept in both tables, besides the SunSpec chain."""
    profiles: tuple[Profile, ...] | None = None
    """The profiles the client identifies and reads each answering unit through
    (:class:`~s8000_engine.client.probe_report.ProfileCheck`).  None: the
    built-in one, in a full probe only; a tuple: those, quick or not."""

    def __post_init__(self) -> None:
        if not self.timeout_total > 0:
            raise ValueError("timeout_total: must be positive")
        if not 1 <= self.block <= 125:
            raise ValueError(f"block: {self.block} is not 1–125 registers")
        if self.max_requests < 1:
            raise ValueError("max_requests: at least one request")
        if self.delay < 0:
            raise ValueError("delay: must not be negative")
        for start, end in self.windows:
            if not 0 <= start < end <= 0x10000:
                raise ValueError(f"register window {start}–{end - 1} is not within 0–65535")

    def as_dict(self) -> dict[str, Any]:
        """The options as JSON, for the dump."""
        return {
            "quick": self.quick,
            "timeout_total": self.timeout_total,
            "delay": self.delay,
            "block": self.block,
            "max_requests": self.max_requests,
            "windows": [list(w) for w in self.windows],
            "profiles": None
            if self.profiles is None
            else [{"profile": p.name, "source": profile_source(p)} for p in self.profiles],
        }

    def checked_profiles(self) -> tuple[Profile, ...]:
        """The profiles a probe with these options checks."""
        if self.profiles is not None:
            return self.profiles
        return () if self.quick else (builtin_profile(),)


def profile_source(profile: Profile) -> str:
    """``built-in``, or the profile file's name: not its path, which may name
    the owner's account."""
    return profile.source if profile.source == "built-in" else Path(profile.source).name


#: What a configuration flow asks: identification, SunSpec markers, ``/``; 30 s at most.
QUICK: Final = ProbeOptions(quick=True, timeout_total=30.0)


class BudgetSpentError(Exception):
    """A unit id's request budget is spent."""


class SilentError(Exception):
    """A unit id stopped answering."""


def _failure(err: BaseException) -> Failure:
    if isinstance(err, ModbusExceptionError):
        code = None if err.exception_code is None else int(err.exception_code)
        return Failure("exception", str(err), code)
    if isinstance(err, ModbusTimeoutError | TimeoutError):
        return Failure("timeout", str(err) or "no answer in time")
    if isinstance(err, ModbusConnectionError | OSError):
        return Failure("link", str(err) or type(err).__name__)
    return Failure("protocol", str(err) or type(err).__name__)


class Paced:
    """A unit as the probe speaks to it: only the reading functions, one request
    at a time, ``delay`` seconds apart, counted against the unit's budget,
    each one a step of the progress.  What it answers updates ``unit``."""

    def __init__(
        self, unit: ModbusUnit, probe: UnitProbe, session: Session, *, budget: int
    ) -> None:
        self._unit = unit
        self._probe = probe
        self._session = session
        self._budget = budget
        self._last: float | None = None
        self._silent = 0

    async def _call[T](self, what: str, request: Callable[[], Awaitable[T]]) -> T:
        if self._probe.requests >= self._budget:
            raise BudgetSpentError
        delay = self._session.delay
        if delay and self._last is not None:
            await asyncio.sleep(max(0.0, self._last + delay - time.monotonic()))
        self._probe.requests += 1
        try:
            result = await request()
        except ModbusExceptionError as err:
            if err.exception_code in _GATEWAY_CODES:
                self._count_silence()
            else:
                self._probe.answered, self._silent = True, 0
            raise
        except (ModbusError, OSError, TimeoutError):
            self._count_silence()
            raise
        else:
            self._probe.answered, self._silent = True, 0
            return result
        finally:
            self._last = time.monotonic()
            self._session.step(f"unit {self._probe.unit_id}: {what}")

    def _count_silence(self) -> None:
        self._silent += 1

    def check_silence(self) -> None:
        """Give up a unit id after :data:`SILENT_AFTER` requests in a row got nothing."""
        if self._silent >= SILENT_AFTER:
            raise SilentError

    async def read_holding_registers(self, address: int, count: int) -> list[int]:
        return await self._call(
            f"holding {address}+{count}", lambda: self._unit.read_holding_registers(address, count)
        )

    async def read_input_registers(self, address: int, count: int) -> list[int]:
        return await self._call(
            f"input {address}+{count}", lambda: self._unit.read_input_registers(address, count)
        )

    async def read_device_identification(self) -> dict[int, bytes]:
        return await self._call("function 43", self._unit.read_device_identification)

    async def report_server_id(self) -> bytes:
        return await self._call("function 17", self._unit.report_server_id)

    def __getattr__(self, name: str) -> Any:
        # What S8000Client.identify asks beyond reads (connected, ...); never a write:
        # the client's identification only reads, and the probe calls nothing else.
        if name.startswith(("write", "mask_write", "read_write")):
            raise AttributeError(f"the probe never writes ({name})")
        return getattr(self._unit, name)


async def attempt[T](request: Awaitable[T]) -> T | Failure:
    try:
        return await request
    except (ModbusError, OSError, TimeoutError) as err:
        return _failure(err)


class Session:
    """One probe: its options, its progress and its report."""

    def __init__(
        self, report: ProbeReport, options: ProbeOptions, progress: Progress | None
    ) -> None:
        self.report = report
        self.quick = options.quick
        self.delay = options.delay
        self.block = options.block
        self.max_requests = options.max_requests
        self.windows = options.windows
        self.profiles = options.checked_profiles()
        self._progress = progress
        self.done = 0
        self.total = 0

    def plan(self, steps: int) -> None:
        self.total += steps

    def step(self, what: str) -> None:
        self.done += 1
        self.total = max(self.total, self.done)
        if self._progress is not None:
            self._progress(self.done, self.total, what)

    async def unit(self, unit: ModbusUnit, unit_id: int) -> None:
        """Probe one unit id; its findings go into the report as they come."""
        probe = UnitProbe(unit_id)
        self.report.units.append(probe)
        paced = Paced(unit, probe, self, budget=self.max_requests)
        self.plan(2 + len(SUNSPEC_BASES))
        try:
            await self._identify(paced, probe)
            if probe.answered:
                for profile in self.profiles:
                    probe.profiles.append(await self._check_profile(paced, probe, profile))
                    paced.check_silence()
            if not self.quick:
                await _Sweep(self, paced, probe).run()
        except BudgetSpentError:
            probe.stopped = f"the budget of {self.max_requests} requests was spent"
        except SilentError:
            probe.stopped = f"no answer to {SILENT_AFTER} requests in a row: " + (
                "it stopped answering" if probe.answered else "nothing at this unit id"
            )

    async def _identify(self, paced: Paced, probe: UnitProbe) -> None:
        objects = await attempt(paced.read_device_identification())
        if isinstance(objects, Failure):
            probe.device_identification_error = objects
        else:
            probe.device_identification = dict(objects)
        # modbus-connection's report_server_id gives, with tmodbus, only the
        # bytes before the first 0x00 or 0xFF (tmodbus takes that byte for the
        # run indicator and modbus-connection 4.12 drops what follows it, where
        # Leviton's 4000-R puts its text after ID byte 247); with pymodbus
        # every byte after the byte count, the run indicator included.  Neither
        # has a raw request that would send function 17 and keep every byte
        # through the unit handle a shared link hands out, so the probe keeps
        # what it is given; the dump names the backend.
        server_id = await attempt(paced.report_server_id())
        if isinstance(server_id, Failure):
            probe.server_id_error = server_id
        else:
            probe.server_id = bytes(server_id)
            # The text is the device's own; a serial number in it is learnt
            # only here when no register says it (a quick probe, a device
            # without SunSpec): a run of six or more digits is taken for one.
            text = probe.server_id.decode("ascii", "replace")
            for digits in re.findall(r"(?<![0-9A-Za-z])[0-9]{6,}(?![0-9A-Za-z])", text):
                self.report.secret(serial=digits)
        for base in SUNSPEC_BASES:
            paced.check_silence()
            probe.sunspec.append(await self._sunspec(paced, probe, base))
        paced.check_silence()

    async def _sunspec(self, paced: Paced, probe: UnitProbe, base: int) -> SunSpecFinding:
        """The marker at ``base`` and the chain after it.  Walked here rather than
        with modbus-connection's ``sunspec.scan``, which keeps nothing of a chain
        that breaks off: what a broken chain holds is what an owner needs to send."""
        finding = SunSpecFinding(base)
        marker = await attempt(paced.read_holding_registers(base, 2))
        if isinstance(marker, Failure):
            finding.error = marker
            return finding
        if tuple(marker) != SUNSPEC_MARKER:
            return finding
        finding.marker = True
        address = base + 2
        for _ in range(_MAX_MODELS):
            self.plan(1)
            header = await attempt(paced.read_holding_registers(address, 2))
            if isinstance(header, Failure):
                finding.error = header
                return finding
            model_id, length = header
            if model_id == _END_MODEL_ID:
                finding.ended = True
                break
            finding.models.append((model_id, address, length))
            address += length + 2
        await self._known_models(paced, probe, finding)
        return finding

    async def _known_models(self, paced: Paced, probe: UnitProbe, finding: SunSpecFinding) -> None:
        """The Common model's and the S8000 vendor model's fixed points."""
        for model_id, address, length in finding.models:
            if model_id == COMMON.model_id and finding.common is None:
                finding.common = await self._points(paced, finding, COMMON, address, length)
                self.report.secret(serial=finding.common_value("serial"))
            elif model_id == VENDOR_MODEL_ID and finding.vendor is None:
                finding.vendor = await self._points(paced, finding, _VENDOR_FIXED, address, length)
                self.report.secret(mac=finding.vendor_value("mac"))

    async def _check_profile(
        self, paced: Paced, probe: UnitProbe, profile: Profile
    ) -> ProfileCheck:
        """Whether the client (the integration's) identifies the unit through
        ``profile``, and what one read through it says; read-only, as the
        client's identification and reads are (:class:`Paced` refuses writes).

        A SunSpec profile is tried at the base where the walk found a marker,
        and not at all when the walk found none where the profile's map starts."""
        check = ProfileCheck(profile.name, profile_source(profile))
        base: int | None = None
        if profile.sunspec is not None:
            found = probe.found_sunspec
            if found is not None:
                base = found.base
            elif profile.sunspec.base in SUNSPEC_BASES:
                marker = next(s for s in probe.sunspec if s.base == profile.sunspec.base)
                check.error = f"no SunSpec marker at {profile.sunspec.base}" + (
                    "" if marker.error is None else f" ({marker.error.message})"
                )
                return check
        self.plan(4)
        client = S8000Client(cast("ModbusUnit", paced), base=base, profile=profile)
        try:
            identity = await client.identify()
        except S8000Error as err:
            check.error = str(err)
            return check
        except (ValueError, LookupError, TypeError, ArithmeticError) as err:
            # A candidate profile read over a device it does not fit: the probe
            # goes on, the dump says what broke.
            check.error = f"the client failed: {type(err).__name__}: {err}"
            return check
        check.identify(identity)
        self.report.secret(serial=identity.serial, mac=identity.mac)
        self.plan(4)
        try:
            check.keep(await client.read())
        except S8000Error as err:
            check.error = f"read: {err}"
        except (ValueError, LookupError, TypeError, ArithmeticError) as err:
            check.error = f"read: the client failed: {type(err).__name__}: {err}"
        return check

    async def _points(
        self, paced: Paced, finding: SunSpecFinding, model: Model, address: int, length: int
    ) -> dict[str, Any] | None:
        self.plan(1)
        count = min(length + 2, model.length + 2, 125)
        words = await attempt(paced.read_holding_registers(address, count))
        if isinstance(words, Failure):
            finding.error = words
            return None
        values: dict[str, Any] = {}
        for p in model.points:
            if (
                p.offset >= 2  # after the model's header (ID, L)
                and p.type is not DataType.PAD
                and p.offset + p.size <= len(words)
            ):
                values[p.name] = decode(p.type, words[p.offset : p.offset + p.size])
        return values


def _merge(windows: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class _Sweep:
    """The readable registers of one unit, block by block.

    A block refused (02 illegal address, 04 device failure, or 03 again at the
    smallest block) is read again as two halves, unless the block before it
    read; where something readable borders something refused, the border is
    found by halving (a handful of requests), so a map's edges come out to
    the register.  A meter that refuses big blocks with 03 gets smaller ones
    from then on.  A refused block costs three requests; an island narrower
    than half a block that lies inside one is not looked for (that would cost
    a request per register): ``windows`` and ``block`` look closer."""

    def __init__(self, session: Session, paced: Paced, probe: UnitProbe) -> None:
        self.session = session
        self.paced = paced
        self.probe = probe
        self.block = session.block
        self.words: dict[Kind, dict[int, int]] = {"holding": {}, "input": {}}
        # By register: the searches for a border may refuse a register twice, or
        # read one a coarser request refused; what was read wins.
        self.refused: dict[Kind, dict[int, Failure]] = {"holding": {}, "input": {}}

    def _windows(self, kind: Kind) -> list[tuple[int, int]]:
        windows = list(self.session.windows)
        if kind == "holding":
            for s in self.probe.sunspec:
                if s.marker:
                    last = s.models[-1] if s.models else (0, s.base, 0)
                    windows.append((s.base, min(0x10000, last[1] + last[2] + 4)))
        return _merge(windows)

    async def run(self) -> None:
        kinds: tuple[Kind, ...] = ("holding", "input")
        plans = {kind: self._windows(kind) for kind in kinds}
        self.session.plan(sum(-(-(e - s) // self.block) for w in plans.values() for s, e in w))
        try:
            for kind in kinds:
                await self._table(kind, plans[kind])
        finally:
            self._settle()

    def _settle(self) -> None:
        """What was read and refused, as ranges of consecutive registers."""
        for kind, words in self.words.items():
            start: int | None = None
            for address in sorted(words):
                if start is None or address != start + len(self.probe.ranges[-1].words):
                    self.probe.ranges.append(RegisterRange(kind, address, []))
                    start = address
                self.probe.ranges[-1].words.append(words[address])
        for kind, refused in self.refused.items():
            for address in sorted(set(refused) - set(self.words[kind])):
                failure = refused[address]
                last = self.probe.unreadable[-1] if self.probe.unreadable else None
                if (
                    last is not None
                    and (last.kind, last.start + last.count) == (kind, address)
                    and (last.failure.kind, last.failure.code) == (failure.kind, failure.code)
                ):
                    last.count += 1
                else:
                    self.probe.unreadable.append(Unreadable(kind, address, 1, failure))

    async def _read(self, kind: Kind, address: int, count: int) -> list[int] | Failure:
        self.paced.check_silence()
        read = (
            self.paced.read_holding_registers
            if kind == "holding"
            else self.paced.read_input_registers
        )
        words = await attempt(read(address, count))
        if not isinstance(words, Failure):
            if len(words) != count:
                return Failure("protocol", f"{len(words)} words answered, {count} asked")
            self.words[kind].update(zip(range(address, address + count), words, strict=True))
        return words

    async def _table(self, kind: Kind, windows: list[tuple[int, int]]) -> None:
        for start, end in windows:
            readable_before = False
            pending: tuple[int, int] | None = None  # a refused block: its right end may read
            address = start
            while address < end:
                count = min(self.block, end - address)
                result = await self._read(kind, address, count)
                if not isinstance(result, Failure):
                    if pending is not None:
                        await self._edge(kind, *pending, readable_at="right")
                    readable_before, pending = True, None
                    address += count
                    continue
                if result.code == ExceptionCode.ILLEGAL_FUNCTION:
                    self.probe.unsupported.append(kind)
                    return
                if result.code == ExceptionCode.ILLEGAL_DATA_VALUE and self.block > MIN_BLOCK:
                    # Too many registers for this meter, it seems: smaller blocks from now on.
                    self.block = max(MIN_BLOCK, self.block // 2)
                    self.session.plan(1)
                    continue
                self._refuse(kind, address, count, result)
                if result.kind != "exception":
                    pending, readable_before = None, False  # silence: nothing to narrow down
                elif readable_before:
                    pending = await self._edge(kind, address, count, readable_at="left")
                    readable_before = False
                else:
                    pending, readable_before = await self._halves(kind, address, count)
                address += count

    async def _halves(
        self, kind: Kind, address: int, count: int
    ) -> tuple[tuple[int, int] | None, bool]:
        """A refused block with no readable block before it, read as two halves
        (a map may begin inside it); the border is looked for next to a half
        that reads.  Returns the part still refused at its right end (if any)
        and whether the block ends readable."""
        if count < 2:
            return (address, count), False
        half = count // 2
        left = await self._read(kind, address, half)
        right = await self._read(kind, address + half, count - half)
        if isinstance(right, Failure):
            if isinstance(left, Failure) or right.kind != "exception":
                return (address + half, count - half), False
            return await self._edge(kind, address + half, count - half, readable_at="left"), False
        if isinstance(left, Failure) and left.kind == "exception":
            await self._edge(kind, address, half, readable_at="right")
        return None, True

    def _refuse(self, kind: Kind, address: int, count: int, failure: Failure) -> None:
        refused = self.refused[kind]
        for a in range(address, address + count):
            refused.setdefault(a, failure)

    async def _edge(
        self, kind: Kind, address: int, count: int, *, readable_at: Literal["left", "right"]
    ) -> tuple[int, int]:
        """The readable end of a refused block (already marked refused) next to a
        readable one, by halving: each step reads the half on the readable side;
        if it reads, the border is in the other half, else in this one.  Returns
        the part still refused beyond the border (address, count)."""
        start, end = address, address + count
        while count > 1:
            half = count // 2
            probe_at = address if readable_at == "left" else address + count - half
            result = await self._read(kind, probe_at, half)
            if isinstance(result, Failure) and result.kind != "exception":
                break  # silence or a broken link: not a border to look for
            if not isinstance(result, Failure):
                if readable_at == "left":
                    address += half
                count -= half
            elif readable_at == "left":
                count = half
            else:
                address, count = address + count - half, half
        if readable_at == "left":
            return address, end - address
        return start, address + count - start


__all__ = [
    "DEFAULT_BLOCK",
    "DEFAULT_MAX_REQUESTS",
    "DEFAULT_RTU_DELAY",
    "DEFAULT_TIMEOUT_TOTAL",
    "DEFAULT_WINDOWS",
    "MIN_BLOCK",
    "QUICK",
    "SILENT_AFTER",
    "SUNSPEC_BASES",
    "BudgetSpentError",
    "Paced",
    "ProbeOptions",
    "Progress",
    "Session",
    "SilentError",
    "attempt",
    "profile_source",
]
