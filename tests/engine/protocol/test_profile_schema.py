"""Profile files against their schema: every profile in the repository, and a
bad one refused with the field named, by the client's own checker and by the
reference validator (jsonschema) alike."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from s8000_engine.exceptions import S8000ProfileError
from s8000_engine.protocol.profile import (
    builtin_profile,
    convert,
    load_profile,
    parse_profile,
    schema,
)
from s8000_engine.protocol.types import DataType, Encoding, decode, encode

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "s8000_engine" / "src" / "s8000_engine" / "protocol" / "profiles"
EXAMPLE = ROOT / "docs" / "profiles" / "example-fixed.json"
#: Every profile file the repository holds.
PROFILES = sorted(
    p
    for p in [*PACKAGE.glob("*.json"), *(ROOT / "docs" / "profiles").glob("*.json")]
    if p.name != "profile.schema.json"
)
VALIDATOR = jsonschema.Draft202012Validator(schema())


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())


def test_there_are_profiles_to_check() -> None:
    assert {p.name for p in PROFILES} >= {"sunspec.json", "example-fixed.json"}


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_profile_in_the_repository_is_valid(path: Path) -> None:
    document = json.loads(path.read_text())
    VALIDATOR.validate(document)
    profile = load_profile(path)
    assert profile.name == document["profile"]


def edit(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set (or with ``...``, delete) the key at a dotted path with indexes."""

    def apply(document: dict[str, Any]) -> None:
        parts: list[str | int] = [
            int(p) if p.isdigit() else p for p in path.replace("[", ".").replace("]", "").split(".")
        ]
        node: Any = document
        for part in parts[:-1]:
            node = node[part]
        if value is ...:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value

    return apply


#: Bad documents (from the example) the schema refuses: the edit, and the
#: field the error must name.
SCHEMA_ERRORS = [
    (edit("points.fields[3].type", "uint128"), "points.fields[3].type"),
    (edit("word_order", "middle-endian"), "word_order"),
    (edit("identify.function", 3), "identify.function"),
    (edit("points.stride", 0), "points.stride"),
    (edit("meter.fields[0].registers", 500), "meter.fields[0].registers"),
    (edit("meter.fields[2].scale", 11), "meter.fields[2].scale"),
    (edit("points.fields[0].unit", "furlongs"), "points.fields[0].unit"),
    (edit("meter.fields[1].colour", "red"), "meter.fields[1].colour"),
    (edit("profile", "Not A Name"), "profile"),
    (edit("description", ...), "description"),
    (edit("points", ...), "points"),
    (edit("sunspec", {}), "sunspec.base"),
    (edit("sentinels.uint16", 70000), "sentinels.uint16"),
    (edit("meter.fields[0].name", "1st"), "meter.fields[0].name"),
]
#: Bad documents the schema cannot refuse; the profile's own checks do.
SEMANTIC_ERRORS = [
    (edit("points.fields[1].offset", 2), "points.fields[1].offset"),  # overlaps
    (edit("points.fields[7].scale", "NoSuchSF"), "points.fields[7].scale"),
    (edit("points.fields[0].unit", "W"), "points.fields[0].unit"),  # kWh role in W
    (edit("points.fields[0].value", "serial"), "points.fields[0].value"),
    (edit("points.fields[1].value", "kwh_delivered"), "points.fields[1].value"),  # twice
    (edit("meter.fields[0].value", ...), "meter.fields"),  # no serial
    (edit("points.stride", 10), "points.stride"),  # shorter than a point
    (edit("points.address", 65000), "points.address"),  # 24 points past 65535
    (edit("points.address", 200), "points.address"),  # over the meter's block
    (edit("meter.fields[0].registers", ...), "meter.fields[0].registers"),
    (edit("meter.fields[1].offset", ...), "meter.fields[1].offset"),
    (edit("identify.function", "sunspec"), "identify.function"),
    (edit("meter.fields[0].type", "uint16"), "meter.fields[0].type"),  # text role
]


