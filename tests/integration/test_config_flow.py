"""The config flow and the options flow in a running Home Assistant, against
the engine's real local meter (Modbus TCP on loopback, or RTU over a pty
pair) and, for devices that are not a usable S8000, small Modbus TCP servers
started in the test."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from ipaddress import IPv4Network, ip_address
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, patch

import pytest
from homeassistant import config_entries
from homeassistant.components.modbus import async_get_temporary_unit
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_DEVICE, CONF_HOST, CONF_PORT, CONF_TYPE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.service_info.dhcp import DhcpServiceInfo
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from modbus_connection import ModbusSerialParams
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s8000.config_flow import (
    _host_count,
    _row_label,
    _with_identity,
    current_options,
)
from custom_components.s8000.const import (
    CONF_BAUDRATE,
    CONF_MAC,
    CONF_PARITY,
    CONF_UNIT_ID,
    DOMAIN,
    OPT_GENERATION,
    OPT_NAMES,
    OPT_POINTS,
    OPT_PULSES,
    OPT_REVERSED,
)
from s8000_engine.client.data import Identity
from s8000_engine.client.discovery import MAX_ADDRESSES, Found, addresses
from s8000_engine.config.meter import meter_config
from s8000_engine.const import DEFAULT_BAUDRATE, DEFAULT_PARITY
from s8000_engine.local.image import MeterSnapshot, build_map, render
from s8000_engine.local.meter import DEMO_CONFIG
from s8000_engine.modbus.server import Backend
from tests.engine.meterproc import Image, serving

from .conftest import MAC, SERIAL, LocalMeter, free_port

MODEL = "S8UTS-083"
TITLE = f"{MODEL} {SERIAL}"
ENTRY_MAC = MAC.lower()  # as format_mac writes it
INTEGRATION_STRINGS = "custom_components/s8000/strings.json"
TRANSLATIONS = Path(__file__).parents[2] / "custom_components/s8000/translations"
FLOW = "custom_components.s8000.config_flow"


# -- helpers -------------------------------------------------------------------------------


@pytest.fixture
def mock_setup_entry() -> Iterator[AsyncMock]:
    """Entries made by the flow do not really start (setup is tested elsewhere)."""
    with (
        patch("custom_components.s8000.async_setup_entry", return_value=True) as setup,
        patch("custom_components.s8000.async_unload_entry", return_value=True),
    ):
        yield setup


async def start(hass: HomeAssistant, step: str) -> FlowResult:
    """A user flow, at the menu choice ``step``."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    return await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": step})


def tcp_input(port: int, host: str = "127.0.0.1", unit_id: int = 1) -> dict[str, Any]:
    """What the tcp form takes."""
    return {CONF_HOST: host, CONF_PORT: port, CONF_UNIT_ID: unit_id}


def tcp_data(port: int, host: str = "127.0.0.1", unit_id: int = 1) -> dict[str, Any]:
    """The entry data of the local meter reached over TCP."""
    return {CONF_TYPE: "tcp", **tcp_input(port, host, unit_id), CONF_MAC: ENTRY_MAC}


def field(result: FlowResult, name: str) -> Any:
    """The schema marker of one field of a form."""
    return next(key for key in result["data_schema"].schema if key.schema == name)


def suggested(result: FlowResult, name: str) -> Any:
    """The value a form suggests (or defaults to) for one field."""
    marker = field(result, name)
    description = marker.description or {}
    if "suggested_value" in description:
        return description["suggested_value"]
    return marker.default() if callable(marker.default) else None


def selector_options(result: FlowResult, name: str) -> list[Any]:
    """The options of a select field."""
    return list(result["data_schema"].schema[field(result, name)].config["options"])


