"""A meter read through its web pages, end to end: the real local meter serves
its PowerHawk-style pages (``run --pages``) on loopback, a real Home Assistant
with its recorder adds it through the config flow, polls it, feeds the
Energy dashboard, and sees the pages go away and come back without a dip."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
from homeassistant import config_entries
from homeassistant.components.energy.data import async_get_manager
from homeassistant.components.energy.validate import async_validate
from homeassistant.components.recorder import Recorder
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TYPE, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
    statistics_during_period,
)

from custom_components.s8000 import config_flow
from custom_components.s8000.const import DOMAIN
from custom_components.s8000.coordinator import async_check_identity
from custom_components.s8000.diagnostics import async_get_config_entry_diagnostics
from tests.engine.meterproc import serving_app

from .conftest import SERIAL, LocalMeter, free_port

POINT = 8  # the base load: always on in the simulated panel


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder comes up before Home Assistant does, as it must."""
    return


def _unique_id(meter: LocalMeter) -> str:
    return f"web:{meter.host}:{meter.pages_port}"


async def _add_through_the_flow(
    hass: HomeAssistant, meter: LocalMeter
) -> config_entries.ConfigEntry:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "web"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "web"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: " 127.0.0.1 ", CONF_PORT: meter.pages_port}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert result["title"] == f"S8UTS-083 {SERIAL}"  # the pages' own title
    assert result["data"] == {CONF_TYPE: "web", CONF_HOST: "127.0.0.1", CONF_PORT: meter.pages_port}
    entry = result["result"]
    assert entry.unique_id == _unique_id(meter)
    await hass.async_block_till_done()
    return entry


def _sums(hass: HomeAssistant, entity_id: str, start: Any) -> list[float]:
    stats: dict[str, list[dict[str, Any]]] = statistics_during_period(
        hass, start, None, {entity_id}, "5minute", None, {"sum", "state"}
    )
    return [row["sum"] for row in stats[entity_id]]


def _no_dip_no_spike(values: list[float], largest_step: float) -> None:
    steps = [b - a for a, b in itertools.pairwise(values)]
    assert all(step >= 0 for step in steps), f"a dip: {values}"
    assert all(step <= largest_step for step in steps), f"a spike: {values}"


