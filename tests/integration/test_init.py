"""Setting up a meter in a running Home Assistant against the real local meter:
devices, entities and their values, unloading."""

from __future__ import annotations

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TYPE, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.loader import async_get_integration
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s8000.const import CONF_UNIT_ID, DOMAIN, OPT_NAMES, OPT_POINTS

from .conftest import MAC, SERIAL, LocalMeter, free_port, tcp_entry


async def test_integration_loads_from_custom_components(hass: HomeAssistant) -> None:
    integration = await async_get_integration(hass, DOMAIN)
    assert not integration.is_built_in
    assert integration.config_flow
    assert str(integration.version) == "0.1.0"


async def test_meter_and_points_are_set_up(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter
) -> None:
    entry = tcp_entry(local_meter, **{OPT_NAMES: {"1": "Kitchen"}})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    devices = dr.async_get(hass)
    meter = devices.async_get_device_by_identifier((DOMAIN, SERIAL), entry.entry_id)
    assert meter is not None
    assert meter.manufacturer == "Leviton"
    assert meter.model_id == "S8UTS-083"
    assert meter.serial_number == SERIAL
    assert meter.sw_version == "1.60"
    assert (dr.CONNECTION_NETWORK_MAC, MAC.lower()) in meter.connections
    points = dr.async_child_entries_for_config_entry(devices, entry.entry_id)
    assert len(points) == 8
    assert {p.parent_device_id for p in points} == {meter.id}
    kitchen = devices.async_get_child_device_by_identifier(
        (DOMAIN, f"{SERIAL}_point_1"), entry.entry_id
    )
    assert kitchen is not None
    assert kitchen.name == "Kitchen"

    entities = er.async_get(hass)
    energy = entities.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_point1_energy_delivered")
    assert energy is not None
    state = hass.states.get(energy)
    assert state is not None
    assert state.state != STATE_UNAVAILABLE
    assert float(state.state) >= 0
    assert state.attributes["state_class"] == "total_increasing"
    assert state.attributes["unit_of_measurement"] == "kWh"
    assert state.name == "Kitchen Energy delivered"

    power = entities.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_point1_power")
    assert power is not None
    assert hass.states.get(power) is not None

    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED


#: The entities of a point of the demo meter (three CTs), by key.
POINT_KEYS = (
    "energy_delivered",
    "energy_received",
    "reactive_energy_delivered",
    "reactive_energy_received",
    "power",
    "reactive_power",
    "apparent_power",
    "power_factor",
    "current",
    "demand",
    "peak_demand",
    "peak_demand_time",
    "ct_primary",
    *(f"phase_{what}_{phase}" for what in ("power", "current") for phase in "abc"),
)
METER_KEYS = (
    *(f"voltage_{phase}" for phase in "abc"),
    *(f"line_voltage_{pair}" for pair in ("ab", "bc", "ca")),
    "frequency",
    "clock_offset",
    "stored_intervals",
    "backfill_progress",
    "pulse_1",
    "pulse_2",
)


async def test_unique_ids_stay_what_they_were(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter
) -> None:
    """An entity's unique id is what keeps its history and its user's
    settings: every entity of the demo meter keeps the one it has always had."""
    entry = tcp_entry(local_meter)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entries = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    assert {e.unique_id for e in entries} == {
        *(f"{SERIAL}_point{n}_{key}" for n in range(1, 9) for key in POINT_KEYS),
        *(f"{SERIAL}_{key}" for key in METER_KEYS),
    }


async def test_only_points_in_use_get_entities(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter
) -> None:
    entry = tcp_entry(local_meter, **{OPT_POINTS: [2, 5]})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    devices = dr.async_child_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert sorted(d.identifiers.pop()[1] for d in devices) == [
        f"{SERIAL}_point_2",
        f"{SERIAL}_point_5",
    ]


@pytest.mark.parametrize("unit_id", [1])
async def test_unreachable_meter_retries(
    hass: HomeAssistant, socket_enabled: None, unit_id: int
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=SERIAL,
        data={
            CONF_TYPE: "tcp",
            CONF_HOST: "127.0.0.1",
            CONF_PORT: free_port(),
            CONF_UNIT_ID: unit_id,
        },
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
