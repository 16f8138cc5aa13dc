"""The integration's repair issues: a meter clock that is off (fixed from the
issue, against the real local meter whose clock is an hour behind), and
another meter answering at the entry's address."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from homeassistant.components.repairs import (
    ConfirmRepairFlow,
    RepairsFlowManager,
    repairs_flow_manager,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s8000.const import (
    DOMAIN,
    OPT_GENERATION,
    OPT_NAMES,
    OPT_POINTS,
    OPT_REVERSED,
)
from custom_components.s8000.direction import WINDOW, DirectionWatch, ct_reversed_issue_id
from custom_components.s8000.models import S8000ConfigEntry
from custom_components.s8000.repairs import (
    CLOCK_RAISE,
    ClockRepairFlow,
    CtReversedRepairFlow,
    async_check_clock,
    async_create_fix_flow,
    async_wrong_meter,
    clock_issue_id,
    wrong_meter_issue_id,
)

from .conftest import (
    CLOCK_RESOLUTION_S,
    SERIAL,
    LocalMeter,
    free_port,
    meter_clock_offset,
    seed_store,
    tcp_entry,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
def late_meter(tmp_path: Path) -> Iterator[LocalMeter]:
    """A meter whose clock runs in real time, an hour behind Home Assistant's."""
    start = datetime.now(UTC) - timedelta(hours=1)
    meter = LocalMeter(
        tmp_path / "meter", ["--speed", "1", "--start", start.isoformat()], port=free_port()
    )
    seed_store(meter.data)
    meter.start()
    try:
        yield meter
    finally:
        meter.stop()


async def _load(hass: HomeAssistant, meter: LocalMeter) -> S8000ConfigEntry:
    entry = tcp_entry(meter)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return entry


async def _flows(hass: HomeAssistant) -> RepairsFlowManager:
    assert await async_setup_component(hass, "repairs", {})
    manager = repairs_flow_manager(hass)
    assert manager is not None
    return manager


def _issue(hass: HomeAssistant, issue_id: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id)


async def test_the_clock_issue_comes_and_goes_with_hysteresis(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id=SERIAL, title="Panel meter")
    entry.add_to_hass(hass)
    issue_id = clock_issue_id(entry.entry_id)

    async_check_clock(hass, entry, None)  # the meter has no time
    async_check_clock(hass, entry, 45.0)  # off, but not enough to say so
    assert _issue(hass, issue_id) is None

    async_check_clock(hass, entry, -125.4)
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_key == "clock_offset"
    assert issue.translation_placeholders == {"title": "Panel meter", "offset": "-125"}
    assert issue.data == {"entry_id": entry.entry_id}

    # A poll's jitter does not rewrite the issue; a real change does.
    async_check_clock(hass, entry, -125.9)
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {"title": "Panel meter", "offset": "-125"}
    async_check_clock(hass, entry, -200.0)
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {"title": "Panel meter", "offset": "-200"}

    # Between 30 and 60 s the issue stays as it is; under 30 s it goes.
    async_check_clock(hass, entry, 45.0)
    async_check_clock(hass, entry, None)
    assert _issue(hass, issue_id) is not None
    async_check_clock(hass, entry, 29.0)
    assert _issue(hass, issue_id) is None


