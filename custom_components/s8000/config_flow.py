"""Config flow of the Leviton Series 8000 integration.

A meter is added in one of three ways, all from the ``user`` menu:

* ``search``: scan an IPv4 network for meters (the configuration tool's
  "Unit Discovery"), then pick one of those not configured yet;
* ``tcp``: enter the address of a meter reached over Modbus TCP;
* ``serial``: enter the RS-485 port, line settings and unit id of a meter
  wired to this machine;
* ``web``: enter the address of a meter read through its built-in web
  pages (the PowerHawk pages), for a unit that does not answer Modbus.  A
  ``tcp`` address that gives no Modbus answer but serves those pages leads
  to this form, filled in.

Meters are also discovered by DHCP (their MAC prefixes, and known meters
that move) and by zeroconf (the ``_s8000-modbus._tcp`` service).  Every way
probes the meter before an entry is made: the meter is identified over
Modbus and its serial number is the entry's unique id, so a meter is
configured once however it was found, and a known meter found at a new
address has its entry moved there.  The web pages carry no serial number:
such an entry is named by its address (:func:`.helpers.web_unique_id`).

The options flow chooses the meter points in use, names them, and says what
the two pulse inputs count.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from typing import Any, Final, override

import probatio
from homeassistant.components.modbus import async_get_temporary_unit
from homeassistant.components.network import async_get_adapters
from homeassistant.config_entries import (
    SOURCE_IGNORE,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_DEVICE, CONF_HOST, CONF_PORT, CONF_TYPE
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.device_registry import format_mac
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    SerialPortSelector,
    TextSelector,
)
from homeassistant.helpers.service_info.dhcp import DhcpServiceInfo
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from modbus_connection import ModbusUnit

from s8000_engine.client import (
    BAUDRATES,
    DEFAULT_BAUDRATE,
    Identity,
    Profile,
    S8000Client,
    S8000ConnectionError,
    S8000Error,
    S8000NotAnS8000,
    S8000ProfileError,
    discovery,
    probe_unit,
)

from .const import (
    CONF_BAUDRATE,
    CONF_MAC,
    CONF_PARITY,
    CONF_UNIT_ID,
    DEFAULT_PARITY_NAME,
    DEFAULT_PORT,
    DEFAULT_UNIT_ID,
    DEFAULT_WEB_PORT,
    DOMAIN,
    OPT_GENERATION,
    OPT_NAMES,
    OPT_POINTS,
    OPT_PROFILE,
    OPT_PULSES,
    OPT_REVERSED,
    PARITIES,
    PULSE_KIND,
    PULSE_KINDS,
    PULSE_UNIT,
    PULSE_UNITS,
    TYPE_SERIAL,
    TYPE_TCP,
    TYPE_WEB,
)
from .helpers import async_load_profile, create_modbus_params, create_web_client, web_unique_id
from .models import points_in_use

CONF_NETWORK: Final = "network"
CONF_METER: Final = "meter"
STEP_SEARCH: Final = "search"

# The network offered for a search when Home Assistant knows none of its own.
FALLBACK_NETWORK: Final = "192.168.1.0/24"
# How long each step of probing one address during a search may take.
SEARCH_WAIT_S: Final = 1.0
# The meter's two pulse inputs.
PULSE_INPUTS: Final = (1, 2)
# Every unit a pulse input can be counted in; "" is none (a bare count).
ALL_PULSE_UNITS: Final = ("", *dict.fromkeys(u for units in PULSE_UNITS.values() for u in units))
# The form offers each unit by a key of its own: the frontend labels an
# option by its value from the translations, whose keys are lower-case ASCII
# ("m³" is "m3"; the bare count's "" is "none").  The options keep the unit.
UNIT_KEYS: Final = {
    unit: unit.lower().replace("³", "3") if unit else "none" for unit in ALL_PULSE_UNITS
}
KEY_UNITS: Final = {key: unit for unit, key in UNIT_KEYS.items()}


def _number(minimum: int, maximum: int) -> probatio.All[int]:
    """A whole number in a box, from ``minimum`` to ``maximum``."""
    return probatio.All(
        NumberSelector(
            NumberSelectorConfig(min=minimum, max=maximum, step=1, mode=NumberSelectorMode.BOX)
        ),
        probatio.Coerce(int),
        probatio.Range(min=minimum, max=maximum),
    )


STEP_TCP = probatio.Schema(
    {
        probatio.Required(CONF_HOST): TextSelector(),
        probatio.Required(CONF_PORT, default=DEFAULT_PORT): _number(1, 65535),
        probatio.Required(CONF_UNIT_ID, default=DEFAULT_UNIT_ID): _number(1, 247),
        probatio.Optional(OPT_PROFILE): TextSelector(),
    }
)

STEP_WEB = probatio.Schema(
    {
        probatio.Required(CONF_HOST): TextSelector(),
        probatio.Required(CONF_PORT, default=DEFAULT_WEB_PORT): _number(1, 65535),
    }
)

STEP_SERIAL = probatio.Schema(
    {
        probatio.Required(CONF_DEVICE): SerialPortSelector(),
        probatio.Required(CONF_BAUDRATE, default=str(DEFAULT_BAUDRATE)): probatio.All(
            SelectSelector(
                SelectSelectorConfig(
                    options=[str(rate) for rate in BAUDRATES], mode=SelectSelectorMode.DROPDOWN
                )
            ),
            probatio.Coerce(int),
        ),
        probatio.Required(CONF_PARITY, default=DEFAULT_PARITY_NAME): SelectSelector(
            SelectSelectorConfig(
                options=list(PARITIES),
                mode=SelectSelectorMode.DROPDOWN,
                translation_key=CONF_PARITY,
            )
        ),
        probatio.Required(CONF_UNIT_ID, default=DEFAULT_UNIT_ID): _number(1, 247),
        probatio.Optional(OPT_PROFILE): TextSelector(),
    }
)


def _search_schema(network: str) -> probatio.Schema:
    """The search form, offering ``network``."""
    return probatio.Schema(
        {
            probatio.Required(CONF_NETWORK, default=network): TextSelector(),
            probatio.Required(CONF_PORT, default=DEFAULT_PORT): _number(1, 65535),
            probatio.Required(CONF_UNIT_ID, default=DEFAULT_UNIT_ID): _number(1, 247),
        }
    )


def _link_data(connection_type: str, user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Config entry data of a filled-in tcp, serial or web form."""
    data = {CONF_TYPE: connection_type, **user_input}
    if connection_type in (TYPE_TCP, TYPE_WEB):
        # One connection is shared per host and port, so spelling matters.
        data[CONF_HOST] = str(data[CONF_HOST]).strip().lower()
    else:
        data[CONF_BAUDRATE] = int(data[CONF_BAUDRATE])
    return data


