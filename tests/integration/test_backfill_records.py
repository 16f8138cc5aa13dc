"""What the backfill makes of the meter's records, and how it fails.

A real Home Assistant with its recorder (SQLite), and the real local meter
serving Modbus on loopback, its interval memory seeded with hourly records
whose registers the tests choose: some of them a record's "no record" value,
a spike no CT could deliver, a record flagged as metered for part of its
hour, or one whose configuration changed.  Each test gives point 1's
delivered-energy statistic an hourly row (the anchor) and asks the
``s8000.backfill`` action to fill the hours after it; what lands in the
statistics is compared with what the meter recorded.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder
from homeassistant.components.recorder.models import StatisticData, StatisticMeanType
from homeassistant.components.recorder.statistics import async_import_statistics
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    statistics_during_period,
)

from custom_components.s8000.backfill import (
    COOLDOWN,
    RETRY_DELAY,
    BackfillScheduler,
    async_backfill,
)
from custom_components.s8000.const import DOMAIN
from s8000_engine.client.client import connect_tcp
from s8000_engine.storage.store import (
    DATABASE_NAME,
    Checkpoint,
    Flag,
    IntervalRecord,
    PointRecord,
    Store,
)

from .conftest import SERIAL, LocalMeter, free_port, seed_store, tcp_entry

HOUR = timedelta(hours=1)
#: The first recorded hour; the anchor row is this hour's.
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
#: Hours recorded in the seeded memory (the last one ends at START + HOURS).
HOURS = 8
SMALL = {
    "model": "S8120-032",
    "service": "1p3w",
    "points": [
        {"name": "Heat pump", "ct_primary": 100, "phases": ["A", "B"]},
        {"name": "Kitchen", "ct_primary": 50, "phases": ["A", "B"]},
    ],
}
#: The registers (mWh) of point 1 at START: a meter that has metered a while.
BASE = 5_000_000_000
#: mWh every register of a point gains per hour: different for every hour.
GROWTH = [1_000_000 + 37_111 * hour for hour in range(HOURS)]
#: The 64-bit register's "no record" value (SunSpec's "not implemented").
NO_RECORD = 2**64 - 1


@dataclass
class Seeded:
    """A meter with a seeded memory: point 1's delivered register (mWh) at
    each hour's end, as seeded (None where the record holds no value)."""

    meter: LocalMeter
    ends: dict[datetime, int | None]


def _record(
    hour: datetime, registers: list[list[int]], before: list[list[int]], flags: Flag, covered: float
) -> IntervalRecord:
    return IntervalRecord(
        start=int(hour.timestamp()),
        length=3600,
        flags=flags,
        covered=covered,
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
            for index, (first, point) in enumerate(zip(before, registers, strict=True))
            if point[0] != NO_RECORD  # a point left out reads "no record"
        ],
    )


Tamper = Callable[[int, list[list[int]]], tuple[Flag, float]]


