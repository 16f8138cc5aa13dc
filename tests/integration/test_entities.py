"""What is enabled by default: what the Energy dashboard and load automations
need (energy delivered and received, and power, per point), the pulse inputs
once the options say what they count, and nothing else, as Shelly and core's
``solaredge_modbus`` do; everything else waits until a user enables it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_DEVICE, CONF_TYPE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s8000.const import (
    CONF_BAUDRATE,
    CONF_PARITY,
    CONF_UNIT_ID,
    DOMAIN,
    OPT_PULSES,
)

from .conftest import SERIAL, LocalMeter, free_port, seed_store, tcp_entry

pytestmark = pytest.mark.usefixtures("socket_enabled")

#: The entities of a point enabled by default, by key.
POINT_ENABLED = {"energy_delivered", "energy_received", "power"}
#: The meter's own entities enabled by default: the clock's offset (read
#: anyway, for the clock repair) and the backfill's progress (written only
#: while a backfill runs).
METER_ENABLED = {"clock_offset", "backfill_progress"}


def _by_key(hass: HomeAssistant, entry_id: str) -> dict[str, er.RegistryEntry]:
    """The entry's registry entries by key (the unique id after the serial)."""
    entries = er.async_entries_for_config_entry(er.async_get(hass), entry_id)
    return {e.unique_id.removeprefix(f"{SERIAL}_"): e for e in entries}


async def test_only_what_the_energy_dashboard_needs_is_enabled(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    entry = tcp_entry(local_meter)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entities = _by_key(hass, entry.entry_id)
    assert len(entities) > 8 * len(POINT_ENABLED) + len(METER_ENABLED)
    for key, entity in entities.items():
        point, _, rest = key.partition("_")
        enabled = (
            rest in POINT_ENABLED if point.startswith("point") and point[5:].isdigit() else False
        ) or key in METER_ENABLED
        expected = None if enabled else er.RegistryEntryDisabler.INTEGRATION
        assert entity.disabled_by is expected, key
        state = hass.states.get(entity.entity_id)
        assert (state is not None) is enabled, key


async def test_a_24_point_meter_enables_three_entities_a_point(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """The meter with the most CT channels: 74 entities, not about 290."""
    config = tmp_path / "meter.json"
    config.write_text(
        json.dumps(
            {
                "model": "S8UTS-241",
                "service": "3p4w",
                "points": [{"ct_primary": 100, "phases": ["ABC"[n % 3]]} for n in range(24)],
            }
        )
    )
    meter = LocalMeter(
        tmp_path / "meter", ["--speed", "20", "--config", str(config)], port=free_port()
    )
    seed_store(meter.data)
    meter.start()
    try:
        entry = tcp_entry(meter)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        entities = _by_key(hass, entry.entry_id)
        enabled = sorted(k for k, e in entities.items() if e.disabled_by is None)
        assert enabled == sorted(
            {f"point{n}_{key}" for n in range(1, 25) for key in POINT_ENABLED} | METER_ENABLED
        )
        assert len(hass.states.async_entity_ids("sensor")) == 24 * 3 + 2
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        meter.stop()


async def test_a_pulse_input_is_enabled_once_the_options_say_what_it_counts(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    """Nothing wired: disabled.  Declared water (or gas, or energy) in the
    options, later: enabled when the entry reloads with the new options."""
    entry = tcp_entry(local_meter)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entities = _by_key(hass, entry.entry_id)
    for number in (1, 2):
        assert entities[f"pulse_{number}"].disabled_by is er.RegistryEntryDisabler.INTEGRATION

    hass.config_entries.async_update_entry(
        entry,
        options={OPT_PULSES: {"1": {"kind": "water", "unit": "L"}, "2": {"kind": "count"}}},
    )
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    entities = _by_key(hass, entry.entry_id)
    water = entities["pulse_1"]
    assert water.disabled_by is None
    state = hass.states.get(water.entity_id)
    assert state is not None
    assert float(state.state) >= 0
    # A bare count is what the options say of an input nobody has described.
    assert entities["pulse_2"].disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_a_pulse_input_described_from_the_start_is_enabled(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    entry = tcp_entry(local_meter, **{OPT_PULSES: {"2": {"kind": "gas", "unit": "m³"}}})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entities = _by_key(hass, entry.entry_id)
    assert entities["pulse_2"].disabled_by is None
    assert entities["pulse_1"].disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_a_poll_reads_only_what_the_enabled_entities_need(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    """The first poll, at setup, reads the whole map; the next ones what the
    enabled entities show and what the guards need, in fewer requests.
    Enabling an entity makes the polls read its value too."""
    entry = tcp_entry(local_meter)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    assert coordinator.transactions == 10  # the whole map: ceil(1157 / 125)
    whole = coordinator.data.meter_data
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    data = coordinator.data.meter_data
    assert coordinator.transactions < 10
    assert len(data.raw) < len(whole.raw) / 4
    for point in data.points:
        assert point.kwh_delivered is not None
        assert point.kwh_received is not None
        assert point.w is not None
        assert point.ct_primary_a is not None  # the guards' rate bound
        assert point.var is None
        assert point.kvarh_delivered is None
    assert data.utc is not None
    assert data.voltage["A"] is not None  # the guards' rate bound, too
    assert data.frequency is None
    assert data.pulses[0].value is None
    for key in ("point3_energy_delivered", "point3_power", "clock_offset"):
        state = hass.states.get(_by_key(hass, entry.entry_id)[key].entity_id)
        assert state is not None
        assert state.state not in ("unknown", "unavailable"), key

    registry = er.async_get(hass)
    reactive = _by_key(hass, entry.entry_id)["point3_reactive_energy_delivered"]
    registry.async_update_entity(reactive.entity_id, disabled_by=None)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    await coordinator.async_refresh()
    data = coordinator.data.meter_data
    assert data.point(3).kvarh_delivered is not None
    assert data.point(4).kvarh_delivered is None
    state = hass.states.get(reactive.entity_id)
    assert state is not None
    assert float(state.state) >= 0


async def test_an_rs485_poll_reads_fewer_registers(
    hass: HomeAssistant, serial_meter: LocalMeter
) -> None:
    """Over RS-485 the reads are planned for the wire: more, shorter requests,
    far fewer registers than the whole map."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=SERIAL,
        data={
            CONF_TYPE: "serial",
            CONF_DEVICE: serial_meter.device,
            CONF_BAUDRATE: 19200,
            CONF_PARITY: "none",
            CONF_UNIT_ID: 7,
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    whole = coordinator.data.meter_data
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    data = coordinator.data.meter_data
    assert len(data.raw) < len(whole.raw) / 4
    assert [p.kwh_delivered is not None and p.w is not None for p in data.points] == [True] * 8
    assert await hass.config_entries.async_unload(entry.entry_id)
