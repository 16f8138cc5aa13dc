"""The integration at run time against the real local meter: RTU over a pty
pair, a meter replaced by another, identity checks, pulse inputs, diagnostics,
removing devices, and what is kept across a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.modbus import async_get_temporary_unit
from homeassistant.components.modbus.connection import async_get_connection_info
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    CONF_DEVICE,
    CONF_HOST,
    CONF_PORT,
    CONF_TYPE,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.async_ import get_scheduled_timer_handles
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.s8000 import async_remove_config_entry_device
from custom_components.s8000.const import (
    CONF_BAUDRATE,
    CONF_PARITY,
    CONF_UNIT_ID,
    DOMAIN,
    IDENTITY_SCAN_INTERVAL,
    OPT_NAMES,
    OPT_POINTS,
    OPT_PULSES,
    REQUEST_TIMEOUT,
)
from custom_components.s8000.helpers import create_modbus_params
from custom_components.s8000.models import Reading
from custom_components.s8000.repairs import wrong_meter_issue_id
from s8000_engine.client.client import S8000Client
from s8000_engine.client.data import Identity, MeterData

from .conftest import (
    SERIAL,
    LocalMeter,
    enable_entities,
    free_port,
    meter_meters,
    null_modem,
    seed_store,
    tcp_entry,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def _recheck_identity(hass: HomeAssistant) -> None:
    """Let the time of the next identity check come, and wait until it (a
    background task) and what it started are over."""
    async_fire_time_changed(hass, dt_util.utcnow() + IDENTITY_SCAN_INTERVAL + timedelta(seconds=1))
    await hass.async_block_till_done(wait_background_tasks=True)


async def _load(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    if hass.config_entries.async_get_entry(entry.entry_id) is None:
        entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def _state(hass: HomeAssistant, unique_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, unique_id)
    assert entity_id is not None, unique_id
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


async def test_a_meter_on_rs485(hass: HomeAssistant, serial_meter: LocalMeter) -> None:
    """Modbus RTU at 19200 baud, unit 7, over a pseudo-terminal pair."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=SERIAL,
        title=f"S8UTS-083 {SERIAL}",
        data={
            CONF_TYPE: "serial",
            CONF_DEVICE: serial_meter.device,
            CONF_BAUDRATE: 19200,
            CONF_PARITY: "none",
            CONF_UNIT_ID: 7,
        },
    )
    enable_entities(hass, entry, "voltage_a")
    await _load(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert float(_state(hass, f"{SERIAL}_point8_energy_delivered")) >= 0
    assert float(_state(hass, f"{SERIAL}_voltage_a")) == pytest.approx(120, rel=0.05)
    assert entry.runtime_data.coordinator.update_interval is not None
    assert entry.runtime_data.coordinator.update_interval.total_seconds() == 30

    # One connection to the port, shared: another integration borrowing a
    # unit on it reads through the same link while this one polls.
    (link,) = async_get_connection_info(hass)
    assert link.units == {entry.entry_id: [7]}
    async with async_get_temporary_unit(hass, create_modbus_params(entry.data), 7) as unit:
        assert await unit.read_holding_registers(40000, 2) == [0x5375, 0x6E53]
        await entry.runtime_data.coordinator.async_refresh()
        assert entry.runtime_data.coordinator.last_update_success
    assert len(async_get_connection_info(hass)) == 1

    # Another meter on the same port, at another baud rate: one connection
    # cannot honour both, so that entry fails with a clear error.
    other = MockConfigEntry(
        domain=DOMAIN,
        unique_id="other",
        data={**entry.data, CONF_BAUDRATE: 9600, CONF_UNIT_ID: 8},
    )
    await _load(hass, other)
    assert other.state is ConfigEntryState.SETUP_ERROR
    assert other.reason is not None
    assert "other settings" in other.reason
    assert await hass.config_entries.async_unload(entry.entry_id)


def test_a_meter_on_rs485_is_ready_when_it_answers_with_readings(
    serial_meter: LocalMeter,
) -> None:
    """The fixtures wait for a Modbus answer with readings, not for a time:
    the probe they use says no where nothing answers, or another unit would."""
    assert meter_meters(serial_meter)
    assert not meter_meters(serial_meter, serial_meter.unit_id + 1)
    with null_modem() as (_, nobody):
        assert not meter_meters(dataclasses.replace(serial_meter, device=nobody))


def test_a_meter_on_tcp_is_ready_when_it_answers_with_readings(local_meter: LocalMeter) -> None:
    assert meter_meters(local_meter)
    assert not meter_meters(local_meter, local_meter.unit_id + 1)
    assert not meter_meters(dataclasses.replace(local_meter, port=free_port()))


async def test_another_meter_at_the_address(
    hass: HomeAssistant, local_meter: LocalMeter, tmp_path: Path
) -> None:
    """The address now reaches another meter: its readings are not shown as
    this one's, and an entry is not set up on it."""
    entry = tcp_entry(local_meter)
    await _load(hass, entry)
    runtime = entry.runtime_data
    local_meter.stop()
    local_meter.data = tmp_path / "other"
    seed_store(local_meter.data, "4200099999", "00:21:B6:99:99:99")
    local_meter.start()

    await runtime.coordinator.async_refresh()
    assert not runtime.coordinator.last_update_success
    assert "Another meter answers" in str(runtime.coordinator.last_exception)
    assert _state(hass, f"{SERIAL}_point8_energy_delivered") == STATE_UNAVAILABLE

    # The identity check finds the other meter too, and says which it is.
    ir.async_delete_issue(hass, DOMAIN, wrong_meter_issue_id(entry.entry_id))
    await _recheck_identity(hass)
    assert runtime.identity_error == f"expected serial {SERIAL}, found S8UTS-083 serial 4200099999"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, wrong_meter_issue_id(entry.entry_id))
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["found"] == "S8UTS-083 serial 4200099999"
    # ... and the readings poll still refuses that meter's registers as this one's.
    await runtime.coordinator.async_refresh()
    assert not runtime.coordinator.last_update_success
    assert "found S8UTS-083 serial 4200099999" in str(runtime.coordinator.last_exception)

    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert "4200099999" in entry.reason


