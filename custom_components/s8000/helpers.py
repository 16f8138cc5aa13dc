"""Helpers shared by the config flow and the runtime."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from homeassistant.const import CONF_DEVICE, CONF_HOST, CONF_PORT, CONF_TYPE
from modbus_connection import ModbusSerialParams, ModbusTcpParams

from s8000_engine.client import DEFAULT_BAUDRATE

from .const import CONF_BAUDRATE, CONF_PARITY, DEFAULT_PARITY_NAME, PARITY_CODES, TYPE_SERIAL


def create_modbus_params(data: Mapping[str, Any]) -> ModbusSerialParams | ModbusTcpParams:
    """The Modbus link parameters of a config entry's data.

    The meter's RS-485 port is 8 data bits and one stop bit; baud rate and
    parity are set in the meter, so they are asked for."""
    if data[CONF_TYPE] == TYPE_SERIAL:
        parity = cast(
            "Literal['N', 'E', 'O']", PARITY_CODES[data.get(CONF_PARITY, DEFAULT_PARITY_NAME)]
        )
        return ModbusSerialParams(
            device=data[CONF_DEVICE],
            baudrate=int(data.get(CONF_BAUDRATE, DEFAULT_BAUDRATE)),
            parity=parity,
        )
    return ModbusTcpParams(host=data[CONF_HOST], port=int(data[CONF_PORT]))
