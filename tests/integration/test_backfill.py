"""No gaps after downtime: a day Home Assistant did not poll is imported from
the meter's interval memory into the hourly statistics.

A real Home Assistant with its recorder, and the real local meter metering a
simulated panel as fast as it can (a small meter: three points of two CTs,
at 4 kHz, 400 times faster than real time).  Home Assistant's clock
follows the meter's: before each step it is moved to the meter's time."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TYPE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
    statistics_during_period,
)

from custom_components.s8000.backfill import async_backfill
from custom_components.s8000.const import CONF_UNIT_ID, DOMAIN
from s8000_engine.client import connect_tcp
from s8000_engine.storage import DATABASE_NAME, Store

from .conftest import SERIAL, LocalMeter, free_port, seed_store

HOUR = timedelta(hours=1)
FIVE = timedelta(minutes=5)
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
SMALL = {
    "model": "S8120-032",
    "service": "1p3w",
    "points": [
        {"name": "Heat pump", "ct_primary": 100, "phases": ["A", "B"]},
        {"name": "Kitchen", "ct_primary": 50, "phases": ["A", "B"]},
        {"name": "Base", "ct_primary": 50, "phases": ["A", "B"]},
    ],
}


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder comes up before Home Assistant does, as it must."""
    return


@pytest.fixture
def fast_meter(tmp_path: Path) -> Any:
    config = tmp_path / "small.json"
    config.write_text(json.dumps(SMALL))
    meter = LocalMeter(
        tmp_path / "meter",
        ["--config", str(config), "--speed", "400", "--sample-rate", "4000",
         "--interval", "1", "--start", START.isoformat()],
        port=free_port(),
    )  # fmt: skip
    seed_store(meter.data)
    meter.start()
    yield meter
    meter.stop()


async def _meter_time(meter: LocalMeter) -> datetime:
    """How far the meter has metered.  Its clock may run ahead of what it has
    metered when the simulation cannot keep up (a busy machine), so this is
    its clock, but no later than the end of its newest stored interval."""
    async with connect_tcp(meter.host, meter.port) as client:
        data = await client.read()
    assert data.utc is not None
    newest = data.intervals.newest
    metered = data.utc if newest is None else min(data.utc, newest + 60)
    return datetime.fromtimestamp(metered, UTC)


async def _pause(hass: HomeAssistant) -> None:
    """Let real time pass (the event loop's clock is frozen with Home
    Assistant's, so asyncio.sleep would never return)."""
    await hass.async_add_executor_job(time.sleep, 0.2)


async def _until(hass: HomeAssistant, meter: LocalMeter, moment: datetime) -> datetime:
    """Wait (real time) until the meter's clock has passed ``moment``."""
    while (now := await _meter_time(meter)) < moment:
        await _pause(hass)
    return now


def _hour_ends(meter: LocalMeter, first: datetime, last: datetime) -> dict[datetime, list[int]]:
    """The meter's point-1 registers at each hour end in [first, last], from
    its own SQLite file."""
    with Store.open(meter.data / DATABASE_NAME, create=False) as store:
        records = store.intervals((first - HOUR).timestamp(), last.timestamp(), points=[0])
    ends: dict[datetime, list[int]] = {}
    for record in records:
        end = datetime.fromtimestamp(record.start + record.length, UTC)
        if end.minute == 0 and first <= end <= last:
            ends[end] = record.points[0].registers
    return ends


async def _poll(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, entry: MockConfigEntry, meter: LocalMeter
) -> datetime:
    now = await _meter_time(meter)
    freezer.move_to(now)
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    return now


async def _compile(hass: HomeAssistant, first: datetime, last: datetime) -> None:
    """Compile the statistics of the five-minute periods in [first, last), as
    the recorder does every five minutes (an hour's row comes with its last
    period)."""
    await async_wait_recording_done(hass)
    period = first
    while period < last:
        do_adhoc_statistics(hass, start=period)
        period += FIVE
    await async_wait_recording_done(hass)


