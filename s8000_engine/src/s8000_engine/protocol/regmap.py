"""The register map of a meter: SunSpec models placed one after another.

The map is built here once, from the chain of model ids alone: the local meter
builds it from its configuration (:func:`s8000_engine.local.image.build_map`)
and the client from the models it scans, so both place every model at the
same address by construction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from s8000_engine.protocol.sunspec import (
    BASE_ADDRESS,
    COMMON,
    METER_MODELS,
    VENDOR_MODEL_ID,
    DataType,
    Model,
    vendor_model,
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


def sunspec_map(model_ids: Sequence[int], base: int = BASE_ADDRESS) -> RegisterMap:
    """The S8000 map for a chain of model ids (1, the meter models, 64800).

    Models back to back from ``base + 2``, each behind its two-register header."""
    ids = list(model_ids)
    if len(ids) < 3 or ids[0] != COMMON.model_id or ids[-1] != VENDOR_MODEL_ID:
        raise ValueError(f"not an S8000 chain: {ids}")
    meters = ids[1:-1]
    chain: list[Placed] = []
    address = base + 2
    chain.append(Placed(COMMON, address, "common"))
    address += COMMON.length + 2
    for index, model_id in enumerate(meters):
        model = METER_MODELS.get(model_id)
        if model is None:
            raise ValueError(f"model {model_id} is not a SunSpec meter model")
        chain.append(Placed(model, address, f"point{index + 1}", index))
        address += model.length + 2
    vendor = vendor_model(len(meters))
    chain.append(Placed(vendor, address, "s8000"))
    address += vendor.length + 2
    return RegisterMap("sunspec", base, tuple(chain), address + 2)
