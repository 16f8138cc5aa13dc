"""The Leviton Series 8000 multi-point submeter integration.

The meter is a Modbus device.  This integration does not own its connection:
it borrows a ``ModbusUnit`` from Home Assistant's ``modbus`` integration,
which shares one connection per device between everything talking to it (an
RS-485 bus with other meters on it, a gateway that takes one connection), and
hands it to the engine's :class:`~s8000_engine.client.S8000Client`.

A meter reached through its built-in web pages instead (``TYPE_WEB``) is
read by :class:`~s8000_engine.client.webpages.WebPagesClient` on Home
Assistant's shared web session.  Its readings go through the same poll and
counter guards; what only Modbus can do (the interval memory's backfill, the
clock, the commands) is not set up for it.
"""

from __future__ import annotations

import dataclasses
from functools import partial

from homeassistant.components.modbus import async_get_unit
from homeassistant.const import CONF_TYPE, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady, HomeAssistantError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.typing import ConfigType

from s8000_engine.client import (
    Identity,
    S8000Client,
    S8000ConnectionError,
    S8000Error,
    S8000NotAnS8000,
    S8000ProfileError,
    S8000WrongMeter,
)
from s8000_engine.client.webpages import WebPagesClient

from .backfill import BackfillScheduler
from .const import (
    CONF_UNIT_ID,
    DOMAIN,
    IDENTITY_SCAN_INTERVAL,
    OPT_POINTS,
    OPT_PROFILE,
    REQUEST_TIMEOUT,
    SCAN_INTERVAL_SERIAL,
    SCAN_INTERVAL_TCP,
    SCAN_INTERVAL_WEB,
    TYPE_SERIAL,
    TYPE_WEB,
)
from .coordinator import S8000ReadingsCoordinator, async_check_identity
from .entity import meter_device_info, web_device_info
from .helpers import async_load_profile, create_modbus_params, create_web_client
from .models import S8000ConfigEntry, S8000RuntimeData, point_device_id, points_in_use
from .services import async_setup_services

PLATFORMS = [Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

__all__ = ["S8000ConfigEntry", "async_setup_entry", "async_unload_entry"]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, which exist whether or not a meter is loaded."""
    async_setup_services(hass)
    return True


async def _async_modbus_client(hass: HomeAssistant, entry: S8000ConfigEntry) -> S8000Client:
    """A client on the Modbus unit Home Assistant lends for the entry's link."""
    try:
        unit = async_get_unit(
            hass, entry, create_modbus_params(entry.data), entry.data[CONF_UNIT_ID]
        )
    except HomeAssistantError as err:
        # The device is already in use over other link settings (another
        # baud rate on the same serial port), which one connection cannot honour.
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="link_settings_in_use",
            translation_placeholders={"error": str(err)},
        ) from err
    unit.require_timeout(REQUEST_TIMEOUT)
    try:
        profile = await async_load_profile(hass, entry.options.get(OPT_PROFILE))
    except S8000ProfileError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="bad_profile",
            translation_placeholders={"error": str(err)},
        ) from err
    # The entry's serial number is the only truth: the client refuses any
    # other meter that answers at the address, now and for as long as it runs.
    return S8000Client(unit, serial=entry.unique_id, profile=profile)


async def _async_identify(client: S8000Client | WebPagesClient) -> Identity:
    """Who the meter is, or why the entry cannot be set up (now, or at all)."""
    try:
        return await client.identify()
    except S8000WrongMeter as err:
        # The address now reaches another meter (a reused DHCP lease, a
        # rewired bus): its readings are not this meter's.
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="wrong_meter",
            translation_placeholders={"error": str(err)},
        ) from err
    except S8000ConnectionError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="communication_error",
            translation_placeholders={"error": str(err)},
        ) from err
    except S8000NotAnS8000 as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="not_s8000",
            translation_placeholders={"error": str(err)},
        ) from err
    except S8000Error as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="bad_data",
            translation_placeholders={"error": str(err)},
        ) from err