def _hourly(hass: HomeAssistant, entity_id: str) -> dict[datetime, dict[str, Any]]:
    stats = statistics_during_period(
        hass, START - HOUR, None, {entity_id}, "hour", None, {"sum", "state"}
    )
    return {datetime.fromtimestamp(row["start"], UTC): row for row in stats.get(entity_id, [])}


@pytest.mark.usefixtures("socket_enabled")
async def test_a_day_without_polls_is_filled_from_the_meter(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, fast_meter: LocalMeter
) -> None:
    meter = fast_meter
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=SERIAL,
        title=f"S8120-032 {SERIAL}",
        data={CONF_TYPE: "tcp", CONF_HOST: meter.host, CONF_PORT: meter.port, CONF_UNIT_ID: 1},
    )
    entry.add_to_hass(hass)
    freezer.move_to(await _meter_time(meter))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{SERIAL}_point1_energy_delivered"
    )
    assert entity_id is not None

    # Home Assistant polls for two hours of meter time (and a bit).
    while (now := await _poll(hass, freezer, entry, meter)) < START + 2 * HOUR + 10 * FIVE:
        await _pause(hass)
    stopped = now
    stopped_period = stopped.replace(
        minute=stopped.minute - stopped.minute % 5, second=0, microsecond=0
    )
    await _compile(hass, START, stopped_period)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    # A day of meter time without Home Assistant.
    back = await _until(hass, meter, stopped + timedelta(days=1, minutes=15))
    freezer.move_to(back)
    # Starting again, the recorder compiles the periods it missed, as it does
    # on every start: the hour polling stopped in gets its row, the day after
    # it none (no states).
    now_hour = back.replace(minute=0, second=0, microsecond=0)
    await _compile(hass, stopped_period, now_hour)
    before = _hourly(hass, entity_id)
    anchor_hour = max(before)
    assert anchor_hour == stopped.replace(minute=0, second=0, microsecond=0)
    anchor = before[anchor_hour]

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)

    after = _hourly(hass, entity_id)
    gap = [anchor_hour + HOUR * (i + 1) for i in range(int((now_hour - anchor_hour) / HOUR) - 1)]
    assert len(gap) >= 24  # a day without polls, in whole hours
    assert set(after) == set(before) | set(gap), "the gap is filled, nothing else"
    for hour, row in before.items():
        assert after[hour] == row, "what the recorder wrote is untouched"

    ends = _hour_ends(meter, gap[0], gap[-1] + HOUR)
    # Every hour of the gap after the first is the meter's own hour, to within
    # one register step (1 mWh).
    for hour in gap[1:]:
        metered = (ends[hour + HOUR][0] - ends[hour][0]) / 1e6
        imported = after[hour]["sum"] - after[hour - HOUR]["sum"]
        assert imported == pytest.approx(metered, abs=2e-6), hour
        assert after[hour]["state"] == pytest.approx(ends[hour + HOUR][0] / 1e6, abs=2e-6)
    # The first continues from the last state the recorder saw: no energy is
    # lost or counted twice at that edge.
    first = after[gap[0]]
    assert first["sum"] - anchor["sum"] == pytest.approx(first["state"] - anchor["state"], abs=1e-9)
    assert first["state"] == pytest.approx(ends[gap[0] + HOUR][0] / 1e6, abs=2e-6)

    # The hour Home Assistant came back in: the recorder compiles it, and it
    # holds that hour's energy only, not the day's.
    while (now := await _poll(hass, freezer, entry, meter)) < now_hour + HOUR + FIVE:
        await _pause(hass)
    await _compile(hass, now_hour, now_hour + HOUR)
    resumed = _hourly(hass, entity_id)
    last_gap = resumed[gap[-1]]
    comeback = resumed[now_hour]["sum"] - last_gap["sum"]
    ends = _hour_ends(meter, now_hour, now_hour + HOUR)
    assert 0 <= comeback <= (ends[now_hour + HOUR][0] - ends[now_hour][0]) / 1e6 + 2e-6

    # A second backfill changes nothing.
    result = await async_backfill(hass, entry)
    await async_wait_recording_done(hass)
    assert result.hours == 0
    assert _hourly(hass, entity_id) == resumed
    assert await hass.config_entries.async_unload(entry.entry_id)