async def search(hass: HomeAssistant, result: FlowResult, user_input: dict[str, Any]) -> FlowResult:
    """Start a search from its form, watch it progress, and take what follows."""
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    assert result["progress_action"] == "search"
    assert result["description_placeholders"] == {"network": "127.0.0.1/32"}
    await hass.async_block_till_done()
    return await hass.config_entries.flow.async_configure(result["flow_id"])


def assert_translated(result: FlowResult, name: str) -> None:
    """A select field's options are labelled by the translations: it names
    its translation key, and each language has a string for every option."""
    config = result["data_schema"].schema[field(result, name)].config
    key = config["translation_key"]
    for language in ("en", "fr"):
        strings = json.loads((TRANSLATIONS / f"{language}.json").read_text())
        labels = strings["selector"][key]["options"]
        assert set(config["options"]) <= set(labels), (language, key)


def not_an_s8000() -> Backend:
    """A Modbus device with nothing at the SunSpec base: every read is exception 02."""
    return Backend()


def s8000_without_serial() -> Backend:
    """An S8000 register map whose meter reports no serial number."""
    config = meter_config(DEMO_CONFIG)
    regmap = build_map(config)
    return Image(regmap.base, render(regmap, MeterSnapshot(config, serial="")))


def dhcp_info(ip: str = "127.0.0.1", mac: str = "0021b6123456") -> DhcpServiceInfo:
    """What DHCP tells of a meter."""
    return DhcpServiceInfo(ip=ip, hostname="s8000", macaddress=mac)


def zeroconf_info(
    port: int, unit_id: str | None = "1", host: str = "127.0.0.1"
) -> ZeroconfServiceInfo:
    """What the meter's mDNS announcement tells."""
    properties = {"serial": SERIAL, "model": MODEL, "firmware": "1.60", "mac": MAC}
    if unit_id is not None:
        properties["unit_id"] = unit_id
    return ZeroconfServiceInfo(
        ip_address=ip_address(host),
        ip_addresses=[ip_address(host)],
        port=port,
        hostname=f"s8000-{SERIAL}.local.",
        type="_s8000-modbus._tcp.local.",
        name=f"S8000 {SERIAL}._s8000-modbus._tcp.local.",
        properties=properties,
    )


# -- the menu and the search ---------------------------------------------------------------


async def test_menu_offers_search_tcp_serial_and_web_pages(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["search", "tcp", "serial", "web"]


async def test_search_offers_home_assistants_network(hass: HomeAssistant) -> None:
    # The test harness gives Home Assistant one adapter, 10.10.10.10/24.
    result = await start(hass, "search")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "search"
    assert suggested(result, "network") == "10.10.10.0/24"
    assert suggested(result, CONF_PORT) == 502
    assert suggested(result, CONF_UNIT_ID) == 1


@pytest.mark.parametrize(
    "adapters",
    [
        [],
        [{"enabled": False, "ipv4": [{"address": "10.1.2.3", "network_prefix": 24}]}],
        [{"enabled": True, "ipv4": []}],
    ],
)
async def test_search_falls_back_without_an_ipv4_adapter(
    hass: HomeAssistant, adapters: list[dict[str, Any]]
) -> None:
    with patch(f"{FLOW}.async_get_adapters", return_value=adapters):
        result = await start(hass, "search")
    assert suggested(result, "network") == "192.168.1.0/24"


@pytest.mark.parametrize(
    ("network", "error"),
    [
        ("not a network", "invalid_network"),
        ("192.168.1.0/33", "invalid_network"),
        ("2001:db8::/120", "invalid_network"),
        ("10.0.0.0/8", "network_too_large"),
        ("0.0.0.0/0", "network_too_large"),
        ("192.168.0.0/19", "network_too_large"),
    ],
)
async def test_search_refuses_a_bad_network(hass: HomeAssistant, network: str, error: str) -> None:
    result = await start(hass, "search")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"network": network, CONF_PORT: 502, CONF_UNIT_ID: 1}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "search"
    assert result["errors"] == {"network": error}
    assert suggested(result, "network") == network  # what was typed stays


