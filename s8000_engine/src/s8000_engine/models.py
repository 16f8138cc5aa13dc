"""The Leviton Series 8000 model catalogue.

Every S8000 has one 24-pair CT cable (the S8120-032/-062/-092 use its first
6, 12 or 18 pairs).  Meter points are made of *elements*, one current
transformer (CT) each; a CT channel is named ``P<point>-<element>``.  Which
wire pair of the cable a channel uses follows from its position: the user
guide's tables 1 to 6 all list the same sequence of X1/X2 colour pairs, only
the channel names change with the model.  (Table 1 of the guide prints
``3P-3`` for ``P3-3``; the pair is Black/Blue either way.)

Model codes: ``S8UTS`` and ``S8UWH`` are the 120 V variants, ``277TS`` and
``277WH`` the 277 V variants; ``TS`` is the terminal-strip version and ``WH``
the wiring-harness version.  ``S8120`` models are 120 V.  The suffix gives
points and elements: ``-083`` is 8 points of 3 elements, ``-122`` 12 of 2,
``-241`` 24 of 1, and ``-032``/``-062``/``-092`` 3, 6 and 9 points of 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

#: The CT secondary current at the CT's rated primary current, in amperes.
CT_SECONDARY_A: Final = 0.1

#: The X1 (positive) and X2 (neutral) wire colours of the 24 pairs of the CT
#: cable, in channel order (user guide, section 4, tables 1 to 6).
CABLE_PAIRS: Final[tuple[tuple[str, str], ...]] = (
    ("Black", "Green"),
    ("Black", "White"),
    ("Black", "Red"),
    ("Red", "Green"),
    ("Red", "White"),
    ("Black", "Orange"),
    ("Black", "Brown"),
    ("Black", "Yellow"),
    ("Black", "Blue"),
    ("Green", "Yellow"),
    ("Green", "Blue"),
    ("Green", "White"),
    ("Blue", "White"),
    ("Green", "Orange"),
    ("Green", "Brown"),
    ("Blue", "Yellow"),
    ("Brown", "White"),
    ("Orange", "White"),
    ("Red", "Orange"),
    ("Red", "Yellow"),
    ("Red", "Brown"),
    ("Blue", "Orange"),
    ("Yellow", "White"),
    ("Blue", "Brown"),
)


class Connection(StrEnum):
    """How the CTs connect to the meter."""

    TERMINAL_STRIP = "terminal strip"
    WIRING_HARNESS = "wiring harness"
    UNSPECIFIED = "unspecified"


@dataclass(frozen=True, slots=True)
class CTChannel:
    """One current-transformer input: its name, position and wire colours."""

    index: int
    """Position on the CT cable, 0-based; also the channel's column in sample arrays."""
    point: int
    """Meter point, 1-based."""
    element: int
    """Element within the point, 1-based."""
    x1: str
    """Colour of the X1 (positive) wire of the pair."""
    x2: str
    """Colour of the X2 (neutral) wire of the pair."""

    @property
    def name(self) -> str:
        """The channel's name as the meter labels it, e.g. ``P3-2``."""
        return f"P{self.point}-{self.element}"


@dataclass(frozen=True, slots=True)
class MeterModel:
    """One S8000 model."""

    code: str
    """Model code, e.g. ``S8UTS-083``."""
    voltage: int
    """Sense-voltage variant: 120 or 277 (volts line to neutral)."""
    connection: Connection
    points: int
    """Number of meter points."""
    elements: int
    """CTs (elements) per meter point."""

    @property
    def channels(self) -> tuple[CTChannel, ...]:
        """The model's CT channels in cable order."""
        return tuple(
            CTChannel(index, point, element, *CABLE_PAIRS[index])
            for index, (point, element) in enumerate(
                (point, element)
                for point in range(1, self.points + 1)
                for element in range(1, self.elements + 1)
            )
        )

    @property
    def channel_count(self) -> int:
        """Number of CT inputs in use on this model."""
        return self.points * self.elements

    def channel(self, point: int, element: int) -> CTChannel:
        """The channel of one element of one point (both 1-based)."""
        if not 1 <= point <= self.points:
            raise ValueError(f"{self.code} has meter points 1 to {self.points}, not {point}")
        if not 1 <= element <= self.elements:
            raise ValueError(
                f"{self.code} has elements 1 to {self.elements} per point, not {element}"
            )
        return self.channels[(point - 1) * self.elements + element - 1]


def _family(prefix: str) -> tuple[int, Connection]:
    return {
        "S8UTS": (120, Connection.TERMINAL_STRIP),
        "S8UWH": (120, Connection.WIRING_HARNESS),
        "277TS": (277, Connection.TERMINAL_STRIP),
        "277WH": (277, Connection.WIRING_HARNESS),
        "S8120": (120, Connection.UNSPECIFIED),
    }[prefix]


_LAYOUTS: Final = {
    "083": (8, 3),
    "122": (12, 2),
    "241": (24, 1),
    "032": (3, 2),
    "062": (6, 2),
    "092": (9, 2),
}

_CODES: Final = (
    *(
        f"{family}-{suffix}"
        for family in ("S8UTS", "277TS", "S8UWH", "277WH")
        for suffix in ("083", "122", "241")
    ),
    "S8120-122",
    "S8120-032",
    "S8120-062",
    "S8120-092",
)


def _build(code: str) -> MeterModel:
    family, suffix = code.split("-")
    voltage, connection = _family(family)
    points, elements = _LAYOUTS[suffix]
    return MeterModel(code, voltage, connection, points, elements)


#: Every model, by code.
MODELS: Final[dict[str, MeterModel]] = {code: _build(code) for code in _CODES}


def get_model(code: str) -> MeterModel:
    """Return the model with this code (case-insensitive); ValueError if unknown."""
    try:
        return MODELS[code.strip().upper()]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ValueError(f"unknown S8000 model {code!r}; known models: {known}") from None