@pytest.mark.parametrize(("change", "field"), SCHEMA_ERRORS, ids=[f for _, f in SCHEMA_ERRORS])
def test_a_document_the_schema_refuses_is_refused_naming_the_field(
    change: Callable[[dict[str, Any]], None], field: str
) -> None:
    document = json.loads(EXAMPLE.read_text())
    change(document)
    assert not VALIDATOR.is_valid(document)
    with pytest.raises(S8000ProfileError) as refused:
        parse_profile(document)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")


@pytest.mark.parametrize(("change", "field"), SEMANTIC_ERRORS, ids=[f for _, f in SEMANTIC_ERRORS])
def test_what_a_schema_cannot_say_is_refused_naming_the_field(
    change: Callable[[dict[str, Any]], None], field: str
) -> None:
    document = json.loads(EXAMPLE.read_text())
    change(document)
    with pytest.raises(S8000ProfileError) as refused:
        parse_profile(document)
    assert refused.value.field == field


def test_a_bad_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text("{ not json")
    with pytest.raises(S8000ProfileError, match=r"mine\.json is not JSON"):
        load_profile(path)
    with pytest.raises(S8000ProfileError, match="cannot read"):
        load_profile(tmp_path / "absent.json")
    path.write_text(" " * (1 << 20) + "{}")
    with pytest.raises(S8000ProfileError, match="larger than"):
        load_profile(path)
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(S8000ProfileError):
        load_profile(path)
    document = json.loads(EXAMPLE.read_text())
    document["word_order"] = "sideways"
    path.write_text(json.dumps(document))
    with pytest.raises(S8000ProfileError) as refused:
        load_profile(path)
    assert refused.value.source == str(path)
    assert str(refused.value).startswith(f"{path}: word_order: ")


def test_the_builtin_profile_keeps_the_configurations_bounds() -> None:
    """The register ranges in sunspec.json are the configuration's own bounds
    (const.py): one fact, checked where the JSON cannot import it."""
    from s8000_engine.const import MAX_CT_PRIMARY_A, PULSE_SCALE_MAX, PULSE_SCALE_MIN

    models = builtin_profile().sunspec
    assert models is not None
    ct = next(p for p in models.per_point if p.role == "ct_primary_a")
    assert ct.maximum == MAX_CT_PRIMARY_A
    scale = next(p for p in models.vendor if p.role == "pulse1_scale")
    assert (scale.minimum, scale.maximum) == (PULSE_SCALE_MIN, PULSE_SCALE_MAX)


def test_a_copy_of_the_builtin_profile_is_the_builtin_profile() -> None:
    document = json.loads((PACKAGE / "sunspec.json").read_text())
    again = parse_profile(copy.deepcopy(document), "copy")
    assert again.sunspec == builtin_profile().sunspec


@pytest.mark.parametrize(
    ("value", "unit", "to", "expected"),
    [
        (1500, "Wh", "kWh", 1.5),
        (2.5, "kW", "W", 2500),
        (87, "Pct", "", 0.87),
        (3, "kvarh", "varh", 3000),
    ],
)
def test_units_convert_within_a_quantity(value: float, unit: str, to: str, expected: float) -> None:
    assert convert(value, unit, to) == expected


def test_units_of_other_quantities_do_not_convert() -> None:
    with pytest.raises(ValueError, match="cannot be given"):
        convert(1, "W", "Wh")


def test_word_order_and_sentinels() -> None:
    lsw = Encoding("lsw-first", ((DataType.UINT16, 0x8000),))
    assert encode(DataType.UINT32, 0x12345678, encoding=lsw) == [0x5678, 0x1234]
    assert decode(DataType.UINT32, [0x5678, 0x1234], lsw) == 0x12345678
    assert encode(DataType.UINT32, 0x12345678) == [0x1234, 0x5678]
    assert decode(DataType.UINT16, [0x8000], lsw) is None  # Leviton's QNAN
    assert decode(DataType.UINT16, [0x8000]) == 0x8000  # a value under SunSpec's
    assert decode(DataType.UINT16, [0xFFFF], lsw) == 0xFFFF
    words = encode(DataType.FLOAT32, 1.5, encoding=lsw)
    assert decode(DataType.FLOAT32, words, lsw) == 1.5
    assert words == [0x0000, 0x3FC0]
    assert decode(DataType.FLOAT32, encode(DataType.FLOAT32, math.nan, encoding=lsw), lsw) is None