async def test_search_finds_the_meter_and_sets_it_up(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter, mock_setup_entry: AsyncMock
) -> None:
    result = await start(hass, "search")
    result = await search(
        hass, result, {"network": " 127.0.0.1/32 ", CONF_PORT: local_meter.port, CONF_UNIT_ID: 1}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "search_result"
    assert result["description_placeholders"] == {"count": "1"}
    [option] = selector_options(result, "meter")
    assert option["value"] == SERIAL
    assert option["label"].startswith(
        f"{MODEL} · {MODEL}-{SERIAL} · 127.0.0.1:{local_meter.port} · serial {SERIAL} · firmware "
    )

    # The meter goes away before it is picked: the form says so and stays.
    local_meter.stop()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"meter": SERIAL})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "search_result"
    assert result["errors"] == {"base": "cannot_connect"}

    local_meter.start()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"meter": SERIAL})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == TITLE
    assert result["data"] == tcp_data(local_meter.port)
    assert result["result"].unique_id == SERIAL
    assert len(mock_setup_entry.mock_calls) == 1


async def test_search_finding_nothing_aborts(hass: HomeAssistant, socket_enabled: None) -> None:
    port = free_port()
    result = await start(hass, "search")
    result = await search(hass, result, {"network": "127.0.0.1", CONF_PORT: port, CONF_UNIT_ID: 1})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_meters_found"
    assert result["description_placeholders"] == {"network": "127.0.0.1/32", "port": str(port)}


async def test_search_finding_only_configured_meters_aborts(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter
) -> None:
    MockConfigEntry(domain=DOMAIN, unique_id=SERIAL, data=tcp_data(local_meter.port)).add_to_hass(
        hass
    )
    result = await start(hass, "search")
    result = await search(
        hass, result, {"network": "127.0.0.1/32", CONF_PORT: local_meter.port, CONF_UNIT_ID: 1}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_new_meters"
    assert result["description_placeholders"] == {"network": "127.0.0.1/32"}


def test_search_rows_read_like_the_discovery_table() -> None:
    row = Found("192.0.2.7", 502, MODEL, f"{MODEL}-{SERIAL}", MAC, "1.60", "7", SERIAL, "Found")
    assert (
        _row_label(row)
        == f"{MODEL} · {MODEL}-{SERIAL} · 192.0.2.7 · serial {SERIAL} · firmware 1.60"
    )
    other_port = Found("192.0.2.7", 1502, MODEL, f"{MODEL}-{SERIAL}", "", "", "", SERIAL, "Found")
    assert (
        _row_label(other_port) == f"{MODEL} · {MODEL}-{SERIAL} · 192.0.2.7:1502 · serial {SERIAL}"
    )


@pytest.mark.parametrize(
    ("network", "hosts"),
    [
        ("192.168.0.0/20", 4094),
        ("192.168.1.0/24", 254),
        ("192.168.1.6/31", 2),
        ("192.168.1.7/32", 1),
    ],
)
def test_search_counts_the_addresses_it_tries(network: str, hosts: int) -> None:
    # As many as the engine's scan would try: a /20 is the largest it takes.
    assert _host_count(IPv4Network(network)) == hosts == len(addresses([network]))
    assert hosts <= MAX_ADDRESSES


# -- Modbus TCP ----------------------------------------------------------------------------


async def test_tcp_entry_is_created_with_normalised_host(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter, mock_setup_entry: AsyncMock
) -> None:
    result = await start(hass, "tcp")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "tcp"
    assert result["errors"] == {}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], tcp_input(local_meter.port, host=" 127.0.0.1 ")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == TITLE
    assert result["data"] == tcp_data(local_meter.port)
    assert result["result"].unique_id == SERIAL
    assert len(mock_setup_entry.mock_calls) == 1


