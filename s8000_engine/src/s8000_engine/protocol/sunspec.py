"""The SunSpec models of the S8000 map, their points, types and encodings.

One declarative table drives the local meter's server, the client and the
published map (``s8000-engine registers``, ``docs/registers.md``).  The map
is a *profile*; the one here is ``sunspec``: the open standard Leviton uses
for its Series 7000 meters.  Another profile (Leviton's own S8000 map, once
it is known) can be added beside it without touching the integration.

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
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag, StrEnum
from typing import Any, Final

from s8000_engine.const import MAX_CT_PRIMARY_A, PULSE_SCALE_MAX, PULSE_SCALE_MIN

BASE_ADDRESS: Final = 40000
SUNSPEC_MARKER: Final = (0x5375, 0x6E53)
VENDOR_MODEL_ID: Final = 64800
MANUFACTURER: Final = "Leviton"
END_MODEL: Final = (0xFFFF, 0)


class DataType(StrEnum):
    """Register encodings; multi-register values are big-endian word order."""

    UINT16 = "uint16"
    INT16 = "int16"
    UINT32 = "uint32"
    INT32 = "int32"
    UINT64 = "uint64"
    INT64 = "int64"
    FLOAT32 = "float32"
    ACC32 = "acc32"
    BITFIELD32 = "bitfield32"
    ENUM16 = "enum16"
    SUNSSF = "sunssf"
    STRING = "string"
    EUI48 = "eui48"
    PAD = "pad"

    @property
    def json_type(self) -> str:
        """The type as the published JSON names it (the seven numeric kinds, or string)."""
        return {
            DataType.ACC32: "uint32",
            DataType.BITFIELD32: "uint32",
            DataType.ENUM16: "uint16",
            DataType.SUNSSF: "int16",
            DataType.PAD: "uint16",
        }.get(self, self.value)


SIZES: Final = {
    DataType.UINT16: 1,
    DataType.INT16: 1,
    DataType.UINT32: 2,
    DataType.INT32: 2,
    DataType.UINT64: 4,
    DataType.INT64: 4,
    DataType.FLOAT32: 2,
    DataType.ACC32: 2,
    DataType.BITFIELD32: 2,
    DataType.ENUM16: 1,
    DataType.SUNSSF: 1,
    DataType.EUI48: 3,
    DataType.PAD: 1,
}

#: "Not implemented" values per type (SunSpec).
NOT_IMPLEMENTED: Final[dict[DataType, int | float | None]] = {
    DataType.UINT16: 0xFFFF,
    DataType.INT16: -0x8000,
    DataType.UINT32: 0xFFFFFFFF,
    DataType.INT32: -0x80000000,
    DataType.UINT64: 0xFFFFFFFFFFFFFFFF,
    DataType.INT64: -0x8000000000000000,
    DataType.FLOAT32: math.nan,
    DataType.ACC32: 0,
    DataType.BITFIELD32: 0xFFFFFFFF,
    DataType.ENUM16: 0xFFFF,
    DataType.SUNSSF: -0x8000,
    DataType.PAD: 0,
}


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


@dataclass(frozen=True, slots=True)
class Point:
    """One register point of a model, at an offset from the model header."""

    name: str
    type: DataType
    offset: int
    size: int
    unit: str = ""
    scale: int | str | None = None
    """Power of ten, or the name of the scale-factor point in the same model."""
    access: str = "R"
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True, slots=True)
class Model:
    """A model definition: its ID and points (the header ID, L included)."""

    model_id: int
    name: str
    points: tuple[Point, ...]

    @property
    def length(self) -> int:
        """L: data registers after the two-register header."""
        return max(p.offset + p.size for p in self.points) - 2

    def point(self, name: str) -> Point:
        """A point by name."""
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(f"model {self.model_id} has no point {name!r}")


def _model(model_id: int, name: str, spec: Sequence[tuple[Any, ...]]) -> Model:
    """Lay points out in order.

    Each entry is (name, type, unit, scale, access, description[, minimum,
    maximum]); a string has its size in registers after its type."""
    points = [
        Point("ID", DataType.UINT16, 0, 1, description="model ID"),
        Point("L", DataType.UINT16, 1, 1, description="model length"),
    ]
    offset = 2
    for entry in spec:
        point_name, kind, *rest = entry
        size = rest.pop(0) if kind is DataType.STRING else SIZES[kind]
        unit, scale, access, description, *limits = rest
        minimum, maximum = ([*limits, None, None])[:2]
        points.append(
            Point(
                point_name, kind, offset, size, unit, scale, access, description, minimum, maximum
            )
        )
        offset += size
    return Model(model_id, name, tuple(points))


T = DataType

COMMON = _model(
    1,
    "common",
    [
        ("Mn", T.STRING, 16, "", None, "R", "manufacturer"),
        ("Md", T.STRING, 16, "", None, "R", "model, e.g. S8UTS-083"),
        ("Opt", T.STRING, 8, "", None, "R", "service and layout, e.g. 3p4w 8x3"),
        ("Vr", T.STRING, 8, "", None, "R", "firmware version"),
        ("SN", T.STRING, 16, "", None, "R", "serial number"),
        ("DA", T.UINT16, "", None, "R", "Modbus device address (the base address)"),
        ("Pad", T.PAD, "", None, "R", "alignment"),
    ],
)

#: The phases of a meter model's per-phase points.
PHASES: Final = ("A", "B", "C")


def _meter_spec() -> list[tuple[Any, ...]]:
    spec: list[tuple[Any, ...]] = [("A", T.INT16, "A", "A_SF", "R", "total current")]
    spec += [(f"Aph{p}", T.INT16, "A", "A_SF", "R", f"current, phase {p}") for p in PHASES]
    spec += [("A_SF", T.SUNSSF, "", None, "R", "current scale factor")]
    spec += [("PhV", T.INT16, "V", "V_SF", "R", "line-to-neutral voltage, average")]
    spec += [(f"PhVph{p}", T.INT16, "V", "V_SF", "R", f"voltage {p}-N") for p in PHASES]
    spec += [("PPV", T.INT16, "V", "V_SF", "R", "line-to-line voltage, average")]
    spec += [
        (f"PhVph{a}", T.INT16, "V", "V_SF", "R", f"voltage {a[0]}-{a[1]}")
        for a in ("AB", "BC", "CA")
    ]
    spec += [
        ("V_SF", T.SUNSSF, "", None, "R", "voltage scale factor"),
        ("Hz", T.INT16, "Hz", "Hz_SF", "R", "frequency"),
        ("Hz_SF", T.SUNSSF, "", None, "R", "frequency scale factor"),
    ]
    for key, unit, what in (("W", "W", "active power"), ("VA", "VA", "apparent power"),
                            ("VAR", "var", "reactive power (fundamental)"),
                            ("PF", "Pct", "power factor")):  # fmt: skip
        spec.append((key, T.INT16, unit, f"{key}_SF", "R", f"{what}, total"))
        spec += [
            (f"{key}ph{p}", T.INT16, unit, f"{key}_SF", "R", f"{what}, phase {p}") for p in PHASES
        ]
        spec.append((f"{key}_SF", T.SUNSSF, "", None, "R", f"{what} scale factor"))
    for key, what in (("TotWhExp", "active energy exported (received)"),
                      ("TotWhImp", "active energy imported (delivered)")):  # fmt: skip
        spec.append((key, T.ACC32, "Wh", "TotWh_SF", "R", f"{what}, total"))
        spec += [
            (f"{key}Ph{p}", T.ACC32, "Wh", "TotWh_SF", "R", f"{what}, phase {p}") for p in PHASES
        ]
    spec.append(("TotWh_SF", T.SUNSSF, "", None, "R", "active energy scale factor"))
    for key, what in (("TotVAhExp", "apparent energy exported"),
                      ("TotVAhImp", "apparent energy imported")):  # fmt: skip
        spec.append((key, T.ACC32, "VAh", "TotVAh_SF", "R", f"{what} (not metered: 0)"))
        spec += [
            (f"{key}Ph{p}", T.ACC32, "VAh", "TotVAh_SF", "R", "not metered: 0") for p in PHASES
        ]
    spec.append(("TotVAh_SF", T.SUNSSF, "", None, "R", "apparent energy scale factor"))
    for key, what in (("TotVArhImpQ1", "reactive energy, quadrant 1"),
                      ("TotVArhImpQ2", "reactive energy, quadrant 2"),
                      ("TotVArhExpQ3", "reactive energy, quadrant 3"),
                      ("TotVArhExpQ4", "reactive energy, quadrant 4")):  # fmt: skip
        spec.append((key, T.ACC32, "varh", "TotVArh_SF", "R", f"{what}, total"))
        spec += [
            (f"{key}Ph{p}", T.ACC32, "varh", "TotVArh_SF", "R", "per phase: not metered, 0")
            for p in PHASES
        ]
    spec += [
        ("TotVArh_SF", T.SUNSSF, "", None, "R", "reactive energy scale factor"),
        ("Evt", T.BITFIELD32, "", None, "R", "events (bit 2 power failure)"),
    ]
    return spec


#: SunSpec meter models by ID: 201 single phase, 202 split phase, 203 wye, 204 delta.
METER_MODELS: Final = {
    model_id: _model(model_id, name, _meter_spec())
    for model_id, name in (
        (201, "meter_1p"),
        (202, "meter_split"),
        (203, "meter_wye"),
        (204, "meter_delta"),
    )
}


def _vendor_fixed_spec() -> list[tuple[Any, ...]]:
    spec: list[tuple[Any, ...]] = [
        ("FwBuild", T.UINT16, "", None, "R", "firmware build number"),
        ("MAC", T.EUI48, "", None, "R", "Ethernet MAC address"),
        ("Points", T.UINT16, "", None, "R", "meter points (N)"),
        ("Elements", T.UINT16, "", None, "R", "CTs (elements) per point of the model"),
        ("Service", T.ENUM16, "", None, "R", "1 = 1p2w, 2 = 1p3w, 3 = 3p4w wye, 4 = 3p3w delta"),
        ("PTRatio", T.UINT32, "", -3, "R", "potential transformer ratio"),
        ("NomV", T.UINT16, "V", -1, "R", "nominal voltage at the terminals"),
        ("NomHz", T.UINT16, "Hz", None, "R", "nominal frequency"),
        ("UTC", T.UINT32, "s", None, "RW", "meter clock, UTC seconds since 1970; write to set it",
         946684800, 4102444800),
        ("Status", T.BITFIELD32, "", None, "R",
         "bit 0 clock never set, bit 1 storage error, bit 2 last report failed, bit 3 no voltage"),
        ("RecInt", T.UINT16, "min", None, "RW", "recording interval (1, 5, 10, 15, 30, 60)", 1, 60),
        ("DmdType", T.ENUM16, "", None, "RW", "demand: 1 = block, 2 = sliding window", 1, 2),
        ("DmdInt", T.UINT16, "min", None, "RW", "demand interval: 1, 5, 10, 15, 30 or 60", 1, 60),
        ("DmdSub", T.UINT16, "min", None, "RW", "sliding demand subinterval", 1, 60),
        ("Cmd", T.ENUM16, "", None, "RW", "write 1 = reset peak demand, 2 = send data now", 0, 2),
    ]  # fmt: skip
    for n in (1, 2):
        spec += [
            (f"P{n}Count", T.UINT32, "", None, "R", f"pulse input {n}: pulses counted"),
            (
                f"P{n}Errors",
                T.UINT32,
                "",
                None,
                "R",
                f"pulse input {n}: pulses rejected (off spec)",
            ),
            (
                f"P{n}Scale",
                T.FLOAT32,
                "",
                None,
                "RW",
                f"pulse input {n}: units per pulse",
                PULSE_SCALE_MIN,
                PULSE_SCALE_MAX,
            ),
            (f"P{n}Value", T.FLOAT32, "", None, "R", f"pulse input {n}: count × scale"),
        ]
    spec += [
        ("IntLen", T.UINT16, "s", None, "R", "interval memory: recording interval in seconds"),
        ("IntCount", T.UINT32, "", None, "R", "interval memory: intervals stored"),
        ("IntOldest", T.UINT32, "s", None, "R", "interval memory: start of the oldest, UTC"),
        ("IntNewest", T.UINT32, "s", None, "R", "interval memory: start of the newest, UTC"),
        ("IntRowWords", T.UINT16, "", None, "R", "interval memory: words per row (6 + 16 N)"),
        ("IntRowsPerFile", T.UINT16, "", None, "R", "interval memory: rows per file record file"),
    ]
    return spec


def _vendor_point_spec(n: int) -> list[tuple[Any, ...]]:
    return [
        (
            f"Pt{n}CT",
            T.UINT16,
            "A",
            None,
            "RW",
            f"point {n}: CT primary (100 mA secondary)",
            1,
            int(MAX_CT_PRIMARY_A),
        ),
        (f"Pt{n}WhImp", T.UINT64, "Wh", -3, "R", f"point {n}: kWh delivered register, mWh"),
        (f"Pt{n}WhExp", T.UINT64, "Wh", -3, "R", f"point {n}: kWh received register, mWh"),
        (f"Pt{n}VArhImp", T.UINT64, "varh", -3, "R", f"point {n}: kvarh delivered register, mvarh"),
        (f"Pt{n}VArhExp", T.UINT64, "varh", -3, "R", f"point {n}: kvarh received register, mvarh"),
        (f"Pt{n}Dmd", T.FLOAT32, "W", None, "R", f"point {n}: demand, last interval"),
        (f"Pt{n}PkDmd", T.FLOAT32, "W", None, "R", f"point {n}: peak demand since reset"),
        (f"Pt{n}PkDmdT", T.UINT32, "s", None, "R", f"point {n}: time of the peak, UTC"),
    ]


def vendor_model(points: int) -> Model:
    """The S8000 vendor model for a meter with this many points."""
    spec = _vendor_fixed_spec()
    for n in range(1, points + 1):
        spec += _vendor_point_spec(n)
    return _model(VENDOR_MODEL_ID, "s8000", spec)


# -- encoding -----------------------------------------------------------------------------


def encode(kind: DataType, value: Any, size: int = 1) -> list[int]:
    """Registers for a value (None or NaN: the type's "not implemented")."""
    if kind is DataType.STRING:
        raw = (value or "").encode("ascii", "replace")[: size * 2].ljust(size * 2, b"\0")
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, size * 2, 2)]
    if kind is DataType.EUI48:
        mac = value or "FF:FF:FF:FF:FF:FF"
        data = bytes(int(part, 16) for part in mac.replace("-", ":").split(":"))
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, 6, 2)]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = NOT_IMPLEMENTED[kind]
        if kind is DataType.FLOAT32:
            return [0x7FC0, 0x0000]
    if kind is DataType.FLOAT32:
        hi, lo = struct.unpack(">HH", struct.pack(">f", float(value)))
        return [hi, lo]
    words = SIZES[kind]
    bits = 16 * words
    number = int(value)
    signed = kind in (DataType.INT16, DataType.INT32, DataType.INT64, DataType.SUNSSF)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not low <= number <= high:
        raise OverflowError(f"{number} does not fit {kind.value}")
    number &= (1 << bits) - 1
    return [(number >> (16 * (words - 1 - i))) & 0xFFFF for i in range(words)]


