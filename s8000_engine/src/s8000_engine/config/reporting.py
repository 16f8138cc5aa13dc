"""Reporting settings: the host server, its protocol, login and schedule."""

from __future__ import annotations

import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import voluptuous as vol

from s8000_engine.config.validation import errors_of
from s8000_engine.exceptions import ConfigError

SCHEDULE_MINUTES: Final[tuple[int, ...]] = (0, 5, 15, 30, 60, 120, 240, 360, 720, 1440)
"""The reporting schedules, in minutes (0: only on *Send*)."""
DEFAULT_FTP_PORT: Final = 21
DEFAULT_MAX_INTERVALS_PER_FILE: Final = 2880
"""30 days of 15-minute intervals."""
DEFAULT_TIMEOUT_S: Final = 30.0
#: Characters no header, login or path may carry (they would split an FTP
#: command or an HTTP header).
CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f]")
#: A bearer token: printable ASCII without spaces.
TOKEN_CHARS: Final = re.compile(r"[\x21-\x7e]+")


class ReportingProtocol(StrEnum):
    """How reports reach the host."""

    NONE = "none"
    FTP = "ftp"
    FTPS = "ftps"
    """FTP with explicit TLS (``AUTH TLS``, ``PROT P``)."""
    HTTP = "http"
    HTTPS = "https"


FTP_PROTOCOLS: Final = (ReportingProtocol.FTP, ReportingProtocol.FTPS)
HTTP_PROTOCOLS: Final = (ReportingProtocol.HTTP, ReportingProtocol.HTTPS)


@dataclass(frozen=True, slots=True)
class ReportingConfig:
    """Where and when to report (validate plain data with :func:`reporting_config`)."""

    protocol: ReportingProtocol = ReportingProtocol.NONE
    host: str = ""
    """FTP(S) server host name or IP address."""
    port: int = DEFAULT_FTP_PORT
    """FTP(S) control port."""
    username: str = "anonymous"
    password: str = field(default="", repr=False)
    """FTP password: a secret, never shown."""
    upload_directory: str = ""
    """FTP directory to upload into ("" = the login directory)."""
    url: str = ""
    """The address http/https reports are POSTed to."""
    token: str | None = field(default=None, repr=False)
    """Bearer token for http/https: a secret, never shown."""
    every_minutes: int = 0
    """Reporting schedule: 0 = only on *Send*, else one of SCHEDULE_MINUTES."""
    max_intervals_per_file: int = DEFAULT_MAX_INTERVALS_PER_FILE
    timeout_s: float = DEFAULT_TIMEOUT_S
    ca_file: str | None = None
    """PEM file of the CA(s) to verify the host's certificate with (ftps/https)."""

    def __post_init__(self) -> None:
        # A plain string ("ftps") becomes the enum, so identity checks hold.
        object.__setattr__(self, "protocol", ReportingProtocol(self.protocol))

    @property
    def configured(self) -> bool:
        """Whether reports have somewhere to go."""
        return self.protocol is not ReportingProtocol.NONE


# -- validation ---------------------------------------------------------------------------


