"""The unit's settings that are not metering: network, time server, PPP, modem."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import voluptuous as vol

from s8000_engine.config.validation import errors_of, flag
from s8000_engine.exceptions import ConfigError

#: The factory default IP configuration (user guide, section 8: a meter that
#: finds no DHCP server answers on 192.168.0.9); the front panel's "Reset
#: factory default IP" command restores it (:func:`factory_default_ip`).
FACTORY_DEFAULT_IP: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "dhcp": True,
        "ip": "192.168.0.9",
        "netmask": "255.255.255.0",
        "gateway": "192.168.0.1",
        "dns_primary": "192.168.0.1",
        "dns_secondary": "192.168.0.1",
    }
)

#: Shortest and longest network prefix a meter's netmask may have.
MIN_PREFIX: Final = 8
MAX_PREFIX: Final = 30
#: Longest PPP user name and password, telephone number and AT string.
MAX_LOGIN_LENGTH: Final = 64
MAX_PHONE_LENGTH: Final = 32
MAX_AT_LENGTH: Final = 64


@dataclass(frozen=True, slots=True)
class UnitConfig:
    """The configuration tool's unit settings that are not metering.

    The default IP configuration is the meter's static address: used when
    ``dhcp`` is off, and as the fallback when no DHCP server answers.
    ``ppp_password`` is a secret: never in repr, messages or logs.
    """

    dhcp: bool = True
    ip: str = FACTORY_DEFAULT_IP["ip"]
    netmask: str = FACTORY_DEFAULT_IP["netmask"]
    gateway: str = FACTORY_DEFAULT_IP["gateway"]
    dns_primary: str = FACTORY_DEFAULT_IP["dns_primary"]
    dns_secondary: str = FACTORY_DEFAULT_IP["dns_secondary"]
    ntp_host: str = ""
    """The time server: a host name or IPv4 address ("" for none)."""
    ppp_username: str = ""
    ppp_password: str = field(default="", repr=False)
    phone: str = ""
    """The modem's telephone number."""
    alt_phone: str = ""
    """The modem's alternate telephone number."""
    at_string: str = ""
    """The modem's initialisation string (``AT...``)."""

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain data (the secret included: for the store only)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def factory_default_ip(unit: UnitConfig | None = None) -> UnitConfig:
    """``unit`` (default: the defaults) with the factory default IP settings
    restored; the NTP host, PPP login and modem are kept."""
    return dataclasses.replace(unit or UnitConfig(), **FACTORY_DEFAULT_IP)


_HOST_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_PHONE: Final = re.compile(r"[0-9 +*#,()\-.PTWptw]*")
_PRINTABLE: Final = re.compile(r"[\x20-\x7e]*")
_NO_SPACES: Final = re.compile(r"[\x21-\x7e]*")


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("expected a string")
    return value


def _ipv4(value: Any) -> ipaddress.IPv4Address:
    try:
        if not isinstance(value, str):
            raise ValueError(value)  # not the integer or bytes forms ipaddress takes
        return ipaddress.IPv4Address(value.strip())
    except ValueError:
        raise vol.Invalid(
            "must be an IPv4 address: four numbers from 0 to 255 separated by dots, "
            "e.g. 192.168.0.9"
        ) from None


def _unicast(value: Any) -> str:
    address = _ipv4(value)
    if (
        address.is_unspecified
        or address.is_loopback
        or address.is_multicast
        or address == ipaddress.IPv4Address("255.255.255.255")
        or address.is_reserved
    ):
        raise vol.Invalid(
            f"{address} cannot be a host's address (unspecified, loopback, multicast, "
            "broadcast or reserved)"
        )
    return str(address)


def _netmask(value: Any) -> str:
    mask = int(_ipv4(value))
    host_bits = ~mask & 0xFFFFFFFF
    if host_bits & (host_bits + 1):
        raise vol.Invalid(
            "must be a netmask: ones then zeros, such as 255.255.255.0 (not "
            f"{ipaddress.IPv4Address(mask)})"
        )
    prefix = 32 - host_bits.bit_length()
    if not MIN_PREFIX <= prefix <= MAX_PREFIX:
        low = ipaddress.IPv4Network(f"0.0.0.0/{MIN_PREFIX}").netmask
        high = ipaddress.IPv4Network(f"0.0.0.0/{MAX_PREFIX}").netmask
        raise vol.Invalid(
            f"must be from {low} (/{MIN_PREFIX}) to {high} (/{MAX_PREFIX}), not /{prefix}"
        )
    return str(ipaddress.IPv4Address(mask))