def seed(
    tmp_path: Path,
    tamper: Tamper | None = None,
    *,
    start_at: datetime | None = None,
    recorded: int = HOURS,
) -> Seeded:
    """A stopped meter whose memory holds HOURS hourly records from START.

    ``tamper(hour_index, registers)`` may change an hour's registers (of
    that record only) and returns the record's flags and covered seconds.
    Only the first ``recorded`` hours are stored.  The meter starts
    (``start_at``, by default half an hour after the last hour) from the
    registers of the last untampered growth."""
    config = tmp_path / "small.json"
    config.write_text(json.dumps(SMALL))
    data = tmp_path / "meter"
    seed_store(data)
    registers = [[BASE * (p + 1)] * 4 + [0] * 4 for p in range(len(SMALL["points"]))]
    ends: dict[datetime, int | None] = {}
    records = []
    for index, growth in enumerate(GROWTH):
        before = [point[:4] for point in registers]
        for point in registers:
            point[:4] = [value + growth for value in point[:4]]
        stored = [list(point) for point in registers]
        flags, covered = (Flag(0), 3600.0) if tamper is None else tamper(index, stored)
        hour = START + index * HOUR
        ends[hour + HOUR] = None if stored[0][0] == NO_RECORD else stored[0][0]
        if index < recorded:
            records.append(_record(hour, stored, before, flags, covered))
    restart = start_at or START + HOURS * HOUR + HOUR / 2
    with Store.open(data / DATABASE_NAME) as store:
        store.commit(Checkpoint(restart.timestamp(), registers, {}), records)
    meter = LocalMeter(
        data,
        ["--config", str(config), "--speed", "20", "--interval", "60",
         "--start", restart.isoformat()],
        port=free_port(),
    )  # fmt: skip
    return Seeded(meter, ends)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder comes up before Home Assistant does, as it must."""
    return


@pytest.fixture
def started() -> Iterator[list[LocalMeter]]:
    """Meters a test started, stopped after it."""
    meters: list[LocalMeter] = []
    yield meters
    for meter in meters:
        meter.stop()


async def _load(hass: HomeAssistant, seeded: Seeded, started: list[LocalMeter]) -> MockConfigEntry:
    seeded.meter.start()
    started.append(seeded.meter)
    entry = tcp_entry(seeded.meter)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    return entry


def _entity(hass: HomeAssistant) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{SERIAL}_point1_energy_delivered"
    )
    assert entity_id is not None
    return entity_id


async def _anchor(
    hass: HomeAssistant, entity_id: str, state_kwh: float, *, unit: str = "kWh", scale: float = 1
) -> None:
    """Point 1's delivered statistic: one row, at START, ending on ``state_kwh``."""
    async_import_statistics(
        hass,
        {
            "mean_type": StatisticMeanType.NONE,
            "has_sum": True,
            "name": None,
            "source": "recorder",
            "statistic_id": entity_id,
            "unit_class": "energy",
            "unit_of_measurement": unit,
        },
        [StatisticData(start=START, state=state_kwh * scale, sum=0.0)],
    )
    await async_wait_recording_done(hass)


def _hourly(
    hass: HomeAssistant, entity_id: str, unit: str = "kWh"
) -> dict[datetime, dict[str, Any]]:
    """The statistic's hourly rows, in ``unit``."""
    stats = statistics_during_period(
        hass, START - HOUR, None, {entity_id}, "hour", {"energy": unit}, {"sum", "state"}
    )
    return {datetime.fromtimestamp(row["start"], UTC): row for row in stats.get(entity_id, [])}


async def _backfill(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN,
        "backfill",
        {"config_entry_id": entry.entry_id, "start": START, "end": START + HOURS * HOUR},
        blocking=True,
        return_response=True,
    )
    await async_wait_recording_done(hass)
    assert response is not None
    return dict(response)


def _expected_sums(ends: dict[datetime, int | None], hours: int) -> list[float]:
    """The sums of the ``hours`` hours after START, continuing the anchor's 0."""
    first = ends[START + HOUR]
    assert first is not None
    out = []
    for k in range(1, hours + 1):
        end = ends[START + (k + 1) * HOUR]
        assert end is not None
        out.append((end - first) / 1e6)
    return out


@pytest.mark.usefixtures("socket_enabled")
async def test_records_fill_the_hours_after_the_anchor(
    hass: HomeAssistant, tmp_path: Path, started: list[LocalMeter]
) -> None:
    """The reference: an untampered memory fills every hour of the range."""
    seeded = seed(tmp_path)
    entry = await _load(hass, seeded, started)
    entity_id = _entity(hass)
    first = seeded.ends[START + HOUR]
    assert first is not None
    await _anchor(hass, entity_id, first / 1e6)
    assert await _backfill(hass, entry) == {"hours": HOURS - 1, "statistics": 1}
    rows = _hourly(hass, entity_id)
    hole = [START + k * HOUR for k in range(1, HOURS)]
    assert [rows[h]["sum"] for h in hole] == pytest.approx(_expected_sums(seeded.ends, HOURS - 1))


@pytest.mark.usefixtures("socket_enabled")
async def test_the_automatic_backfill_continues_a_statistic_that_stopped_long_before(
    hass: HomeAssistant, tmp_path: Path, started: list[LocalMeter]
) -> None:
    """Home Assistant's last reading is recent, but the statistic's rows
    stopped hours before it: the hours after its last row are found all the
    same (not only those since the last reading), and filled."""
    seeded = seed(tmp_path)
    entry = await _load(hass, seeded, started)
    entity_id = _entity(hass)
    first = seeded.ends[START + HOUR]
    assert first is not None
    await _anchor(hass, entity_id, first / 1e6)
    scheduler = BackfillScheduler(hass, entry)
    scheduler.request(dt_util.utcnow().timestamp())  # the last reading: now
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    scheduler.shutdown()
    rows = _hourly(hass, entity_id)
    hole = [START + k * HOUR for k in range(1, HOURS)]
    assert [rows[h]["sum"] for h in hole] == pytest.approx(_expected_sums(seeded.ends, HOURS - 1))