def _text(max_length: int, *, strip: bool = False) -> Callable[[Any], str]:
    """A string without control characters (they would inject FTP commands or headers)."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise vol.Invalid("expected a string")
        text = value.strip() if strip else value
        if CONTROL_CHARS.search(text):
            raise vol.Invalid("must not contain control characters")
        if len(text) > max_length:
            raise vol.Invalid(f"must be at most {max_length} characters")
        return text

    return check


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise vol.Invalid("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise vol.Invalid("expected an integer")


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise vol.Invalid("expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise vol.Invalid("expected a number") from None
    if not math.isfinite(number):
        raise vol.Invalid("value must be a finite number")
    return number


def _host(value: Any) -> str:
    text = _text(253, strip=True)(value)
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]  # an IPv6 literal written as in a URL
    if any(c in text for c in "/@ \t[]?#") or "://" in text:
        raise vol.Invalid("must be a host name or IP address (no scheme, user or path)")
    return text


def _token(value: Any) -> str | None:
    if value is None:
        return None
    text = _text(4096, strip=True)(value)
    if not text:
        return None
    if not TOKEN_CHARS.fullmatch(text):
        raise vol.Invalid("must be printable ASCII without spaces")
    return text


def _ca_file(value: Any) -> str | None:
    if value is None:
        return None
    text = _text(4096, strip=True)(value)
    return text or None


REPORTING_SCHEMA: Final = vol.Schema(
    {
        vol.Optional("protocol", default="none"): vol.All(
            str,
            vol.Lower,
            vol.In(
                [p.value for p in ReportingProtocol],
                msg="must be one of " + ", ".join(p.value for p in ReportingProtocol),
            ),
        ),
        vol.Optional("host", default=""): _host,
        vol.Optional("port", default=DEFAULT_FTP_PORT): vol.All(
            _integer, vol.Range(min=1, max=65535)
        ),
        vol.Optional("username", default="anonymous"): _text(128, strip=True),
        vol.Optional("password", default=""): _text(256),
        vol.Optional("upload_directory", default=""): _text(1024, strip=True),
        vol.Optional("url", default=""): _text(2048, strip=True),
        vol.Optional("token", default=None): _token,
        vol.Optional("every_minutes", default=0): vol.All(
            _integer,
            vol.In(
                SCHEDULE_MINUTES,
                msg="must be one of " + ", ".join(str(m) for m in SCHEDULE_MINUTES),
            ),
        ),
        vol.Optional("max_intervals_per_file", default=DEFAULT_MAX_INTERVALS_PER_FILE): vol.All(
            _integer, vol.Range(min=1, max=1_000_000)
        ),
        vol.Optional("timeout_s", default=DEFAULT_TIMEOUT_S): vol.All(
            _seconds, vol.Range(min=1.0, max=600.0)
        ),
        vol.Optional("ca_file", default=None): _ca_file,
    }
)
"""The reporting settings (see the module documentation)."""


def _field_error(name: str, message: str) -> ConfigError:
    return ConfigError.at(("reporting", name), message)


def _check_url(url: str, protocol: ReportingProtocol) -> None:
    if not url:
        raise _field_error("url", f"required for protocol {protocol.value}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != protocol.value:
        raise _field_error("url", f"must start with {protocol.value}:// for protocol {protocol}")
    if parts.username is not None or parts.password is not None:
        raise _field_error("url", "must not contain a user name or password (use 'token')")
    if not parts.hostname:
        raise _field_error("url", "has no host")
    try:
        _ = parts.port
    except ValueError:
        raise _field_error("url", "has an invalid port") from None


def reporting_config(data: Mapping[str, Any]) -> ReportingConfig:
    """Validate reporting settings and return them as a :class:`ReportingConfig`.

    Raises :class:`ConfigError` naming every wrong field (in the order of
    their names), e.g. ``reporting.port: value must be at most 65535``.
    """
    if not isinstance(data, Mapping):
        raise ConfigError.at(("reporting",), "expected a dictionary")
    try:
        raw = REPORTING_SCHEMA(dict(data))
    except vol.Invalid as invalid:
        found = errors_of(invalid, ("reporting",))
        raise ConfigError(sorted(found, key=lambda e: ConfigError.describe(e[0]))) from None
    protocol = ReportingProtocol(raw["protocol"])
    if protocol in FTP_PROTOCOLS and not raw["host"]:
        raise _field_error("host", f"required for protocol {protocol.value}")
    if protocol in HTTP_PROTOCOLS:
        _check_url(raw["url"], protocol)
    return ReportingConfig(
        protocol=protocol,
        host=raw["host"],
        port=raw["port"],
        username=raw["username"] or "anonymous",
        password=raw["password"],
        upload_directory=raw["upload_directory"],
        url=raw["url"],
        token=raw["token"],
        every_minutes=raw["every_minutes"],
        max_intervals_per_file=raw["max_intervals_per_file"],
        timeout_s=raw["timeout_s"],
        ca_file=raw["ca_file"],
    )
