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
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import json
import re
import socket
import string
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from html.parser import HTMLParser
from typing import Any, Final, Literal, cast
from urllib.parse import urljoin, urlsplit

from modbus_connection import (
    ExceptionCode,
    ModbusConnectionError,
    ModbusError,
    ModbusExceptionError,
    ModbusSerialParams,
    ModbusTcpParams,
    ModbusTimeoutError,
    ModbusUnit,
)

from s8000_engine import __version__
from s8000_engine.client.client import BackendName, S8000Client, connection_class
from s8000_engine.const import DEFAULT_BAUDRATE, DEFAULT_PARITY
from s8000_engine.exceptions import S8000ConnectionError, S8000Error
from s8000_engine.models import MODELS
from s8000_engine.protocol.sunspec import (
    COMMON,
    MANUFACTURER,
    SUNSPEC_MARKER,
    VENDOR_MODEL_ID,
    DataType,
    Model,
    decode,
    vendor_model,
)

#: What the dump says it is, and the version of its structure (docs/real-meters.md).
FORMAT: Final = "s8000-probe"
FORMAT_VERSION: Final = 1
#: Where a SunSpec map may start (SunSpec's three base addresses).
SUNSPEC_BASES: Final = (40000, 0, 50000)
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
#: Bounds of the web pages: bytes of a body kept, pages fetched, seconds each.
HTTP_BODY_LIMIT: Final = 65536
HTTP_MAX_PAGES: Final = 8
HTTP_TIMEOUT: Final = 5.0

_END_MODEL_ID: Final = 0xFFFF
_MAX_MODELS: Final = 100
#: Exception codes a gateway answers for a unit id with no device behind it.
_GATEWAY_CODES: Final = (
    ExceptionCode.GATEWAY_PATH_UNAVAILABLE,
    ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND,
)
_VENDOR_FIXED: Final = vendor_model(0)
_PRINTABLE: Final = frozenset(string.printable.encode()) - frozenset(b"\t\n\r\x0b\x0c")
#: Any MAC address written as text (a web page may show one the Modbus map did not).
_MAC_TEXT: Final = re.compile(
    r"(?<![0-9A-Fa-f])"
    r"(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f])"
)

type Kind = Literal["holding", "input"]
type Progress = Callable[[int, int, str], None]
"""``progress(done, total, what)``: after every request; ``total`` grows as the probe plans more."""


class Verdict(StrEnum):
    """What answers at the address, best first."""

    S8000_SUNSPEC = "s8000-sunspec"
    """The SunSpec map this engine reads: Common model by Leviton with an S8000
    model code, and the S8000 vendor model."""
    SUNSPEC_OTHER = "sunspec-other"
    """A SunSpec map, but not an S8000's."""
    LEVITON_MODBUS = "leviton-modbus"
    """Function 43 or 17 says Leviton, but no SunSpec map this engine knows."""
    MODBUS_UNKNOWN = "modbus-unknown"
    """Something answers Modbus; nothing says it is an S8000."""
    WEB_PAGES = "web-pages"
    """No Modbus, but the PowerHawk web pages answer."""
    WEB_OTHER = "web-other"
    """No Modbus; a web server answers, but not with the PowerHawk pages."""
    NOTHING = "nothing"
    """Nothing answers."""


_RANK: Final = tuple(Verdict)
_EXPLAINED: Final = {
    Verdict.S8000_SUNSPEC: "an S8000 with the SunSpec map this engine reads",
    Verdict.SUNSPEC_OTHER: "a SunSpec device, but not an S8000 this engine knows",
    Verdict.LEVITON_MODBUS: "a Leviton device by its identification, without a SunSpec map "
    "this engine knows",
    Verdict.MODBUS_UNKNOWN: "a Modbus device, not an S8000 (nothing identifies it as one)",
    Verdict.WEB_PAGES: "no Modbus, but PowerHawk-style web pages answer",
    Verdict.WEB_OTHER: "no Modbus; a web server answers, not with PowerHawk pages",
    Verdict.NOTHING: "nothing answers",
}