def decode(kind: DataType, words: Sequence[int]) -> Any:
    """A value from its registers (None for "not implemented")."""
    if kind is DataType.STRING:
        raw = b"".join(w.to_bytes(2, "big") for w in words)
        text = raw.split(b"\0", 1)[0].decode("ascii", "replace")
        return text or None
    if kind is DataType.EUI48:
        data = b"".join(w.to_bytes(2, "big") for w in words)
        return None if data == b"\xff" * 6 else ":".join(f"{b:02X}" for b in data)
    if kind is DataType.FLOAT32:
        value = struct.unpack(">f", struct.pack(">HH", words[0], words[1]))[0]
        return None if math.isnan(value) else float(value)
    number = 0
    for w in words:
        number = (number << 16) | w
    bits = 16 * len(words)
    if kind in (DataType.INT16, DataType.INT32, DataType.INT64, DataType.SUNSSF) and number >> (
        bits - 1
    ):
        number -= 1 << bits
    if kind is not DataType.PAD and number == NOT_IMPLEMENTED.get(kind):
        return None
    return number


def scale_factor(maximum: float, finest: int) -> int:
    """The smallest power of ten that fits ``maximum`` into an int16, not below ``finest``."""
    if maximum <= 0:
        return finest
    return max(finest, math.ceil(math.log10(maximum / 32767)))


def energy_scale_factor(max_watts: float, years: float = 30.0) -> int:
    """The acc32 Wh scale factor that does not wrap in ``years`` at ``max_watts``."""
    wh = max_watts * years * 8766.0
    return max(0, math.ceil(math.log10(wh / 0xFFFFFFFF))) if wh > 0 else 0