async def test_a_meter_an_hour_behind_is_set_from_the_issue(
    hass: HomeAssistant, late_meter: LocalMeter
) -> None:
    entry = await _load(hass, late_meter)
    coordinator = entry.runtime_data.coordinator
    behind = await meter_clock_offset(late_meter)
    assert behind < -CLOCK_RAISE
    offset = coordinator.data.clock_offset
    assert offset == pytest.approx(behind, abs=CLOCK_RESOLUTION_S)
    # The poll raised the issue, with the offset it read.
    issue_id = clock_issue_id(entry.entry_id)
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["offset"] == str(round(offset))

    flows = await _flows(hass)
    result = await flows.async_init(DOMAIN, context={"issue_id": issue_id})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "confirm"
    assert result["errors"] == {}
    placeholders = result["description_placeholders"]
    assert placeholders is not None
    assert placeholders["title"] == entry.title
    assert placeholders["offset"] == str(round(offset))

    # The meter stops answering: the form comes back with the reason.
    late_meter.stop()
    result = await flows.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_set_clock"}
    assert _issue(hass, issue_id) is not None

    # Back: the clock is set, and the issue is gone.
    late_meter.start()
    result = await flows.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert _issue(hass, issue_id) is None

    # The meter applies the write at its next second; the next poll sees it,
    # and has no issue to raise.
    deadline = time.monotonic() + 10
    while abs(behind := await meter_clock_offset(late_meter)) > CLOCK_RESOLUTION_S:
        assert time.monotonic() < deadline, f"the meter's clock is {behind:+.1f} s off"
        await asyncio.sleep(0.1)
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    assert coordinator.data.clock_offset == pytest.approx(behind, abs=CLOCK_RESOLUTION_S)
    assert _issue(hass, issue_id) is None


async def test_the_clock_flow_aborts_for_a_meter_not_loaded(
    hass: HomeAssistant, late_meter: LocalMeter
) -> None:
    entry = await _load(hass, late_meter)
    async_check_clock(hass, entry, -3600.0)
    issue_id = clock_issue_id(entry.entry_id)
    flows = await _flows(hass)

    result = await flows.async_init(DOMAIN, context={"issue_id": issue_id})
    assert result["type"] is FlowResultType.FORM
    assert await hass.config_entries.async_unload(entry.entry_id)
    result = await flows.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_loaded"
    assert _issue(hass, issue_id) is not None  # still to fix

    # The entry was deleted: nothing to set either.
    await hass.config_entries.async_remove(entry.entry_id)
    ir.async_get(hass).async_get_or_create(
        DOMAIN,
        issue_id,
        data={"entry_id": entry.entry_id},
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="clock_offset",
        translation_placeholders={"title": entry.title, "offset": "-3600"},
    )
    result = await flows.async_init(DOMAIN, context={"issue_id": issue_id})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_loaded"


async def test_the_fix_flows(hass: HomeAssistant) -> None:
    """The clock issue gets its own flow; any other, a plain confirmation."""
    flow = await async_create_fix_flow(hass, "clock_offset_abc", {"entry_id": "abc"})
    assert isinstance(flow, ClockRepairFlow)
    assert flow.entry_id == "abc"
    assert isinstance(
        await async_create_fix_flow(hass, "clock_offset_abc", None), ConfirmRepairFlow
    )
    assert isinstance(
        await async_create_fix_flow(hass, "other", {"entry_id": "abc"}), ConfirmRepairFlow
    )
    flow = await async_create_fix_flow(hass, "ct_reversed_abc_4", {"entry_id": "abc", "point": 4})
    assert isinstance(flow, CtReversedRepairFlow)
    assert (flow.entry_id, flow.point) == ("abc", 4)
    assert isinstance(
        await async_create_fix_flow(hass, "ct_reversed_abc_4", {"entry_id": "abc"}),
        ConfirmRepairFlow,
    )


async def test_the_wrong_meter_issue(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id=SERIAL, title="Panel meter")
    entry.add_to_hass(hass)
    issue_id = wrong_meter_issue_id(entry.entry_id)

    async_wrong_meter(hass, entry, "S8UTS-083 serial 4200099999")
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert not issue.is_fixable
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_key == "wrong_meter"
    assert issue.translation_placeholders == {
        "title": "Panel meter",
        "expected": SERIAL,
        "found": "S8UTS-083 serial 4200099999",
    }

    async_wrong_meter(hass, entry, None)
    assert _issue(hass, issue_id) is None
    async_wrong_meter(hass, entry, None)  # nothing to clear: fine
    assert _issue(hass, issue_id) is None


# -- a CT wired backwards ------------------------------------------------------------------

#: The demo meter's point 4 is a solar inverter: at midday it feeds back.
SOLAR_POINT = 4