async def async_setup_entry(hass: HomeAssistant, entry: S8000ConfigEntry) -> bool:
    """Set up a meter from a config entry."""
    serial = entry.unique_id
    assert serial is not None
    link = entry.data[CONF_TYPE]
    client = (
        create_web_client(hass, entry.data)
        if link == TYPE_WEB
        else await _async_modbus_client(hass, entry)
    )
    identity = await _async_identify(client)
    if isinstance(client, WebPagesClient):
        # The pages carry no serial number: the entry's unique id stands in
        # for it, so every device and entity id derives from it as usual.
        identity = dataclasses.replace(identity, serial=serial)

    interval = {TYPE_SERIAL: SCAN_INTERVAL_SERIAL, TYPE_WEB: SCAN_INTERVAL_WEB}.get(
        link, SCAN_INTERVAL_TCP
    )
    coordinator = S8000ReadingsCoordinator(hass, entry, client, interval=interval)
    await coordinator.async_load_counters()
    # The last reading the previous run had: the hours since are what Home
    # Assistant missed (before the first poll replaces it).
    last_seen = max(
        (c["utc"] for c in coordinator.counter_states().values() if c.get("utc") is not None),
        default=None,
    )
    await coordinator.async_config_entry_first_refresh()

    device_info = (
        web_device_info(identity, entry.title)
        if isinstance(client, WebPagesClient)
        else meter_device_info(identity)
    )
    device = dr.async_get(hass).async_get_or_create(config_entry_id=entry.entry_id, **device_info)
    entry.runtime_data = S8000RuntimeData(
        client=client,
        identity=identity,
        coordinator=coordinator,
        device_info=device_info,
        device_id=device.id,
    )
    _async_remove_unused_points(hass, entry)
    entry.async_on_unload(coordinator.async_save_counters)
    # Firmware, points and wiring change rarely: checked again now and then.
    entry.async_on_unload(
        async_track_time_interval(
            hass,
            partial(async_check_identity, hass, entry),
            IDENTITY_SCAN_INTERVAL,
            name=f"{DOMAIN} identity {entry.entry_id}",
        )
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    if isinstance(client, WebPagesClient):
        return True  # no interval memory over the pages: nothing to backfill from

    # Hours Home Assistant missed (it was down, or the meter did not answer)
    # are filled from the meter's records: now, and whenever the meter is back.
    scheduler = BackfillScheduler(hass, entry)
    await scheduler.async_load()
    entry.async_on_unload(scheduler.shutdown)
    entry.async_on_unload(scheduler.async_save)

    @callback
    def _recovered() -> None:
        # Called before the poll's reading replaces the last one: that is
        # the last reading before the meter went away.
        scheduler.request(coordinator.data.polled_at)

    coordinator.on_recovery = _recovered
    scheduler.request(last_seen)
    return True


def _point_devices_in_use(entry: S8000ConfigEntry) -> set[tuple[str, str]]:
    """The identifiers of the devices of the points in use."""
    identity = entry.runtime_data.identity
    return {
        (DOMAIN, point_device_id(identity.serial, point))
        for point in points_in_use(entry.options.get(OPT_POINTS), identity.points)
    }


def _async_remove_unused_points(hass: HomeAssistant, entry: S8000ConfigEntry) -> None:
    """Remove the devices of points not in use (any more)."""
    wanted = _point_devices_in_use(entry)
    registry = dr.async_get(hass)
    for device in dr.async_child_entries_for_config_entry(registry, entry.entry_id):
        if not wanted & device.identifiers:
            registry.async_remove_device(device.id)


async def async_unload_entry(hass: HomeAssistant, entry: S8000ConfigEntry) -> bool:
    """Unload a meter's config entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: S8000ConfigEntry, device: dr.DeviceEntry | dr.ChildDeviceEntry
) -> bool:
    """Let the user delete a point's device once the point is out of use."""
    return device.id != entry.runtime_data.device_id and not _point_devices_in_use(entry) & (
        device.identifiers
    )