async def test_a_meter_swapped_in_at_the_address_is_never_adopted(
    hass: HomeAssistant, local_meter: LocalMeter, tmp_path: Path
) -> None:
    """Two meters swap places at one address (a reused DHCP lease): while the
    other meter answers, nothing adopts it (not the readings poll, not the
    identity check, not a write after its map was found different), so its
    energy never reaches this meter's entities; the repair names both serials;
    and when the entry's own meter is back, it is read at the next poll."""
    entry = tcp_entry(local_meter)
    await _load(hass, entry)
    runtime = entry.runtime_data
    key = f"{SERIAL}_point1_energy_delivered"
    before = float(_state(hass, key))
    own = local_meter.data

    # Meter B: another serial, and another map (24 points), at A's address.
    local_meter.stop()
    local_meter.data = tmp_path / "other"
    seed_store(local_meter.data, "4200099999", "00:21:B6:99:99:99")
    local_meter.options = [*local_meter.options, "--model", "S8UTS-241"]
    local_meter.start()

    await runtime.coordinator.async_refresh()
    assert _state(hass, key) == STATE_UNAVAILABLE
    issue_id = wrong_meter_issue_id(entry.entry_id)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["expected"] == SERIAL
    assert issue.translation_placeholders["found"] == "S8UTS-241 serial 4200099999"

    # A write asked for now goes to no meter: it names the one that answers.
    with pytest.raises(HomeAssistantError, match="4200099999"):
        await hass.services.async_call(
            DOMAIN, "reset_peak_demand", {"config_entry_id": entry.entry_id}, blocking=True
        )
    await _recheck_identity(hass)
    for _ in range(2):
        await runtime.coordinator.async_refresh()
        assert not runtime.coordinator.last_update_success
        assert _state(hass, key) == STATE_UNAVAILABLE
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    assert runtime.client.identity is not None
    assert runtime.client.identity.serial == SERIAL

    # A is back: read at once, its total goes on from where it was.
    local_meter.stop()
    local_meter.data = own
    local_meter.options = local_meter.options[:-2]
    local_meter.start()
    await runtime.coordinator.async_refresh()
    assert runtime.coordinator.last_update_success
    assert float(_state(hass, key)) >= before
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    steps = [i for (domain, i) in ir.async_get(hass).issues if i.startswith("counter_step")]
    assert steps == []


