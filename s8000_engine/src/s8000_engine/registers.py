"""The Modbus register map, defined once.

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

import csv
import io
import json
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, Final

from s8000_engine.config import MeterConfig, PointConfig, ServiceType

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

_PHASES = ("A", "B", "C")


def _meter_spec() -> list[tuple[Any, ...]]:
    spec: list[tuple[Any, ...]] = [("A", T.INT16, "A", "A_SF", "R", "total current")]
    spec += [(f"Aph{p}", T.INT16, "A", "A_SF", "R", f"current, phase {p}") for p in _PHASES]
    spec += [("A_SF", T.SUNSSF, "", None, "R", "current scale factor")]
    spec += [("PhV", T.INT16, "V", "V_SF", "R", "line-to-neutral voltage, average")]
    spec += [(f"PhVph{p}", T.INT16, "V", "V_SF", "R", f"voltage {p}-N") for p in _PHASES]
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
            (f"{key}ph{p}", T.INT16, unit, f"{key}_SF", "R", f"{what}, phase {p}") for p in _PHASES
        ]
        spec.append((f"{key}_SF", T.SUNSSF, "", None, "R", f"{what} scale factor"))
    for key, what in (("TotWhExp", "active energy exported (received)"),
                      ("TotWhImp", "active energy imported (delivered)")):  # fmt: skip
        spec.append((key, T.ACC32, "Wh", "TotWh_SF", "R", f"{what}, total"))
        spec += [
            (f"{key}Ph{p}", T.ACC32, "Wh", "TotWh_SF", "R", f"{what}, phase {p}") for p in _PHASES
        ]
    spec.append(("TotWh_SF", T.SUNSSF, "", None, "R", "active energy scale factor"))
    for key, what in (("TotVAhExp", "apparent energy exported"),
                      ("TotVAhImp", "apparent energy imported")):  # fmt: skip
        spec.append((key, T.ACC32, "VAh", "TotVAh_SF", "R", f"{what} (not metered: 0)"))
        spec += [
            (f"{key}Ph{p}", T.ACC32, "VAh", "TotVAh_SF", "R", "not metered: 0") for p in _PHASES
        ]
    spec.append(("TotVAh_SF", T.SUNSSF, "", None, "R", "apparent energy scale factor"))
    for key, what in (("TotVArhImpQ1", "reactive energy, quadrant 1"),
                      ("TotVArhImpQ2", "reactive energy, quadrant 2"),
                      ("TotVArhExpQ3", "reactive energy, quadrant 3"),
                      ("TotVArhExpQ4", "reactive energy, quadrant 4")):  # fmt: skip
        spec.append((key, T.ACC32, "varh", "TotVArh_SF", "R", f"{what}, total"))
        spec += [
            (f"{key}Ph{p}", T.ACC32, "varh", "TotVArh_SF", "R", "per phase: not metered, 0")
            for p in _PHASES
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
                1e-6,
                1e6,
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
            10000,
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


# -- the chain ---------------------------------------------------------------------------


def meter_model_id(config: MeterConfig, point: PointConfig) -> int:
    """The SunSpec meter model of a point, as it is wired."""
    if config.service is ServiceType.DELTA_3W:
        return 204
    elements = len(point.phases)
    if elements == 3:
        return 203
    if elements == 2:
        return 202
    return 201


@dataclass(frozen=True, slots=True)
class Placed:
    """A model instance in the chain."""

    model: Model
    address: int
    """Wire address of its header."""
    label: str
    """``common``, ``point3`` or ``s8000``."""
    point: int | None = None
    """0-based meter point for a meter model."""


@dataclass(frozen=True, slots=True)
class Field:
    """One register point at its wire address: a row of the published map."""

    name: str
    address: int
    type: DataType
    size: int
    unit: str
    scale: int | str | None
    access: str
    description: str
    model: int
    minimum: float | None = None
    maximum: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The published JSON row."""
        row: dict[str, Any] = {
            "name": self.name,
            "address": self.address,
            "table": "holding",
            "type": self.type.json_type if self.type is not DataType.STRING else "string",
            "registers": self.size,
            "unit": self.unit,
            "scale": self.scale,
            "access": "read-write" if self.access == "RW" else "read",
            "model": self.model,
            "description": self.description,
        }
        if self.type in (DataType.ACC32, DataType.SUNSSF, DataType.ENUM16, DataType.BITFIELD32):
            row["sunspec_type"] = self.type.value
        if self.minimum is not None:
            row["minimum"] = self.minimum
            row["maximum"] = self.maximum
        return row


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """The whole map of one configured meter."""

    profile: str
    base: int
    chain: tuple[Placed, ...]
    end: int
    """Wire address one past the end model."""

    @property
    def fields(self) -> list[Field]:
        """Every register point in address order (marker and end model included)."""
        rows = [
            Field("SunS", self.base, DataType.UINT32, 2, "", None, "R",
                  "SunSpec marker 0x53756E53", 0),
        ]  # fmt: skip
        for placed in self.chain:
            prefix = placed.label
            for p in placed.model.points:
                scale = p.scale
                if isinstance(scale, str):
                    scale = f"{prefix}.{scale}"
                rows.append(
                    Field(
                        f"{prefix}.{p.name}",
                        placed.address + p.offset,
                        p.type,
                        p.size,
                        p.unit,
                        scale,
                        p.access,
                        p.description,
                        placed.model.model_id,
                        p.minimum,
                        p.maximum,
                    )
                )
        rows.append(
            Field("end.ID", self.end - 2, DataType.UINT16, 1, "", None, "R", "end model 0xFFFF", 0)
        )
        rows.append(
            Field("end.L", self.end - 1, DataType.UINT16, 1, "", None, "R", "end model length 0", 0)
        )
        return rows

    def placed(self, label: str) -> Placed:
        """A model instance by label."""
        for placed in self.chain:
            if placed.label == label:
                return placed
        raise KeyError(label)

    def address_of(self, label: str, point: str) -> int:
        """Wire address of a point of a model instance."""
        placed = self.placed(label)
        return placed.address + placed.model.point(point).offset


