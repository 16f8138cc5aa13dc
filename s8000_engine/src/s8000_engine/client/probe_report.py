"""What a probe found, and how it is told: verdicts, the report, its JSON dump and redaction.

A :class:`ProbeReport` holds, per unit id, a :class:`UnitProbe` (the
identification, the SunSpec chains, the registers read and refused) and the
web server's :class:`~s8000_engine.client.probe_http.HttpFinding`; its
:attr:`~ProbeReport.verdict` says what answers (:class:`Verdict`), its
:meth:`~ProbeReport.summary` says it in a few lines and its
:meth:`~ProbeReport.to_json` is the dump an owner attaches to an issue
(format :data:`FORMAT` version :data:`FORMAT_VERSION`, docs/real-meters.md),
the serial numbers and MAC addresses found redacted unless asked.
"""

from __future__ import annotations

import contextlib
import json
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Literal, cast
from urllib.parse import urlsplit

from s8000_engine import __version__
from s8000_engine.client.data import Identity, MeterData
from s8000_engine.client.probe_http import HttpFinding
from s8000_engine.models import MODELS
from s8000_engine.protocol.sunspec import COMMON, MANUFACTURER, VENDOR_MODEL_ID, vendor_model

#: What the dump says it is, and the version of its structure (docs/real-meters.md).
FORMAT: Final = "s8000-probe"
FORMAT_VERSION: Final = 2
#: The meter points whose values a profile check keeps (the first ones).
PROFILE_POINTS: Final = 3
_PRINTABLE: Final = frozenset(string.printable.encode()) - frozenset(b"\t\n\r\x0b\x0c")
#: Any MAC address written as text (a web page may show one the Modbus map did not).
_MAC_TEXT: Final = re.compile(
    r"(?<![0-9A-Fa-f])"
    r"(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f])"
)

#: The built-in map's Common and vendor models' points by role (``serial`` → ``SN``):
#: how the probe finds a value in what it decoded, without knowing the names.
_COMMON_ROLES: Final = {p.role: p.name for p in COMMON.points if p.role is not None}
_VENDOR_ROLES: Final = {p.role: p.name for p in vendor_model(0).points if p.role is not None}

type Kind = Literal["holding", "input"]