def _form_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """An entry's data as values of its form (the baud rate is a choice of text)."""
    values = {key: value for key, value in data.items() if key not in (CONF_TYPE, CONF_MAC)}
    if CONF_BAUDRATE in values:
        values[CONF_BAUDRATE] = str(values[CONF_BAUDRATE])
    return values


def _with_identity(data: Mapping[str, Any], identity: Identity) -> dict[str, Any]:
    """Entry data with what the meter told about itself (its MAC address)."""
    result = dict(data)
    if identity.mac:
        result[CONF_MAC] = format_mac(identity.mac)
    return result


def _title(identity: Identity) -> str:
    """An entry's title: the meter's model and serial number."""
    return f"{identity.model} {identity.serial}"


def _needs_relink(entry: ConfigEntry, data: Mapping[str, Any]) -> bool:
    """Whether probing these settings clashes with the connection the entry holds.

    Everything talking to one device shares one connection, which cannot
    serve two sets of line settings at once: changing the baud rate or parity
    of the port a loaded entry polls needs that entry out of the way before
    the new settings can be probed.  An entry waiting to retry counts as on
    the bus: its retry would take the old settings while the probe runs."""
    if entry.state not in (ConfigEntryState.LOADED, ConfigEntryState.SETUP_RETRY):
        return False
    current = create_modbus_params(entry.data)
    new = create_modbus_params(data)
    return new.endpoint == current.endpoint and new != current


