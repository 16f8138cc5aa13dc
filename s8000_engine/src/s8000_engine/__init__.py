"""The S8000 engine: the Leviton Series 8000 submeter in software.

``pip install s8000-engine`` installs the client: it reads S8000 meters over
Modbus TCP or RTU (:class:`S8000Client`, :func:`connect_tcp`) and finds them
(:mod:`s8000_engine.client.discovery`).  That is what the Home Assistant
integration in ``custom_components/s8000`` builds on, and all this façade
exports.

``pip install "s8000-engine[local]"`` adds the software meter: metering
waveform samples into energy registers, the interval memory, a Modbus server,
the front panel and the web configuration tool (``s8000-engine run``).

Layers, from the bottom (``docs/development.md``): ``const``,
``exceptions``, ``models``; ``protocol``; ``client``; then the meter's
``config``, ``metering``, ``storage``, ``modbus``, ``local``, ``panel``,
``web``; and ``cli`` on top.  A layer imports only the ones below it.
"""

from __future__ import annotations

__version__ = "0.1.0"

# After __version__: the layers below read it while this package initialises.
from s8000_engine.client import (
    Identity,
    IntervalRow,
    MeterData,
    PointData,
    PulseData,
    S8000BadData,
    S8000Client,
    S8000ConnectionError,
    S8000Error,
    S8000MapChanged,
    S8000NotAnS8000,
    S8000WrongMeter,
    Status,
    connect_tcp,
)
from s8000_engine.models import MODELS, MeterModel, get_model

__all__ = [
    "MODELS",
    "Identity",
    "IntervalRow",
    "MeterData",
    "MeterModel",
    "PointData",
    "PulseData",
    "S8000BadData",
    "S8000Client",
    "S8000ConnectionError",
    "S8000Error",
    "S8000MapChanged",
    "S8000NotAnS8000",
    "S8000WrongMeter",
    "Status",
    "__version__",
    "connect_tcp",
    "get_model",
]
