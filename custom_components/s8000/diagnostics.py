"""Diagnostics download: what the meter is, how it is reached, its last poll.

The serial number, MAC address and host identify one household's meter, so
they are redacted; the readings themselves are kept, as they are what a bug
report is about."""

from __future__ import annotations

import dataclasses
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant

from s8000_engine.client import S8000Client

from .const import CONF_MAC, OPT_NAMES
from .models import S8000ConfigEntry

TO_REDACT = {CONF_HOST, CONF_MAC, "mac", "serial", "unique_id", "common.SN", "s8000.MAC", "title"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: S8000ConfigEntry
) -> dict[str, Any]:
    """The config entry, the identified meter and its last poll, redacted."""
    runtime = entry.runtime_data
    coordinator = runtime.coordinator
    reading = coordinator.data
    last: dict[str, Any] | None = None
    if reading is not None:
        data = reading.meter_data
        last = {
            "utc": data.utc,
            "status": None if data.status is None else int(data.status),
            "voltage": data.voltage,
            "line_voltage": data.line_voltage,
            "frequency": data.frequency,
            "points": [dataclasses.asdict(point) for point in data.points],
            "pulses": [dataclasses.asdict(pulse) for pulse in data.pulses],
            "intervals": dataclasses.asdict(data.intervals),
            "transactions": data.transactions,
            "totals": reading.totals,
            "clock_offset": reading.clock_offset,
            "registers": {k: _plain(v) for k, v in data.raw.items()},
        }
    options = dict(entry.options)
    if OPT_NAMES in options:  # circuit names say who lives where
        options[OPT_NAMES] = dict.fromkeys(options[OPT_NAMES], "**REDACTED**")
    return async_redact_data(
        {
            "entry": {
                "title": entry.title,
                "data": dict(entry.data),
                "options": options,
            },
            "identity": dataclasses.asdict(runtime.identity),
            # Which map the meter is read by: what to look at first when a
            # real unit read through an owner's profile shows odd values.
            "profile": (
                {
                    "name": runtime.client.profile.name,
                    "layout": runtime.client.profile.layout,
                    "source": runtime.client.profile.source,
                }
                if isinstance(runtime.client, S8000Client)
                else None  # the web pages: no register map
            ),
            "polling": {
                "readings_ok": coordinator.last_update_success,
                "interval_s": coordinator.update_interval.total_seconds()
                if coordinator.update_interval
                else None,
                "identity_ok": runtime.identity_error is None,
                "identity_error": runtime.identity_error,
                "counters": coordinator.counter_states(),
            },
            "last_poll": last,
        },
        TO_REDACT,
    )


def _plain(value: Any) -> Any:
    """A register value as JSON can carry it."""
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
