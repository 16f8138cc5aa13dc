"""Helpers shared by the config flow and the runtime."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

from homeassistant.const import CONF_DEVICE, CONF_HOST, CONF_PORT, CONF_TYPE
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from modbus_connection import ModbusSerialParams, ModbusTcpParams

from s8000_engine.client import (
    DEFAULT_BAUDRATE,
    Profile,
    S8000ProfileError,
    builtin_profile,
    load_profile,
)
from s8000_engine.client.webpages import WebPagesClient

from .const import (
    CONF_BAUDRATE,
    CONF_PARITY,
    DEFAULT_PARITY_NAME,
    DEFAULT_WEB_PORT,
    PARITY_CODES,
    REQUEST_TIMEOUT,
    TYPE_SERIAL,
)


def create_modbus_params(data: Mapping[str, Any]) -> ModbusSerialParams | ModbusTcpParams:
    """The Modbus link parameters of a config entry's data.

    The meter's RS-485 port is 8 data bits and one stop bit; baud rate and
    parity are set in the meter, so they are asked for."""
    if data[CONF_TYPE] == TYPE_SERIAL:
        parity = cast(
            "Literal['N', 'E', 'O']", PARITY_CODES[data.get(CONF_PARITY, DEFAULT_PARITY_NAME)]
        )
        return ModbusSerialParams(
            device=data[CONF_DEVICE],
            baudrate=int(data.get(CONF_BAUDRATE, DEFAULT_BAUDRATE)),
            parity=parity,
        )
    return ModbusTcpParams(host=data[CONF_HOST], port=int(data[CONF_PORT]))


async def async_load_profile(hass: HomeAssistant, name: str | None) -> Profile:
    """The register profile an entry's option names: a file in Home Assistant's
    configuration directory (a path relative to it), or the built-in map when
    none is named.  S8000ProfileError for a file that is outside the
    directory, unreadable or not a valid profile (the field named)."""
    if not name:
        return builtin_profile()
    return await hass.async_add_executor_job(_load_profile, hass.config.config_dir, name)


def _load_profile(config_dir: str, name: str) -> Profile:
    """A profile file ``name`` under ``config_dir`` (resolving the path reads the disk)."""
    root = Path(config_dir).resolve()
    path = (root / name).resolve()
    # A path of the form, not of a file anywhere on the machine: the
    # configuration directory is what the user can put files in and back up.
    if not path.is_relative_to(root):
        raise S8000ProfileError((), f"{name} is not in the configuration directory")
    return load_profile(path)


def create_web_client(hass: HomeAssistant, data: Mapping[str, Any]) -> WebPagesClient:
    """A reader of the web pages a config entry's data names, on Home
    Assistant's shared web session (rule inject-websession)."""
    return WebPagesClient(
        async_get_clientsession(hass),
        data[CONF_HOST],
        int(data[CONF_PORT]),
        timeout=REQUEST_TIMEOUT,
    )


def web_unique_id(host: str, port: int) -> str:
    """The unique id of a meter read through its web pages: ``web:HOST``, or
    ``web:HOST:PORT`` off port 80.

    Every other entry is named by the meter's serial number, which the
    pages do not carry (nor its MAC address: Home Assistant learns a MAC only
    from DHCP, whose discovery probes Modbus).  What is left that stays put
    is the address the user gave, normalised (lower case, no spaces), so the
    same pages cannot be added twice.  It is fixed when the entry is made: a
    reconfiguration that moves the entry to another address keeps it, as an
    id names the meter, not where it is now.  The prefix keeps it apart from
    any serial number."""
    host = host.strip().lower()
    return f"web:{host}" if port == DEFAULT_WEB_PORT else f"web:{host}:{port}"
