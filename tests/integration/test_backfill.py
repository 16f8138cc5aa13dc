"""No gaps after downtime: a day Home Assistant did not poll is imported from
the meter's interval memory into the hourly statistics.

A real Home Assistant with its recorder, and the real local meter serving
Modbus on loopback.  Home Assistant polls it for a minute, then is down for
a day; the meter it finds on its return holds that day in its interval
memory.  The day is not metered (26 hours of waveforms took a quarter of an
hour on a busy machine): it is written into the SQLite store the meter
serves, with its registers, before the meter starts again from the end of
it.  So every hour the backfill imports can be checked against the seed.
Home Assistant's clock follows the meter's: before each poll it is moved to
the meter's time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TYPE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
    statistics_during_period,
)

from custom_components.s8000.backfill import async_backfill
from custom_components.s8000.const import CONF_UNIT_ID, DOMAIN
from s8000_engine.client.client import connect_tcp
from s8000_engine.storage.store import (
    DATABASE_NAME,
    Checkpoint,
    Flag,
    IntervalRecord,
    PointRecord,
    Store,
)

from .conftest import SERIAL, LocalMeter, free_port, seed_store

HOUR = timedelta(hours=1)
FIVE = timedelta(minutes=5)
#: The hour Home Assistant polls in, before it goes down.
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
#: The hour it comes back in, a day and more later, and when the meter is back.
BACK = START + 26 * HOUR
RESTART = BACK + HOUR / 2
SMALL = {
    "model": "S8120-032",
    "service": "1p3w",
    "points": [
        {"name": "Heat pump", "ct_primary": 100, "phases": ["A", "B"]},
        {"name": "Kitchen", "ct_primary": 50, "phases": ["A", "B"]},
        {"name": "Base", "ct_primary": 50, "phases": ["A", "B"]},
    ],
}
POINTS = len(SMALL["points"])
#: Meter time runs this much faster than real time: a minute's polls take 3 s.
SPEED = 20
#: The energy (mWh) each register of point ``p`` (0-based) gains in the
#: ``h``-th hour of the day: different for every hour and register, so an
#: hour imported into the wrong row, or from the wrong register, shows.
GROWTH = [
    [[(p + 1) * (700_000 + 53_171 * h + 100_003 * r) for r in range(4)] for p in range(POINTS)]
    for h in range(27)
]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder comes up before Home Assistant does, as it must."""
    return


@pytest.fixture
def meter(tmp_path: Path) -> Iterator[LocalMeter]:
    """The small meter (three points of two CTs), recording hourly intervals,
    its time SPEED times faster, starting half an hour into START."""
    config = tmp_path / "small.json"
    config.write_text(json.dumps(SMALL))
    meter = LocalMeter(
        tmp_path / "before",
        ["--config", str(config), "--speed", str(SPEED), "--interval", "60",
         "--start", (START + HOUR / 2).isoformat()],
        port=free_port(),
    )  # fmt: skip
    seed_store(meter.data)
    meter.start()
    yield meter
    meter.stop()


def _seed_the_day(before: Path, after: Path) -> dict[datetime, list[list[int]]]:
    """A data directory ``after`` for the meter as it is a day after it was
    stopped with ``before``'s data: the hourly intervals of that day in its
    memory (from START's to the one ending at BACK), then half of BACK's
    hour, its registers going on from where they were.  Returns the
    registers (mWh) of every point at each hour's end, and at the restart."""
    with Store.open(before / DATABASE_NAME, create=False) as store:
        checkpoint = store.load_checkpoint()
    assert checkpoint is not None
    assert START < datetime.fromtimestamp(checkpoint.time, UTC) < START + HOUR
    registers = [list(point) for point in checkpoint.registers]
    ends: dict[datetime, list[list[int]]] = {}
    records = []
    hour = START
    for growth in GROWTH:
        start_registers = [point[:4] for point in registers]
        for point, gained in zip(registers, growth, strict=True):
            point[:4] = [value + more for value, more in zip(point[:4], gained, strict=True)]
        if hour == BACK:  # the meter is back half-way through this hour
            break
        ends[hour + HOUR] = [point[:4] for point in registers]
        records.append(
            IntervalRecord(
                start=int(hour.timestamp()),
                length=3600,
                flags=Flag(0),
                covered=3600.0,
                voltage=[120.0, 120.0, None],
                frequency=60.0,
                pulses=[0, 0],
                pulse_deltas=[0, 0],
                points=[
                    PointRecord(
                        point=index,
                        registers=point[:4],
                        deltas=[b - a for a, b in zip(first, point[:4], strict=True)],
                    )
                    for index, (first, point) in enumerate(
                        zip(start_registers, registers, strict=True)
                    )
                ],
            )
        )
        hour += HOUR
    seed_store(after)
    with Store.open(after / DATABASE_NAME) as store:
        store.commit(Checkpoint(RESTART.timestamp(), registers, {}), records)
    ends[RESTART] = [point[:4] for point in registers]
    return ends