# -- what the probe found ----------------------------------------------------------------


@dataclass(slots=True)
class Failure:
    """A request that got no usable answer."""

    kind: Literal["exception", "timeout", "link", "protocol"]
    message: str
    code: int | None = None
    """The Modbus exception code, for ``exception``."""

    def as_dict(self) -> dict[str, Any]:
        """The failure as JSON."""
        return {"kind": self.kind, "code": self.code, "message": self.message}


@dataclass(slots=True)
class SunSpecFinding:
    """What is at one SunSpec base address."""

    base: int
    marker: bool = False
    """Whether ``SunS`` is there."""
    models: list[tuple[int, int, int]] = field(default_factory=list)
    """The chain: (model id, header address, length), up to the end model."""
    ended: bool = False
    """Whether the walk reached the end model."""
    common: dict[str, Any] | None = None
    """The Common model's points (``Mn``, ``Md``, ``Opt``, ``Vr``, ``SN``, ``DA``)."""
    vendor: dict[str, Any] | None = None
    """The S8000 vendor model's fixed points (``FwBuild``, ``MAC``, ``Points``, ...)."""
    client_check: str | None = None
    """``ok`` when :class:`S8000Client` identifies the meter, else why not (full probe only)."""
    error: Failure | None = None

    @property
    def is_s8000(self) -> bool:
        """A Common model by Leviton with an S8000 model code, and the vendor model."""
        return (
            self.common is not None
            and self.common.get("Mn") == MANUFACTURER
            and self.common.get("Md") in MODELS
            and any(model_id == VENDOR_MODEL_ID for model_id, _, _ in self.models)
        )

    def as_dict(self) -> dict[str, Any]:
        """The finding as JSON."""
        return {
            "base": self.base,
            "marker": self.marker,
            "models": [{"id": i, "address": a, "length": n} for i, a, n in self.models],
            "ended": self.ended,
            "common": self.common,
            "vendor": self.vendor,
            "client_check": self.client_check,
            "error": None if self.error is None else self.error.as_dict(),
        }


@dataclass(slots=True)
class RegisterRange:
    """Consecutive registers that answered, with their words."""

    kind: Kind
    start: int
    words: list[int]


@dataclass(slots=True)
class Unreadable:
    """Consecutive registers that did not answer, and how."""

    kind: Kind
    start: int
    count: int
    failure: Failure


@dataclass(slots=True)
class UnitProbe:
    """Everything asked of one unit id, and what it answered."""

    unit_id: int
    answered: bool = False
    """Whether anything came back (an exception response counts; a gateway's
    "no such device" does not)."""
    device_identification: dict[int, bytes] | None = None
    device_identification_error: Failure | None = None
    server_id: bytes | None = None
    server_id_error: Failure | None = None
    sunspec: list[SunSpecFinding] = field(default_factory=list)
    ranges: list[RegisterRange] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    """Functions the unit refused with exception 01 (``holding``, ``input``)."""
    requests: int = 0
    stopped: str | None = None
    """Why the unit was left before the probe was done with it."""
    notes: list[str] = field(default_factory=list)

    @property
    def found_sunspec(self) -> SunSpecFinding | None:
        """The first base with a marker (an S8000's first)."""
        marked = [s for s in self.sunspec if s.marker]
        s8000 = [s for s in marked if s.is_s8000]
        return next(iter(s8000 or marked), None)

    @property
    def says_leviton(self) -> bool:
        """Whether function 43 or 17 names Leviton."""
        texts = [*(self.device_identification or {}).values(), self.server_id or b""]
        return any(b"leviton" in text.lower() for text in texts)

    @property
    def verdict(self) -> Verdict:
        """What this unit id is."""
        found = self.found_sunspec
        if found is not None:
            return Verdict.S8000_SUNSPEC if found.is_s8000 else Verdict.SUNSPEC_OTHER
        if self.says_leviton:
            return Verdict.LEVITON_MODBUS
        return Verdict.MODBUS_UNKNOWN if self.answered else Verdict.NOTHING


