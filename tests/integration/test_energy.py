"""What reaches the Energy dashboard's statistics when the meter goes away,
comes back, or has its registers cleared: no dip, no spike.

A real Home Assistant with its recorder polls the real local meter on
loopback.  Home Assistant's clock is moved five minutes between polls, so each
poll lands in its own five-minute statistics period, and those periods are
compiled the way the recorder compiles them every five minutes."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TYPE, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
    statistics_during_period,
)

from custom_components.s8000.const import CONF_UNIT_ID, DOMAIN
from custom_components.s8000.coordinator import async_check_identity
from custom_components.s8000.repairs import wrong_meter_issue_id

from .conftest import SERIAL, LocalMeter, seed_store

POINT = 8  # the base load: always on in the simulated panel


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder comes up before Home Assistant does, as it must."""
    return


async def _setup(hass: HomeAssistant, meter: LocalMeter) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=meter.serial,
        title=f"S8UTS-083 {meter.serial}",
        data={CONF_TYPE: "tcp", CONF_HOST: meter.host, CONF_PORT: meter.port, CONF_UNIT_ID: 1},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def _entity(hass: HomeAssistant) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{SERIAL}_point{POINT}_energy_delivered"
    )
    assert entity_id is not None
    return entity_id


async def _run(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    meter: LocalMeter,
    steps: list[Callable[[], Awaitable[None] | None] | None],
) -> tuple[str, list[str], datetime]:
    """Set up, then per step: move five minutes on, do the step, poll once.
    Returns the entity, the state after each poll, and the first period."""
    start = (dt_util.utcnow() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    freezer.move_to(start)
    entry = await _setup(hass, meter)
    entity_id = _entity(hass)
    states = [hass.states.get(entity_id).state]  # type: ignore[union-attr]
    for i, step in enumerate(steps, 1):
        freezer.move_to(start + timedelta(minutes=5 * i))
        if step is not None and (awaited := step()) is not None:
            await awaited
        await entry.runtime_data.coordinator.async_refresh()
        await hass.async_block_till_done()
        states.append(hass.states.get(entity_id).state)  # type: ignore[union-attr]
    await async_wait_recording_done(hass)
    for i in range(len(steps) + 1):
        do_adhoc_statistics(hass, period="5minute", start=start + timedelta(minutes=5 * i))
        await async_wait_recording_done(hass)
    assert await hass.config_entries.async_unload(entry.entry_id)
    return entity_id, states, start


def _sums(hass: HomeAssistant, entity_id: str, start: datetime) -> list[float]:
    stats: dict[str, list[dict[str, Any]]] = statistics_during_period(
        hass, start, None, {entity_id}, "5minute", None, {"sum", "state"}
    )
    return [row["sum"] for row in stats[entity_id]]


def _numbers(states: list[str]) -> list[float]:
    return [float(s) for s in states if s != STATE_UNAVAILABLE]


def _assert_no_dip_no_spike(values: list[float], largest_step: float) -> None:
    steps = [b - a for a, b in itertools.pairwise(values)]
    assert all(step >= 0 for step in steps), f"a dip: {values}"
    assert all(step <= largest_step for step in steps), f"a spike: {values}"


@pytest.mark.usefixtures("socket_enabled")
async def test_a_meter_that_stops_answering_and_comes_back(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    local_meter: LocalMeter,
) -> None:
    """Unavailable while away (never 0), then it continues; the statistics'
    sum only grows, by no more than the meter metered."""
    entity_id, states, start = await _run(
        hass,
        freezer,
        local_meter,
        [None, None, local_meter.stop, None, local_meter.start, None, None],
    )
    assert states[3] == STATE_UNAVAILABLE
    assert states[4] == STATE_UNAVAILABLE
    values = _numbers(states)
    assert len(values) == 6
    assert values[-1] > values[0]
    # The meter (20x speed) meters a few Wh a second on point 1; between two
    # polls here a few seconds pass, so 1 kWh bounds any honest step.
    _assert_no_dip_no_spike(values, 1.0)
    sums = _sums(hass, entity_id, start)
    assert sums, "no statistics were compiled"
    _assert_no_dip_no_spike(sums, 1.0)
    assert sums[-1] == pytest.approx(values[-1] - values[0], abs=1e-6)
    # (The meter's simulated clock runs 20 times faster: only its clock is off.)
    assert {i.translation_key for i in ir.async_get(hass).issues.values()} <= {"clock_offset"}


@pytest.mark.usefixtures("socket_enabled")
async def test_a_register_reset_is_raised_and_kept_out_of_the_statistics(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    local_meter: LocalMeter,
) -> None:
    """The meter's memory is cleared: its registers restart at 0.  The entity
    is held for one poll, then continues from its total; a repair issue says
    what happened; the statistics never see the drop."""

    def clear() -> None:
        local_meter.clear()
        local_meter.start()

    entity_id, states, start = await _run(
        hass, freezer, local_meter, [None, None, clear, None, None, None]
    )
    assert states[3] == STATE_UNAVAILABLE  # the low value is held, not shown
    values = _numbers(states)
    assert len(values) == 6
    _assert_no_dip_no_spike(values, 1.0)
    sums = _sums(hass, entity_id, start)
    _assert_no_dip_no_spike(sums, 1.0)
    issues = ir.async_get(hass).issues
    keys = {issue.translation_key for issue in issues.values()}
    # (The pulse inputs' counts, cleared too, are said of the pulse inputs.)
    assert "counter_reset" in keys
    assert keys - {"clock_offset"} <= {"counter_reset", "pulse_reset"}
    reset = next(i for i in issues.values() if "point8_energy_delivered" in i.issue_id)
    assert reset.translation_placeholders is not None
    assert reset.translation_placeholders["point"] == "8"


@pytest.mark.usefixtures("socket_enabled")
async def test_another_meter_at_the_address_never_reaches_the_statistics(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    local_meter: LocalMeter,
    tmp_path: Path,
) -> None:
    """Meter B (another serial, another map) answers at meter A's address for
    several polls, while a write is asked for and the identity check runs;
    then A is back.  B's energy is never shown, so never compiled: the sum
    grows by A's own energy only, and the repair names both serials."""
    own, other = local_meter.data, tmp_path / "other"
    seed_store(other, "4200099999", "00:21:B6:99:99:99")

    def swap(data: Path, options: list[str]) -> None:
        local_meter.stop()
        local_meter.data, local_meter.options = data, options
        local_meter.start()

    async def write_and_check_identity() -> None:
        [entry] = hass.config_entries.async_entries(DOMAIN)
        with pytest.raises(HomeAssistantError, match="4200099999"):
            await hass.services.async_call(
                DOMAIN, "reset_peak_demand", {"config_entry_id": entry.entry_id}, blocking=True
            )
        await async_check_identity(hass, entry)
        issue = ir.async_get(hass).async_get_issue(DOMAIN, wrong_meter_issue_id(entry.entry_id))
        assert issue is not None
        assert issue.translation_placeholders is not None
        assert issue.translation_placeholders["expected"] == SERIAL
        assert issue.translation_placeholders["found"] == "S8UTS-241 serial 4200099999"

    a_options = list(local_meter.options)
    entity_id, states, start = await _run(
        hass,
        freezer,
        local_meter,
        [
            None,
            lambda: swap(other, [*a_options, "--model", "S8UTS-241"]),
            write_and_check_identity,
            None,
            None,
            lambda: swap(own, a_options),
            None,
        ],
    )
    assert states[2:6] == [STATE_UNAVAILABLE] * 4
    values = _numbers(states)
    assert len(values) == 4
    _assert_no_dip_no_spike(values, 1.0)
    sums = _sums(hass, entity_id, start)
    _assert_no_dip_no_spike(sums, 1.0)
    assert sums[-1] == pytest.approx(values[-1] - values[0], abs=1e-6)
    # Every sum compiled is one of A's own totals: nothing came from B.
    assert sorted({round(x, 9) for x in sums}) == [round(v - values[0], 9) for v in values]
    assert not [
        i for i in ir.async_get(hass).issues.values() if i.translation_key.startswith("counter")
    ]