async def test_tcp_host_is_lower_cased(hass: HomeAssistant) -> None:
    port = 1502
    result = await start(hass, "tcp")
    with patch(f"{FLOW}.async_get_temporary_unit", side_effect=HomeAssistantError) as probe:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], tcp_input(port, host=" Meter.LOCAL ")
        )
    assert result["errors"] == {"base": "link_in_use"}
    params = probe.call_args.args[1]
    assert params.host == "meter.local"
    assert params.port == port


async def test_tcp_unit_id_out_of_range_is_refused(hass: HomeAssistant) -> None:
    result = await start(hass, "tcp")
    with pytest.raises(Exception, match="unit_id"):
        await hass.config_entries.flow.async_configure(
            result["flow_id"], tcp_input(502, host="10.0.0.5", unit_id=300)
        )


async def test_tcp_nothing_listening_cannot_connect_then_recovers(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter, mock_setup_entry: AsyncMock
) -> None:
    result = await start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], tcp_input(free_port())
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], tcp_input(local_meter.port)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    ("device", "reason", "verdict"),
    [
        (not_an_s8000, "not a SunSpec device", "modbus-unknown"),
        (s8000_without_serial, "reports no serial number", "s8000-sunspec"),
    ],
)
async def test_tcp_device_that_is_no_usable_s8000(
    hass: HomeAssistant, socket_enabled: None, device: Any, reason: str, verdict: str
) -> None:
    """Something answers, and is not identified: the form says why, and what a
    quick probe finds there, rather than a bare "not an S8000"."""
    async with serving(device()) as port:
        result = await start(hass, "tcp")
        result = await hass.config_entries.flow.async_configure(result["flow_id"], tcp_input(port))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "tcp"
    assert result["errors"] == {"base": "not_identified"}
    found = result["description_placeholders"]["found"]
    assert reason in found.splitlines()[0]  # the identification's refusal first
    assert f"verdict: {verdict}" in found
    assert suggested(result, CONF_PORT) == port


async def test_tcp_known_meter_moves_its_entry(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter, mock_setup_entry: AsyncMock
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=SERIAL, data=tcp_data(502, host="192.0.2.1", unit_id=1)
    )
    entry.add_to_hass(hass)
    result = await start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], tcp_input(local_meter.port)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == tcp_data(local_meter.port)


async def test_tcp_meter_configured_over_serial_keeps_its_link(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter
) -> None:
    data = {
        CONF_TYPE: "serial",
        CONF_DEVICE: "/dev/ttyUSB0",
        CONF_BAUDRATE: 19200,
        CONF_PARITY: "none",
        CONF_UNIT_ID: 1,
    }
    entry = MockConfigEntry(domain=DOMAIN, unique_id=SERIAL, data=data)
    entry.add_to_hass(hass)
    result = await start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], tcp_input(local_meter.port)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == data


async def test_tcp_ignored_meter_can_be_added_by_hand(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter, mock_setup_entry: AsyncMock
) -> None:
    MockConfigEntry(
        domain=DOMAIN, unique_id=SERIAL, source=config_entries.SOURCE_IGNORE, data={}
    ).add_to_hass(hass)
    result = await start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], tcp_input(local_meter.port)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == tcp_data(local_meter.port)


# -- Modbus RTU ----------------------------------------------------------------------------