def _zeroconf_unit_id(properties: Mapping[str, Any]) -> int:
    """The unit id a zeroconf announcement names; the default when it names none usable."""
    try:
        unit_id = int(properties["unit_id"])
    except (KeyError, TypeError, ValueError):
        return DEFAULT_UNIT_ID
    return unit_id if 1 <= unit_id <= 247 else DEFAULT_UNIT_ID


def _host_count(network: ipaddress.IPv4Network) -> int:
    """How many addresses a search of ``network`` tries (a /31 or /32 has no
    network and broadcast address to leave out)."""
    return network.num_addresses if network.prefixlen >= 31 else network.num_addresses - 2


def _row_label(row: discovery.Found) -> str:
    """One meter found by a search, as the discovery table shows it."""
    address = row.ip if row.port == DEFAULT_PORT else f"{row.ip}:{row.port}"
    parts = [row.model, row.name, address, f"serial {row.serial}"]
    if row.firmware:
        parts.append(f"firmware {row.firmware}")
    return " · ".join(parts)


async def _default_network(hass: HomeAssistant) -> str:
    """The /24 around Home Assistant's first enabled IPv4 address, for a search."""
    for adapter in await async_get_adapters(hass):
        if adapter["enabled"] and adapter["ipv4"]:
            address = adapter["ipv4"][0]["address"]
            return str(ipaddress.IPv4Network(f"{address}/24", strict=False))
    return FALLBACK_NETWORK