async def test_a_silent_meter_costs_one_request_per_poll_and_is_polled_less(
    hass: HomeAssistant, local_meter: LocalMeter, freezer: FrozenDateTimeFactory
) -> None:
    """A meter that stops answering (frozen: its connection stays open, no
    answer comes) is tried twice at the first failed poll (a lost frame), then
    once a poll: one request timeout; after a minute its polls move apart, up
    to five minutes; when it answers again, the polls are back to every 10 s.
    The clock is Home Assistant's frozen one, moved on by the test, so the
    timeouts are counted in its seconds, not timed."""
    entry = tcp_entry(local_meter)
    await _load(hass, entry)
    coordinator = entry.runtime_data.coordinator
    client = entry.runtime_data.client
    polls: list[tuple[float, float, int]] = []  # start, seconds, requests
    update = coordinator._async_update_data

    async def watched() -> Reading:
        """The poll itself, watched: when, how long, how many requests."""
        start, before = dt_util.utcnow(), client.requests
        try:
            return await update()
        finally:
            seconds = (dt_util.utcnow() - start).total_seconds()
            polls.append((start.timestamp(), seconds, client.requests - before))

    async def run(minutes: float, *, answers: bool) -> list[tuple[float, float, int]]:
        """The polls of the next minutes of Home Assistant's clock.  (A poll
        of a meter that answers is waited for, as it takes real time; one of
        a silent meter only ends by the frozen clock moving on.)"""
        polls.clear()
        until = dt_util.utcnow() + timedelta(minutes=minutes)
        while dt_util.utcnow() < until:
            freezer.tick(timedelta(seconds=1))
            async_fire_time_changed(hass)
            await hass.async_block_till_done(wait_background_tasks=answers)
        return list(polls)

    with patch.object(coordinator, "_async_update_data", watched):
        local_meter.pause()
        silent = await run(12, answers=False)
        assert not coordinator.last_update_success
        assert [requests for _, _, requests in silent[:1]] == [2]  # just gone silent: once more
        assert silent[0][1] <= 2 * REQUEST_TIMEOUT + 1
        assert {requests for _, _, requests in silent[1:]} == {1}
        assert all(seconds <= REQUEST_TIMEOUT + 1 for _, seconds, _ in silent[1:])
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(silent)]
        assert gaps[1:] == sorted(gaps[1:])  # further and further apart ...
        assert max(gaps) <= 300 + REQUEST_TIMEOUT + 1  # ... up to five minutes
        assert len(silent) < 12 * 6 / 4  # polled every 10 s: 72 polls

        local_meter.resume()
        back = await run(6, answers=True)
    assert coordinator.last_update_success, (back, coordinator.last_exception)
    assert _state(hass, f"{SERIAL}_point1_energy_delivered") != STATE_UNAVAILABLE
    assert back[0][0] - silent[-1][0] <= 300 + REQUEST_TIMEOUT + 1
    # Every 10 s again (give or take the one-second steps of the test's clock).
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(back[1:])]
    assert gaps
    assert all(9 <= gap <= 11 for gap in gaps), gaps