async def test_serial_meter_over_the_pty_pair(
    hass: HomeAssistant, serial_meter: LocalMeter, mock_setup_entry: AsyncMock
) -> None:
    result = await start(hass, "serial")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "serial"
    # The form starts from the line settings of a meter as shipped, which the
    # local meter runs with (a pty ignores parity, so they are compared).
    assert suggested(result, CONF_BAUDRATE) == str(DEFAULT_BAUDRATE)
    assert suggested(result, CONF_PARITY) == "even"
    assert DEFAULT_PARITY == "E"
    assert "--parity" not in serial_meter.options
    user_input = {CONF_DEVICE: serial_meter.device, CONF_UNIT_ID: 7}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == TITLE
    assert result["data"] == {
        CONF_TYPE: "serial",
        CONF_DEVICE: serial_meter.device,
        CONF_BAUDRATE: 19200,
        CONF_PARITY: "even",
        CONF_UNIT_ID: 7,
        CONF_MAC: ENTRY_MAC,
    }
    # (Opened again with parity, this pty pair drops the frames; the check
    # below is on the serial number, not on the line settings.)
    user_input = {**user_input, CONF_BAUDRATE: "19200", CONF_PARITY: "none"}

    # The same meter again: configured already, and nothing is changed.
    result = await start(hass, "serial")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.ABORT, result.get("errors")
    assert result["reason"] == "already_configured"


async def test_serial_port_in_use_with_other_settings(hass: HomeAssistant) -> None:
    device = "/dev/ttyS-s8000-test"
    in_use = ModbusSerialParams(device=device, baudrate=9600, parity="E")
    async with async_get_temporary_unit(hass, in_use, 3):
        result = await start(hass, "serial")
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {CONF_DEVICE: device, CONF_BAUDRATE: "19200", CONF_PARITY: "none", CONF_UNIT_ID: 7},
        )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "serial"
    assert result["errors"] == {"base": "link_in_use"}


# -- DHCP ----------------------------------------------------------------------------------


async def test_dhcp_new_meter_is_confirmed_and_set_up(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter, mock_setup_entry: AsyncMock
) -> None:
    # A new meter is probed on the default port, here the local meter's.
    with patch(f"{FLOW}.DEFAULT_PORT", local_meter.port):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": config_entries.SOURCE_DHCP}, data=dhcp_info()
        )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    placeholders = {"model": MODEL, "serial": SERIAL, "host": "127.0.0.1"}
    assert result["description_placeholders"] == placeholders
    [flow] = hass.config_entries.flow.async_progress()
    assert flow["context"]["title_placeholders"] == placeholders
    assert flow["context"]["unique_id"] == SERIAL

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == TITLE
    assert result["data"] == tcp_data(local_meter.port)
    assert len(mock_setup_entry.mock_calls) == 1


async def test_a_meter_discovered_twice_is_offered_once(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter
) -> None:
    """DHCP, then zeroconf, find the same meter: the second flow stops with
    a translated reason while the first waits for the user."""
    with patch(f"{FLOW}.DEFAULT_PORT", local_meter.port):
        first = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": config_entries.SOURCE_DHCP}, data=dhcp_info()
        )
    assert first["type"] is FlowResultType.FORM
    second = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": config_entries.SOURCE_ZEROCONF},
        data=zeroconf_info(local_meter.port),
    )
    assert second["type"] is FlowResultType.ABORT
    assert second["reason"] == "already_in_progress"
    strings = json.loads((Path(__file__).parents[2] / INTEGRATION_STRINGS).read_text())
    assert "already_in_progress" in strings["config"]["abort"]


async def test_dhcp_known_meter_that_moved_gets_its_host_updated(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter
) -> None:
    # A known meter is probed on its entry's port and unit id; another
    # meter's entry (another MAC) is passed over.
    MockConfigEntry(
        domain=DOMAIN,
        unique_id="4200000001",
        data={**tcp_data(1502, host="192.0.2.9"), CONF_MAC: "00:21:b6:00:00:01"},
    ).add_to_hass(hass)
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=SERIAL, data=tcp_data(local_meter.port, host="192.0.2.1")
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_DHCP}, data=dhcp_info()
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == tcp_data(local_meter.port)