@dataclass(slots=True)
class HttpPage:
    """One page fetched."""

    url: str
    status: int | None = None
    content_type: str | None = None
    body: str = ""
    """The body as text, at most :data:`HTTP_BODY_LIMIT` bytes of it."""
    truncated: bool = False
    title: str | None = None
    frames: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    refresh: str | None = None
    table: list[list[str]] = field(default_factory=list)
    """The first table's rows (cells as text): the PowerHawk data tables."""
    error: str | None = None


@dataclass(slots=True)
class HttpFinding:
    """The web server on one port."""

    port: int
    answered: bool = False
    pages: list[HttpPage] = field(default_factory=list)
    error: str | None = None

    @property
    def powerhawk(self) -> bool:
        """Whether the pages look like the PowerHawk's: ``/`` a frameset with a
        ``nav`` and a ``header`` frame, or a table of Watts / kWh per meter point."""
        for page in self.pages:
            frames = " ".join(page.frames).lower()
            if "nav" in frames and "header" in frames:
                return True
            head = " ".join(page.table[0]).lower() if page.table else ""
            if "kwh" in head or "watts" in head:
                return True
        return False


@dataclass(slots=True)
class ProbeReport:
    """What a probe found at one address (or on one bus)."""

    link: dict[str, Any]
    """How the probe connected: transport, host and port or device and line settings,
    unit ids, timeouts, pacing, backend, quick or not."""
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished: datetime | None = None
    units: list[UnitProbe] = field(default_factory=list)
    http: HttpFinding | None = None
    errors: list[str] = field(default_factory=list)
    cut_short: str | None = None
    """Why the probe stopped before it was done (its time bound), or None."""
    _serials: set[str] = field(default_factory=set, repr=False)
    _macs: set[bytes] = field(default_factory=set, repr=False)

    @property
    def verdict(self) -> Verdict:
        """The best of the unit ids' verdicts, or what the web server says when
        no unit id answered Modbus."""
        best = min((u.verdict for u in self.units), key=_RANK.index, default=Verdict.NOTHING)
        if best is not Verdict.NOTHING:
            return best
        if self.http is not None and self.http.answered:
            return Verdict.WEB_PAGES if self.http.powerhawk else Verdict.WEB_OTHER
        return Verdict.NOTHING

    def secret(self, serial: str | None = None, mac: str | None = None) -> None:
        """Remember a serial number or MAC address found, to redact everywhere."""
        if serial:
            self._serials.add(serial)
        if mac:
            with contextlib.suppress(ValueError):
                data = bytes.fromhex(re.sub(r"[^0-9A-Fa-f]", "", mac))
                if len(data) == 6:
                    self._macs.add(data)

    def to_dict(self, *, redact: bool = True) -> dict[str, Any]:
        """The dump as a JSON-able dictionary (docs/real-meters.md describes it)."""
        redactor = _Redactor(self._serials, self._macs) if redact else None
        out: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tool": {"name": "s8000-engine", "version": __version__},
            "started": self.started.isoformat(timespec="seconds"),
            "finished": None
            if self.finished is None
            else self.finished.isoformat(timespec="seconds"),
            "complete": self.cut_short is None,
            "cut_short": self.cut_short,
            "redacted": redact,
            "link": self.link,
            "verdict": self.verdict.value,
            "verdict_text": _EXPLAINED[self.verdict],
            "units": [_unit_dict(u, redactor) for u in self.units],
            "http": None if self.http is None else _http_dict(self.http),
            "errors": list(self.errors),
        }
        return out if redactor is None else cast("dict[str, Any]", redactor.walk(out))

    def to_json(self, *, redact: bool = True) -> str:
        """The dump as JSON text."""
        return json.dumps(self.to_dict(redact=redact), indent=1, ensure_ascii=False) + "\n"

    def summary(self, *, redact: bool = True) -> str:
        """A few lines for a person: each unit id's verdict and identification,
        the web server, the verdict."""
        redactor = _Redactor(self._serials, self._macs) if redact else None
        lines = [f"s8000-engine {__version__} probe of {_where(self.link)}"]
        lines += [line for u in self.units for line in _unit_lines(u)]
        if self.http is not None:
            lines.append(_http_line(self.http))
        for error in self.errors:
            lines.append(f"error: {error}")
        if self.cut_short is not None:
            lines.append(f"cut short: {self.cut_short}")
        lines.append(f"verdict: {self.verdict.value} — {_EXPLAINED[self.verdict]}")
        text = "\n".join(lines)
        return text if redactor is None else redactor.text(text)


