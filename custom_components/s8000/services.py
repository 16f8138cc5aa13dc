"""The integration's actions: set a meter's clock, reset its peak demand, have
it send its interval memory now, and fill the Energy dashboard's gaps from it.

They are registered once, when the integration is set up, so they exist (and
say why they cannot run) before any meter is loaded.  Each names its meter by
config entry, since one Home Assistant may read several meters.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final

import probatio
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util

from s8000_engine.client import S8000Client, S8000ConnectionError, S8000Error

from . import backfill
from .const import DOMAIN
from .models import S8000ConfigEntry

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_TIME: Final = "time"
ATTR_START: Final = "start"
ATTR_END: Final = "end"

SERVICE_SET_CLOCK: Final = "set_clock"
SERVICE_RESET_PEAK_DEMAND: Final = "reset_peak_demand"
SERVICE_SEND_DATA: Final = "send_data"
SERVICE_BACKFILL: Final = "backfill"

_ENTRY: Final = {probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string}
SET_CLOCK_SCHEMA: Final = probatio.Schema({**_ENTRY, probatio.Optional(ATTR_TIME): cv.datetime})
ENTRY_SCHEMA: Final = probatio.Schema(_ENTRY)
BACKFILL_SCHEMA: Final = probatio.Schema(
    {
        **_ENTRY,
        probatio.Optional(ATTR_START): cv.datetime,
        probatio.Optional(ATTR_END): cv.datetime,
    }
)


def async_get_entry(hass: HomeAssistant, entry_id: str) -> S8000ConfigEntry:
    """The loaded meter entry an action names; a validation error otherwise."""
    entry: S8000ConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    return entry


def async_get_modbus(entry: S8000ConfigEntry) -> S8000Client:
    """The Modbus client of a meter an action needs to write to or read the
    records of; a validation error for a meter read through its web pages,
    which can do neither."""
    client = entry.runtime_data.modbus
    if client is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="web_pages_read_only",
            translation_placeholders={"title": entry.title},
        )
    return client


async def async_write(write: Callable[[], Awaitable[None]]) -> None:
    """Make one write to the meter, saying in the user's language why it failed:
    the meter did not answer, or it (or the client, before sending) refused it."""
    try:
        await write()
    except S8000ConnectionError as err:
        if err.exception_code is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="communication_error",
                translation_placeholders={"error": str(err)},
            ) from err
        # The meter answered with a Modbus exception: it refused the value.
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="write_refused",
            translation_placeholders={"error": str(err)},
        ) from err
    except (S8000Error, ValueError) as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="write_refused",
            translation_placeholders={"error": str(err)},
        ) from err


async def _async_set_clock(call: ServiceCall) -> None:
    """Set the meter clock to the time given, or to Home Assistant's now."""
    entry = async_get_entry(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    moment: datetime | None = call.data.get(ATTR_TIME)
    # A time without a zone is Home Assistant's local time.
    utc = time.time() if moment is None else dt_util.as_utc(moment).timestamp()
    client = async_get_modbus(entry)
    await async_write(lambda: client.set_clock(utc))
    await entry.runtime_data.coordinator.async_request_refresh()


async def _async_reset_peak_demand(call: ServiceCall) -> None:
    """Reset the peak demand of every point of the meter."""
    entry = async_get_entry(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    await async_write(async_get_modbus(entry).reset_peak_demand)
    await entry.runtime_data.coordinator.async_request_refresh()


async def _async_send_data(call: ServiceCall) -> None:
    """Have the meter report its interval memory to its configured host now."""
    entry = async_get_entry(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    await async_write(async_get_modbus(entry).send_now)


async def _async_backfill(call: ServiceCall) -> ServiceResponse:
    """Fill the holes of the meter's energy statistics from its records."""
    entry = async_get_entry(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    async_get_modbus(entry)  # the records are read over Modbus
    start: datetime | None = call.data.get(ATTR_START)
    end: datetime | None = call.data.get(ATTR_END)
    start = None if start is None else dt_util.as_utc(start)
    end = None if end is None else dt_util.as_utc(end)
    if start is not None and end is not None and start >= end:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_range",
            translation_placeholders={
                "start": dt_util.as_local(start).isoformat(),
                "end": dt_util.as_local(end).isoformat(),
            },
        )
    # Unlike the automatic backfill, which logs, the action says in the
    # user's language why it did nothing (rule action-exceptions).
    result = await backfill.async_backfill(
        call.hass, entry, start=start, end=end, raise_errors=True
    )
    return {"hours": result.hours, "statistics": result.statistics}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""
    hass.services.async_register(DOMAIN, SERVICE_SET_CLOCK, _async_set_clock, SET_CLOCK_SCHEMA)
    hass.services.async_register(
        DOMAIN, SERVICE_RESET_PEAK_DEMAND, _async_reset_peak_demand, ENTRY_SCHEMA
    )
    hass.services.async_register(DOMAIN, SERVICE_SEND_DATA, _async_send_data, ENTRY_SCHEMA)
    hass.services.async_register(
        DOMAIN,
        SERVICE_BACKFILL,
        _async_backfill,
        BACKFILL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
