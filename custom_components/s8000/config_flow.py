"""Config flow of the Leviton Series 8000 integration.

The user picks how the meter is reached (Modbus TCP or serial RTU) and
enters its settings.  Probing the meter, discovery and the unique id (the
meter's serial number) arrive with the Modbus client.
"""

from __future__ import annotations

from typing import Any

import probatio
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_DEVICE, CONF_HOST, CONF_PORT, CONF_TYPE
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)

from .const import (
    BAUDRATES,
    CONF_BAUDRATE,
    CONF_PARITY,
    CONF_UNIT_ID,
    DEFAULT_BAUDRATE,
    DEFAULT_PORT,
    DEFAULT_UNIT_ID,
    DOMAIN,
    PARITIES,
    TYPE_SERIAL,
    TYPE_TCP,
)


def _number(minimum: int, maximum: int) -> probatio.All[int]:
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
    }
)

STEP_SERIAL = probatio.Schema(
    {
        probatio.Required(CONF_DEVICE): TextSelector(),
        probatio.Required(CONF_BAUDRATE, default=str(DEFAULT_BAUDRATE)): probatio.All(
            SelectSelector(
                SelectSelectorConfig(
                    options=[str(rate) for rate in BAUDRATES], mode=SelectSelectorMode.DROPDOWN
                )
            ),
            probatio.Coerce(int),
        ),
        probatio.Required(CONF_PARITY, default="none"): SelectSelector(
            SelectSelectorConfig(
                options=list(PARITIES),
                mode=SelectSelectorMode.DROPDOWN,
                translation_key=CONF_PARITY,
            )
        ),
        probatio.Required(CONF_UNIT_ID, default=DEFAULT_UNIT_ID): _number(1, 247),
    }
)


class S8000ConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a Leviton Series 8000 meter."""

    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask how the meter is connected."""
        return self.async_show_menu(step_id="user", menu_options=[TYPE_TCP, TYPE_SERIAL])

    async def async_step_tcp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Modbus TCP settings."""
        if user_input is None:
            return self.async_show_form(step_id=TYPE_TCP, data_schema=STEP_TCP)
        data = {CONF_TYPE: TYPE_TCP, **user_input, CONF_HOST: user_input[CONF_HOST].strip().lower()}
        self._async_abort_entries_match(
            {
                CONF_HOST: data[CONF_HOST],
                CONF_PORT: data[CONF_PORT],
                CONF_UNIT_ID: data[CONF_UNIT_ID],
            }
        )
        return self.async_create_entry(title=f"S8000 ({data[CONF_HOST]})", data=data)

    async def async_step_serial(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Modbus RTU settings."""
        if user_input is None:
            return self.async_show_form(step_id=TYPE_SERIAL, data_schema=STEP_SERIAL)
        data = {CONF_TYPE: TYPE_SERIAL, **user_input}
        self._async_abort_entries_match(
            {CONF_DEVICE: data[CONF_DEVICE], CONF_UNIT_ID: data[CONF_UNIT_ID]}
        )
        return self.async_create_entry(
            title=f"S8000 ({data[CONF_DEVICE]} unit {data[CONF_UNIT_ID]})", data=data
        )
