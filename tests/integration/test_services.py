"""The integration's actions against the real local meter: setting its clock,
resetting its peak demand, having it send its data; and how they fail (no such
entry, an entry not loaded, a meter that does not answer or refuses)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s8000.const import DOMAIN
from custom_components.s8000.models import S8000ConfigEntry
from custom_components.s8000.repairs import CLOCK_RAISE
from s8000_engine.exceptions import S8000ConnectionError
from s8000_engine.local.meter import DEMO_CONFIG

from .conftest import (
    CLOCK_RESOLUTION_S,
    SERIAL,
    LocalMeter,
    enable_entities,
    free_port,
    meter_clock_offset,
    seed_store,
    tcp_entry,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

ACTIONS = ("set_clock", "reset_peak_demand", "send_data", "backfill")


async def _load(hass: HomeAssistant, meter: LocalMeter, *enabled: str) -> S8000ConfigEntry:
    """The meter set up, with the entities of ``enabled`` (keys) enabled."""
    entry = tcp_entry(meter)
    enable_entities(hass, entry, *enabled)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return entry


def meter_at(tmp_path: Path, speed: float, start: datetime | None = None) -> LocalMeter:
    """A local meter of its own: simulated time ``speed`` times faster, from ``start``."""
    options = ["--speed", str(speed)]
    if start is not None:
        options += ["--start", start.isoformat()]
    meter = LocalMeter(tmp_path / "meter", options, port=free_port())
    seed_store(meter.data)
    return meter


@pytest.fixture
def late_meter(tmp_path: Path) -> Iterator[LocalMeter]:
    """A meter whose clock runs in real time, an hour behind."""
    meter = meter_at(tmp_path, 1, datetime.now(UTC) - timedelta(hours=1))
    meter.start()
    try:
        yield meter
    finally:
        meter.stop()


#: When the block meter's first demand interval ends.
FIRST_END = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
#: Its demand intervals.
DEMAND_INTERVAL = timedelta(minutes=15)


@pytest.fixture
def block_meter(tmp_path: Path) -> Iterator[LocalMeter]:
    """The demo meter with 15-minute block demand, 20 times faster than real
    time, started 5 s of its time before an interval ends: its first peak
    comes at once, and the next interval ends 45 s (real) after it."""
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                **DEMO_CONFIG,
                "demand": {
                    "type": "block",
                    "interval_minutes": round(DEMAND_INTERVAL.total_seconds() / 60),
                },
            }
        )
    )
    meter = meter_at(tmp_path, 20, FIRST_END - timedelta(seconds=5))
    meter.options += ["--config", str(config)]
    meter.start()
    try:
        yield meter
    finally:
        meter.stop()


async def _clock_offset(entry: S8000ConfigEntry, meter: LocalMeter, near: float) -> float:
    """The meter's clock offset, once the meter's own clock is within a second
    or two of ``near`` s ahead of this machine's (it applies a write at its
    next second): as the meter has it, and as the integration reads it."""
    deadline = time.monotonic() + 10
    while abs((measured := await meter_clock_offset(meter)) - near) > CLOCK_RESOLUTION_S:
        assert time.monotonic() < deadline, f"the meter's clock is {measured:+.1f} s off"
        await asyncio.sleep(0.1)
    coordinator = entry.runtime_data.coordinator
    await coordinator.async_refresh()
    assert coordinator.data.clock_offset == pytest.approx(measured, abs=CLOCK_RESOLUTION_S)
    return measured


async def test_actions_exist_before_any_meter_is_loaded(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    for action in ACTIONS:
        assert hass.services.has_service(DOMAIN, action), action

    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "send_data", {"config_entry_id": "no-such-entry"}, blocking=True
        )
    assert caught.value.translation_key == "entry_not_found"
    assert caught.value.translation_placeholders == {"entry_id": "no-such-entry"}

    # An entry of another integration is no meter either.
    other = MockConfigEntry(domain="modbus")
    other.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "reset_peak_demand", {"config_entry_id": other.entry_id}, blocking=True
        )
    assert caught.value.translation_key == "entry_not_found"

    # A meter's entry that is not loaded.
    entry = MockConfigEntry(domain=DOMAIN, unique_id=SERIAL, title="Panel meter")
    entry.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "set_clock", {"config_entry_id": entry.entry_id}, blocking=True
        )
    assert caught.value.translation_key == "entry_not_loaded"
    assert caught.value.translation_placeholders == {"title": "Panel meter"}
    assert "Panel meter is not loaded" in str(caught.value)


async def test_set_clock_to_now_and_to_a_given_time(
    hass: HomeAssistant, late_meter: LocalMeter
) -> None:
    entry = await _load(hass, late_meter)
    coordinator = entry.runtime_data.coordinator
    behind = await meter_clock_offset(late_meter)
    assert behind < -CLOCK_RAISE  # far enough off to say so
    assert coordinator.data.clock_offset == pytest.approx(behind, abs=CLOCK_RESOLUTION_S)

    # To Home Assistant's time.
    await hass.services.async_call(
        DOMAIN, "set_clock", {"config_entry_id": entry.entry_id}, blocking=True
    )
    await _clock_offset(entry, late_meter, 0)

    # To a given time, in Home Assistant's time zone (as the datetime selector
    # gives it, in whole seconds).
    tomorrow = dt_util.now() + timedelta(days=1)
    await hass.services.async_call(
        DOMAIN,
        "set_clock",
        {"config_entry_id": entry.entry_id, "time": tomorrow.strftime("%Y-%m-%d %H:%M:%S")},
        blocking=True,
    )
    await _clock_offset(entry, late_meter, 86400 - tomorrow.microsecond / 1e6)

    # A time the meter's clock cannot hold: refused before it is sent.
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "set_clock",
            {"config_entry_id": entry.entry_id, "time": "1999-12-31T00:00:00+00:00"},
            blocking=True,
        )
    assert caught.value.translation_key == "write_refused"
    assert "UTC" in (caught.value.translation_placeholders or {})["error"]
    assert "refused the change" in str(caught.value)


async def test_reset_peak_demand(hass: HomeAssistant, block_meter: LocalMeter) -> None:
    """Waited for by the meter's own clock: the first demand interval ends
    and sets a peak; after the reset, a poll before the next interval ends
    (15 minutes of meter time later) finds the peak cleared."""
    entry = await _load(hass, block_meter, "point8_peak_demand")
    coordinator = entry.runtime_data.coordinator

    async def poll() -> tuple[float | None, datetime]:
        """Point 8's peak demand, and the meter's time, in a new poll."""
        await coordinator.async_refresh()
        assert coordinator.last_update_success
        data = coordinator.data.meter_data
        assert data.utc is not None
        return data.point(8).peak_demand_w, datetime.fromtimestamp(data.utc, UTC)

    # The base load's first demand interval ends: its demand is the peak.
    while not (found := await poll())[0]:
        assert found[1] < FIRST_END + DEMAND_INTERVAL, "no peak after the first interval"
        await asyncio.sleep(0.05)
    assert found[1] >= FIRST_END

    await hass.services.async_call(
        DOMAIN, "reset_peak_demand", {"config_entry_id": entry.entry_id}, blocking=True
    )
    # The meter clears its peaks at its next second; a peak found once the
    # next interval has ended would prove nothing.
    while (found := await poll())[0]:
        assert found[1] < FIRST_END + DEMAND_INTERVAL, f"the peak is still {found[0]} W"
        await asyncio.sleep(0.05)
    assert found[0] in (None, 0)
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{SERIAL}_point8_peak_demand"
    )
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state in (STATE_UNKNOWN, "0", "0.0")


@dataclass
class ReportHost:
    """An HTTP host a meter reports to: what it was sent."""

    url: str
    reports: asyncio.Queue[tuple[dict[str, str], str]] = field(default_factory=asyncio.Queue)


@pytest.fixture
async def report_host() -> AsyncIterator[ReportHost]:
    """An HTTP host on loopback that takes whatever is POSTed to it."""
    port = free_port()
    host = ReportHost(f"http://127.0.0.1:{port}/reports")

    async def receive(request: web.Request) -> web.Response:
        await host.reports.put((dict(request.headers), await request.text()))
        return web.Response(text="stored")

    app = web.Application()
    app.router.add_post("/reports", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield host
    finally:
        await runner.cleanup()


@pytest.fixture
def reporting_meter(tmp_path: Path, report_host: ReportHost) -> Iterator[LocalMeter]:
    """The demo meter, 20 times faster, recording one-minute intervals (one
    every 3 s), that reports them to ``report_host`` on Send only (no schedule)."""
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({**DEMO_CONFIG, "reporting": {"protocol": "http", "url": report_host.url}})
    )
    meter = meter_at(tmp_path, 20)
    meter.options += ["--config", str(config), "--interval", "1"]
    meter.start()
    try:
        yield meter
    finally:
        meter.stop()


async def test_send_data(
    hass: HomeAssistant, reporting_meter: LocalMeter, report_host: ReportHost
) -> None:
    """Send reaches the meter: it reports its interval memory to its host."""
    entry = await _load(hass, reporting_meter, "stored_intervals")
    coordinator = entry.runtime_data.coordinator
    deadline = time.monotonic() + 30
    while not coordinator.data.meter_data.intervals.count:
        assert time.monotonic() < deadline, "the meter stored no interval"
        await asyncio.sleep(0.2)
        await coordinator.async_refresh()
    assert report_host.reports.empty()  # it reports on Send only

    await hass.services.async_call(
        DOMAIN, "send_data", {"config_entry_id": entry.entry_id}, blocking=True
    )
    # The meter uploads in the background, at its next second.
    headers, body = await asyncio.wait_for(report_host.reports.get(), 30)
    assert headers["X-S8000-Serial"] == SERIAL
    assert int(headers["X-S8000-Intervals"]) >= 1
    assert headers["Content-Type"].startswith("text/csv")
    assert len(body.splitlines()) > 1  # a header row, and the intervals' rows


async def test_a_meter_that_does_not_answer_or_refuses(
    hass: HomeAssistant, local_meter: LocalMeter, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = await _load(hass, local_meter)
    local_meter.stop()
    for action in ("set_clock", "reset_peak_demand", "send_data"):
        with pytest.raises(HomeAssistantError) as caught:
            await hass.services.async_call(
                DOMAIN, action, {"config_entry_id": entry.entry_id}, blocking=True
            )
        assert caught.value.translation_key == "communication_error", action
        assert "did not answer" in str(caught.value)

    # A meter that answers the write with a Modbus exception refused it.
    async def refuse() -> None:
        raise S8000ConnectionError(
            "write Cmd: the device answered with Modbus exception 04 SERVER_DEVICE_FAILURE",
            exception_code=4,
        )

    monkeypatch.setattr(entry.runtime_data.client, "send_now", refuse)
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN, "send_data", {"config_entry_id": entry.entry_id}, blocking=True
        )
    assert caught.value.translation_key == "write_refused"
    assert "exception 04" in str(caught.value)


async def test_backfill_needs_the_start_before_the_end(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    entry = await _load(hass, local_meter)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "backfill",
            {
                "config_entry_id": entry.entry_id,
                "start": "2026-09-02 00:00:00",
                "end": "2026-09-01 00:00:00",
            },
            blocking=True,
            return_response=True,
        )
    assert caught.value.translation_key == "invalid_range"
    placeholders = caught.value.translation_placeholders or {}
    assert placeholders["start"].startswith("2026-09-02T00:00:00")
    assert placeholders["end"].startswith("2026-09-01T00:00:00")
    assert "must be before the end" in str(caught.value)


async def test_backfill_without_the_recorder_is_an_error(
    hass: HomeAssistant, local_meter: LocalMeter
) -> None:
    """Without the recorder there are no statistics to fill: the action says
    so rather than answer that it imported nothing."""
    entry = await _load(hass, local_meter)
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "backfill",
            {"config_entry_id": entry.entry_id},
            blocking=True,
            return_response=True,
        )
    assert caught.value.translation_key == "backfill_no_recorder"
    assert "recorder" in str(caught.value)