@pytest.fixture
def sunny_meter(tmp_path: Path) -> Iterator[LocalMeter]:
    """The demo meter at a June midday (the panel's local time is UTC), its
    time running 200 times faster: 15 minutes pass in under 5 s."""
    meter = LocalMeter(
        tmp_path / "meter",
        ["--speed", "200", "--start", "2026-06-21T11:30:00+00:00"],
        port=free_port(),
    )
    seed_store(meter.data)
    meter.start()
    try:
        yield meter
    finally:
        meter.stop()


def _ct_issues(hass: HomeAssistant, entry: S8000ConfigEntry) -> set[str]:
    prefix = f"ct_reversed_{entry.entry_id}_"
    return {
        issue_id
        for (domain, issue_id) in ir.async_get(hass).issues
        if domain == DOMAIN and issue_id.startswith(prefix)
    }


async def _poll_until_flagged(hass: HomeAssistant, entry: S8000ConfigEntry) -> str:
    """Poll the meter until the solar point is flagged (about 5 s)."""
    issue_id = ct_reversed_issue_id(entry.entry_id, SOLAR_POINT)
    deadline = time.monotonic() + 20
    while _issue(hass, issue_id) is None:
        assert time.monotonic() < deadline, "the solar point was never flagged"
        await asyncio.sleep(0.5)
        await entry.runtime_data.coordinator.async_refresh()
        assert entry.runtime_data.coordinator.last_update_success
    return issue_id


def _state(hass: HomeAssistant, key: str) -> float:
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{SERIAL}_point{SOLAR_POINT}_{key}"
    )
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    return float(state.state)