class Verdict(StrEnum):
    """What answers at the address, best first."""

    S8000_SUNSPEC = "s8000-sunspec"
    """The SunSpec map this engine reads: Common model by Leviton with an S8000
    model code, and the S8000 vendor model."""
    S8000_PROFILE = "s8000-profile"
    """An S8000 the client identifies and reads through a profile that is not
    built in (a candidate map an owner wrote): the report names the profile."""
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
EXPLAINED: Final = {
    Verdict.S8000_SUNSPEC: "an S8000 with the SunSpec map this engine reads",
    Verdict.S8000_PROFILE: "an S8000, identified and read through a profile that is not built in",
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
    """The Common model's points by name, as the built-in profile declares them
    (``Mn``, ``Md``, ``Opt``, ``Vr``, ``SN``, ``DA``)."""
    vendor: dict[str, Any] | None = None
    """The S8000 vendor model's fixed points (``FwBuild``, ``MAC``, ``Points``, ...)."""
    error: Failure | None = None

    def common_value(self, role: str) -> Any:
        """The Common model's point holding ``role`` (``manufacturer``, ``model``,
        ``serial``...), or None."""
        name = _COMMON_ROLES.get(role)
        return None if self.common is None or name is None else self.common.get(name)

    def vendor_value(self, role: str) -> Any:
        """The vendor model's fixed point holding ``role`` (``mac``...), or None."""
        name = _VENDOR_ROLES.get(role)
        return None if self.vendor is None or name is None else self.vendor.get(name)

    @property
    def is_s8000(self) -> bool:
        """A Common model by the built-in profile's manufacturer (Leviton) with an
        S8000 model code, and the built-in profile's vendor model (64800)."""
        return (
            self.common_value("manufacturer") == MANUFACTURER
            and self.common_value("model") in MODELS
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
            "error": None if self.error is None else self.error.as_dict(),
        }


@dataclass(slots=True)
class ProfileCheck:
    """Whether the client identifies and reads the unit through one profile, and
    what it read: an owner who wrote a candidate profile sees at once whether
    it reads sensible numbers."""

    profile: str
    """The profile's name."""
    source: str
    """``built-in``, or the profile file's name (not its path)."""
    identified: bool = False
    error: str | None = None
    """Why the client did not identify the meter, or why the read after failed."""
    identity: dict[str, Any] | None = None
    """What the client identified (model, serial, firmware, MAC, points...)."""
    values: list[dict[str, Any]] = field(default_factory=list)
    """The first points' ``kwh_delivered``, ``kwh_received`` and ``w`` (kWh, W)."""

    @property
    def builtin(self) -> bool:
        """Whether it is a profile of this engine's own."""
        return self.source == "built-in"

    @property
    def read(self) -> bool:
        """Identified, and read without an error."""
        return self.identified and self.error is None

    def identify(self, identity: Identity) -> None:
        """What the client identified."""
        self.identified = True
        self.identity = {
            "manufacturer": identity.manufacturer,
            "model": identity.model,
            "serial": identity.serial,
            "firmware": identity.firmware,
            "mac": identity.mac,
            "points": identity.points,
            "service": None if identity.service is None else int(identity.service),
            "point_models": list(identity.point_models),
        }

    def keep(self, data: MeterData) -> None:
        """The first points' values of a read."""
        self.values = [
            {
                "point": p.number,
                "kwh_delivered": p.kwh_delivered,
                "kwh_received": p.kwh_received,
                "w": p.w,
            }
            for p in data.points[:PROFILE_POINTS]
        ]

    def as_dict(self) -> dict[str, Any]:
        """The check as JSON."""
        return {
            "profile": self.profile,
            "source": self.source,
            "identified": self.identified,
            "error": self.error,
            "identity": self.identity,
            "values": self.values,
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
    profiles: list[ProfileCheck] = field(default_factory=list)
    """The client's identification and one read through each profile checked."""
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
        """Whether function 43 or 17 names the built-in profile's manufacturer (Leviton)."""
        texts = [*(self.device_identification or {}).values(), self.server_id or b""]
        maker = MANUFACTURER.lower().encode()
        return any(maker in text.lower() for text in texts)

    @property
    def read_through(self) -> ProfileCheck | None:
        """The first profile not built in that the client identified and read
        the unit through, or None."""
        return next((c for c in self.profiles if c.read and not c.builtin), None)

    @property
    def verdict(self) -> Verdict:
        """What this unit id is."""
        found = self.found_sunspec
        if found is not None and found.is_s8000:
            return Verdict.S8000_SUNSPEC
        if self.read_through is not None:
            return Verdict.S8000_PROFILE
        if found is not None:
            return Verdict.SUNSPEC_OTHER
        if self.says_leviton:
            return Verdict.LEVITON_MODBUS
        return Verdict.MODBUS_UNKNOWN if self.answered else Verdict.NOTHING


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

    @property
    def verdict_profile(self) -> ProfileCheck | None:
        """For :attr:`Verdict.S8000_PROFILE`, the profile the meter was read through."""
        if self.verdict is not Verdict.S8000_PROFILE:
            return None
        return next(u.read_through for u in self.units if u.verdict is Verdict.S8000_PROFILE)

    @property
    def verdict_text(self) -> str:
        """The verdict in words, naming the profile of an ``s8000-profile``."""
        return _verdict_text(self.verdict, self.verdict_profile)

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
            "verdict_text": self.verdict_text,
            "verdict_profile": _profile_name(self.verdict_profile),
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
        lines.append(f"verdict: {self.verdict.value} — {self.verdict_text}")
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


def _verdict_text(verdict: Verdict, check: ProfileCheck | None) -> str:
    text = EXPLAINED[verdict]
    return text if check is None else f"{text}: {check.profile} ({check.source})"


def _profile_name(check: ProfileCheck | None) -> str | None:
    return None if check is None else check.profile


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
        "verdict_text": _verdict_text(unit.verdict, unit.read_through),
        "verdict_profile": _profile_name(
            unit.read_through if unit.verdict is Verdict.S8000_PROFILE else None
        ),
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
        "profiles": [c.as_dict() for c in unit.profiles],
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
    text = _verdict_text(unit.verdict, unit.read_through)
    lines = [f"unit {unit.unit_id}: {unit.verdict.value} — {text}"]
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
            lines.append(
                f"    Common model: {s.common_value('manufacturer')} {s.common_value('model')} "
                f"serial {s.common_value('serial')} firmware {s.common_value('firmware')}"
            )
        if s.vendor is not None:
            lines.append(f"    vendor model {VENDOR_MODEL_ID}: MAC {s.vendor_value('mac')}")
    lines += [_profile_line(c) for c in unit.profiles]
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


def _number(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:g} {unit}"


def _profile_line(check: ProfileCheck) -> str:
    """``profile NAME (SOURCE): MODEL serial S, N points; point 1: ... kWh delivered ...``."""
    head = f"  profile {check.profile} ({check.source}): "
    if not check.identified or check.identity is None:
        return head + f"not identified: {check.error}"
    i = check.identity
    text = head + f"identified {i['model']} serial {i['serial']}, {i['points']} points"
    if check.error is not None:
        return text + f"; the read failed: {check.error}"
    values = "; ".join(
        f"point {v['point']}: {_number(v['kwh_delivered'], 'kWh')} delivered, "
        f"{_number(v['kwh_received'], 'kWh')} received, {_number(v['w'], 'W')}"
        for v in check.values
    )
    return text + (f"; {values}" if values else "")


def _http_line(finding: HttpFinding) -> str:
    if not finding.answered:
        return f"web (port {finding.port}): no answer ({finding.error})"
    pages = ", ".join(
        f"{urlsplit(p.url).path or '/'} {p.status if p.status is not None else p.error}"
        for p in finding.pages
    )
    kind = "PowerHawk-style pages" if finding.powerhawk else "not the PowerHawk pages"
    return f"web (port {finding.port}): {kind}: {pages}"


__all__ = [
    "EXPLAINED",
    "FORMAT",
    "FORMAT_VERSION",
    "PROFILE_POINTS",
    "Failure",
    "Kind",
    "ProbeReport",
    "ProfileCheck",
    "RegisterRange",
    "SunSpecFinding",
    "UnitProbe",
    "Unreadable",
    "Verdict",
]
