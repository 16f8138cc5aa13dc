"""The Leviton Series 8000 multi-point submeter integration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant


@dataclass(slots=True)
class S8000RuntimeData:
    """What a loaded config entry keeps while it runs."""

    connection: dict[str, Any]


type S8000ConfigEntry = ConfigEntry[S8000RuntimeData]


async def async_setup_entry(hass: HomeAssistant, entry: S8000ConfigEntry) -> bool:
    """Set up a meter from a config entry."""
    entry.runtime_data = S8000RuntimeData(connection=dict(entry.data))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: S8000ConfigEntry) -> bool:
    """Unload a meter's config entry."""
    return True
