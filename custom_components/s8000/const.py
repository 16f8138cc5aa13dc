"""Constants of the Leviton Series 8000 integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "s8000"

CONF_UNIT_ID: Final = "unit_id"
CONF_BAUDRATE: Final = "baudrate"
CONF_PARITY: Final = "parity"

TYPE_TCP: Final = "tcp"
TYPE_SERIAL: Final = "serial"

DEFAULT_PORT: Final = 502
DEFAULT_UNIT_ID: Final = 1
DEFAULT_BAUDRATE: Final = 19200
# The meter's RS-485 port runs at 9600 or 19200 baud (user guide, table 1).
BAUDRATES: Final = (9600, 19200)
PARITIES: Final = ("none", "even", "odd")