@pytest.mark.parametrize("source", ["dhcp", "zeroconf"])
async def test_discovery_of_a_meter_where_an_entry_reaches_it_already(
    hass: HomeAssistant, source: str
) -> None:
    # Not even asked: nothing is listening on port 1502 here.
    entry = MockConfigEntry(domain=DOMAIN, unique_id=SERIAL, data=tcp_data(1502))
    entry.add_to_hass(hass)
    info = dhcp_info() if source == "dhcp" else zeroconf_info(1502)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": source}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_dhcp_device_that_is_not_an_s8000(hass: HomeAssistant, socket_enabled: None) -> None:
    async with serving(not_an_s8000()) as port:
        with patch(f"{FLOW}.DEFAULT_PORT", port):
            result = await hass.config_entries.flow.async_init(
                DOMAIN, context={"source": config_entries.SOURCE_DHCP}, data=dhcp_info()
            )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_s8000"


async def test_dhcp_unreachable_device(hass: HomeAssistant, socket_enabled: None) -> None:
    with patch(f"{FLOW}.DEFAULT_PORT", free_port()):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": config_entries.SOURCE_DHCP}, data=dhcp_info()
        )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"


# -- zeroconf ------------------------------------------------------------------------------


async def test_zeroconf_new_meter_is_confirmed_and_set_up(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter, mock_setup_entry: AsyncMock
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": config_entries.SOURCE_ZEROCONF},
        data=zeroconf_info(local_meter.port),
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    assert result["description_placeholders"] == {
        "model": MODEL,
        "serial": SERIAL,
        "host": "127.0.0.1",
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == TITLE
    assert result["data"] == tcp_data(local_meter.port)


async def test_zeroconf_known_meter_that_moved_gets_host_and_port_updated(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter
) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id=SERIAL, data=tcp_data(502, host="192.0.2.1"))
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": config_entries.SOURCE_ZEROCONF},
        data=zeroconf_info(local_meter.port),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == tcp_data(local_meter.port)


async def test_zeroconf_unusable_unit_id_falls_back_to_1(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter
) -> None:
    # The local meter answers on unit 1 (and 0 and 255) only.
    for unit_id in ("abc", "300", "0", None):
        result = await hass.config_entries.flow.async_init(
            DOMAIN,
            context={"source": config_entries.SOURCE_ZEROCONF},
            data=zeroconf_info(local_meter.port, unit_id=unit_id),
        )
        assert result["type"] is FlowResultType.FORM, unit_id
        assert result["step_id"] == "discovery_confirm"
        hass.config_entries.flow.async_abort(result["flow_id"])
    # A usable one is used: nothing answers on unit 9 of this server.
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": config_entries.SOURCE_ZEROCONF},
        data=zeroconf_info(local_meter.port, unit_id="9"),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"


async def test_zeroconf_unreachable_meter(hass: HomeAssistant, socket_enabled: None) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": config_entries.SOURCE_ZEROCONF},
        data=zeroconf_info(free_port()),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"


# -- reconfiguration -----------------------------------------------------------------------


async def test_reconfigure_moves_the_meter(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter, mock_setup_entry: AsyncMock
) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id=SERIAL, data=tcp_data(502, host="192.0.2.1"))
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert suggested(result, CONF_HOST) == "192.0.2.1"
    assert suggested(result, CONF_PORT) == 502

    # Nothing there: an error, and what was typed stays.
    closed = free_port()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], tcp_input(closed))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert suggested(result, CONF_PORT) == closed

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], tcp_input(local_meter.port, host="127.0.0.1 ")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == tcp_data(local_meter.port)


async def test_reconfigure_to_another_meter_is_refused(
    hass: HomeAssistant, socket_enabled: None, local_meter: LocalMeter
) -> None:
    data = tcp_data(502, host="192.0.2.1")
    entry = MockConfigEntry(domain=DOMAIN, unique_id="0000000001", data=data)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], tcp_input(local_meter.port)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_device"
    assert entry.data == data


