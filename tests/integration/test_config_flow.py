"""The config flow in a running Home Assistant."""

from __future__ import annotations

import pytest
from homeassistant import config_entries
from homeassistant.const import CONF_DEVICE, CONF_HOST, CONF_PORT, CONF_TYPE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.s8000.const import CONF_BAUDRATE, CONF_PARITY, CONF_UNIT_ID, DOMAIN


async def test_menu_offers_tcp_and_serial(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["tcp", "serial"]


async def test_tcp_entry_is_created_with_normalised_host(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "tcp"}
    )
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: " Meter.Local ", CONF_PORT: 502, CONF_UNIT_ID: 3}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_TYPE: "tcp",
        CONF_HOST: "meter.local",
        CONF_PORT: 502,
        CONF_UNIT_ID: 3,
    }


async def test_tcp_unit_id_out_of_range_is_refused(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "tcp"}
    )
    with pytest.raises(Exception, match="unit_id"):
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_HOST: "10.0.0.5", CONF_PORT: 502, CONF_UNIT_ID: 300}
        )


async def test_serial_entry_and_duplicate_abort(hass: HomeAssistant) -> None:
    data = {
        CONF_DEVICE: "/dev/ttyUSB0",
        CONF_BAUDRATE: "9600",
        CONF_PARITY: "even",
        CONF_UNIT_ID: 7,
    }
    for expected in (FlowResultType.CREATE_ENTRY, FlowResultType.ABORT):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": config_entries.SOURCE_USER}
        )
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": "serial"}
        )
        result = await hass.config_entries.flow.async_configure(result["flow_id"], data)
        assert result["type"] is expected
    assert result["reason"] == "already_configured"
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.data[CONF_BAUDRATE] == 9600
    assert entry.data[CONF_TYPE] == "serial"