def build_map(
    config: MeterConfig, base: int = BASE_ADDRESS, profile: str = "sunspec"
) -> RegisterMap:
    """The map of a configured meter in a profile (see :data:`PROFILES`)."""
    try:
        builder = PROFILES[profile]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown register profile {profile!r}; known: {known}") from None
    return builder(config, base)


def build_sunspec_map(config: MeterConfig, base: int = BASE_ADDRESS) -> RegisterMap:
    """The SunSpec profile's map for a configured meter."""
    chain: list[Placed] = []
    address = base + 2
    chain.append(Placed(COMMON, address, "common"))
    address += COMMON.length + 2
    for number, point in enumerate(config.points):
        model = METER_MODELS[meter_model_id(config, point)]
        chain.append(Placed(model, address, f"point{number + 1}", number))
        address += model.length + 2
    vendor = vendor_model(len(config.points))
    chain.append(Placed(vendor, address, "s8000"))
    address += vendor.length + 2
    return RegisterMap("sunspec", base, tuple(chain), address + 2)


#: Register profiles by name. ``sunspec`` is the open standard Leviton uses
#: for its Series 7000 meters; Leviton's own S8000 map can be added here as
#: another builder returning a RegisterMap, and the server, the client and
#: the published map follow it without other changes.
PROFILES: dict[str, Callable[[MeterConfig, int], RegisterMap]] = {"sunspec": build_sunspec_map}


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


# -- publishing ---------------------------------------------------------------------------


def as_json(regmap: RegisterMap) -> str:
    """The published map as JSON: a list of register objects."""
    return json.dumps([f.as_dict() for f in regmap.fields], indent=1)


def as_csv(regmap: RegisterMap) -> str:
    """The published map as CSV."""
    buffer = io.StringIO()
    columns = [
        "name",
        "address",
        "table",
        "type",
        "registers",
        "unit",
        "scale",
        "access",
        "model",
        "description",
    ]
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(f.as_dict() for f in regmap.fields)
    return buffer.getvalue()


def as_markdown(regmap: RegisterMap, title: str = "") -> str:
    """The published map as a Markdown table."""
    lines = [title, ""] if title else []
    lines += [
        "| address | name | type | regs | unit | scale | access | description |",
        "|---:|---|---|---:|---|---|---|---|",
    ]
    for f in regmap.fields:
        scale = (
            ""
            if f.scale is None
            else f"`{f.scale}`"
            if isinstance(f.scale, str)
            else f"10^{f.scale}"
        )
        rng = (
            f" ({f.minimum:g}–{f.maximum:g})"
            if f.minimum is not None and f.maximum is not None
            else ""
        )
        lines.append(
            f"| {f.address} | `{f.name}` | {f.type.value} | {f.size} | {f.unit} | {scale} | "
            f"{'RW' if f.access == 'RW' else 'R'} | {f.description}{rng} |"
        )
    return "\n".join(lines) + "\n"