#: The hour (0-based, from START) whose record the tamper tests spoil.
SPOILT = 5


def _spoil(kind: str) -> Tamper:
    """A tamper that spoils hour SPOILT's record of point 1 in one way."""

    def tamper(index: int, registers: list[list[int]]) -> tuple[Flag, float]:
        if index != SPOILT:
            return Flag(0), 3600.0
        if kind == "no-record":  # the record holds no value: 2^64 - 1
            registers[0][0] = NO_RECORD
        elif kind == "ct-rating":
            # 1,000 kWh in an hour: a 100 A CT on two elements delivers at
            # most 2 x 100 A x 600 V = 120 kW.
            registers[0][0] += 1_000_000_000
        elif kind == "power-off":
            # Metered for 60 s of the hour (the meter was off the rest),
            # yet 30 kWh more: beyond what 120 kW delivers in a minute.
            registers[0][0] += 30_000_000
            return Flag.POWER_OFF, 60.0
        else:  # the configuration changed: the registers may not continue
            return Flag.CONFIG_CHANGED, 3600.0
        return Flag(0), 3600.0

    return tamper


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize("why", ["no-record", "ct-rating", "power-off", "configuration-changed"])
async def test_a_record_that_cannot_be_metered_is_not_imported(
    hass: HomeAssistant,
    tmp_path: Path,
    started: list[LocalMeter],
    why: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A trailing hole (nothing after it bounds it) stops before the hour
    whose record cannot be right, and says why."""
    seeded = seed(tmp_path, _spoil(why))
    entry = await _load(hass, seeded, started)
    entity_id = _entity(hass)
    first = seeded.ends[START + HOUR]
    assert first is not None
    await _anchor(hass, entity_id, first / 1e6)
    with caplog.at_level(logging.INFO, logger="custom_components.s8000"):
        response = await _backfill(hass, entry)
    rows = _hourly(hass, entity_id)
    # The spoilt hour is not imported, nor anything after it.
    assert sorted(rows) == [START + k * HOUR for k in range(SPOILT)], why
    assert response == {"hours": 4, "statistics": 1}
    assert [rows[START + k * HOUR]["sum"] for k in range(1, 5)] == pytest.approx(
        _expected_sums(seeded.ends, 4)
    )
    assert max(row["state"] for row in rows.values()) < 1e5
    assert "rejected" in caplog.text


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize(("unit", "scale"), [("Wh", 1000.0), ("MWh", 0.001)])
async def test_rows_are_written_in_the_statistic_unit(
    hass: HomeAssistant, tmp_path: Path, started: list[LocalMeter], unit: str, scale: float
) -> None:
    """A statistic kept in Wh or MWh gets the meter's kWh converted."""
    seeded = seed(tmp_path)
    entry = await _load(hass, seeded, started)
    entity_id = _entity(hass)
    first = seeded.ends[START + HOUR]
    assert first is not None
    await _anchor(hass, entity_id, first / 1e6, unit=unit, scale=scale)
    await _backfill(hass, entry)
    rows = _hourly(hass, entity_id, unit)
    hole = [START + k * HOUR for k in range(1, HOURS)]
    assert [rows[h]["sum"] for h in hole] == pytest.approx(
        [kwh * scale for kwh in _expected_sums(seeded.ends, HOURS - 1)]
    )
    last = seeded.ends[START + HOURS * HOUR]
    assert last is not None
    assert rows[hole[-1]]["state"] == pytest.approx(last / 1e6 * scale)


@pytest.mark.usefixtures("socket_enabled")
async def test_the_action_says_why_it_did_nothing(
    hass: HomeAssistant, tmp_path: Path, started: list[LocalMeter], caplog: pytest.LogCaptureFixture
) -> None:
    """Another backfill running, or a meter that does not answer, is an
    error of the action; the automatic backfill logs it instead."""
    seeded = seed(tmp_path)
    entry = await _load(hass, seeded, started)
    entity_id = _entity(hass)
    first = seeded.ends[START + HOUR]
    assert first is not None
    await _anchor(hass, entity_id, first / 1e6)

    entry.runtime_data.backfill.running = True
    with pytest.raises(HomeAssistantError) as caught:
        await _backfill(hass, entry)
    assert caught.value.translation_key == "backfill_running"
    assert "already" in str(caught.value)
    entry.runtime_data.backfill.running = False

    seeded.meter.stop()
    with pytest.raises(HomeAssistantError) as caught:
        await _backfill(hass, entry)
    assert caught.value.translation_key == "backfill_read_error"
    assert "could not read" in str(caught.value)
    assert sorted(_hourly(hass, entity_id)) == [START]

    # The automatic backfill (at setup, at the meter's return) logs it.
    with caplog.at_level(logging.WARNING, logger="custom_components.s8000"):
        result = await async_backfill(hass, entry, start=START, end=START + HOURS * HOUR)
    assert result.hours == 0
    assert "could not read the meter's records" in caplog.text


@pytest.mark.usefixtures("socket_enabled")
async def test_an_hour_the_meter_has_not_recorded_yet_is_retried(
    hass: HomeAssistant,
    tmp_path: Path,
    started: list[LocalMeter],
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The meter's clock runs behind Home Assistant's: the hole's last hour
    is not in its memory yet.  The automatic backfill fills what it can,
    says it will try again, and does once the meter has recorded the hour."""
    end = START + HOURS * HOUR
    # The meter's clock a minute before the last hour ends (3 s at 20x).
    seeded = seed(tmp_path, start_at=end - timedelta(minutes=1), recorded=HOURS - 1)
    freezer.move_to(end + timedelta(minutes=10))
    entry = await _load(hass, seeded, started)
    entity_id = _entity(hass)
    first = seeded.ends[START + HOUR]
    assert first is not None
    await _anchor(hass, entity_id, first / 1e6)

    scheduler = BackfillScheduler(hass, entry)
    with caplog.at_level(logging.INFO, logger="custom_components.s8000"):
        scheduler.request(None)
        await hass.async_block_till_done(wait_background_tasks=True)
        await async_wait_recording_done(hass)
        assert "will retry" in caplog.text
        assert START + (HOURS - 1) * HOUR not in _hourly(hass, entity_id)

        # Once the meter has recorded the hour, the retry fills it.
        deadline = time.monotonic() + 60
        while (recorded := await _recorded_end(seeded.meter, end)) is None:
            assert time.monotonic() < deadline, "the meter did not record the hour"
            await hass.async_add_executor_job(time.sleep, 0.2)
        freezer.tick(RETRY_DELAY)
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        await async_wait_recording_done(hass)
    scheduler.shutdown()
    rows = _hourly(hass, entity_id)
    assert sorted(rows) == [START + k * HOUR for k in range(HOURS)]
    assert rows[START + (HOURS - 1) * HOUR]["state"] == pytest.approx(recorded / 1e6, abs=1e-6)


async def _recorded_end(meter: LocalMeter, end: datetime) -> int | None:
    """Point 1's delivered register in the record ending at ``end`` (None:
    none yet), read from the meter over a connection of the test's own."""
    async with connect_tcp(meter.host, meter.port) as client:
        rows = await client.read_intervals((end - HOUR).timestamp(), end.timestamp(), step=3600)
    return rows[0].registers[0][0] if rows else None


@pytest.mark.usefixtures("socket_enabled")
async def test_a_flapping_link_starts_one_backfill_per_cooldown(
    hass: HomeAssistant,
    tmp_path: Path,
    started: list[LocalMeter],
    freezer: FrozenDateTimeFactory,
) -> None:
    """The meter comes back five times in a minute (a flapping link): one
    backfill runs at once, one more after the cooldown for the rest."""
    seeded = seed(tmp_path)
    entry = await _load(hass, seeded, started)
    progress = entry.runtime_data.backfill
    runs: list[float | None] = []
    progress.add_listener(lambda: runs.append(progress.progress))
    scheduler = BackfillScheduler(hass, entry)
    for _ in range(5):
        scheduler.request(dt_util.utcnow().timestamp())
        await hass.async_block_till_done(wait_background_tasks=True)
        freezer.tick(timedelta(seconds=10))
    assert runs.count(0.0) == 1  # a run starts at 0 %
    freezer.tick(COOLDOWN)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert runs.count(0.0) == 2
    scheduler.shutdown()
