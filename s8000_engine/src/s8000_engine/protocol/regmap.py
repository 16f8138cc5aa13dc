"""The register map of a meter: a profile's fields at their wire addresses.

The map is built here once, from a profile (:mod:`s8000_engine.protocol.profile`)
and what the profile leaves to the meter: for a ``sunspec`` layout the chain
of model ids (SunSpec models placed one after another), for a ``registers``
layout the number of meter points (a block each, ``stride`` apart).  The local
meter builds it from its configuration (:func:`s8000_engine.local.image.build_map`)
and the client from what it identifies, so both place every field at the
same address by construction.

Every field may carry a *role* (what it is: ``kwh_delivered``, ``serial``…):
:meth:`RegisterMap.role` finds a field by role, which is how the client reads
any profile's map."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from s8000_engine.protocol.profile import (
    METER_ROLES,
    POINT_ROLES,
    Profile,
    builtin_profile,
    ratio,
)
from s8000_engine.protocol.types import (
    SUNSPEC_ENCODING,
    DataType,
    Encoding,
    Model,
    Point,
    decode,
    encode,
)


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
    role: str | None = None
    """What the value is (a role of the profile), or None."""
    point: int | None = None
    """The 1-based meter point whose value it is, or None for the meter's."""
    encoding: Encoding = SUNSPEC_ENCODING
    default: float | None = None

    def decode(self, words: Sequence[int]) -> Any:
        """The value from its registers, in the profile's encoding (unscaled)."""
        return decode(self.type, words, self.encoding)

    def encode(self, value: Any) -> list[int]:
        """Registers for an (unscaled) value, in the profile's encoding."""
        return encode(self.type, value, self.size, self.encoding)

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
        if self.role is not None:
            row["value"] = self.role
        if self.point is not None:
            row["point"] = self.point
        return row


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """The whole map of one configured meter."""

    profile: str
    base: int
    chain: tuple[Placed, ...]
    """The SunSpec models, in order (empty for a ``registers`` layout)."""
    end: int
    """Wire address one past the last register."""
    layout: str = "sunspec"
    encoding: Encoding = SUNSPEC_ENCODING
    identify: str | int = "sunspec"
    """How the meter says what it is: ``sunspec``, 43 or 17 (the profile's)."""
    manufacturer: str = "Leviton"
    placed_fields: tuple[Field, ...] = field(default=(), repr=False)
    """A ``registers`` layout's fields (a ``sunspec`` one's follow from the chain)."""
    points: int = 0
    """Meter points."""
    point_models: tuple[int, ...] = ()
    """A ``registers`` layout's SunSpec meter model (201–204) per point, as
    the meter is wired: the phases each point has."""
    # Built once (a map is immutable): every field, and the fields by role.
    _all: tuple[Field, ...] = field(init=False, repr=False, compare=False, hash=False)
    _by_role: dict[tuple[str, int | None], Field] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _readings: dict[tuple[str, int | None], tuple[str, int, int]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        every = self.placed_fields if self.layout != "sunspec" else _sunspec_fields(self)
        object.__setattr__(self, "_all", every)
        by_role = {(f.role, f.point): f for f in every if f.role is not None}
        object.__setattr__(self, "_by_role", by_role)
        # How each number the client gives is had from a field, worked out
        # once: a poll makes a few hundred of them.
        readings: dict[tuple[str, int | None], tuple[str, int, int]] = {}
        for (role, point), f in by_role.items():
            unit = (METER_ROLES if point is None else POINT_ROLES).get(role)
            if unit is not None:
                readings[role, point] = (f.name, *ratio(f.unit, unit))
        object.__setattr__(self, "_readings", readings)

    @property
    def models(self) -> tuple[int, ...]:
        """The SunSpec meter model of each point (the phases it has)."""
        if self.layout == "sunspec":
            return tuple(p.model.model_id for p in self.chain if p.point is not None)
        return self.point_models

    @property
    def fields(self) -> list[Field]:
        """Every register point in address order (marker and end model included)."""
        return list(self._all)

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

    def reading(self, role: str, point: int | None = None) -> tuple[str, int, int] | None:
        """How the number of ``role`` is had (see :meth:`role` for whose): the
        field's name, and what its value is multiplied and divided by to be
        in the role's unit; None if the map has no such number."""
        found = self._readings.get((role, point))
        if found is None and point is None:
            found = self._readings.get((role, 1))
        return found

    def role(self, role: str, point: int | None = None) -> Field | None:
        """The field holding ``role`` for meter point ``point`` (1-based), or for
        the meter (``None``); None if the map has none.

        The meter's voltages and frequency, when the profile keeps them per
        point (SunSpec's meter models do), are the first point's."""
        found = self._by_role.get((role, point))
        if found is None and point is None:
            found = self._by_role.get((role, 1))
        return found


def _sunspec_fields(regmap: RegisterMap) -> tuple[Field, ...]:
    rows = [
        Field("SunS", regmap.base, DataType.UINT32, 2, "", None, "R",
              "SunSpec marker 0x53756E53", 0),
    ]  # fmt: skip
    for placed in regmap.chain:
        prefix = placed.label
        for p in placed.model.points:
            # A meter model's fields are its point's; the vendor model's
            # per-point fields say whose they are by their number.
            point = placed.point + 1 if placed.point is not None else p.point
            rows.append(
                _field(
                    p,
                    prefix,
                    placed.address,
                    model=placed.model.model_id,
                    point=point,
                    encoding=regmap.encoding,
                )
            )
    rows.append(
        Field("end.ID", regmap.end - 2, DataType.UINT16, 1, "", None, "R", "end model 0xFFFF", 0)
    )
    rows.append(
        Field("end.L", regmap.end - 1, DataType.UINT16, 1, "", None, "R", "end model length 0", 0)
    )
    return tuple(rows)


def _field(
    p: Point, prefix: str, start: int, *, model: int, point: int | None, encoding: Encoding
) -> Field:
    """A model's or block's point at its wire address, named ``prefix.name``
    (its scale factor's name too)."""
    scale = f"{prefix}.{p.scale}" if isinstance(p.scale, str) else p.scale
    return Field(
        f"{prefix}.{p.name}",
        start + p.offset,
        p.type,
        p.size,
        p.unit,
        scale,
        p.access,
        p.description,
        model,
        p.minimum,
        p.maximum,
        p.role,
        point,
        encoding,
        p.default,
    )


def meter_model_id(*, delta: bool, elements: int) -> int:
    """The SunSpec meter model of a point, as it is wired: 204 on a delta
    service, otherwise 201, 202 or 203 by its number of CTs."""
    if delta:
        return 204
    if elements == 3:
        return 203
    if elements == 2:
        return 202
    return 201


def sunspec_map(
    model_ids: Sequence[int], base: int | None = None, profile: Profile | None = None
) -> RegisterMap:
    """The map of a ``sunspec`` profile (the built-in one by default) for a
    chain of model ids (1, the meter models, the vendor model).

    Models back to back from ``base + 2``, each behind its two-register header."""
    profile = profile or builtin_profile()
    models = profile.sunspec
    if models is None:
        raise ValueError(f"profile {profile.name!r} is not a SunSpec layout")
    base = models.base if base is None else base
    ids = list(model_ids)
    if len(ids) < 3 or ids[0] != models.common.model_id or ids[-1] != models.vendor_id:
        raise ValueError(f"not an S8000 chain: {ids}")
    meters = ids[1:-1]
    chain: list[Placed] = []
    address = base + 2
    chain.append(Placed(models.common, address, "common"))
    address += models.common.length + 2
    known = dict(models.meter_names)
    for index, model_id in enumerate(meters):
        if model_id not in known:
            raise ValueError(f"model {model_id} is not a SunSpec meter model")
        model = models.meter_model(model_id)
        chain.append(Placed(model, address, f"point{index + 1}", index))
        address += model.length + 2
    vendor = models.vendor_model(len(meters))
    chain.append(Placed(vendor, address, models.vendor_name))
    address += vendor.length + 2
    return RegisterMap(
        profile.name,
        base,
        tuple(chain),
        address + 2,
        encoding=profile.encoding,
        manufacturer=profile.manufacturer,
        points=len(meters),
    )


def registers_map(profile: Profile, points: int, point_models: Sequence[int] = ()) -> RegisterMap:
    """The map of a ``registers`` profile for a meter of ``points`` points:
    the meter's block, then a block per point, ``stride`` registers apart.
    ``point_models`` says how each point is wired (see :func:`meter_model_id`)."""
    meter, block = profile.meter, profile.point
    if meter is None or block is None:
        raise ValueError(f"profile {profile.name!r} is not a 'registers' layout")
    if not 1 <= points <= 24:
        raise ValueError(f"{points} meter points: a map has room for 1 to 24")
    fields: list[Field] = []
    blocks = [("meter", meter.address, None)] + [
        (f"point{n}", block.address + (n - 1) * block.stride, n) for n in range(1, points + 1)
    ]
    for prefix, start, point in blocks:
        fields += (
            _field(p, prefix, start, model=0, point=point, encoding=profile.encoding)
            for p in (meter.points if point is None else block.points)
        )
    fields.sort(key=lambda f: f.address)
    return RegisterMap(
        profile.name,
        fields[0].address,
        (),
        max(f.address + f.size for f in fields),
        layout="registers",
        encoding=profile.encoding,
        identify=profile.identify,
        manufacturer=profile.manufacturer,
        placed_fields=tuple(fields),
        points=points,
        point_models=tuple(point_models),
    )


@lru_cache(maxsize=1)
def _builtin_full() -> RegisterMap:
    models = builtin_profile().sunspec
    assert models is not None
    first = models.meter_names[0][0]
    return sunspec_map([models.common.model_id, *[first] * 24, models.vendor_id])


def builtin_field(f: Field) -> Field | None:
    """The built-in SunSpec map's field holding what ``f`` holds (its role, for
    its point), or None: how the local meter knows a write to any profile's
    field for the one it applies (``s8000.Pt3CT``, ``s8000.UTC``…)."""
    return None if f.role is None else _builtin_full().role(f.role, f.point)