def _host_or_ipv4(value: Any) -> str:
    """A host name (RFC 1123) or an IPv4 address; "" for none."""
    text = _string(value).strip()
    if not text:
        return ""
    if re.fullmatch(r"[0-9.]+", text):
        return _unicast(text)
    if len(text) > 253:
        raise vol.Invalid("must be at most 253 characters")
    labels = (text[:-1] if text.endswith(".") else text).split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise vol.Invalid(
            "must be a host name (letters, digits and hyphens in labels of 1 to 63 "
            "characters separated by dots, no spaces, no hyphen at a label's start or end) "
            "or an IPv4 address"
        )
    return text


def _login(value: Any) -> str:
    text = _string(value).strip()
    if len(text) > MAX_LOGIN_LENGTH:
        raise vol.Invalid(f"must be at most {MAX_LOGIN_LENGTH} characters")
    if not _NO_SPACES.fullmatch(text):
        raise vol.Invalid("may only hold printable ASCII characters without spaces")
    return text


def _password(value: Any) -> str:
    # Never repeat the value: it is a secret.
    text = _string(value)
    if len(text) > MAX_LOGIN_LENGTH:
        raise vol.Invalid(f"must be at most {MAX_LOGIN_LENGTH} characters")
    if not _PRINTABLE.fullmatch(text):
        raise vol.Invalid("may only hold printable ASCII characters")
    return text


def _phone(value: Any) -> str:
    text = _string(value).strip()
    if len(text) > MAX_PHONE_LENGTH:
        raise vol.Invalid(f"must be at most {MAX_PHONE_LENGTH} characters")
    if not _PHONE.fullmatch(text):
        raise vol.Invalid(
            "may only hold digits, spaces, + * # , ( ) - . and the dial modifiers P, T and W"
        )
    return text


def _at_string(value: Any) -> str:
    text = _string(value).strip()
    if len(text) > MAX_AT_LENGTH:
        raise vol.Invalid(f"must be at most {MAX_AT_LENGTH} characters")
    if not _PRINTABLE.fullmatch(text):
        raise vol.Invalid("may only hold printable ASCII characters")
    if text and not text.upper().startswith("AT"):
        raise vol.Invalid("must start with AT (a Hayes modem command), e.g. AT X3 -STE=7")
    return text


#: Voluptuous's message for a key the schema does not know.
_EXTRA: Final = "extra keys not allowed"

#: The fields of the unit section, in the configuration tool's order.
UNIT_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in dataclasses.fields(UnitConfig))

UNIT_SCHEMA: Final = vol.Schema(
    {
        vol.Optional("dhcp"): flag,
        vol.Optional("ip"): _unicast,
        vol.Optional("netmask"): _netmask,
        vol.Optional("gateway"): _unicast,
        vol.Optional("dns_primary"): _unicast,
        vol.Optional("dns_secondary"): _unicast,
        vol.Optional("ntp_host"): _host_or_ipv4,
        vol.Optional("ppp_username"): _login,
        vol.Optional("ppp_password"): _password,
        vol.Optional("phone"): _phone,
        vol.Optional("alt_phone"): _phone,
        vol.Optional("at_string"): _at_string,
    },
    extra=vol.PREVENT_EXTRA,
)
"""The unit section's fields (missing ones take the :class:`UnitConfig` defaults)."""


def unit_config(data: Mapping[str, Any]) -> UnitConfig:
    """Validate the unit section; ConfigError names every wrong field
    (``("unit", "gateway")``, in the configuration tool's order), never a
    secret's value."""
    if not isinstance(data, Mapping):
        raise ConfigError.at(("unit",), "expected a dictionary")
    errors: list[tuple[str, str]] = []
    try:
        raw: dict[str, Any] = UNIT_SCHEMA(dict(data))
    except vol.MultipleInvalid as invalid:
        for path, message in errors_of(invalid):
            key = str(path[0]) if path else ""
            errors.append((key, "unknown field" if message == _EXTRA else message))
        raw = {}
    unit = UnitConfig(**raw) if not errors else UnitConfig()
    if not errors:
        network = ipaddress.IPv4Network(f"{unit.ip}/{unit.netmask}", strict=False)
        ip = ipaddress.IPv4Address(unit.ip)
        gateway = ipaddress.IPv4Address(unit.gateway)
        if ip in (network.network_address, network.broadcast_address):
            which = "network" if ip == network.network_address else "broadcast"
            errors.append(("ip", f"{ip} is the {which} address of {network}, not a host's"))
        if gateway not in network:
            errors.append(
                (
                    "gateway",
                    f"{gateway} is outside the meter's network {network} "
                    f"(IP address {ip}, netmask {unit.netmask})",
                )
            )
        elif gateway == ip:
            errors.append(("gateway", "must not be the meter's own IP address"))
        elif gateway in (network.network_address, network.broadcast_address):
            errors.append(("gateway", f"{gateway} is not a host address of {network}"))
    if errors:
        order = {name: number for number, name in enumerate(UNIT_FIELDS)}
        errors.sort(key=lambda e: order.get(e[0], len(order)))
        raise ConfigError((("unit", name) if name else ("unit",), text) for name, text in errors)
    return unit