class S8000ConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a Leviton Series 8000 meter."""

    VERSION = 1

    def __init__(self) -> None:
        """A new flow."""
        self._found: dict[str, discovery.Found] = {}
        # What answered at the last address that was not identified (a probe's summary).
        self._explained = ""
        self._discovered: dict[str, Any] = {}
        self._identity: Identity | None = None
        #: The network search running (up to 4,096 addresses): what it scans
        #: (network, port, unit id), and its task.
        self._search: tuple[str, int, int] = (FALLBACK_NETWORK, DEFAULT_PORT, DEFAULT_UNIT_ID)
        self._scan: asyncio.Task[list[discovery.Found]] | None = None

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: ConfigEntry) -> S8000OptionsFlow:
        """The options flow of an entry."""
        return S8000OptionsFlow()

    # -- the user's ways ------------------------------------------------------------------

    @override
    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask how the meter is to be found."""
        return self.async_show_menu(
            step_id="user", menu_options=[STEP_SEARCH, TYPE_TCP, TYPE_SERIAL, TYPE_WEB]
        )

    async def async_step_search(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Scan a network for meters."""
        errors: dict[str, str] = {}
        if user_input is not None:
            port, unit_id = int(user_input[CONF_PORT]), int(user_input[CONF_UNIT_ID])
            try:
                network = ipaddress.IPv4Network(user_input[CONF_NETWORK].strip(), strict=False)
            except ValueError:
                errors[CONF_NETWORK] = "invalid_network"
            else:
                # Checked here rather than left to the scan, which would list
                # every address of a huge network before refusing it.
                if _host_count(network) > discovery.MAX_ADDRESSES:
                    errors[CONF_NETWORK] = "network_too_large"
                else:
                    self._search = (str(network), port, unit_id)
                    return await self.async_step_searching()
            schema = self.add_suggested_values_to_schema(
                _search_schema(FALLBACK_NETWORK), user_input
            )
        else:
            schema = _search_schema(await _default_network(self.hass))
        return self.async_show_form(step_id=STEP_SEARCH, data_schema=schema, errors=errors)

    async def async_step_searching(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Scan, showing how far it has got: a large network takes a while,
        and the form must not hang without a word meanwhile."""
        network, port, unit_id = self._search
        if self._scan is None:
            self._scan = self.hass.async_create_task(
                discovery.scan(
                    [network],
                    port=port,
                    unit=unit_id,
                    wait_s=SEARCH_WAIT_S,
                    progress=lambda done, total: self.async_update_progress(done / total),
                ),
                f"{DOMAIN} search {network}",
            )
        if not self._scan.done():
            return self.async_show_progress(
                step_id="searching",
                progress_action="search",
                progress_task=self._scan,
                description_placeholders={CONF_NETWORK: network},
            )
        return self.async_show_progress_done(next_step_id="search_done")

    async def async_step_search_done(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The search is over: offer what it found."""
        assert self._scan is not None
        rows, self._scan = self._scan.result(), None
        return await self._async_found(rows, *self._search)

    async def _async_found(
        self, rows: list[discovery.Found], network: str, port: int, unit_id: int
    ) -> ConfigFlowResult:
        """Offer the meters a search found, those not configured yet."""
        meters = [row for row in rows if row.serial]
        if not meters:
            return self.async_abort(
                reason="no_meters_found",
                description_placeholders={CONF_NETWORK: network, CONF_PORT: str(port)},
            )
        configured = self._async_current_ids(include_ignore=False)
        new = [row for row in meters if row.serial not in configured]
        if not new:
            return self.async_abort(
                reason="no_new_meters", description_placeholders={CONF_NETWORK: network}
            )
        self._found = {row.serial: row for row in new}
        self._discovered = {CONF_TYPE: TYPE_TCP, CONF_PORT: port, CONF_UNIT_ID: unit_id}
        return await self.async_step_search_result()

    async def async_step_search_result(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Offer the meters found; set up the one picked."""
        errors: dict[str, str] = {}
        if user_input is not None:
            row = self._found[user_input[CONF_METER]]
            data = {**self._discovered, CONF_HOST: row.ip, CONF_PORT: row.port}
            errors, identity = await self._async_probe(data)
            if identity is not None:
                return await self._async_create(data, identity)
        options = [
            SelectOptionDict(value=serial, label=_row_label(row))
            for serial, row in self._found.items()
        ]
        schema = probatio.Schema(
            {
                probatio.Required(CONF_METER, default=options[0]["value"]): SelectSelector(
                    SelectSelectorConfig(options=options, mode=SelectSelectorMode.LIST)
                )
            }
        )
        return self.async_show_form(
            step_id="search_result",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
            description_placeholders={"count": str(len(options))},
        )

    async def async_step_tcp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A meter reached over Modbus TCP."""
        return await self._async_step_link(TYPE_TCP, STEP_TCP, user_input)

    async def async_step_serial(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A meter wired to an RS-485 port of this machine (Modbus RTU)."""
        return await self._async_step_link(TYPE_SERIAL, STEP_SERIAL, user_input)

    async def async_step_web(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A meter read through its built-in web pages (no Modbus)."""
        errors: dict[str, str] = {}
        schema = STEP_WEB
        if user_input is not None:
            data = _link_data(TYPE_WEB, user_input)
            errors, title = await self._async_probe_web(data)
            if title is not None:
                await self.async_set_unique_id(
                    web_unique_id(data[CONF_HOST], data[CONF_PORT]), raise_on_progress=False
                )
                self._abort_if_unique_id_configured()
                return self.async_create_entry(title=title, data=data)
            schema = self.add_suggested_values_to_schema(schema, user_input)
        return self.async_show_form(step_id=TYPE_WEB, data_schema=schema, errors=errors)

    async def _async_step_link(
        self, connection_type: str, schema: probatio.Schema, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Ask for the link settings, then probe the meter behind them."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            link = {k: v for k, v in user_input.items() if k != OPT_PROFILE}
            data = _link_data(connection_type, link)
            name = str(user_input.get(OPT_PROFILE) or "").strip()
            try:
                profile = await async_load_profile(self.hass, name)
            except S8000ProfileError as err:
                errors[OPT_PROFILE], placeholders["profile_error"] = "bad_profile", str(err)
            else:
                errors, identity = await self._async_probe(data, profile)
                if identity is not None:
                    return await self._async_create(
                        data, identity, {OPT_PROFILE: name} if name else {}
                    )
                if connection_type == TYPE_TCP and errors["base"] in (
                    "cannot_connect",
                    "not_s8000",
                ):
                    # No S8000 answers Modbus there: a unit that serves only
                    # its web pages is offered through them, the form filled in.
                    web = {
                        CONF_TYPE: TYPE_WEB,
                        CONF_HOST: data[CONF_HOST],
                        CONF_PORT: DEFAULT_WEB_PORT,
                    }
                    if (await self._async_probe_web(web))[1] is not None:
                        return self.async_show_form(
                            step_id=TYPE_WEB,
                            data_schema=self.add_suggested_values_to_schema(STEP_WEB, web),
                            errors={"base": "web_pages_found"},
                        )
                if self._explained:
                    errors = {"base": "not_identified"}
                    placeholders["found"] = self._explained
            schema = self.add_suggested_values_to_schema(schema, user_input)
        return self.async_show_form(
            step_id=connection_type,
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders or None,
        )

    async def _async_create(
        self, data: dict[str, Any], identity: Identity, options: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Make the entry of an identified meter, unless it is configured already.

        A meter configured over TCP and found at another address has its
        entry moved there."""
        await self.async_set_unique_id(identity.serial, raise_on_progress=False)
        self._abort_if_unique_id_configured(
            updates=self._tcp_updates(
                identity.serial, {CONF_HOST: data[CONF_HOST], CONF_PORT: data[CONF_PORT]}
            )
            if data[CONF_TYPE] == TYPE_TCP
            else None
        )
        return self.async_create_entry(
            title=_title(identity), data=_with_identity(data, identity), options=options or {}
        )

    @callback
    def _tcp_updates(self, serial: str, updates: dict[str, Any]) -> dict[str, Any] | None:
        """``updates`` if the meter's entry reaches it over TCP, else None.

        An entry of a meter wired over RS-485 keeps its link when the meter's
        Ethernet port turns up somewhere."""
        entry = self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, serial)
        if entry is None or entry.source == SOURCE_IGNORE:
            return None
        return updates if entry.data.get(CONF_TYPE) == TYPE_TCP else None

    # -- discovery -------------------------------------------------------------------------

    @override
    async def async_step_dhcp(self, discovery_info: DhcpServiceInfo) -> ConfigFlowResult:
        """A meter (or a known meter at a new address) seen by DHCP.

        A known meter is probed on its entry's port and unit id, a new one on
        the defaults."""
        mac = format_mac(discovery_info.macaddress)
        port, unit_id = DEFAULT_PORT, DEFAULT_UNIT_ID
        for entry in self._async_current_entries(include_ignore=False):
            if entry.data.get(CONF_MAC) == mac and entry.data.get(CONF_TYPE) == TYPE_TCP:
                port, unit_id = entry.data[CONF_PORT], entry.data[CONF_UNIT_ID]
                break
        data = {
            CONF_TYPE: TYPE_TCP,
            CONF_HOST: discovery_info.ip,
            CONF_PORT: port,
            CONF_UNIT_ID: unit_id,
        }
        return await self._async_discovered(data, {CONF_HOST: discovery_info.ip})

    @override
    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        """A meter announcing itself over mDNS."""
        data = {
            CONF_TYPE: TYPE_TCP,
            CONF_HOST: discovery_info.host,
            CONF_PORT: discovery_info.port or DEFAULT_PORT,
            CONF_UNIT_ID: _zeroconf_unit_id(discovery_info.properties),
        }
        return await self._async_discovered(
            data, {CONF_HOST: data[CONF_HOST], CONF_PORT: data[CONF_PORT]}
        )

    async def _async_discovered(
        self, data: dict[str, Any], updates: dict[str, Any]
    ) -> ConfigFlowResult:
        """Identify a discovered meter before offering it.

        An address is not an identity (it may have passed to another meter),
        so the meter is asked for its serial number.  A known meter gets its
        entry's address updated (``updates``); its unit id stays, as the user
        may reach it on another."""
        # An entry reaching a meter there already: nothing new, and no need to
        # ask the meter (discovery repeats itself, at every start for one).
        self._async_abort_entries_match(
            {key: data[key] for key in (CONF_HOST, CONF_PORT, CONF_UNIT_ID)}
        )
        errors, identity = await self._async_probe(data)
        if identity is None:
            return self.async_abort(reason=errors["base"])
        await self.async_set_unique_id(identity.serial)
        self._abort_if_unique_id_configured(updates=self._tcp_updates(identity.serial, updates))
        self._discovered = _with_identity(data, identity)
        self._identity = identity
        self.context["title_placeholders"] = self._placeholders()
        return await self.async_step_discovery_confirm()

    def _placeholders(self) -> dict[str, str]:
        """Who the discovered meter is, and where."""
        assert self._identity is not None
        return {
            "model": self._identity.model,
            "serial": self._identity.serial,
            "host": self._discovered[CONF_HOST],
        }

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm setting up a discovered meter."""
        assert self._identity is not None
        if user_input is not None:
            return self.async_create_entry(title=_title(self._identity), data=self._discovered)
        self._set_confirm_only()
        return self.async_show_form(
            step_id="discovery_confirm", description_placeholders=self._placeholders()
        )

    # -- reconfiguration -------------------------------------------------------------------

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change how the meter is reached (a new address, a rewired bus).

        It must stay the same meter: the probed serial number has to be the
        entry's unique id."""
        errors: dict[str, str] = {}
        entry = self._get_reconfigure_entry()
        connection_type = entry.data[CONF_TYPE]
        if connection_type == TYPE_WEB:
            return await self._async_reconfigure_web(entry, user_input)
        schema = STEP_SERIAL if connection_type == TYPE_SERIAL else STEP_TCP
        if user_input is not None:
            data = _link_data(connection_type, user_input)
            relinking = False
            if _needs_relink(entry, data):
                # A failed unload leaves the entry loaded: then the probe
                # reports whatever it runs into.
                relinking = await self.hass.config_entries.async_unload(entry.entry_id)
            errors, identity = await self._async_probe(data)
            if identity is not None:
                await self.async_set_unique_id(identity.serial, raise_on_progress=False)
            # Anything but this entry's meter leaves the entry off the bus: put
            # it back before saying so.  A match falls through to the reload,
            # which brings it up on the new settings.
            if relinking and self.unique_id != entry.unique_id:
                await self.hass.config_entries.async_setup(entry.entry_id)
            if identity is not None:
                self._abort_if_unique_id_mismatch(reason="wrong_device")
                return self.async_update_reload_and_abort(
                    entry, data_updates=_with_identity(data, identity)
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or _form_values(entry.data)
            ),
            errors=errors,
        )

    async def _async_reconfigure_web(
        self, entry: ConfigEntry, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Move a meter read through its web pages to another address.

        The pages carry no serial number, so nothing proves it is the same
        meter: whatever serves the PowerHawk pages there is taken (the
        entry keeps its unique id and its counters' guards, which hold any
        register that steps back)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _link_data(TYPE_WEB, user_input)
            errors, title = await self._async_probe_web(data)
            if title is not None:
                return self.async_update_reload_and_abort(entry, data_updates=data)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                STEP_WEB, user_input or _form_values(entry.data)
            ),
            errors=errors,
        )

    # -- probing ---------------------------------------------------------------------------

    async def _async_probe_web(self, data: Mapping[str, Any]) -> tuple[dict[str, str], str | None]:
        """Identify the meter behind the web pages ``data`` names: form errors,
        or the entry's title (the pages' own title, else the address)."""
        client = create_web_client(self.hass, data)
        try:
            await client.identify()
        except S8000ConnectionError:
            return {"base": "cannot_connect"}, None
        except S8000NotAnS8000:
            return {"base": "not_web_pages"}, None
        except S8000Error:
            return {"base": "unsupported_meter"}, None
        return {}, client.title or f"S8000 {data[CONF_HOST]}"

    async def _async_probe(
        self, data: Mapping[str, Any], profile: Profile | None = None
    ) -> tuple[dict[str, str], Identity | None]:
        """Identify the meter behind ``data`` (by ``profile``'s map, the
        built-in one by default): form errors, or its identity.

        When something answers but is not identified, a quick probe of it says
        what it is (:attr:`_explained`): SunSpec or not, what functions 43 and 17
        return, whether web pages answer; the form shows it, rather than a
        bare "not an S8000"."""
        self._explained = ""
        try:
            async with async_get_temporary_unit(
                self.hass, create_modbus_params(data), data[CONF_UNIT_ID]
            ) as unit:
                try:
                    identity = await S8000Client(unit, profile=profile).identify()
                except S8000Error as err:
                    if not isinstance(err, S8000ConnectionError):
                        self._explained = await self._async_explain(unit, data, err)
                    raise
        except HomeAssistantError:
            # The device is in use with other link settings (another baud
            # rate or parity), which one connection cannot serve.
            return {"base": "link_in_use"}, None
        except S8000ConnectionError:
            return {"base": "cannot_connect"}, None
        except S8000NotAnS8000:
            return {"base": "not_s8000"}, None
        except S8000Error:
            return {"base": "unsupported_meter"}, None
        return {}, identity

    async def _async_explain(
        self, unit: ModbusUnit, data: Mapping[str, Any], err: S8000Error
    ) -> str:
        """What answers behind ``data``, for a person: the identification's
        refusal, then a quick probe's summary (serial numbers and MAC
        addresses redacted: the text may be pasted into an issue)."""
        host = data.get(CONF_HOST) if data[CONF_TYPE] == TYPE_TCP else None
        report = await probe_unit(unit, unit_id=data[CONF_UNIT_ID], http_host=host)
        return f"{err}\n\n{report.summary()}"


