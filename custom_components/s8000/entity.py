"""Devices and the base entity: one device per meter, one child device per point.

Every identity derives from the meter's serial number, which the config flow
stores as the entry's unique id (see :mod:`.models`): the meter's device is
``(s8000, SERIAL)``, and point ``n``'s is a child device of it named after
the circuit it meters (the options give each point a name, e.g. "Kitchen").
"""

from __future__ import annotations

from typing import Any

from homeassistant.helpers.device_registry import (
    CONNECTION_NETWORK_MAC,
    ChildDeviceInfo,
    DeviceInfo,
    format_mac,
)
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from s8000_engine.client import Identity
from s8000_engine.models import MODELS

from .const import DOMAIN, OPT_NAMES
from .models import S8000ConfigEntry, S8000Coordinator, entity_unique_id, point_device_id

MANUFACTURER = "Leviton"


def meter_device_info(identity: Identity) -> DeviceInfo:
    """The device of the meter itself."""
    catalogue = MODELS.get(identity.model)
    info = DeviceInfo(
        identifiers={(DOMAIN, identity.serial)},
        manufacturer=MANUFACTURER,
        model=(
            f"Series 8000, {catalogue.points} points × {catalogue.elements} CTs"
            if catalogue
            else "Series 8000"
        ),
        model_id=identity.model,
        name=f"S8000 {identity.serial}",
        serial_number=identity.serial,
        sw_version=identity.firmware or None,
    )
    if identity.mac:
        info["connections"] = {(CONNECTION_NETWORK_MAC, format_mac(identity.mac))}
    return info


def web_device_info(identity: Identity, title: str) -> DeviceInfo:
    """The device of a meter read through its web pages: named by the entry's
    title (the pages' own, as the config flow found it); the pages say
    nothing of its model, serial number or firmware."""
    return DeviceInfo(
        identifiers={(DOMAIN, identity.serial)},
        manufacturer=MANUFACTURER,
        model="Series 8000 (web pages)",
        name=title,
    )


def point_device_info(entry: S8000ConfigEntry, point: int) -> ChildDeviceInfo:
    """The child device of one meter point, named after its circuit."""
    name = entry.options.get(OPT_NAMES, {}).get(str(point))
    info = ChildDeviceInfo(
        identifiers={(DOMAIN, point_device_id(entry.runtime_data.identity.serial, point))},
        parent_device_id=entry.runtime_data.device_id,
    )
    if name:
        info["name"] = name
    else:
        info["translation_key"] = "point"
        info["translation_placeholders"] = {"point": str(point)}
    return info


class S8000Entity(CoordinatorEntity[S8000Coordinator]):
    """An entity fed by the meter's readings poll."""

    _attr_has_entity_name = True

    def __init__(
        self,
        entry: S8000ConfigEntry,
        description: EntityDescription,
        *,
        point: int | None = None,
    ) -> None:
        """Set up an entity of the meter, or of one of its points."""
        super().__init__(entry.runtime_data.coordinator)
        self.entity_description = description
        self.point = point
        self._attr_unique_id = entity_unique_id(
            entry.runtime_data.identity.serial, description.key, point
        )
        self._attr_device_info: Any = (
            entry.runtime_data.device_info if point is None else point_device_info(entry, point)
        )
