"""Register profiles: a meter's register map as data.

A profile is a JSON file that says where a meter keeps each value and how it
encodes it.  The local meter's server, the client, ``probe`` and the
published map (``docs/registers.md``) all read one, so a map learnt from a
real unit is one file, tried on the local meter before it touches a panel.

Two layouts:

* ``sunspec``: SunSpec models chained from a base register (the Common
  model, one meter model per point, a vendor model, the end model).  The
  built-in profile, ``profiles/sunspec.json``, is this project's map.
* ``registers``: fixed addresses, as Leviton's sister meters have (Series
  4000: integers from register 1, floats from 257, MSW first, QNAN for what
  is missing): one block of the meter's values at an address, and one block
  per meter point, ``stride`` registers apart.

Each field may say what it *is* (``"value": "kwh_delivered"``): a role of
:data:`METER_ROLES` or :data:`POINT_ROLES`.  The client reads a meter by
roles, never by a field's name or address, and converts each value from the
field's unit to the role's (a field in kWh, Wh or MWh is read as kWh alike).

Every document is checked against ``profiles/profile.schema.json`` (also an
editor's schema) and then for what a schema cannot say (overlapping fields, a
scale factor that is not in the block, a unit that does not fit its role); a
bad one is :class:`~s8000_engine.exceptions.S8000ProfileError`, naming the
field (``points.fields[3].type``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

from s8000_engine.exceptions import S8000ProfileError
from s8000_engine.protocol.types import SIZES, DataType, Encoding, Model, Point, WordOrder

#: The largest profile file read (the built-in one is 20 kB).
MAX_PROFILE_BYTES: Final = 1 << 20
#: The most meter points a map has room for (the catalogue's largest model).
MAX_POINTS: Final = 24
#: The built-in profiles, by name.
BUILTIN: Final = ("sunspec",)

# -- roles -------------------------------------------------------------------------------

_PULSE_ROLES: Final = {
    f"pulse{n}_{what}": "" for n in (1, 2) for what in ("count", "errors", "scale", "value")
}
_VOLTAGE_ROLES: Final = {
    **{f"voltage_{p}": "V" for p in "abc"},
    **{f"line_voltage_{p}": "V" for p in ("ab", "bc", "ca")},
    "frequency": "Hz",
}
#: What a field of the meter may be, and the unit the client gives it in
#: (None: text; "": a plain number).  The voltages and the frequency may also
#: sit in a point's block: the meter's are then the first point's.
METER_ROLES: Final[dict[str, str | None]] = {
    "manufacturer": None,
    "model": None,
    "options": None,
    "firmware": None,
    "serial": None,
    "mac": None,
    "device_address": "",
    "firmware_build": "",
    "points": "",
    "elements": "",
    "service": "",
    "pt_ratio": "",
    "nominal_voltage": "V",
    "nominal_frequency": "Hz",
    "utc": "s",
    "status": "",
    "recording_minutes": "min",
    "demand_type": "",
    "demand_minutes": "min",
    "demand_subinterval_minutes": "min",
    "command": "",
    **_PULSE_ROLES,
    "interval_length": "s",
    "interval_count": "",
    "interval_oldest": "s",
    "interval_newest": "s",
    "interval_row_words": "",
    "interval_rows_per_file": "",
    **_VOLTAGE_ROLES,
}
#: What a field of a meter point may be, and its unit to the client.
POINT_ROLES: Final[dict[str, str | None]] = {
    "kwh_delivered": "kWh",
    "kwh_received": "kWh",
    "kvarh_delivered": "kvarh",
    "kvarh_received": "kvarh",
    "w": "W",
    **{f"w_{p}": "W" for p in "abc"},
    "var": "var",
    "va": "VA",
    "pf": "",
    "current": "A",
    **{f"current_{p}": "A" for p in "abc"},
    "demand_w": "W",
    "peak_demand_w": "W",
    "peak_demand_time": "s",
    "ct_primary_a": "A",
    **_VOLTAGE_ROLES,
}

# -- units -------------------------------------------------------------------------------

#: Each unit as (quantity, numerator, denominator): its size in the
#: quantity's base unit.  A ratio, not a float, so Wh → kWh divides by 1000
#: exactly as a hand-written conversion would.
_UNITS: Final[dict[str, tuple[str, int, int]]] = {
    "": ("", 1, 1),
    "Pct": ("", 1, 100),
    "Wh": ("Wh", 1, 1),
    "kWh": ("Wh", 1000, 1),
    "MWh": ("Wh", 1_000_000, 1),
    "varh": ("varh", 1, 1),
    "kvarh": ("varh", 1000, 1),
    "Mvarh": ("varh", 1_000_000, 1),
    "VAh": ("VAh", 1, 1),
    "kVAh": ("VAh", 1000, 1),
    "W": ("W", 1, 1),
    "kW": ("W", 1000, 1),
    "var": ("var", 1, 1),
    "kvar": ("var", 1000, 1),
    "VA": ("VA", 1, 1),
    "kVA": ("VA", 1000, 1),
    "V": ("V", 1, 1),
    "kV": ("V", 1000, 1),
    "A": ("A", 1, 1),
    "Hz": ("Hz", 1, 1),
    "s": ("s", 1, 1),
    "min": ("min", 1, 1),
}


def same_quantity(unit: str, other: str) -> bool:
    """Whether a value in ``unit`` can be given in ``other``."""
    return unit in _UNITS and other in _UNITS and _UNITS[unit][0] == _UNITS[other][0]


def ratio(unit: str, to: str) -> tuple[int, int]:
    """What a value in ``unit`` is multiplied and divided by to be in ``to``
    (of the same quantity)."""
    quantity, num, den = _UNITS[unit]
    target, to_num, to_den = _UNITS[to]
    if quantity != target:
        raise ValueError(f"{unit!r} cannot be given in {to!r}")
    return num * to_den, den * to_num


def convert(value: int | float, unit: str, to: str) -> int | float:
    """``value`` in ``unit``, given in ``to`` (of the same quantity)."""
    multiply, divide = ratio(unit, to)
    if multiply != 1:
        value = value * multiply
    if divide != 1:
        value = value / divide
    return value


# -- the schema --------------------------------------------------------------------------


@cache
def schema() -> dict[str, Any]:
    """The profile schema (JSON Schema, draft 2020-12)."""
    text = resources.files(__package__).joinpath("profiles/profile.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


_JSON_TYPES: Final = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _JSON_TYPES[name])


def _check(value: Any, rule: Mapping[str, Any] | bool, path: tuple[str | int, ...]) -> None:
    """``value`` against one schema ``rule``; the first violation raised.

    The keywords of draft 2020-12 that profile.schema.json uses, and only
    them: the client layer installs with modbus-connection alone (Home
    Assistant's constraint), so it cannot depend on the jsonschema package;
    the tests check every profile with jsonschema as well, so the two agree."""
    if rule is False:
        raise S8000ProfileError(path, "is not allowed here")
    if rule is True:
        return
    if "$ref" in rule:
        name = rule["$ref"].removeprefix("#/$defs/")
        _check(value, schema()["$defs"][name], path)
    if "type" in rule:
        names = rule["type"] if isinstance(rule["type"], list) else [rule["type"]]
        if not any(_is_type(value, n) for n in names):
            raise S8000ProfileError(path, f"{value!r} is not of type {' or '.join(names)}")
    if "const" in rule and value != rule["const"]:
        raise S8000ProfileError(path, f"{value!r} must be {rule['const']!r}")
    if "enum" in rule and not any(
        value == option and type(value) is type(option) for option in rule["enum"]
    ):
        options = ", ".join(json.dumps(o) for o in rule["enum"])
        raise S8000ProfileError(path, f"{json.dumps(value)} is not one of {options}")
    if isinstance(value, dict):
        _check_object(value, rule, path)
    if isinstance(value, list):
        if len(value) < rule.get("minItems", 0):
            raise S8000ProfileError(path, f"needs at least {rule['minItems']} items")
        if "maxItems" in rule and len(value) > rule["maxItems"]:
            raise S8000ProfileError(path, f"has more than {rule['maxItems']} items")
        for index, item in enumerate(value):
            if "items" in rule:
                _check(item, rule["items"], (*path, index))
    if isinstance(value, str):
        if len(value) < rule.get("minLength", 0):
            raise S8000ProfileError(path, f"needs at least {rule['minLength']} characters")
        if "maxLength" in rule and len(value) > rule["maxLength"]:
            raise S8000ProfileError(path, f"is longer than {rule['maxLength']} characters")
        if "pattern" in rule and not re.search(rule["pattern"], value):
            raise S8000ProfileError(path, f"{value!r} does not match {rule['pattern']}")
    if _is_type(value, "number"):
        if "minimum" in rule and value < rule["minimum"]:
            raise S8000ProfileError(path, f"{value} is below {rule['minimum']}")
        if "maximum" in rule and value > rule["maximum"]:
            raise S8000ProfileError(path, f"{value} is above {rule['maximum']}")
    if "anyOf" in rule:
        errors: list[S8000ProfileError] = []
        for option in rule["anyOf"]:
            try:
                _check(value, option, path)
            except S8000ProfileError as err:
                errors.append(err)
            else:
                break
        else:
            raise S8000ProfileError(path, "; or ".join(e.reason for e in errors))
    for part in rule.get("allOf", ()):
        _check(value, part, path)
    if "if" in rule:
        try:
            _check(value, rule["if"], path)
        except S8000ProfileError:
            pass
        else:
            _check(value, rule.get("then", True), path)


def _check_object(
    value: dict[str, Any], rule: Mapping[str, Any], path: tuple[str | int, ...]
) -> None:
    """An object's keys: required, known, each valid."""
    for key in rule.get("required", ()):
        if key not in value:
            raise S8000ProfileError((*path, key), "is required")
    properties = rule.get("properties", {})
    for key, item in value.items():
        if key in properties:
            _check(item, properties[key], (*path, key))
        elif rule.get("additionalProperties") is False:
            raise S8000ProfileError((*path, key), "is not a known key")


# -- profiles ----------------------------------------------------------------------------

type Layout = Literal["sunspec", "registers"]
type IdentifyFunction = Literal["sunspec", 43, 17]


@dataclass(frozen=True, slots=True)
class Block:
    """A block of a ``registers`` profile: its fields at offsets from ``address``;
    a point's block is ``stride`` registers after the one before."""

    address: int
    points: tuple[Point, ...]
    stride: int = 0

    @property
    def span(self) -> int:
        """Registers from the block's start to the end of its last field."""
        return max(p.offset + p.size for p in self.points)


#: Every SunSpec model's header: its ID and length.
_HEADER: Final = (
    Point("ID", DataType.UINT16, 0, 1, description="model ID"),
    Point("L", DataType.UINT16, 1, 1, description="model length"),
)


@dataclass(frozen=True, slots=True)
class SunSpecModels:
    """The models of a ``sunspec`` profile."""

    base: int
    common: Model
    meter_names: tuple[tuple[int, str], ...]
    meter: tuple[Point, ...]
    """The points every meter model (201–204) shares, after its header."""
    vendor_id: int
    vendor_name: str
    vendor: tuple[Point, ...]
    per_point: tuple[Point, ...]
    """The vendor model's points for each meter point, ``{n}`` in their names."""

    def meter_model(self, model_id: int) -> Model:
        """A meter model (201–204): the points they share, behind its header."""
        return Model(model_id, dict(self.meter_names)[model_id], _HEADER + self.meter)

    def vendor_model(self, points: int) -> Model:
        """The vendor model of a meter with this many points: its own fields,
        then each point's, ``{n}`` filled in."""
        fixed = _HEADER + self.vendor
        after = max(p.offset + p.size for p in fixed)
        span = max(p.offset + p.size for p in self.per_point)
        spec = [*fixed]
        for n in range(1, points + 1):
            spec += (
                replace(
                    p,
                    name=p.name.replace("{n}", str(n)),
                    offset=after + (n - 1) * span + p.offset,
                    description=p.description.replace("{n}", str(n)),
                    point=n,
                )
                for p in self.per_point
            )
        return Model(self.vendor_id, self.vendor_name, tuple(spec))


@dataclass(frozen=True, slots=True)
class Profile:
    """A checked profile."""

    name: str
    description: str
    layout: Layout
    encoding: Encoding
    identify: IdentifyFunction
    manufacturer: str
    source: str
    """Where it was read from: a path, or ``built-in``."""
    sunspec: SunSpecModels | None = None
    meter: Block | None = None
    point: Block | None = None


def _points(
    entries: Sequence[Mapping[str, Any]], path: tuple[str | int, ...], *, placed: bool, start: int
) -> tuple[Point, ...]:
    """The fields of a block: at their ``offset`` when ``placed``, else one
    after another from ``start`` (SunSpec)."""
    points: list[Point] = []
    offset = start
    for index, entry in enumerate(entries):
        where = (*path, index)
        kind = DataType(entry["type"])
        if kind is DataType.STRING and "registers" not in entry:
            raise S8000ProfileError((*where, "registers"), "is required for a string")
        size = entry["registers"] if kind is DataType.STRING else SIZES[kind]
        if placed:
            if "offset" not in entry:
                raise S8000ProfileError((*where, "offset"), "is required in a 'registers' layout")
            offset = entry["offset"]
        elif "offset" in entry:
            raise S8000ProfileError(
                (*where, "offset"), "a SunSpec model's fields follow one another"
            )
        points.append(
            Point(
                entry["name"],
                kind,
                offset,
                size,
                entry.get("unit", ""),
                entry.get("scale"),
                entry.get("access", "R"),
                entry.get("description", ""),
                entry.get("minimum"),
                entry.get("maximum"),
                entry.get("value"),
                entry.get("default"),
            )
        )
        offset += size
    return tuple(points)


def _check_block(
    points: Sequence[Point],
    path: tuple[str | int, ...],
    roles: Mapping[str, str | None],
    *,
    per_point: bool | None = None,
) -> None:
    """What the schema cannot say about a block's fields."""
    names: set[str] = set()
    seen_roles: set[str] = set()
    scales = {p.name for p in points if p.type is DataType.SUNSSF}
    taken: dict[int, str] = {}
    for index, p in enumerate(points):
        where = (*path, index)
        if p.name in names:
            raise S8000ProfileError((*where, "name"), f"{p.name!r} is used twice in the block")
        names.add(p.name)
        if per_point is not None and ("{n}" in p.name) != per_point:
            needs = "must hold" if per_point else "must not hold"
            raise S8000ProfileError((*where, "name"), f"{p.name!r} {needs} '{{n}}'")
        for register in range(p.offset, p.offset + p.size):
            if register in taken:
                raise S8000ProfileError(
                    (*where, "offset"), f"{p.name!r} overlaps {taken[register]!r}"
                )
            taken[register] = p.name
        if isinstance(p.scale, str) and p.scale not in scales:
            raise S8000ProfileError(
                (*where, "scale"), f"{p.scale!r} is not a sunssf field of this block"
            )
        if (p.minimum is None) != (p.maximum is None) or (
            p.minimum is not None and p.maximum is not None and p.minimum > p.maximum
        ):
            raise S8000ProfileError((*where, "minimum"), "needs a maximum at or above it")
        if p.role is None:
            continue
        if p.role not in roles:
            raise S8000ProfileError(
                (*where, "value"), f"{p.role!r} is not a value this block may hold"
            )
        if p.role in seen_roles:
            raise S8000ProfileError((*where, "value"), f"{p.role!r} is held twice in the block")
        seen_roles.add(p.role)
        unit = roles[p.role]
        if unit is None:
            if p.type is not DataType.STRING and p.role != "mac":
                raise S8000ProfileError((*where, "type"), f"{p.role!r} is text: use a string")
        elif p.type in (DataType.STRING, DataType.EUI48, DataType.PAD):
            raise S8000ProfileError((*where, "type"), f"{p.role!r} is a number")
        elif not same_quantity(p.unit, unit):
            raise S8000ProfileError(
                (*where, "unit"), f"{p.unit!r} is not a unit of {p.role!r} ({unit or 'a number'})"
            )


def parse_profile(document: Any, source: str = "built-in") -> Profile:
    """A profile from its JSON document, checked (:class:`S8000ProfileError` if bad)."""
    _check(document, schema(), ())
    doc: dict[str, Any] = document
    order: WordOrder = doc.get("word_order", "msw-first")
    sentinels = tuple((DataType(k), v) for k, v in sorted(doc.get("sentinels", {}).items()))
    encoding = Encoding(order, sentinels)
    identify = doc["identify"]
    layout: Layout = doc["layout"]
    if (identify["function"] == "sunspec") != (layout == "sunspec"):
        raise S8000ProfileError(
            ("identify", "function"), "a 'sunspec' layout identifies by 'sunspec', and only it"
        )

    def profile(**layout_parts: Any) -> Profile:
        return Profile(
            name=doc["profile"],
            description=doc["description"],
            layout=layout,
            encoding=encoding,
            identify=identify["function"],
            manufacturer=identify["manufacturer"],
            source=source,
            **layout_parts,
        )

    if layout == "sunspec":
        return profile(sunspec=_sunspec_models(doc["sunspec"]))
    meter = Block(
        doc["meter"]["address"], _points(doc["meter"]["fields"], ("meter", "fields"),
                                         placed=True, start=0),
    )  # fmt: skip
    point = Block(
        doc["points"]["address"],
        _points(doc["points"]["fields"], ("points", "fields"), placed=True, start=0),
        doc["points"]["stride"],
    )
    _check_block(meter.points, ("meter", "fields"), METER_ROLES)
    _check_block(point.points, ("points", "fields"), POINT_ROLES)
    roles = {p.role for p in meter.points}
    if "serial" not in roles:
        raise S8000ProfileError(("meter", "fields"), "needs the field whose value is 'serial'")
    if identify["function"] not in (43, 17) and "model" not in roles:
        raise S8000ProfileError(("meter", "fields"), "needs the field whose value is 'model'")
    if point.span > point.stride:
        raise S8000ProfileError(
            ("points", "stride"), f"{point.stride} is shorter than a point's {point.span} registers"
        )
    last = point.address + (MAX_POINTS - 1) * point.stride + point.span
    if last > 0x10000:
        raise S8000ProfileError(
            ("points", "address"), f"{MAX_POINTS} points would end past register 65535 ({last - 1})"
        )
    meter_end = meter.address + meter.span
    if meter_end > 0x10000:
        raise S8000ProfileError(("meter", "address"), "the block ends past register 65535")
    if meter.address < last and point.address < meter_end:
        raise S8000ProfileError(
            ("points", "address"),
            f"the points' registers ({point.address}–{last - 1}) overlap the meter's "
            f"({meter.address}–{meter_end - 1})",
        )
    return profile(meter=meter, point=point)


def _sunspec_models(doc: Mapping[str, Any]) -> SunSpecModels:
    path = ("sunspec",)
    common = _points(doc["common"]["fields"], (*path, "common", "fields"), placed=False, start=2)
    meter = _points(doc["meter"]["fields"], (*path, "meter", "fields"), placed=False, start=2)
    vendor = doc["vendor"]
    fixed = _points(vendor["fields"], (*path, "vendor", "fields"), placed=False, start=2)
    per_point = _points(vendor["per_point"], (*path, "vendor", "per_point"), placed=False, start=0)
    _check_block(common, (*path, "common", "fields"), METER_ROLES)
    _check_block(meter, (*path, "meter", "fields"), POINT_ROLES)
    _check_block(fixed, (*path, "vendor", "fields"), METER_ROLES, per_point=False)
    _check_block(per_point, (*path, "vendor", "per_point"), POINT_ROLES, per_point=True)
    if "serial" not in {p.role for p in common}:
        raise S8000ProfileError(
            (*path, "common", "fields"), "needs the field whose value is 'serial'"
        )
    return SunSpecModels(
        base=doc["base"],
        common=Model(1, doc["common"]["name"], _HEADER + common),
        meter_names=tuple(sorted((int(k), v) for k, v in doc["meter_models"].items())),
        meter=meter,
        vendor_id=vendor["model"],
        vendor_name=vendor["name"],
        vendor=fixed,
        per_point=per_point,
    )


def load_profile(path: str | Path) -> Profile:
    """A profile file, read and checked: :class:`S8000ProfileError` when it
    cannot be read, is not JSON or is not a valid profile (the field named)."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_PROFILE_BYTES + 1)
    except OSError as err:
        raise S8000ProfileError((), f"cannot read {file}: {err.strerror or err}") from err
    if len(raw) > MAX_PROFILE_BYTES:
        raise S8000ProfileError((), f"{file} is larger than {MAX_PROFILE_BYTES} bytes")
    try:
        document = json.loads(raw)
        return parse_profile(document, str(file))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise S8000ProfileError((), f"{file} is not JSON: {err}") from err
    except S8000ProfileError as err:
        raise S8000ProfileError(err.path, err.reason, source=str(file)) from None
    except RecursionError:
        raise S8000ProfileError((), f"{file} is nested too deeply") from None


@cache
def builtin_profile(name: str = "sunspec") -> Profile:
    """A built-in profile by name (:data:`BUILTIN`)."""
    if name not in BUILTIN:
        raise S8000ProfileError((), f"no built-in profile {name!r}; known: {', '.join(BUILTIN)}")
    text = resources.files(__package__).joinpath(f"profiles/{name}.json").read_text()
    return parse_profile(json.loads(text))


def get_profile(name_or_path: str | Path) -> Profile:
    """A built-in profile by name, else a profile file by path."""
    if isinstance(name_or_path, str) and name_or_path in BUILTIN:
        return builtin_profile(name_or_path)
    return load_profile(name_or_path)


__all__ = [
    "BUILTIN",
    "METER_ROLES",
    "POINT_ROLES",
    "Block",
    "Profile",
    "SunSpecModels",
    "builtin_profile",
    "convert",
    "get_profile",
    "load_profile",
    "parse_profile",
    "ratio",
    "same_quantity",
    "schema",
]