async def test_the_identity_check_follows_firmware_and_points(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    """Now and then (a timer, cancelled on unload), the meter is identified
    again: a firmware update shows on its device, a change of its points
    reloads the entry."""
    entry = tcp_entry(local_meter)
    await _load(hass, entry)
    runtime = entry.runtime_data
    devices = dr.async_get(hass)
    device = devices.async_get_device_by_identifier((DOMAIN, SERIAL), entry.entry_id)
    assert device is not None
    devices.async_update_device(device.id, sw_version="1.00")
    runtime.identity = dataclasses.replace(runtime.identity, firmware="1.00")
    await _recheck_identity(hass)
    assert runtime.identity_error is None
    device = devices.async_get(device.id)
    assert device is not None
    assert device.sw_version == "1.60"

    # The meter's points changed (it was reconfigured): the entry reloads.
    runtime.identity = dataclasses.replace(runtime.identity, point_models=(201,))
    await _recheck_identity(hass)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not runtime

    local_meter.stop()
    await _recheck_identity(hass)
    assert "the connection failed" in str(entry.runtime_data.identity_error)


async def test_the_identity_check_stops_with_the_entry(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    entry = tcp_entry(local_meter)
    await _load(hass, entry)
    checks: list[S8000Client] = []
    identify = S8000Client.identify

    async def counted(client: S8000Client) -> Identity:
        checks.append(client)
        return await identify(client)

    with patch.object(S8000Client, "identify", counted):
        await _recheck_identity(hass)
    assert len(checks) == 1
    # Its own client: the readings' one goes on refusing another meter.
    assert checks[0] is not entry.runtime_data.client

    def identity_timers() -> list[asyncio.TimerHandle]:
        """The timers of this entry's identity check (by the name it gives them)."""
        name = f"{DOMAIN} identity {entry.entry_id}"
        return [
            handle
            for handle in get_scheduled_timer_handles(hass.loop)
            if str(getattr(getattr(handle, "_callback", None), "__self__", None)).find(name) >= 0
        ]

    assert len(identity_timers()) == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert identity_timers() == []


async def test_voltage_sensors_follow_the_wiring_not_the_first_poll(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    """A meter without voltage when the entry is set up (it has just started,
    or a fuse is out) still gets the voltage sensors its service measures."""
    read = S8000Client.read

    async def without_voltage(client: S8000Client, *args: Any, **kwargs: Any) -> MeterData:
        data = await read(client, *args, **kwargs)
        return dataclasses.replace(
            data,
            voltage=dict.fromkeys(data.voltage),
            line_voltage=dict.fromkeys(data.line_voltage),
        )

    entry = tcp_entry(local_meter)
    enable_entities(hass, entry, "voltage_a", "voltage_c")
    with patch.object(S8000Client, "read", without_voltage):
        await _load(hass, entry)
        assert entry.state is ConfigEntryState.LOADED
        assert _state(hass, f"{SERIAL}_voltage_a") == STATE_UNKNOWN
    registry = er.async_get(hass)
    for key in (
        *(f"voltage_{p}" for p in "abc"),
        *(f"line_voltage_{p}" for p in ("ab", "bc", "ca")),
    ):
        assert registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_{key}"), key
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    assert float(_state(hass, f"{SERIAL}_voltage_c")) == pytest.approx(120, rel=0.05)


async def test_pulse_inputs_as_the_options_describe_them(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    entry = tcp_entry(
        local_meter,
        **{OPT_PULSES: {"1": {"kind": "water", "unit": "L"}, "2": {"kind": "count", "unit": ""}}},
    )
    # A bare count is disabled until enabled (see test_entities).
    enable_entities(hass, entry, "pulse_2")
    await _load(hass, entry)
    registry = er.async_get(hass)
    water_id = registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_pulse_1")
    count_id = registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_pulse_2")
    assert water_id is not None
    assert count_id is not None
    water = hass.states.get(water_id)
    count = hass.states.get(count_id)
    assert water is not None
    assert count is not None
    assert water.attributes["device_class"] == "water"
    assert water.attributes["unit_of_measurement"] == "L"
    assert water.attributes["state_class"] == "total_increasing"
    assert "device_class" not in count.attributes
    assert "unit_of_measurement" not in count.attributes
    assert float(water.state) >= 0


async def test_a_pulse_count_that_goes_back_is_raised_as_that_pulse_input(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    """A pulse input's count that goes back (the meter's memory cleared) is
    said of that pulse input, not of a meter point."""
    entry = tcp_entry(local_meter, **{OPT_PULSES: {"2": {"kind": "water", "unit": "L"}}})
    await _load(hass, entry)
    coordinator = entry.runtime_data.coordinator
    data = coordinator.data.meter_data
    high = [dataclasses.replace(p, value=(p.value or 0) + 50.0) for p in data.pulses]
    low = [p if p.number == 1 else dataclasses.replace(p, value=1.0) for p in high]
    for pulses in (high, low, low):
        coordinator._guard(dataclasses.replace(data, pulses=tuple(pulses)))
    issues = [
        i for i in ir.async_get(hass).issues.values() if i.issue_id.startswith("counter_step")
    ]
    assert [i.translation_key for i in issues] == ["pulse_reset"]
    assert issues[0].translation_placeholders == {
        "title": entry.title,
        "pulse": "2",
        "before": f"{high[1].value:.3f}",
        "after": "1.000",
    }


async def test_diagnostics_are_redacted(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, local_meter: LocalMeter
) -> None:
    assert await async_setup_component(hass, "diagnostics", {})
    entry = tcp_entry(local_meter, **{OPT_NAMES: {"1": "Kitchen"}})
    await _load(hass, entry)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = str(diagnostics)
    assert SERIAL not in text
    assert "12:34:56" not in text
    assert "Kitchen" not in text
    assert "127.0.0.1" not in text
    assert diagnostics["identity"]["model"] == "S8UTS-083"
    assert diagnostics["polling"]["readings_ok"] is True
    assert len(diagnostics["last_poll"]["points"]) == 8
    assert diagnostics["last_poll"]["transactions"] == 10


async def test_unused_points_lose_their_devices(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    entry = tcp_entry(local_meter)
    await _load(hass, entry)
    devices = dr.async_get(hass)
    assert len(dr.async_child_entries_for_config_entry(devices, entry.entry_id)) == 8
    point_3 = devices.async_get_child_device_by_identifier(
        (DOMAIN, f"{SERIAL}_point_3"), entry.entry_id
    )
    assert point_3 is not None
    meter = devices.async_get_device_by_identifier((DOMAIN, SERIAL), entry.entry_id)
    assert meter is not None
    # In use: neither the point nor the meter can be deleted by hand.
    assert not await async_remove_config_entry_device(hass, entry, point_3)
    assert not await async_remove_config_entry_device(hass, entry, meter)

    hass.config_entries.async_update_entry(entry, options={OPT_POINTS: [1, 2]})
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    children = dr.async_child_entries_for_config_entry(devices, entry.entry_id)
    assert sorted(next(iter(c.identifiers))[1] for c in children) == [
        f"{SERIAL}_point_1",
        f"{SERIAL}_point_2",
    ]
    assert await async_remove_config_entry_device(hass, entry, point_3)


async def test_a_reset_while_home_assistant_was_away_is_caught(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    """The guards' state is kept across an unload: a meter cleared while the
    entry was down is caught on the first poll after it comes back."""
    entry = tcp_entry(local_meter)
    await _load(hass, entry)
    await entry.runtime_data.coordinator.async_refresh()
    before = float(_state(hass, f"{SERIAL}_point8_energy_delivered"))
    assert before > 0
    assert await hass.config_entries.async_unload(entry.entry_id)

    local_meter.clear()
    # Metering again from zero at real speed, not twenty times faster: the
    # register must still be below what it was when Home Assistant polls it
    # (at the first run's speed a slow start-up could carry it past).
    local_meter.options = ["--speed", "1"]
    local_meter.start()
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert _state(hass, f"{SERIAL}_point8_energy_delivered") == STATE_UNAVAILABLE
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    after = float(_state(hass, f"{SERIAL}_point8_energy_delivered"))
    assert after >= before


async def test_nothing_listening_retries_setup(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=SERIAL,
        data={CONF_TYPE: "tcp", CONF_HOST: "127.0.0.1", CONF_PORT: free_port(), CONF_UNIT_ID: 1},
    )
    await _load(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert "did not answer" in entry.reason


async def test_phase_entities_are_disabled_until_enabled(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    entry = tcp_entry(local_meter)
    await _load(hass, entry)
    registry = er.async_get(hass)
    ids = {
        key: registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_point8_{key}_a")
        for key in ("phase_power", "phase_current")
    }
    for entity_id in ids.values():
        assert entity_id is not None
        entity = registry.async_get(entity_id)
        assert entity is not None
        assert entity.disabled_by is er.RegistryEntryDisabler.INTEGRATION
        registry.async_update_entity(entity_id, disabled_by=None)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    for key, entity_id in ids.items():
        assert entity_id is not None
        state = hass.states.get(entity_id)
        assert state is not None, key
        assert float(state.state) > 0, key