async def test_reconfigure_serial_relinks_a_loaded_entry(
    hass: HomeAssistant, serial_meter: LocalMeter, mock_setup_entry: AsyncMock
) -> None:
    """A loaded entry on the same port with other line settings is taken off
    the bus for the probe; put back when the probe finds another meter."""
    data = {
        CONF_TYPE: "serial",
        CONF_DEVICE: serial_meter.device,
        CONF_BAUDRATE: 9600,
        CONF_PARITY: "none",
        CONF_UNIT_ID: 7,
        CONF_MAC: ENTRY_MAC,
    }
    user_input = {
        CONF_DEVICE: serial_meter.device,
        CONF_BAUDRATE: "19200",
        CONF_PARITY: "none",
        CONF_UNIT_ID: 7,
    }

    other = MockConfigEntry(domain=DOMAIN, unique_id="0000000001", data=data)
    other.add_to_hass(hass)
    other.mock_state(hass, ConfigEntryState.LOADED)
    result = await other.start_reconfigure_flow(hass)
    assert suggested(result, CONF_BAUDRATE) == "9600"
    assert suggested(result, CONF_DEVICE) == serial_meter.device
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_device"
    assert other.state is ConfigEntryState.LOADED  # set up again
    assert other.data == data
    await hass.config_entries.async_remove(other.entry_id)

    entry = MockConfigEntry(domain=DOMAIN, unique_id=SERIAL, data=data)
    entry.add_to_hass(hass)
    entry.mock_state(hass, ConfigEntryState.LOADED)
    mock_setup_entry.reset_mock()
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.ABORT, result.get("errors")
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == {**data, CONF_BAUDRATE: 19200}
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert len(mock_setup_entry.mock_calls) == 1


# -- options -------------------------------------------------------------------------------


def loaded_entry(
    hass: HomeAssistant, meter_points: int = 8, options: dict[str, Any] | None = None
) -> MockConfigEntry:
    """A loaded entry of a meter of ``meter_points`` points (only its identity is needed)."""
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=SERIAL, data=tcp_data(502), options=options or {}, title=TITLE
    )
    entry.add_to_hass(hass)
    entry.mock_state(hass, ConfigEntryState.LOADED)
    entry.runtime_data = SimpleNamespace(identity=SimpleNamespace(points=meter_points))
    return entry


async def test_options_need_a_loaded_entry(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id=SERIAL, data=tcp_data(502))
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_loaded"


async def test_options_all_steps(hass: HomeAssistant, mock_setup_entry: AsyncMock) -> None:
    entry = loaded_entry(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert result["description_placeholders"] == {"points": "8"}
    # Every point is in use until chosen otherwise.
    assert suggested(result, OPT_POINTS) == [str(n) for n in range(1, 9)]
    # Labels come from the translations (no English in the code): every
    # option of every select has a string in each language.
    assert selector_options(result, OPT_POINTS)[2] == "3"
    assert_translated(result, OPT_POINTS)

    result = await hass.config_entries.options.async_configure(result["flow_id"], {OPT_POINTS: []})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {OPT_POINTS: "no_points"}

    assert suggested(result, OPT_REVERSED) == []
    assert suggested(result, OPT_GENERATION) == []

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {OPT_POINTS: ["3", "1"], OPT_REVERSED: ["3"]}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "names"
    assert [key.schema for key in result["data_schema"].schema] == ["point_1", "point_3"]
    assert suggested(result, "point_1") is None

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"point_1": "  Kitchen ", "point_3": "   "}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "pulses"
    assert suggested(result, "pulse_1_kind") == "count"
    assert suggested(result, "pulse_1_unit") == "none"
    assert "m3" in selector_options(result, "pulse_2_unit")
    assert_translated(result, "pulse_2_unit")
    assert_translated(result, "pulse_2_kind")

    # Water needs a unit of its own; a count has none.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {"pulse_1_kind": "water", "pulse_2_kind": "count", "pulse_2_unit": "kwh"},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"pulse_1_unit": "unit_mismatch", "pulse_2_unit": "unit_mismatch"}
    assert suggested(result, "pulse_1_kind") == "water"
    assert suggested(result, "pulse_2_unit") == "kwh"

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {"pulse_1_kind": "gas", "pulse_1_unit": "kwh", "pulse_2_kind": "count"},
    )
    assert result["errors"] == {"pulse_1_unit": "unit_mismatch"}

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "pulse_1_kind": "water",
            "pulse_1_unit": "m3",
            "pulse_2_kind": "count",
            "pulse_2_unit": "none",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    expected = {
        OPT_POINTS: [1, 3],
        OPT_REVERSED: [3],
        OPT_GENERATION: [],
        OPT_NAMES: {"1": "Kitchen"},
        OPT_PULSES: {"1": {"kind": "water", "unit": "m³"}, "2": {"kind": "count", "unit": ""}},
    }
    assert result["data"] == expected
    assert entry.options == expected


