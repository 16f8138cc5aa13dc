"""Repair issues of a meter that need the user: a clock that is off (fixable:
set it to Home Assistant's time), and another meter answering at the entry's
address (reconfigure the entry, or add that meter), and a point whose CT
seems wired backwards (fixable: read it reversed, or mark it as generation).

The readings poll calls :func:`async_check_clock` and
:func:`async_wrong_meter` after each poll (and the identity re-check the
latter); Home Assistant's ``repairs``
integration calls :func:`async_create_fix_flow` when the user fixes an issue.
"""

from __future__ import annotations

import time
from typing import Final

import probatio
from homeassistant.components.repairs import (
    ConfirmRepairFlow,
    RepairsFlow,
    RepairsFlowResult,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from s8000_engine.client import S8000Error

from .const import DOMAIN, LOGGER, OPT_GENERATION, OPT_REVERSED
from .direction import CT_REVERSED_ISSUE
from .models import S8000ConfigEntry

#: A clock further off than this (s) raises the issue ...
CLOCK_RAISE: Final = 60.0
#: ... and one back within this (s) clears it: no issue flapping at the edge.
CLOCK_CLEAR: Final = 30.0
#: The issue shows the offset anew only when it moved more than this (s), so
#: a poll's jitter does not rewrite it every few seconds.
CLOCK_SHOWN_SLACK: Final = 1

CLOCK_ISSUE: Final = "clock_offset"
WRONG_METER_ISSUE: Final = "wrong_meter"


def clock_issue_id(entry_id: str) -> str:
    """The id of an entry's clock issue."""
    return f"{CLOCK_ISSUE}_{entry_id}"


def wrong_meter_issue_id(entry_id: str) -> str:
    """The id of an entry's wrong-meter issue."""
    return f"{WRONG_METER_ISSUE}_{entry_id}"


@callback
def async_check_clock(hass: HomeAssistant, entry: S8000ConfigEntry, offset: float | None) -> None:
    """Raise or clear the clock issue from the meter's clock offset (meter
    minus Home Assistant, s); None (the meter has no time) changes nothing.

    The meter stamps its interval records and peak demand times with its own
    clock: off by more than a minute, they land in the wrong interval."""
    if offset is None:
        return
    issue_id = clock_issue_id(entry.entry_id)
    if abs(offset) < CLOCK_CLEAR:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    if abs(offset) <= CLOCK_RAISE:
        return
    shown = round(offset)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    if (
        issue is not None
        and issue.translation_placeholders is not None
        and abs(int(issue.translation_placeholders["offset"]) - shown) <= CLOCK_SHOWN_SLACK
    ):
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        data={"entry_id": entry.entry_id},
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=CLOCK_ISSUE,
        translation_placeholders={"title": entry.title, "offset": str(shown)},
    )


@callback
def async_wrong_meter(hass: HomeAssistant, entry: S8000ConfigEntry, found: str | None) -> None:
    """Raise the wrong-meter issue with what answers instead (``found``), or
    clear it (None): the entry's own meter answers again."""
    issue_id = wrong_meter_issue_id(entry.entry_id)
    if found is None:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        data={"entry_id": entry.entry_id},
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=WRONG_METER_ISSUE,
        translation_placeholders={
            "title": entry.title,
            "expected": entry.unique_id or "",
            "found": found,
        },
    )


class ClockRepairFlow(RepairsFlow):
    """Set the meter's clock to Home Assistant's time, once the user confirms."""

    def __init__(self, entry_id: str) -> None:
        """Fix the clock of one entry's meter."""
        self.entry_id = entry_id

    async def async_step_init(self, user_input: dict[str, str] | None = None) -> RepairsFlowResult:
        """Start with the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Show the offset; on confirmation, set the clock."""
        entry: S8000ConfigEntry | None = self.hass.config_entries.async_get_entry(self.entry_id)
        # (Only a Modbus meter has a clock to show, so only its issue is raised.)
        if (
            entry is None
            or entry.state is not ConfigEntryState.LOADED
            or (client := entry.runtime_data.modbus) is None
        ):
            return self.async_abort(reason="not_loaded")
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                await client.set_clock(time.time())
            except (S8000Error, ValueError) as err:
                LOGGER.warning("%s: could not set the meter clock: %s", entry.title, err)
                errors["base"] = "cannot_set_clock"
            else:
                await entry.runtime_data.coordinator.async_request_refresh()
                ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
                return self.async_create_entry(data={})
        offset = entry.runtime_data.coordinator.data.clock_offset
        return self.async_show_form(
            step_id="confirm",
            data_schema=probatio.Schema({}),
            errors=errors,
            description_placeholders={"title": entry.title, "offset": str(round(offset or 0))},
        )


class CtReversedRepairFlow(RepairsFlow):
    """A point that only feeds back: read it reversed, or mark it as generation."""

    def __init__(self, entry_id: str, point: int) -> None:
        """Fix one point of one entry's meter."""
        self.entry_id = entry_id
        self.point = point

    def _entry(self) -> S8000ConfigEntry | None:
        entry: S8000ConfigEntry | None = self.hass.config_entries.async_get_entry(self.entry_id)
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return None
        return entry

    async def async_step_init(self, user_input: dict[str, str] | None = None) -> RepairsFlowResult:
        """Ask what the point is."""
        entry = self._entry()
        if entry is None:
            return self.async_abort(reason="not_loaded")
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        placeholders = dict((issue.translation_placeholders if issue else None) or {})
        return self.async_show_menu(
            step_id="init",
            menu_options=["reverse", "generation"],
            description_placeholders={
                "title": entry.title,
                "point": str(self.point),
                "name": placeholders.get("name", f"#{self.point}"),
            },
        )

    async def async_step_reverse(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """The CT is backwards: read the point reversed."""
        return self._add_to(OPT_REVERSED)

    async def async_step_generation(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """The point feeds back on purpose (solar): leave it as it is."""
        return self._add_to(OPT_GENERATION)

    def _add_to(self, option: str) -> RepairsFlowResult:
        entry = self._entry()
        if entry is None:
            return self.async_abort(reason="not_loaded")
        points = sorted({*(int(p) for p in entry.options.get(option) or ()), self.point})
        self.hass.config_entries.async_update_entry(
            entry, options={**entry.options, option: points}
        )
        self.hass.config_entries.async_schedule_reload(entry.entry_id)
        ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
        return self.async_create_entry(data={})


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The flow that fixes a fixable issue of this integration."""
    entry_id = (data or {}).get("entry_id")
    if issue_id.startswith(f"{CLOCK_ISSUE}_") and isinstance(entry_id, str):
        return ClockRepairFlow(entry_id)
    point = (data or {}).get("point")
    if (
        issue_id.startswith(f"{CT_REVERSED_ISSUE}_")
        and isinstance(entry_id, str)
        and isinstance(point, int)
    ):
        return CtReversedRepairFlow(entry_id, point)
    return ConfirmRepairFlow()
