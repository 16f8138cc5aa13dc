"""Constants of the Leviton Series 8000 integration."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from s8000_engine.client import DEFAULT_PARITY

DOMAIN: Final = "s8000"
LOGGER: Final = logging.getLogger(__package__)

# Config entry data: how the meter is reached.
CONF_UNIT_ID: Final = "unit_id"
CONF_BAUDRATE: Final = "baudrate"
CONF_PARITY: Final = "parity"
CONF_MAC: Final = "mac"

TYPE_TCP: Final = "tcp"
TYPE_SERIAL: Final = "serial"
#: The meter's built-in (PowerHawk) web pages, read over HTTP: no Modbus.
TYPE_WEB: Final = "web"

DEFAULT_PORT: Final = 502
DEFAULT_WEB_PORT: Final = 80
DEFAULT_UNIT_ID: Final = 1
PARITIES: Final = ("none", "even", "odd")
# modbus-connection's spelling of each parity.
PARITY_CODES: Final = {"none": "N", "even": "E", "odd": "O"}
# The RS-485 defaults are the engine's (a meter as shipped), so the form's
# defaults, the local meter and the discovery agree on one line setting.
DEFAULT_PARITY_NAME: Final = next(n for n, code in PARITY_CODES.items() if code == DEFAULT_PARITY)

# Options: which points are in use, the name of each, and what the two pulse
# inputs count.
OPT_POINTS: Final = "points"
OPT_NAMES: Final = "names"
OPT_PULSES: Final = "pulses"
# The register profile file the meter is read by (relative to the
# configuration directory); none: the built-in SunSpec map.
OPT_PROFILE: Final = "profile"
# Points whose CT is wired backwards (delivered and received swap, power is
# negated), and points expected to feed back (solar): never said to be reversed.
OPT_REVERSED: Final = "reversed"
OPT_GENERATION: Final = "generation"
PULSE_KIND: Final = "kind"
PULSE_UNIT: Final = "unit"

# What a pulse input can count, and the units each may be counted in.  "count"
# is a bare number of pulses (times the meter's scaling).
PULSE_KINDS: Final = ("count", "water", "gas", "energy")
PULSE_UNITS: Final = {
    "count": (),
    "water": ("L", "m³", "gal", "ft³", "CCF"),
    "gas": ("m³", "ft³", "CCF"),
    "energy": ("kWh", "Wh", "MWh"),
}

# A poll reads what the enabled entities need; with every entity enabled a
# 24-point meter takes about 4 s on the wire at 19,200 baud (the whole map),
# with the default ones 0.95 s, so a serial meter is polled less often.
SCAN_INTERVAL_TCP: Final = timedelta(seconds=10)
SCAN_INTERVAL_SERIAL: Final = timedelta(seconds=30)
# The web pages' own app polled every 5 s; a poll is two to four small pages.
SCAN_INTERVAL_WEB: Final = timedelta(seconds=10)
# Identity and configuration (firmware, the SunSpec chain) change rarely.
IDENTITY_SCAN_INTERVAL: Final = timedelta(minutes=30)
# How long one request may take before the meter counts as silent.
REQUEST_TIMEOUT: Final = 5.0