async def test_options_start_from_the_current_ones(
    hass: HomeAssistant, mock_setup_entry: AsyncMock
) -> None:
    entry = loaded_entry(
        hass,
        meter_points=4,
        options={
            OPT_POINTS: [2, 4, 6],  # the meter has 4 points now
            OPT_NAMES: {"2": "Oven", "3": "Garage"},
            OPT_PULSES: {"2": {"kind": "energy", "unit": "kWh"}},
            OPT_REVERSED: [2, 7],
            OPT_GENERATION: ["4"],
        },
    )
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert suggested(result, OPT_POINTS) == ["2", "4"]
    assert suggested(result, OPT_REVERSED) == ["2"]
    assert suggested(result, OPT_GENERATION) == ["4"]
    assert len(selector_options(result, OPT_POINTS)) == 4
    assert len(selector_options(result, OPT_GENERATION)) == 4
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {OPT_POINTS: ["2", "4"], OPT_GENERATION: ["4"]}
    )
    assert suggested(result, "point_2") == "Oven"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"point_2": "Oven ", "point_4": "Dryer"}
    )
    assert suggested(result, "pulse_2_kind") == "energy"
    assert suggested(result, "pulse_2_unit") == "kwh"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {"pulse_1_kind": "count", "pulse_2_kind": "energy", "pulse_2_unit": "wh"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # The name of point 3, not in use now, is kept for when it is used again.
    assert result["data"] == {
        OPT_POINTS: [2, 4],
        OPT_REVERSED: [2],  # kept: not asked about
        OPT_GENERATION: [4],
        OPT_NAMES: {"2": "Oven", "3": "Garage", "4": "Dryer"},
        OPT_PULSES: {"1": {"kind": "count", "unit": ""}, "2": {"kind": "energy", "unit": "Wh"}},
    }


def test_current_options_defaults() -> None:
    assert current_options({}, 2) == {
        OPT_POINTS: [1, 2],
        OPT_NAMES: {},
        OPT_PULSES: {"1": {"kind": "count", "unit": ""}, "2": {"kind": "count", "unit": ""}},
        OPT_REVERSED: [],
        OPT_GENERATION: [],
    }
    # Points that are all gone from a reconfigured meter fall back to all points.
    assert current_options({OPT_POINTS: [5, 6]}, 2)[OPT_POINTS] == [1, 2]


def test_a_meter_without_a_mac_address_stores_none() -> None:
    """An RS-485-only meter reports no MAC: the entry has no MAC key."""
    identity = Identity(
        manufacturer="Leviton",
        model="S8UTS-083",
        serial=SERIAL,
        firmware="1.60",
        firmware_build=None,
        mac=None,
        points=8,
        elements=3,
        service=None,
        options=None,
        point_models=(203,) * 8,
    )
    assert _with_identity({CONF_UNIT_ID: 7}, identity) == {CONF_UNIT_ID: 7}
    with_mac = dataclasses.replace(identity, mac=MAC)
    assert _with_identity({}, with_mac) == {CONF_MAC: MAC.lower()}