# -- redaction ---------------------------------------------------------------------------


class _Redactor:
    """Hides the serial numbers and MAC addresses found, wherever they appear:
    in text (every MAC-shaped text too, as a web page may show one the Modbus
    map did not), in raw bytes and in register words (as ASCII or as the six
    bytes of an EUI-48), keeping lengths so the words still line up."""

    def __init__(self, serials: Iterable[str], macs: Iterable[bytes]) -> None:
        # A very short serial would blank every coincidence: only in its own fields then.
        self.serials = sorted((s for s in serials if len(s) >= 4), key=len, reverse=True)
        self.macs = list(macs)
        self._mac_text = [
            re.compile(r"[:\-.]?".join(f"{b:02x}" for b in mac), re.IGNORECASE) for mac in self.macs
        ]

    def text(self, text: str) -> str:
        for serial in self.serials:
            text = text.replace(serial, "[serial]")
        for pattern in self._mac_text:
            text = pattern.sub("[MAC]", text)
        return _MAC_TEXT.sub("[MAC]", text)

    def data(self, data: bytes) -> bytes:
        for secret in [*(s.encode("latin-1", "replace") for s in self.serials), *self.macs]:
            data = data.replace(secret, b"X" * len(secret))
        text = data.decode("latin-1")
        for pattern in [*self._mac_text, _MAC_TEXT]:
            text = pattern.sub(lambda m: "X" * len(m.group()), text)
        return text.encode("latin-1")

    def words(self, words: Sequence[int]) -> list[int]:
        data = self.data(b"".join(w.to_bytes(2, "big") for w in words))
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]

    def walk(self, value: Any, key: str = "") -> Any:
        """Every string of a JSON-able value redacted; ``words`` lists and
        ``hex`` strings as data."""
        if isinstance(value, dict):
            return {k: self.walk(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            if key == "words":
                return self.words(value)
            return [self.walk(v) for v in value]
        if isinstance(value, str):
            if key == "hex":
                return self.data(bytes.fromhex(value)).hex()
            return self.text(value)
        return value


# -- the dump ----------------------------------------------------------------------------


def _bytes_dict(data: bytes) -> dict[str, str]:
    return {"text": data.decode("ascii", "backslashreplace"), "hex": data.hex()}


def _strings(words: Sequence[int], start: int) -> list[dict[str, Any]]:
    """Runs of at least four printable ASCII characters in the words, with the
    register each starts in: names, model codes, versions read as text."""
    data = b"".join(w.to_bytes(2, "big") for w in words)
    found: list[dict[str, Any]] = []
    run = 0
    for i, byte in enumerate([*data, 0]):
        if byte in _PRINTABLE:
            run += 1
            continue
        text = data[i - run : i].decode("ascii").strip()
        if len(text) >= 4:
            found.append({"address": start + (i - run) // 2, "text": text})
        run = 0
    return found


def _unit_dict(unit: UnitProbe, redactor: _Redactor | None) -> dict[str, Any]:
    def failure(f: Failure | None) -> dict[str, Any] | None:
        return None if f is None else f.as_dict()

    ranges = []
    for r in unit.ranges:
        words = r.words if redactor is None else redactor.words(r.words)
        ranges.append(
            {
                "table": r.kind,
                "start": r.start,
                "count": len(words),
                "words": words,
                "strings": _strings(words, r.start),
            }
        )
    found = unit.found_sunspec
    return {
        "unit_id": unit.unit_id,
        "verdict": unit.verdict.value,
        "verdict_text": _EXPLAINED[unit.verdict],
        "answered": unit.answered,
        "requests": unit.requests,
        "stopped": unit.stopped,
        "device_identification": None
        if unit.device_identification is None
        else {str(k): _bytes_dict(v) for k, v in sorted(unit.device_identification.items())},
        "device_identification_error": failure(unit.device_identification_error),
        "server_id": None if unit.server_id is None else _bytes_dict(unit.server_id),
        "server_id_error": failure(unit.server_id_error),
        "sunspec": [s.as_dict() for s in unit.sunspec],
        "sunspec_base": None if found is None else found.base,
        "unsupported": list(unit.unsupported),
        "ranges": ranges,
        "unreadable": [
            {"table": u.kind, "start": u.start, "count": u.count, **u.failure.as_dict()}
            for u in unit.unreadable
        ],
        "notes": list(unit.notes),
    }


def _http_dict(finding: HttpFinding) -> dict[str, Any]:
    return {
        "port": finding.port,
        "answered": finding.answered,
        "powerhawk": finding.powerhawk,
        "error": finding.error,
        "pages": [
            {
                "url": p.url,
                "status": p.status,
                "content_type": p.content_type,
                "title": p.title,
                "frames": p.frames,
                "links": p.links,
                "refresh": p.refresh,
                "table": p.table,
                "truncated": p.truncated,
                "error": p.error,
                "body": p.body,
            }
            for p in finding.pages
        ],
    }


def _where(link: dict[str, Any]) -> str:
    if link.get("transport") == "tcp":
        return f"{link['host']}:{link['port']} (Modbus TCP)"
    if link.get("transport") == "rtu":
        return f"{link['device']} (Modbus RTU, {link['baudrate']} baud, parity {link['parity']})"
    return "a Modbus unit"


def _spans(items: Iterable[tuple[Kind, int, int]]) -> str:
    return ", ".join(f"{k} {a}–{a + n - 1}" for k, a, n in items) or "none"


def _unit_lines(unit: UnitProbe) -> list[str]:
    lines = [f"unit {unit.unit_id}: {unit.verdict.value} — {_EXPLAINED[unit.verdict]}"]
    if not unit.answered:
        if unit.stopped:
            lines.append(f"  {unit.stopped}")
        return lines
    if unit.device_identification is not None:
        objects = " / ".join(
            v.decode("ascii", "replace") for _, v in sorted(unit.device_identification.items())
        )
        lines.append(f"  function 43 (device identification): {objects or '(no objects)'}")
    elif unit.device_identification_error is not None:
        lines.append(f"  function 43: {unit.device_identification_error.message}")
    if unit.server_id is not None:
        lines.append(f"  function 17 (server id): {unit.server_id!r}")
    elif unit.server_id_error is not None:
        lines.append(f"  function 17: {unit.server_id_error.message}")
    for s in unit.sunspec:
        if not s.marker:
            continue
        chain = ", ".join(str(i) for i, _, _ in s.models)
        lines.append(
            f"  SunSpec at {s.base}: models {chain}{'' if s.ended else ' (chain not ended)'}"
        )
        if s.common is not None:
            c = s.common
            lines.append(
                f"    Common model: {c.get('Mn')} {c.get('Md')} serial {c.get('SN')} "
                f"firmware {c.get('Vr')}"
            )
        if s.vendor is not None:
            lines.append(f"    vendor model 64800: MAC {s.vendor.get('MAC')}")
        if s.client_check is not None:
            lines.append(f"    the client's identification: {s.client_check}")
    if unit.ranges or unit.unreadable:
        lines.append(
            "  registers read: " + _spans((r.kind, r.start, len(r.words)) for r in unit.ranges)
        )
    if unit.unsupported:
        lines.append(f"  refused (exception 01): {', '.join(unit.unsupported)} registers")
    if unit.stopped:
        lines.append(f"  stopped: {unit.stopped}")
    lines.append(f"  {unit.requests} requests")
    return lines


def _http_line(finding: HttpFinding) -> str:
    if not finding.answered:
        return f"web (port {finding.port}): no answer ({finding.error})"
    pages = ", ".join(
        f"{urlsplit(p.url).path or '/'} {p.status if p.status is not None else p.error}"
        for p in finding.pages
    )
    kind = "PowerHawk-style pages" if finding.powerhawk else "not the PowerHawk pages"
    return f"web (port {finding.port}): {kind}: {pages}"


# -- talking to a unit -------------------------------------------------------------------


class _BudgetSpentError(Exception):
    """A unit id's request budget is spent."""


class _SilentError(Exception):
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


class _Paced:
    """A unit as the probe speaks to it: only the reading functions, one request
    at a time, ``delay`` seconds apart, counted against the unit's budget,
    each one a step of the progress.  What it answers updates ``unit``."""

    def __init__(
        self, unit: ModbusUnit, probe: UnitProbe, session: _Session, *, budget: int
    ) -> None:
        self._unit = unit
        self._probe = probe
        self._session = session
        self._budget = budget
        self._last: float | None = None
        self._silent = 0

    async def _call[T](self, what: str, request: Callable[[], Awaitable[T]]) -> T:
        if self._probe.requests >= self._budget:
            raise _BudgetSpentError
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
            raise _SilentError

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


async def _attempt[T](request: Awaitable[T]) -> T | Failure:
    try:
        return await request
    except (ModbusError, OSError, TimeoutError) as err:
        return _failure(err)


class _Session:
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
        paced = _Paced(unit, probe, self, budget=self.max_requests)
        self.plan(2 + len(SUNSPEC_BASES))
        try:
            await self._identify(paced, probe)
            if not self.quick:
                await _Sweep(self, paced, probe).run()
        except _BudgetSpentError:
            probe.stopped = f"the budget of {self.max_requests} requests was spent"
        except _SilentError:
            probe.stopped = f"no answer to {SILENT_AFTER} requests in a row: " + (
                "it stopped answering" if probe.answered else "nothing at this unit id"
            )

    async def _identify(self, paced: _Paced, probe: UnitProbe) -> None:
        objects = await _attempt(paced.read_device_identification())
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
        server_id = await _attempt(paced.report_server_id())
        if isinstance(server_id, Failure):
            probe.server_id_error = server_id
        else:
            probe.server_id = bytes(server_id)
        for base in SUNSPEC_BASES:
            paced.check_silence()
            probe.sunspec.append(await self._sunspec(paced, probe, base))
        paced.check_silence()

    async def _sunspec(self, paced: _Paced, probe: UnitProbe, base: int) -> SunSpecFinding:
        """The marker at ``base`` and the chain after it.  Walked here rather than
        with modbus-connection's ``sunspec.scan``, which keeps nothing of a chain
        that breaks off: what a broken chain holds is what an owner needs to send."""
        finding = SunSpecFinding(base)
        marker = await _attempt(paced.read_holding_registers(base, 2))
        if isinstance(marker, Failure):
            finding.error = marker
            return finding
        if tuple(marker) != SUNSPEC_MARKER:
            return finding
        finding.marker = True
        address = base + 2
        for _ in range(_MAX_MODELS):
            self.plan(1)
            header = await _attempt(paced.read_holding_registers(address, 2))
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

    async def _known_models(self, paced: _Paced, probe: UnitProbe, finding: SunSpecFinding) -> None:
        """The Common model's and the S8000 vendor model's fixed points."""
        for model_id, address, length in finding.models:
            if model_id == COMMON.model_id and finding.common is None:
                finding.common = await self._points(paced, finding, COMMON, address, length)
                if finding.common is not None:
                    self.report.secret(serial=finding.common.get("SN"))
            elif model_id == VENDOR_MODEL_ID and finding.vendor is None:
                finding.vendor = await self._points(paced, finding, _VENDOR_FIXED, address, length)
                if finding.vendor is not None:
                    self.report.secret(mac=finding.vendor.get("MAC"))
        if finding.is_s8000 and not self.quick:
            # Whether the integration's client would take it, and if not, why.
            self.plan(4)
            client = S8000Client(cast("ModbusUnit", paced), base=finding.base)
            try:
                await client.identify()
            except S8000Error as err:
                finding.client_check = str(err)
            else:
                finding.client_check = "ok"

    async def _points(
        self, paced: _Paced, finding: SunSpecFinding, model: Model, address: int, length: int
    ) -> dict[str, Any] | None:
        self.plan(1)
        count = min(length + 2, model.length + 2, 125)
        words = await _attempt(paced.read_holding_registers(address, count))
        if isinstance(words, Failure):
            finding.error = words
            return None
        values: dict[str, Any] = {}
        for p in model.points:
            if (
                p.name not in ("ID", "L")
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

    def __init__(self, session: _Session, paced: _Paced, probe: UnitProbe) -> None:
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
        words = await _attempt(read(address, count))
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


# -- the web pages -----------------------------------------------------------------------


class _Page(HTMLParser):
    """What the probe wants of a page: title, frames, links, meta refresh, first table."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: str | None = None
        self.frames: list[str] = []
        self.links: list[str] = []
        self.refresh: str | None = None
        self.table: list[list[str]] = []
        self._in_title = False
        self._tables = 0
        self._depth = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v or "" for k, v in attrs}
        if tag in ("frame", "iframe") and a.get("src"):
            self.frames.append(a["src"])
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "meta" and a.get("http-equiv", "").lower() == "refresh":
            found = re.search(r"url\s*=\s*['\"]?([^'\";]+)", a.get("content", ""), re.IGNORECASE)
            if found:
                self.refresh = found.group(1).strip()
        elif tag == "title":
            self._in_title = True
        elif tag == "table":
            self._tables += 1
            self._depth += 1
        elif tag == "tr" and self._first_table() and len(self.table) < 100:
            self.table.append([])
        elif tag in ("td", "th") and self._first_table() and self.table:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "table" and self._depth:
            self._depth -= 1
        elif tag in ("td", "th") and self._cell is not None:
            if len(self.table[-1]) < 30:
                self.table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = ((self.title or "") + data).strip()
        if self._cell is not None:
            self._cell.append(data)

    def _first_table(self) -> bool:
        return self._tables == 1 and self._depth == 1


class _Fake:
    """The bytes read, as the socket :class:`http.client.HTTPResponse` parses."""

    def __init__(self, data: bytes) -> None:
        self._file = io.BytesIO(data)

    def makefile(self, *_: Any, **__: Any) -> io.BytesIO:
        return self._file


async def _fetch(host: str, port: int, url: str, timeout: float) -> HttpPage:  # noqa: ASYNC109
    """One GET, HTTP/1.0 over asyncio streams, the answer read up to a bound.

    The standard library and not aiohttp: the client layer installs without
    the software meter's libraries (aiohttp is the ``[local]`` extra's), and
    this is one small request.  http.client parses the answer (chunks too)."""
    page = HttpPage(url)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            request = (
                f"GET {target} HTTP/1.0\r\nHost: {parts.netloc}\r\n"
                f"User-Agent: s8000-engine-probe/{__version__}\r\nConnection: close\r\n\r\n"
            )
            writer.write(request.encode())
            await writer.drain()
            data = b""
            while len(data) <= HTTP_BODY_LIMIT + 16384 and (chunk := await reader.read(65536)):
                data += chunk
    except (OSError, TimeoutError) as err:
        page.error = _http_error(err)
        return page
    finally:
        if writer is not None:
            writer.close()
    answer = http.client.HTTPResponse(cast("socket.socket", _Fake(data)))
    try:
        answer.begin()
        try:
            body = answer.read()
        except http.client.IncompleteRead as err:
            body = err.partial
    except (http.client.HTTPException, ValueError) as err:
        page.error = f"not an HTTP answer ({type(err).__name__}: {err})"[:200]
        return page
    page.status = answer.status
    page.content_type = answer.getheader("Content-Type")
    page.truncated = len(body) > HTTP_BODY_LIMIT or len(data) > HTTP_BODY_LIMIT + 16384
    page.body = body[:HTTP_BODY_LIMIT].decode("latin-1")
    location = answer.getheader("Location")
    parsed = _Page()
    with contextlib.suppress(Exception):  # a broken page is still what it is
        parsed.feed(page.body)
        parsed.close()
    page.title = parsed.title
    page.frames = [urljoin(url, f) for f in parsed.frames]
    page.links = [urljoin(url, f) for f in parsed.links][:100]
    refresh = parsed.refresh or (location if 300 <= answer.status < 400 else None)
    page.refresh = None if refresh is None else urljoin(url, refresh)
    page.table = parsed.table
    return page


def _http_error(err: BaseException) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, TimeoutError):
        return "no answer in time"
    return str(err) or type(err).__name__


async def probe_http(
    host: str,
    port: int = 80,
    *,
    quick: bool = False,
    timeout: float = HTTP_TIMEOUT,  # noqa: ASYNC109 (per page)
    max_pages: int = HTTP_MAX_PAGES,
) -> HttpFinding:
    """The web server at ``host``: ``/``, and unless ``quick`` the PowerHawk pages
    it leads to (its frames, links to ``active.htm`` and ``reactive.htm``, meta
    refreshes and redirects) on the same host and port only."""
    finding = HttpFinding(port)
    await _crawl(finding, host, quick=quick, timeout=timeout, max_pages=max_pages)
    return finding


async def _crawl(
    finding: HttpFinding,
    host: str,
    *,
    quick: bool,
    timeout: float = HTTP_TIMEOUT,  # noqa: ASYNC109 (per page)
    max_pages: int = HTTP_MAX_PAGES,
) -> None:
    """:func:`probe_http` into ``finding``, page by page (a probe cut short keeps
    the pages it has)."""
    port = finding.port
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    queue = [f"http://{netloc}/"]
    seen: set[str] = set()
    finding.error = "not finished"
    while queue and len(finding.pages) < (1 if quick else max_pages):
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        page = await _fetch(host, port, url, timeout)
        if page.error is not None and not finding.pages:
            finding.error = page.error
            return
        finding.pages.append(page)
        finding.answered = finding.answered or page.status is not None
        follow = [*page.frames, *([page.refresh] if page.refresh else [])]
        follow += [u for u in page.links if urlsplit(u).path.lower().endswith("active.htm")]
        queue += [u for u in follow if urlsplit(u)[:2] == ("http", netloc)]
    finding.error = None


# -- probing -----------------------------------------------------------------------------


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
        return _http_error(err)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def _close(connection: Any) -> None:
    with contextlib.suppress(ModbusError, OSError, TimeoutError):
        await asyncio.wait_for(connection.close(), 5)


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
        }


#: What a configuration flow asks: identification, SunSpec markers, ``/``; 30 s at most.
QUICK: Final = ProbeOptions(quick=True, timeout_total=30.0)


async def probe_tcp(
    host: str,
    port: int = 502,
    *,
    units: Sequence[int] = (1,),
    http_port: int | None = 80,
    timeout: float = 1.0,  # noqa: ASYNC109 (per request, given to the connection)
    backend: BackendName = "tmodbus",
    options: ProbeOptions = ProbeOptions(),
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
    session = _Session(report, options, progress)
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
    options: ProbeOptions = ProbeOptions(delay=DEFAULT_RTU_DELAY),
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
    session = _Session(report, options, progress)
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
    session = _Session(report, options, progress)
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
            await _crawl(report.http, host, quick=bool(report.link.get("quick")))

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
    "QUICK",
    "Failure",
    "HttpFinding",
    "HttpPage",
    "ProbeOptions",
    "ProbeReport",
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