async def _meter_time(meter: LocalMeter) -> datetime:
    """The meter's clock, read from it."""
    async with connect_tcp(meter.host, meter.port) as client:
        data = await client.read()
    assert data.utc is not None
    return datetime.fromtimestamp(data.utc, UTC)


async def _pause(hass: HomeAssistant) -> None:
    """Let real time pass (the event loop's clock is frozen with Home
    Assistant's, so asyncio.sleep would never return)."""
    await hass.async_add_executor_job(time.sleep, 0.2)


async def _poll(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, entry: MockConfigEntry, meter: LocalMeter
) -> datetime:
    now = await _meter_time(meter)
    freezer.move_to(now)
    await entry.runtime_data.coordinator.async_refresh()
    assert entry.runtime_data.coordinator.last_update_success
    await hass.async_block_till_done()
    return now


async def _poll_a_minute(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, entry: MockConfigEntry, meter: LocalMeter
) -> datetime:
    """Poll for a minute of meter time; the time of the last poll."""
    first = await _poll(hass, freezer, entry, meter)
    while (now := await _poll(hass, freezer, entry, meter)) < first + timedelta(minutes=1):
        await _pause(hass)
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


def _period(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)


@pytest.mark.usefixtures("socket_enabled")
async def test_a_day_without_polls_is_filled_from_the_meter(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, meter: LocalMeter, tmp_path: Path
) -> None:
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

    # Home Assistant polls for a minute, in START's hour.
    stopped = await _poll_a_minute(hass, freezer, entry, meter)
    await _compile(hass, START, _period(stopped))
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    # A day without Home Assistant, in the meter's memory when it is back.
    meter.stop()
    before_data = meter.data
    meter.data = tmp_path / "after"
    ends = _seed_the_day(before_data, meter.data)
    meter.options[meter.options.index("--start") + 1] = RESTART.isoformat()
    meter.start()
    back = await _meter_time(meter)
    assert RESTART <= back < BACK + HOUR
    freezer.move_to(back)
    # Starting again, the recorder compiles the periods it missed, as it does
    # on every start: the hour polling stopped in gets its row, the day after
    # it none (no states).
    await _compile(hass, _period(stopped), BACK)
    before = _hourly(hass, entity_id)
    assert list(before) == [START]
    anchor = before[START]

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)

    after = _hourly(hass, entity_id)
    gap = [START + HOUR * (i + 1) for i in range(25)]  # a day without polls, in whole hours
    assert set(after) == set(before) | set(gap), "the gap is filled, nothing else"
    assert after[START] == anchor, "what the recorder wrote is untouched"
    # Every hour of the gap after the first is the meter's own hour, and ends
    # on the meter's register (point 1's kWh delivered, in mWh).
    for hour in gap[1:]:
        imported = after[hour]["sum"] - after[hour - HOUR]["sum"]
        assert imported == pytest.approx(
            (ends[hour + HOUR][0][0] - ends[hour][0][0]) / 1e6, abs=1e-6
        ), hour
        assert after[hour]["state"] == pytest.approx(ends[hour + HOUR][0][0] / 1e6, abs=1e-6), hour
    # The first continues from the last state the recorder saw: no energy is
    # lost or counted twice at that edge.
    first = after[gap[0]]
    assert first["sum"] - anchor["sum"] == pytest.approx(first["state"] - anchor["state"], abs=1e-6)
    assert first["state"] == pytest.approx(ends[gap[0] + HOUR][0][0] / 1e6, abs=1e-6)

    # The hour Home Assistant came back in: the recorder compiles it, and it
    # holds that hour's energy only (from the register at its start to the
    # last poll), not the day's.
    await _poll_a_minute(hass, freezer, entry, meter)
    await _compile(hass, BACK, BACK + HOUR)
    resumed = _hourly(hass, entity_id)
    state = hass.states.get(entity_id)
    assert state is not None
    comeback = resumed[BACK]["sum"] - resumed[gap[-1]]["sum"]
    assert comeback == pytest.approx(float(state.state) - ends[BACK][0][0] / 1e6, abs=1e-6)
    assert comeback >= (ends[RESTART][0][0] - ends[BACK][0][0]) / 1e6 - 1e-6

    # A second backfill changes nothing.
    result = await async_backfill(hass, entry)
    await async_wait_recording_done(hass)
    assert result.hours == 0
    assert _hourly(hass, entity_id) == resumed
    assert await hass.config_entries.async_unload(entry.entry_id)