@pytest.mark.usefixtures("socket_enabled")
async def test_a_meter_read_through_its_web_pages_end_to_end(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, pages_meter: LocalMeter
) -> None:
    """Added through the config flow, polled into sensors and the Energy
    dashboard; its pages stop answering and come back: unavailable meanwhile,
    then it continues; the statistics' sum only grows."""
    start = (dt_util.utcnow() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    freezer.move_to(start)
    entry = await _add_through_the_flow(hass, pages_meter)
    registry = er.async_get(hass)
    entity_id = registry.async_get_entity_id(
        "sensor", DOMAIN, f"{_unique_id(pages_meter)}_point{POINT}_energy_delivered"
    )
    assert entity_id is not None
    # Only sensors of what the pages carry: energy and power, no clock,
    # voltage, pulse input, demand or backfill.
    keys = {
        e.unique_id.removeprefix(f"{_unique_id(pages_meter)}_")
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    }
    assert f"point{POINT}_power" in keys
    assert f"point{POINT}_reactive_power" in keys
    assert f"point{POINT}_energy_received" in keys
    assert not {k for k in keys if not k.startswith("point")}, keys
    assert not {k for k in keys if k.endswith(("demand", "current", "power_factor", "ct_primary"))}

    # The Energy dashboard takes the point's energy as a device's consumption.
    assert await async_setup_component(hass, "energy", {})
    manager = await async_get_manager(hass)
    await manager.async_update({"device_consumption": [{"stat_consumption": entity_id}]})

    states = [hass.states.get(entity_id).state]  # type: ignore[union-attr]
    steps = [None, None, pages_meter.stop, None, pages_meter.start, None, None]
    for i, step in enumerate(steps, 1):
        freezer.move_to(start + timedelta(minutes=5 * i))
        if step is not None:
            step()
        await entry.runtime_data.coordinator.async_refresh()
        await hass.async_block_till_done()
        states.append(hass.states.get(entity_id).state)  # type: ignore[union-attr]
    assert states[3] == STATE_UNAVAILABLE
    assert states[4] == STATE_UNAVAILABLE
    values = [float(s) for s in states if s != STATE_UNAVAILABLE]
    assert len(values) == 6
    assert values[-1] > values[0]
    _no_dip_no_spike(values, 1.0)

    await async_wait_recording_done(hass)
    for i in range(len(steps) + 1):
        do_adhoc_statistics(hass, period="5minute", start=start + timedelta(minutes=5 * i))
        await async_wait_recording_done(hass)
    sums = _sums(hass, entity_id, start)
    assert sums, "no statistics were compiled"
    _no_dip_no_spike(sums, 1.0)
    assert sums[-1] == pytest.approx(values[-1] - values[0], abs=1e-6)
    # The dashboard finds the statistics, the unit and the state class right.
    validation = (await async_validate(hass)).as_dict()
    assert validation["device_consumption"] == [[]], validation

    # Nothing writes to, or reads records from, a meter over its pages.
    for action in ("set_clock", "reset_peak_demand", "send_data", "backfill"):
        with pytest.raises(ServiceValidationError) as refused:
            await hass.services.async_call(
                DOMAIN, action, {"config_entry_id": entry.entry_id}, blocking=True
            )
        assert refused.value.translation_key == "web_pages_read_only"

    # The identity check walks the pages again, and finds the same points.
    await async_check_identity(hass, entry)
    assert entry.runtime_data.identity_error is None
    # Diagnostics redact the address, as for a Modbus meter.
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert "127.0.0.1" not in json.dumps(diagnostics)
    assert diagnostics["last_poll"]["points"][POINT - 1]["kwh_delivered"] == pytest.approx(
        values[-1], abs=0.001
    )
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.usefixtures("socket_enabled")
async def test_a_tcp_address_without_modbus_leads_to_its_web_pages(
    hass: HomeAssistant, pages_meter: LocalMeter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (The web pages' port is 80; the local meter's is another, free one.)
    monkeypatch.setattr(config_flow, "DEFAULT_WEB_PORT", pages_meter.pages_port)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}, data=None
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "tcp"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: pages_meter.host, CONF_PORT: free_port(), "unit_id": 1}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "web"
    assert result["errors"] == {"base": "web_pages_found"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: pages_meter.host, CONF_PORT: pages_meter.pages_port}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_TYPE] == "web"
    await hass.async_block_till_done()
    # The same pages are not added twice.
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "web"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: pages_meter.host, CONF_PORT: pages_meter.pages_port}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@contextlib.asynccontextmanager
async def _serving(body: str | bytes) -> AsyncIterator[int]:
    """Another web server on loopback: it answers every path with ``body``."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    async with serving_app(app) as port:
        yield port


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize(
    ("body", "error"),
    [
        (None, "cannot_connect"),
        ("<html><body><p>A printer</p></body></html>", "not_web_pages"),
        (b"<html>" + b" " * 300_000, "unsupported_meter"),  # more than a page may be
    ],
)
async def test_the_web_form_says_what_is_wrong(
    hass: HomeAssistant, body: str | bytes | None, error: str
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "web"}
    )
    async with contextlib.AsyncExitStack() as stack:
        port = free_port() if body is None else await stack.enter_async_context(_serving(body))
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: port}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "web"
    assert result["errors"] == {"base": error}


@pytest.mark.usefixtures("socket_enabled")
async def test_reconfigure_moves_a_web_pages_entry(
    hass: HomeAssistant, pages_meter: LocalMeter
) -> None:
    # Added where nothing answers any more: it waits to be set up again.
    gone = free_port()
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=f"web:127.0.0.1:{gone}",
        title="S8UTS-083",
        data={CONF_TYPE: "web", CONF_HOST: "127.0.0.1", CONF_PORT: gone},
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is config_entries.ConfigEntryState.SETUP_RETRY
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: gone}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: pages_meter.pages_port}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_PORT] == pages_meter.pages_port
    assert entry.unique_id == f"web:127.0.0.1:{gone}"  # an id, not an address
    assert entry.state is config_entries.ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)