__all__ = [
    "BASE_ADDRESS",
    "COMMON",
    "METER_MODELS",
    "PROFILES",
    "VENDOR_MODEL_ID",
    "Command",
    "DataType",
    "DemandKind",
    "Field",
    "IntervalRow",
    "MeterSnapshot",
    "Model",
    "Placed",
    "Point",
    "RegisterMap",
    "Service",
    "as_csv",
    "as_json",
    "as_markdown",
    "build_map",
    "decode",
    "decode_row",
    "encode",
    "encode_row",
    "energy_scale_factor",
    "file_position",
    "meter_model_id",
    "point_scale_factors",
    "render",
    "row_words",
    "rows_per_file",
    "scale_factor",
    "vendor_model",
]


# -- interval memory over function 20 -------------------------------------------------------


def row_words(points: int) -> int:
    """Words of one interval row: start (2), length, flags, covered, reserved,
    then per point four uint64 registers in mWh."""
    return 6 + 16 * points


def rows_per_file(points: int) -> int:
    """Whole rows in one file (a file holds records 0–9999)."""
    return 10000 // row_words(points)


def file_position(start: int, length: int, points: int) -> tuple[int, int]:
    """(file number, first record) of the row of the interval starting at ``start``."""
    index = start // length
    per_file = rows_per_file(points)
    return 1 + (index // per_file) % 65535, (index % per_file) * row_words(points)


def encode_row(record: Any, points: int) -> list[int]:
    """The words of one interval row (``record`` an IntervalRecord, or None)."""
    if record is None:
        return [0xFFFF, 0xFFFF] + [0] * (row_words(points) - 2)
    words = encode(DataType.UINT32, record.start)
    words += [record.length, int(record.flags), min(0xFFFF, round(record.covered)), 0]
    by_point = {p.point: p for p in record.points}
    for index in range(points):
        p = by_point.get(index)
        for value in p.registers if p is not None else (None, None, None, None):
            words += encode(DataType.UINT64, value)
    return words


#: The start word pair of a row where no interval is stored.
NO_INTERVAL: Final = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class IntervalRow:
    """One row of the interval memory as function 20 reads it (see :func:`decode_row`)."""

    start: int
    """UTC seconds since 1970, a multiple of ``length``."""
    length: int
    """Seconds."""
    flags: int
    """Bit 0 power off, bit 1 clock set, bit 2 configuration changed
    (:class:`s8000_engine.storage.Flag`)."""
    seconds: int
    """Seconds of the interval the meter was metering."""
    registers: tuple[tuple[int, int, int, int], ...]
    """Per point (in point order), the registers at the interval's end in mWh
    (mvarh): kWh delivered, kWh received, kvarh delivered, kvarh received.
    A point the interval has no record of reads 2^64 − 1 ("not implemented")."""

    @property
    def end(self) -> int:
        """UTC seconds of the interval's end: where its registers were taken."""
        return self.start + self.length


def decode_row(words: Sequence[int], points: int) -> IntervalRow | None:
    """The interval of one row's words (:func:`encode_row`'s inverse); None for an empty row.

    Raises ValueError unless there are exactly :func:`row_words` words."""
    width = row_words(points)
    if len(words) != width:
        raise ValueError(f"an interval row of {points} points is {width} words, not {len(words)}")
    start = (words[0] << 16) | words[1]
    if start == NO_INTERVAL:
        return None
    registers = []
    for index in range(points):
        at = 6 + 16 * index
        values = [
            (words[k] << 48) | (words[k + 1] << 32) | (words[k + 2] << 16) | words[k + 3]
            for k in range(at, at + 16, 4)
        ]
        registers.append((values[0], values[1], values[2], values[3]))
    return IntervalRow(start, words[2], words[3], words[4], tuple(registers))


# -- the register image -------------------------------------------------------------------


@dataclass(slots=True)
class MeterSnapshot:
    """Everything the register image shows, taken at one instant."""

    config: MeterConfig
    serial: str
    firmware: str = "1.00"
    firmware_build: int = 1
    mac: str | None = None
    device_address: int = 1
    utc: float = 0.0
    status: int = 0
    readings: Any = None
    """The last :class:`~s8000_engine.metering.Readings`, or None before the first."""
    registers: Sequence[Sequence[int]] = ()
    """Per point the eight registers in mWh."""
    demand_w: Sequence[float] = ()
    peak_w: Sequence[float] = ()
    peak_time: Sequence[float] = ()
    pulse_counts: Sequence[int] = (0, 0)
    pulse_errors: Sequence[int] = (0, 0)
    pulse_scales: Sequence[float] = (1.0, 1.0)
    recording_minutes: int = 15
    interval_count: int = 0
    interval_oldest: int | None = None
    interval_newest: int | None = None


def point_scale_factors(config: MeterConfig, point: PointConfig) -> dict[str, int]:
    """Static scale factors of a point's meter model, from its CTs and voltages."""
    amps = 1.2 * point.ct_primary_a
    volts_ln = config.nominal_voltage * config.pt_ratio * 1.3
    volts = volts_ln * (math.sqrt(3.0) if config.service is not ServiceType.DELTA_3W else 1.0)
    watts = (
        volts_ln
        * amps
        * len(point.phases)
        * (math.sqrt(3.0) if config.service is ServiceType.DELTA_3W else 1.0)
    )
    return {
        "A_SF": scale_factor(amps * len(point.phases), -3),
        "V_SF": scale_factor(volts, -2),
        "Hz_SF": -2,
        "W_SF": scale_factor(watts, -1),
        "VA_SF": scale_factor(watts, -1),
        "VAR_SF": scale_factor(watts, -1),
        "PF_SF": -2,
        "TotWh_SF": energy_scale_factor(watts),
        "TotVAh_SF": energy_scale_factor(watts),
        "TotVArh_SF": energy_scale_factor(watts),
    }


def _scaled(value: float | None, sf: int) -> int | None:
    if value is None or math.isnan(value):
        return None
    return round(value / 10.0**sf)


def _meter_values(snapshot: MeterSnapshot, index: int) -> dict[str, Any]:
    """The points of one meter model (unscaled engineering values)."""
    config = snapshot.config
    point = config.points[index]
    sf = point_scale_factors(config, point)
    values: dict[str, Any] = dict(sf)
    r = snapshot.readings
    phases = [p.value for p in point.phases]
    delta = config.service is ServiceType.DELTA_3W
    if r is not None:
        # Elements of this point, in order, and the channel of each.
        first = sum(len(p.phases) for p in config.points[:index])
        amps: dict[str, float] = {}
        watts: dict[str, float] = {}
        vars_: dict[str, float] = {}
        vas: dict[str, float] = {}
        for k, phase in enumerate(phases):
            element = first + k
            channel = config.model.channel(index + 1, k + 1).index
            amps[phase] = float(r.current[channel])
            watts[phase] = float(r.element_power[element])
            vars_[phase] = float(r.element_reactive[element])
            terminal = "ABC".index(phase)
            vas[phase] = (
                float(r.voltage[terminal]) * amps[phase] if not (delta and phase == "B") else 0.0
            )
        values["A"] = sum(amps.values())
        for p in _PHASES:
            values[f"Aph{p}"] = amps.get(p)
            values[f"Wph{p}"] = watts.get(p)
            values[f"VARph{p}"] = vars_.get(p)
            values[f"VAph{p}"] = vas.get(p)
            pf = watts[p] / vas[p] * 100.0 if p in vas and vas[p] > 0 else None
            values[f"PFph{p}"] = pf
        service_phases = [p.value for p in config.phases]
        if not delta:
            for p in service_phases:
                values[f"PhVph{p}"] = float(r.voltage["ABC".index(p)])
            values["PhV"] = sum(values[f"PhVph{p}"] for p in service_phases) / len(service_phases)
        v1 = r.voltage_phasor
        pairs = {"AB": (0, 1), "BC": (1, 2), "CA": (2, 0)}
        if delta:
            line = {"AB": abs(v1[0]), "BC": abs(v1[2]), "CA": abs(v1[0] - v1[2])}
        else:
            line = {
                name: abs(v1[a] - v1[b])
                for name, (a, b) in pairs.items()
                if "ABC"[a] in service_phases and "ABC"[b] in service_phases
            }
        for name, peak in line.items():
            values[f"PhVph{name}"] = float(peak) / math.sqrt(2.0)
        if line:
            values["PPV"] = sum(values[f"PhVph{n}"] for n in line) / len(line)
        values["Hz"] = float(r.frequency) if r.voltage_valid else None
        values["W"] = float(r.power[index])
        values["VAR"] = float(r.reactive[index])
        values["VA"] = float(r.apparent[index])
        pf = float(r.power_factor[index])
        values["PF"] = None if math.isnan(pf) else pf * 100.0
    if index < len(snapshot.registers):
        regs = snapshot.registers[index]
        values["TotWhImp"] = regs[0] / 1000.0
        values["TotWhExp"] = regs[1] / 1000.0
        for q in range(4):
            key = ("TotVArhImpQ1", "TotVArhImpQ2", "TotVArhExpQ3", "TotVArhExpQ4")[q]
            values[key] = regs[4 + q] / 1000.0
    values["Evt"] = 0 if r is None or r.voltage_valid else 1 << 2
    return values


def render(regmap: RegisterMap, snapshot: MeterSnapshot) -> list[int]:
    """The register image from ``regmap.base`` to ``regmap.end`` (exclusive)."""
    image = [0] * (regmap.end - regmap.base)

    def put(address: int, words: list[int]) -> None:
        start = address - regmap.base
        image[start : start + len(words)] = words

    put(regmap.base, list(SUNSPEC_MARKER))
    config = snapshot.config
    for placed in regmap.chain:
        model = placed.model
        values: dict[str, Any]
        if placed.label == "common":
            values = {
                "Mn": MANUFACTURER,
                "Md": config.model.code,
                "Opt": f"{config.service.value} {len(config.points)}x{config.model.elements}",
                "Vr": snapshot.firmware,
                "SN": snapshot.serial,
                "DA": snapshot.device_address,
                "Pad": 0,
            }
        elif placed.point is not None:
            values = _meter_values(snapshot, placed.point)
        else:
            values = _vendor_values(snapshot)
        for p in model.points:
            if p.name == "ID":
                words = [model.model_id]
            elif p.name == "L":
                words = [model.length]
            else:
                value = values.get(p.name)
                if isinstance(p.scale, str) and value is not None:
                    value = _scaled(value, int(values[p.scale]))
                elif isinstance(p.scale, int) and value is not None:
                    value = _scaled(value, p.scale)
                elif p.type in (DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32,
                                DataType.UINT64, DataType.ACC32) and value is not None:  # fmt: skip
                    value = round(value)
                words = encode(p.type, value, p.size)
            put(placed.address + p.offset, words)
    put(regmap.end - 2, list(END_MODEL))
    return image


def _vendor_values(snapshot: MeterSnapshot) -> dict[str, Any]:
    config = snapshot.config
    values: dict[str, Any] = {
        "FwBuild": snapshot.firmware_build,
        "MAC": snapshot.mac,
        "Points": len(config.points),
        "Elements": config.model.elements,
        "Service": list(ServiceType).index(config.service) + 1,
        "PTRatio": config.pt_ratio,
        "NomV": config.nominal_voltage,
        "NomHz": config.frequency_hz,
        "UTC": int(snapshot.utc),
        "Status": snapshot.status,
        "RecInt": snapshot.recording_minutes,
        "DmdType": DemandKind.SLIDING if config.demand.subintervals > 1 else DemandKind.BLOCK,
        "DmdInt": config.demand.interval_minutes,
        "DmdSub": config.demand.subinterval_minutes,
        "Cmd": 0,
        "IntLen": snapshot.recording_minutes * 60,
        "IntCount": snapshot.interval_count,
        "IntOldest": snapshot.interval_oldest,
        "IntNewest": snapshot.interval_newest,
        "IntRowWords": row_words(len(config.points)),
        "IntRowsPerFile": rows_per_file(len(config.points)),
    }
    for n in (1, 2):
        count = snapshot.pulse_counts[n - 1]
        scale = snapshot.pulse_scales[n - 1]
        values[f"P{n}Count"] = count
        values[f"P{n}Errors"] = snapshot.pulse_errors[n - 1]
        values[f"P{n}Scale"] = scale
        values[f"P{n}Value"] = count * scale
    for index, point in enumerate(config.points):
        n = index + 1
        values[f"Pt{n}CT"] = point.ct_primary_a
        if index < len(snapshot.registers):
            regs = snapshot.registers[index]
            values[f"Pt{n}WhImp"] = regs[0] / 1000.0
            values[f"Pt{n}WhExp"] = regs[1] / 1000.0
            values[f"Pt{n}VArhImp"] = regs[2] / 1000.0
            values[f"Pt{n}VArhExp"] = regs[3] / 1000.0
        values[f"Pt{n}Dmd"] = snapshot.demand_w[index] if index < len(snapshot.demand_w) else None
        values[f"Pt{n}PkDmd"] = snapshot.peak_w[index] if index < len(snapshot.peak_w) else None
        peak_time = snapshot.peak_time[index] if index < len(snapshot.peak_time) else None
        values[f"Pt{n}PkDmdT"] = (
            None if peak_time is None or math.isnan(peak_time) else int(peak_time)
        )
    return values