async def _recorded(meter: LocalMeter, first: datetime, end: datetime) -> dict[datetime, Any]:
    """The meter's hourly records whose hour ends in (first, end], by hour
    end: read from it over a connection of the test's own, not the code's
    under test."""
    async with connect_tcp(meter.host, meter.port) as client:
        rows = await client.read_intervals(first.timestamp(), end.timestamp(), step=3600)
    return {datetime.fromtimestamp(row.end, UTC): row.registers for row in rows}


async def _outage(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, meter: LocalMeter
) -> tuple[MockConfigEntry, datetime, datetime]:
    """Home Assistant polls the meter for a minute in START's hour; then both
    go down, and a day later Home Assistant starts first: the entry waits for
    the meter, and the recorder's catch-up compile writes a flat row for every
    hour missed, from the last state it had.  The entry, when polling
    stopped, and when Home Assistant started again."""
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
    stopped = await _poll_a_minute(hass, freezer, entry, meter)
    await _compile(hass, START, _period(stopped))
    meter.stop()
    started = BACK + timedelta(minutes=10)
    freezer.move_to(started)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    await _compile(hass, _period(stopped), _period(started))
    return entry, stopped, started


def _meter_back(meter: LocalMeter, tmp_path: Path) -> None:
    """The meter starts again, its memory holding the day it was down."""
    before_data = meter.data
    meter.data = tmp_path / "after"
    _seed_the_day(before_data, meter.data)
    meter.options[meter.options.index("--start") + 1] = RESTART.isoformat()
    meter.start()