# -- options -------------------------------------------------------------------------------


def _point_key(point: int) -> str:
    """The names form's field of a point."""
    return f"point_{point}"


def _pulse_key(pulse: int, what: str) -> str:
    """The pulses form's field of an input's kind or unit."""
    return f"pulse_{pulse}_{what}"


def current_options(options: Mapping[str, Any], points: int) -> dict[str, Any]:
    """An entry's options with the defaults filled in, for a meter of ``points`` points.

    Defaults: every point in use, no names, both pulse inputs a bare count,
    no point reversed or generating."""
    pulses = {
        str(n): {PULSE_KIND: "count", PULSE_UNIT: ""}
        | dict(options.get(OPT_PULSES, {}).get(str(n), {}))
        for n in PULSE_INPUTS
    }
    return {
        OPT_POINTS: sorted(points_in_use(options.get(OPT_POINTS), points)),
        OPT_NAMES: {str(k): str(v) for k, v in options.get(OPT_NAMES, {}).items()},
        OPT_PULSES: pulses,
        OPT_REVERSED: sorted({int(p) for p in options.get(OPT_REVERSED) or () if int(p) <= points}),
        OPT_GENERATION: sorted(
            {int(p) for p in options.get(OPT_GENERATION) or () if int(p) <= points}
        ),
    }


