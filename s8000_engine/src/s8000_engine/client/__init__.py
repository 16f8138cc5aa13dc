"""The client layer: talk to an S8000 over Modbus, and find S8000s.

This is all that Home Assistant installs (``pip install s8000-engine``): it
needs modbus-connection and nothing of the software meter.  The layer rule,
checked by import-linter in ``scripts/test``: nothing here imports
``s8000_engine.config``, ``metering``, ``storage``, ``local``, ``modbus``,
``panel``, ``web`` or ``cli``.

Reading a meter through its built-in web pages instead of Modbus is
:class:`s8000_engine.client.webpages.WebPagesClient`, in a public module of
its own that this façade does not import: it is the one module of the layer
that needs aiohttp, which the base install leaves out (Home Assistant brings
it, as do the ``[webpages]`` and ``[local]`` extras), so importing
``s8000_engine.client`` never loads aiohttp.  Both links satisfy
:class:`MeterReader`.
"""

from __future__ import annotations

from s8000_engine.client.client import (
    BACKENDS,
    FRAME_COST_RTU,
    FRAME_COST_TCP,
    BackendName,
    S8000Client,
    connect_tcp,
)
from s8000_engine.client.data import (
    Identity,
    IntervalMemory,
    MeterData,
    MeterValue,
    PointData,
    PointValue,
    PulseData,
    Selection,
)
from s8000_engine.client.probe import (
    ProbeReport,
    UnitProbe,
    Verdict,
    probe_serial,
    probe_tcp,
    probe_unit,
)
from s8000_engine.client.reader import MeterReader
from s8000_engine.const import BAUDRATES, DEFAULT_BAUDRATE, DEFAULT_PARITY, ENERGY_REGISTERS
from s8000_engine.exceptions import (
    S8000BadData,
    S8000ConnectionError,
    S8000Error,
    S8000MapChanged,
    S8000NotAnS8000,
    S8000ProfileError,
    S8000WrongMeter,
)
from s8000_engine.protocol.intervals import NO_RECORD, IntervalRow, RowFlag
from s8000_engine.protocol.profile import Profile, builtin_profile, get_profile, load_profile
from s8000_engine.protocol.sunspec import Service, Status

__all__ = [
    "BACKENDS",
    "BAUDRATES",
    "DEFAULT_BAUDRATE",
    "DEFAULT_PARITY",
    "ENERGY_REGISTERS",
    "FRAME_COST_RTU",
    "FRAME_COST_TCP",
    "NO_RECORD",
    "BackendName",
    "Identity",
    "IntervalMemory",
    "IntervalRow",
    "MeterData",
    "MeterReader",
    "MeterValue",
    "PointData",
    "PointValue",
    "ProbeReport",
    "Profile",
    "PulseData",
    "RowFlag",
    "S8000BadData",
    "S8000Client",
    "S8000ConnectionError",
    "S8000Error",
    "S8000MapChanged",
    "S8000NotAnS8000",
    "S8000ProfileError",
    "S8000WrongMeter",
    "Selection",
    "Service",
    "Status",
    "UnitProbe",
    "Verdict",
    "builtin_profile",
    "connect_tcp",
    "get_profile",
    "load_profile",
    "probe_serial",
    "probe_tcp",
    "probe_unit",
]
