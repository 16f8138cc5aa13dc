"""The SunSpec models of the S8000 map, their points, types and encodings.

The models are data: the built-in profile ``profiles/sunspec.json``
(:mod:`s8000_engine.protocol.profile`) declares every point, and this module
builds the models from it, for the local meter's server, the client and the
published map (``s8000-engine registers``, ``docs/registers.md``).  SunSpec
is the open standard Leviton uses for its Series 7000 meters; a profile of
another layout (:mod:`s8000_engine.protocol.regmap`) describes a map of fixed
addresses, as Leviton's own S8000 map may be once it is known.

Layout (holding registers, 0-based wire addresses; function 04 reads the
same registers):

* 40000 — the SunSpec marker ``SunS``;
* model 1 (Common): manufacturer, model, options, version, serial, device
  address;
* one SunSpec meter model per meter point, as the point is wired: 201
  single phase (one CT), 202 split phase (two CTs of a 1p3w service), 203
  wye (three CTs of a 3p4w service), 204 delta (CTs of a 3p3w service);
  two CTs of a wye service are a 208 V line-to-line load, served as 202;
* vendor model 64800 (S8000): identification, the meter clock,
  configuration, commands, pulse inputs, interval-memory pointers and the
  full-resolution registers of every point;
* the end model ``0xFFFF, 0``.

Energy: the SunSpec meter models carry ``acc32`` Wh totals with a static
scale factor chosen per point so that the largest power the point's CTs can
measure does not wrap the register in 30 years.  The vendor model carries the
meter's own registers as **uint64 in mWh**: at 10 000 A and 600 V on three
phases (21 MW) they wrap after 87 000 years.  Import = delivered (utility to
load, quadrants I+IV), export = received (II+III), as Leviton's SunSpec meters
define it; W is positive when importing.
"""

from __future__ import annotations

import math
from enum import IntEnum, IntFlag
from typing import Final

from s8000_engine.protocol.profile import builtin_profile
from s8000_engine.protocol.types import (
    NOT_IMPLEMENTED,
    SIZES,
    DataType,
    Model,
    Point,
    decode,
    encode,
)

SUNSPEC_MARKER: Final = (0x5375, 0x6E53)
END_MODEL: Final = (0xFFFF, 0)


class Service(IntEnum):
    """Service type codes in the vendor model."""

    SINGLE_PHASE_2W = 1
    SINGLE_PHASE_3W = 2
    WYE_4W = 3
    DELTA_3W = 4


class DemandKind(IntEnum):
    """Demand type codes in the vendor model."""

    BLOCK = 1
    SLIDING = 2


class Command(IntEnum):
    """Values written to the vendor model's Cmd register."""

    NONE = 0
    RESET_PEAK_DEMAND = 1
    SEND_DATA = 2


class Status(IntFlag):
    """The vendor model's ``Status`` bits."""

    CLOCK_NOT_SET = 1 << 0
    STORAGE_ERROR = 1 << 1
    REPORT_FAILED = 1 << 2
    NO_VOLTAGE = 1 << 3


# The models, as the built-in profile (profiles/sunspec.json) declares them.
_BUILTIN = builtin_profile().sunspec
assert _BUILTIN is not None
_MODELS: Final = _BUILTIN

COMMON: Final = _MODELS.common

#: The phases of a meter model's per-phase points.
PHASES: Final = ("A", "B", "C")

#: SunSpec meter models by ID: 201 single phase, 202 split phase, 203 wye, 204 delta.
METER_MODELS: Final = {
    model_id: _MODELS.meter_model(model_id) for model_id, _ in _MODELS.meter_names
}


def vendor_model(points: int) -> Model:
    """The S8000 vendor model for a meter with this many points."""
    return _MODELS.vendor_model(points)


BASE_ADDRESS: Final = _MODELS.base
VENDOR_MODEL_ID: Final = _MODELS.vendor_id
MANUFACTURER: Final = builtin_profile().manufacturer

__all__ = [
    "BASE_ADDRESS",
    "COMMON",
    "END_MODEL",
    "MANUFACTURER",
    "METER_MODELS",
    "NOT_IMPLEMENTED",
    "PHASES",
    "SIZES",
    "SUNSPEC_MARKER",
    "VENDOR_MODEL_ID",
    "Command",
    "DataType",
    "DemandKind",
    "Model",
    "Point",
    "Service",
    "Status",
    "decode",
    "encode",
    "energy_scale_factor",
    "scale_factor",
    "vendor_model",
]


def scale_factor(maximum: float, finest: int) -> int:
    """The smallest power of ten that fits ``maximum`` into an int16, not below ``finest``."""
    if maximum <= 0:
        return finest
    return max(finest, math.ceil(math.log10(maximum / 32767)))


def energy_scale_factor(max_watts: float, years: float = 30.0) -> int:
    """The acc32 Wh scale factor that does not wrap in ``years`` at ``max_watts``."""
    wh = max_watts * years * 8766.0
    return max(0, math.ceil(math.log10(wh / 0xFFFFFFFF))) if wh > 0 else 0