def _unit_fits(kind: str, unit: str) -> bool:
    """Whether a pulse input counting ``kind`` may be in ``unit``."""
    return unit in PULSE_UNITS[kind] if PULSE_UNITS[kind] else unit == ""


class S8000OptionsFlow(OptionsFlowWithReload):
    """Which points are in use, their names, and what the pulse inputs count."""

    def __init__(self) -> None:
        """A new options flow."""
        self._current: dict[str, Any] = {}
        self._options: dict[str, Any] = {}

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose the meter points in use."""
        entry = self.config_entry
        if entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        points: int = entry.runtime_data.identity.points
        self._current = current_options(entry.options, points)
        errors: dict[str, str] = {}
        placeholders = {"points": str(points)}
        if user_input is not None:
            chosen = sorted({int(point) for point in user_input.get(OPT_POINTS, [])})
            profile = str(user_input.get(OPT_PROFILE) or "").strip()
            if not chosen:
                errors[OPT_POINTS] = "no_points"
            elif (problem := await self._async_profile_problem(profile)) is not None:
                errors[OPT_PROFILE], placeholders["profile_error"] = problem
            else:
                self._options[OPT_POINTS] = chosen
                for key in (OPT_REVERSED, OPT_GENERATION):
                    self._options[key] = sorted({int(p) for p in user_input.get(key, [])})
                if profile:
                    self._options[OPT_PROFILE] = profile
                return await self.async_step_names()

        def point_select() -> SelectSelector:
            return SelectSelector(
                SelectSelectorConfig(
                    options=[str(n) for n in range(1, points + 1)],
                    multiple=True,
                    mode=SelectSelectorMode.LIST,
                    translation_key="point",
                )
            )

        schema = probatio.Schema(
            {
                probatio.Required(
                    OPT_POINTS, default=[str(p) for p in self._current[OPT_POINTS]]
                ): point_select(),
                probatio.Optional(
                    OPT_REVERSED, default=[str(p) for p in self._current[OPT_REVERSED]]
                ): point_select(),
                probatio.Optional(
                    OPT_GENERATION, default=[str(p) for p in self._current[OPT_GENERATION]]
                ): point_select(),
                probatio.Optional(
                    OPT_PROFILE, description={"suggested_value": entry.options.get(OPT_PROFILE)}
                ): TextSelector(),
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_profile_problem(self, name: str) -> tuple[str, str] | None:
        """Why the meter cannot be read by the profile ``name`` (an error key
        and what to say), or None when it can: a profile is only taken once
        the meter identifies through it, so an entry never ends up with a map
        that does not read its meter."""
        entry = self.config_entry
        if name == (entry.options.get(OPT_PROFILE) or ""):
            return None
        try:
            profile = await async_load_profile(self.hass, name)
        except S8000ProfileError as err:
            return "bad_profile", str(err)
        client = S8000Client(
            entry.runtime_data.client.unit, serial=entry.unique_id, profile=profile
        )
        try:
            await client.identify()
        except S8000Error as err:
            return "profile_does_not_read", str(err)
        return None

    async def async_step_names(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Name the points in use."""
        in_use: list[int] = self._options[OPT_POINTS]
        names: dict[str, str] = self._current[OPT_NAMES]
        if user_input is not None:
            # Names of points not in use are kept, for when they are used again.
            kept = {k: v for k, v in names.items() if int(k) not in in_use}
            given = {str(n): str(user_input.get(_point_key(n)) or "").strip() for n in in_use}
            self._options[OPT_NAMES] = {
                k: v for k, v in sorted({**kept, **given}.items(), key=lambda kv: int(kv[0])) if v
            }
            return await self.async_step_pulses()
        schema = probatio.Schema(
            {
                probatio.Optional(
                    _point_key(n), description={"suggested_value": names.get(str(n))}
                ): TextSelector()
                for n in in_use
            }
        )
        return self.async_show_form(step_id="names", data_schema=schema)

    async def async_step_pulses(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Say what each pulse input counts, and in which unit."""
        errors: dict[str, str] = {}
        values: dict[str, Any] = {}
        for n in PULSE_INPUTS:
            pulse = self._current[OPT_PULSES][str(n)]
            values[_pulse_key(n, PULSE_KIND)] = pulse[PULSE_KIND]
            values[_pulse_key(n, PULSE_UNIT)] = UNIT_KEYS.get(pulse[PULSE_UNIT], "none")
        if user_input is not None:
            values = {**values, **user_input}
            # An empty choice may come back as no value at all.
            for n in PULSE_INPUTS:
                values[_pulse_key(n, PULSE_UNIT)] = user_input.get(
                    _pulse_key(n, PULSE_UNIT), "none"
                )
            pulses: dict[str, dict[str, str]] = {}
            for n in PULSE_INPUTS:
                kind = values[_pulse_key(n, PULSE_KIND)]
                unit = KEY_UNITS[values[_pulse_key(n, PULSE_UNIT)]]
                if not _unit_fits(kind, unit):
                    errors[_pulse_key(n, PULSE_UNIT)] = "unit_mismatch"
                pulses[str(n)] = {PULSE_KIND: kind, PULSE_UNIT: unit}
            if not errors:
                return self.async_create_entry(data={**self._options, OPT_PULSES: pulses})
        fields: dict[probatio.Marker, Any] = {}
        for n in PULSE_INPUTS:
            fields[probatio.Required(_pulse_key(n, PULSE_KIND))] = SelectSelector(
                SelectSelectorConfig(
                    options=list(PULSE_KINDS),
                    mode=SelectSelectorMode.DROPDOWN,
                    translation_key="pulse_kind",
                )
            )
            fields[probatio.Optional(_pulse_key(n, PULSE_UNIT))] = SelectSelector(
                SelectSelectorConfig(
                    options=list(UNIT_KEYS.values()),
                    mode=SelectSelectorMode.DROPDOWN,
                    translation_key="pulse_unit",
                )
            )
        return self.async_show_form(
            step_id="pulses",
            data_schema=self.add_suggested_values_to_schema(probatio.Schema(fields), values),
            errors=errors,
        )