@pytest.mark.usefixtures("socket_enabled")
async def test_hours_compiled_while_the_meter_was_away_are_replaced(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, meter: LocalMeter, tmp_path: Path
) -> None:
    """Home Assistant comes back after a day down, before the meter answers.

    Its recorder compiles the hours it missed from the last states it has:
    flat rows, the sum standing still.  When the meter answers, the backfill
    must take those rows for the hole they are, and replace every one of
    them with the meter's own energy; the hour after keeps its own."""
    entry, _, started = await _outage(hass, freezer, meter)
    registry = er.async_get(hass)
    entity_ids = {
        (point, key): registry.async_get_entity_id("sensor", DOMAIN, f"{SERIAL}_point{point}_{key}")
        for point in range(1, POINTS + 1)
        for key in ("energy_delivered", "energy_received")
    }
    gap = [START + HOUR * (i + 1) for i in range(25)]
    for (point, key), entity_id in entity_ids.items():
        assert entity_id is not None
        flat = _hourly(hass, entity_id)
        assert set(gap) <= set(flat), "the recorder compiled the missed hours"
        assert {flat[hour]["sum"] for hour in gap} == {flat[START]["sum"]}, (point, key)
    before = {ids: _hourly(hass, ids) for ids in entity_ids.values() if ids is not None}

    # The meter answers, its memory holding the day; the entry's retry loads it.
    _meter_back(meter, tmp_path)
    back = await _meter_time(meter)
    freezer.move_to(back)
    async_fire_time_changed(hass, back)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    await async_wait_recording_done(hass)

    records = await _recorded(meter, START, BACK)
    assert set(gap) | {BACK} <= set(records) | {START}
    for (point, key), entity_id in entity_ids.items():
        assert entity_id is not None
        index = 0 if key == "energy_delivered" else 1
        after = _hourly(hass, entity_id)
        assert after[START] == before[entity_id][START], "the last hour seen is untouched"
        # Every hour of the hole holds the meter's own energy...
        for hour in gap[1:]:
            energy = after[hour]["sum"] - after[hour - HOUR]["sum"]
            recorded = records[hour + HOUR][point - 1][index] - records[hour][point - 1][index]
            assert energy == pytest.approx(recorded / 1e6, abs=1e-6), (point, key, hour)
        # ... and the first continues from the last state Home Assistant saw.
        first = after[gap[0]]
        assert first["state"] == pytest.approx(
            records[gap[0] + HOUR][point - 1][index] / 1e6, abs=1e-6
        )
        assert first["sum"] - after[START]["sum"] == pytest.approx(
            first["state"] - after[START]["state"], abs=1e-6
        )

    # The hour the meter came back in keeps its own energy, not the day's.
    entity_id = entity_ids[1, "energy_delivered"]
    assert entity_id is not None
    await _poll_a_minute(hass, freezer, entry, meter)
    await _compile(hass, _period(started), BACK + HOUR)
    resumed = _hourly(hass, entity_id)
    state = hass.states.get(entity_id)
    assert state is not None
    comeback = resumed[BACK]["sum"] - resumed[gap[-1]]["sum"]
    assert comeback == pytest.approx(float(state.state) - records[BACK][0][0] / 1e6, abs=1e-6)

    # Nothing is left to fill, nothing is written again.
    result = await async_backfill(hass, entry, start=START, end=BACK)
    await async_wait_recording_done(hass)
    assert result.hours == 0
    assert _hourly(hass, entity_id) == resumed
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.usefixtures("socket_enabled")
async def test_flat_hours_are_still_replaced_after_a_reload_cut_the_backfill_short(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, meter: LocalMeter, tmp_path: Path
) -> None:
    """As above, but the entry is unloaded (a reload, a restart) while the
    backfill that follows the meter's return waits on the meter.  The next
    setup's last reading is then recent, after the flat hours: the backfill
    must still start from the reading before the outage, kept on disk."""
    entry, _, _ = await _outage(hass, freezer, meter)
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{SERIAL}_point1_energy_delivered"
    )
    assert entity_id is not None
    gap = [START + HOUR * (i + 1) for i in range(25)]
    assert {_hourly(hass, entity_id)[hour]["sum"] for hour in gap} == {
        _hourly(hass, entity_id)[START]["sum"]
    }

    _meter_back(meter, tmp_path)
    freezer.move_to(await _meter_time(meter))
    # The meter is back and the entry loads; its backfill starts, and the
    # meter stops answering before it is done; then the entry is unloaded.
    await hass.config_entries.async_reload(entry.entry_id)
    assert entry.state is ConfigEntryState.LOADED
    meter.pause()
    try:
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    finally:
        meter.resume()
    assert _hourly(hass, entity_id)[gap[-1]]["sum"] == _hourly(hass, entity_id)[START]["sum"]

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    records = await _recorded(meter, START, BACK)
    after = _hourly(hass, entity_id)
    for hour in gap[1:]:
        energy = after[hour]["sum"] - after[hour - HOUR]["sum"]
        recorded = records[hour + HOUR][0][0] - records[hour][0][0]
        assert energy == pytest.approx(recorded / 1e6, abs=1e-6), hour
    assert await hass.config_entries.async_unload(entry.entry_id)
