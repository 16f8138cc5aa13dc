"""The model catalogue against the user guide's tables."""

from __future__ import annotations

import pytest

from s8000_engine.models import MODELS, Connection, get_model

# Rows copied from the user guide, section 4 (tables 1 to 6): channel, X1, X2.
SEED_ROWS = {
    "S8UTS-083": [
        ("P1-1", "Black", "Green"),
        ("P1-3", "Black", "Red"),
        ("P3-3", "Black", "Blue"),  # printed "3P-3" in table 1
        ("P4-1", "Green", "Yellow"),
        ("P6-3", "Orange", "White"),
        ("P8-3", "Blue", "Brown"),
    ],
    "S8UWH-122": [
        ("P1-2", "Black", "White"),
        ("P2-1", "Black", "Red"),
        ("P7-2", "Green", "Orange"),
        ("P12-1", "Yellow", "White"),
        ("P12-2", "Blue", "Brown"),
    ],
    "277WH-241": [
        ("P1-1", "Black", "Green"),
        ("P9-1", "Black", "Blue"),
        ("P16-1", "Blue", "Yellow"),
        ("P24-1", "Blue", "Brown"),
    ],
    "S8120-032": [("P3-2", "Black", "Orange")],
    "S8120-062": [("P5-2", "Green", "Yellow"), ("P6-2", "Green", "White")],
    "S8120-092": [
        ("P8-2", "Blue", "Yellow"),
        ("P9-1", "Brown", "White"),
        ("P9-2", "Orange", "White"),
    ],
}


@pytest.mark.parametrize(("code", "rows"), SEED_ROWS.items())
def test_channel_colours_match_the_user_guide(code: str, rows: list[tuple[str, str, str]]) -> None:
    channels = {c.name: (c.x1, c.x2) for c in get_model(code).channels}
    for name, x1, x2 in rows:
        assert channels[name] == (x1, x2), name


@pytest.mark.parametrize(
    ("code", "points", "elements", "voltage"),
    [
        ("S8UTS-083", 8, 3, 120),
        ("277TS-083", 8, 3, 277),
        ("S8UWH-122", 12, 2, 120),
        ("277WH-122", 12, 2, 277),
        ("S8120-122", 12, 2, 120),
        ("S8UTS-241", 24, 1, 120),
        ("277WH-241", 24, 1, 277),
        ("S8120-032", 3, 2, 120),
        ("S8120-062", 6, 2, 120),
        ("S8120-092", 9, 2, 120),
    ],
)
def test_layouts(code: str, points: int, elements: int, voltage: int) -> None:
    model = get_model(code)
    assert (model.points, model.elements, model.voltage) == (points, elements, voltage)
    assert len(model.channels) == points * elements
    assert [c.index for c in model.channels] == list(range(points * elements))


def test_catalogue_is_complete() -> None:
    assert len(MODELS) == 16
    assert get_model("s8uts-083").connection is Connection.TERMINAL_STRIP
    assert get_model("277WH-241").connection is Connection.WIRING_HARNESS


def test_every_channel_name_is_unique_and_addressable() -> None:
    for model in MODELS.values():
        names = [c.name for c in model.channels]
        assert len(set(names)) == len(names)
        last = model.channel(model.points, model.elements)
        assert last.name == f"P{model.points}-{model.elements}"


def test_unknown_model_and_channel_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown S8000 model 'S9000'"):
        get_model("S9000")
    with pytest.raises(ValueError, match="meter points 1 to 8, not 9"):
        get_model("S8UTS-083").channel(9, 1)
    with pytest.raises(ValueError, match="elements 1 to 1 per point, not 2"):
        get_model("S8UTS-241").channel(1, 2)
