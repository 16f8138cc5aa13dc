"""A point whose CT is wired backwards: its reversal, and the repair issue
that finds it.

A CT put on the wire the wrong way round makes the meter count what the
circuit draws as energy received (fed back), and its power negative.  The
entry's ``reversed`` option undoes that as the readings are built, so every
entity follows; the ``generation`` option marks points expected to feed back
(solar), which are never said to be reversed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from s8000_engine.client import MeterData, PointData

from .const import DOMAIN, OPT_GENERATION, OPT_NAMES, OPT_POINTS, OPT_REVERSED
from .models import S8000ConfigEntry, points_in_use

CT_REVERSED_ISSUE: Final = "ct_reversed"
#: The meter time (s) a point is watched before it is judged ...
WINDOW: Final = 15 * 60.0
#: ... the energy received (kWh) it must have grown by in that time ...
MIN_RECEIVED: Final = 0.05
#: ... and the fraction of that its energy delivered stayed under.
DELIVERED_FRACTION: Final = 0.1


def ct_reversed_issue_id(entry_id: str, point: int) -> str:
    """The id of the issue of one point whose CT seems backwards."""
    return f"{CT_REVERSED_ISSUE}_{entry_id}_{point}"


def option_points(options: Mapping[str, Any], key: str) -> set[int]:
    """The points listed in one of the entry's point options."""
    return {int(point) for point in options.get(key) or ()}


def _negated(value: float | None) -> float | None:
    return None if value is None else -value


def reverse_point(point: PointData) -> PointData:
    """A point read as if its CT were the right way round."""
    return dataclasses.replace(
        point,
        kwh_delivered=point.kwh_received,
        kwh_received=point.kwh_delivered,
        kvarh_delivered=point.kvarh_received,
        kvarh_received=point.kvarh_delivered,
        w=_negated(point.w),
        var=_negated(point.var),
        pf=_negated(point.pf),
        phase_w={phase: -w for phase, w in point.phase_w.items()},
    )


def apply_reversal(data: MeterData, reversed_points: set[int]) -> MeterData:
    """The meter's readings with the reversed points turned round."""
    if not reversed_points:
        return data
    return dataclasses.replace(
        data,
        points=tuple(
            reverse_point(point) if point.number in reversed_points else point
            for point in data.points
        ),
    )


class DirectionWatch:
    """Watches the points in use for energy that only flows back.

    The first reading kept of each point is the start of its window; once
    the meter's clock is at least :data:`WINDOW` past it, a point whose
    energy received grew by :data:`MIN_RECEIVED` kWh or more while its energy
    delivered grew by less than a tenth of that raises a fixable issue, and
    the reading judged starts the point's next window."""

    def __init__(self) -> None:
        """Nothing watched yet."""
        #: point -> (meter UTC, energy delivered, energy received) of its first reading.
        self.start: dict[int, tuple[float, float, float]] = {}

    @callback
    def async_check(
        self,
        hass: HomeAssistant,
        entry: S8000ConfigEntry,
        utc: float,
        energy: Mapping[int, tuple[float | None, float | None]],
        points: int,
    ) -> None:
        """Look at one poll: ``energy`` is (delivered, received) kWh by point."""
        options = entry.options
        settled = option_points(options, OPT_REVERSED) | option_points(options, OPT_GENERATION)
        in_use = points_in_use(options.get(OPT_POINTS), points)
        for number, (delivered, received) in energy.items():
            issue_id = ct_reversed_issue_id(entry.entry_id, number)
            if number in settled:
                ir.async_delete_issue(hass, DOMAIN, issue_id)
                continue
            if number not in in_use or delivered is None or received is None:
                continue
            start = self.start.setdefault(number, (utc, delivered, received))
            if utc - start[0] < WINDOW:
                continue
            # The next window starts here: a point judged on everything since
            # the first poll would hide a CT turned round after weeks of use.
            self.start[number] = (utc, delivered, received)
            grew_received = received - start[2]
            grew_delivered = delivered - start[1]
            if grew_received < MIN_RECEIVED or grew_delivered >= DELIVERED_FRACTION * grew_received:
                continue
            if ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None:
                continue
            ir.async_create_issue(
                hass,
                DOMAIN,
                issue_id,
                data={"entry_id": entry.entry_id, "point": number},
                is_fixable=True,
                is_persistent=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=CT_REVERSED_ISSUE,
                translation_placeholders={
                    "title": entry.title,
                    "point": str(number),
                    "name": options.get(OPT_NAMES, {}).get(str(number)) or f"#{number}",
                },
            )