async def test_a_point_that_only_feeds_back_is_read_reversed_from_the_issue(
    hass: HomeAssistant, sunny_meter: LocalMeter
) -> None:
    entry = await _load(hass, sunny_meter)
    coordinator = entry.runtime_data.coordinator
    assert coordinator.data.meter_data.point(SOLAR_POINT).w < 0  # feeding back
    issue_id = await _poll_until_flagged(hass, entry)
    assert _ct_issues(hass, entry) == {issue_id}  # the load points are not flagged
    issue = _issue(hass, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "ct_reversed"
    assert issue.translation_placeholders == {
        "title": entry.title,
        "point": str(SOLAR_POINT),
        "name": f"#{SOLAR_POINT}",
    }
    # Polled again, it is not raised anew.
    await coordinator.async_refresh()
    assert _issue(hass, issue_id) == issue

    flows = await _flows(hass)
    result = await flows.async_init(DOMAIN, context={"issue_id": issue_id})
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "init"
    assert result["menu_options"] == ["reverse", "generation"]
    assert result["description_placeholders"] == issue.translation_placeholders
    delivered_before = _state(hass, "energy_delivered")
    received_before = _state(hass, "energy_received")

    result = await flows.async_configure(result["flow_id"], {"next_step_id": "reverse"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[OPT_REVERSED] == [SOLAR_POINT]
    assert _issue(hass, issue_id) is None
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    coordinator = entry.runtime_data.coordinator
    assert coordinator.reversed == {SOLAR_POINT}

    # Read the right way round: the power is positive, and the energy the
    # point meters now lands in "energy delivered", which continues from
    # where it was (no step, no repair issue for it).
    point = coordinator.data.meter_data.point(SOLAR_POINT)
    assert point.w is not None
    assert point.w > 0
    assert all(w >= 0 for w in point.phase_w.values())
    assert _state(hass, "power") > 0
    assert _state(hass, "energy_delivered") == pytest.approx(delivered_before, abs=0.05)
    for _ in range(4):
        await asyncio.sleep(0.5)
        await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert _state(hass, "energy_delivered") > delivered_before + 0.01
    assert _state(hass, "energy_received") == pytest.approx(received_before, abs=0.01)
    assert not [
        issue_id
        for (domain, issue_id) in ir.async_get(hass).issues
        if domain == DOMAIN and issue_id.startswith("counter_step_")
    ]
    # Reversed, it is never flagged again.
    for _ in range(10):
        await asyncio.sleep(0.5)
        await coordinator.async_refresh()
    assert _ct_issues(hass, entry) == set()


async def test_a_solar_point_marked_as_generation_is_left_alone(
    hass: HomeAssistant, sunny_meter: LocalMeter
) -> None:
    entry = await _load(hass, sunny_meter)
    issue_id = await _poll_until_flagged(hass, entry)
    flows = await _flows(hass)
    result = await flows.async_init(DOMAIN, context={"issue_id": issue_id})
    result = await flows.async_configure(result["flow_id"], {"next_step_id": "generation"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[OPT_GENERATION] == [SOLAR_POINT]
    assert OPT_REVERSED not in entry.options
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    coordinator = entry.runtime_data.coordinator
    assert coordinator.data.meter_data.point(SOLAR_POINT).w < 0  # still read as it is
    for _ in range(12):
        await asyncio.sleep(0.5)
        await coordinator.async_refresh()
    assert _ct_issues(hass, entry) == set()

    # An issue left from before (raised again by hand) goes at the next poll.
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="ct_reversed",
    )
    await coordinator.async_refresh()
    assert _issue(hass, issue_id) is None


async def test_the_ct_flow_aborts_for_a_meter_not_loaded(
    hass: HomeAssistant, sunny_meter: LocalMeter
) -> None:
    entry = await _load(hass, sunny_meter)
    issue_id = ct_reversed_issue_id(entry.entry_id, SOLAR_POINT)
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        data={"entry_id": entry.entry_id, "point": SOLAR_POINT},
        is_fixable=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="ct_reversed",
    )
    flows = await _flows(hass)
    result = await flows.async_init(DOMAIN, context={"issue_id": issue_id})
    assert result["type"] is FlowResultType.MENU
    assert result["description_placeholders"] == {
        "title": entry.title,
        "point": str(SOLAR_POINT),
        "name": f"#{SOLAR_POINT}",
    }
    assert await hass.config_entries.async_unload(entry.entry_id)
    result = await flows.async_configure(result["flow_id"], {"next_step_id": "reverse"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_loaded"
    result = await flows.async_init(DOMAIN, context={"issue_id": issue_id})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_loaded"
    assert OPT_REVERSED not in entry.options


async def test_only_points_in_use_with_both_totals_are_watched(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=SERIAL,
        title="Panel meter",
        options={OPT_POINTS: [1, 2], OPT_NAMES: {"2": "Heat pump"}},
    )
    entry.add_to_hass(hass)
    watch = DirectionWatch()
    # Point 1 has a total held, point 3 is not in use; point 2 draws a little.
    watch.async_check(hass, entry, 0.0, {1: (None, 1.0), 2: (5.0, 1.0), 3: (0.0, 0.0)}, 3)
    later = {1: (None, 9.0), 2: (5.004, 1.05), 3: (0.0, 9.0)}
    watch.async_check(hass, entry, WINDOW - 1, later, 3)  # not long enough yet
    assert not ir.async_get(hass).issues
    watch.async_check(hass, entry, WINDOW, later, 3)
    assert set(ir.async_get(hass).issues) == {(DOMAIN, ct_reversed_issue_id(entry.entry_id, 2))}
    issue = _issue(hass, ct_reversed_issue_id(entry.entry_id, 2))
    assert issue is not None
    assert issue.translation_placeholders == {
        "title": "Panel meter",
        "point": "2",
        "name": "Heat pump",
    }


async def test_the_direction_window_moves_on(hass: HomeAssistant) -> None:
    """A point that drew for its first window and only feeds back later is
    still found: each window starts where the last one was judged."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id=SERIAL, title="Panel meter")
    entry.add_to_hass(hass)
    watch = DirectionWatch()
    watch.async_check(hass, entry, 0.0, {1: (0.0, 0.0)}, 1)
    watch.async_check(hass, entry, WINDOW, {1: (10.0, 0.0)}, 1)  # it drew: fine
    watch.async_check(hass, entry, 1.5 * WINDOW, {1: (10.0, 0.5)}, 1)
    assert not ir.async_get(hass).issues
    watch.async_check(hass, entry, 2 * WINDOW, {1: (10.001, 1.0)}, 1)  # then only fed back
    assert set(ir.async_get(hass).issues) == {(DOMAIN, ct_reversed_issue_id(entry.entry_id, 1))}
