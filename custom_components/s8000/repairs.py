"""Repair issues of a meter that need the user: a clock that is off (fixable:
set it to Home Assistant's time), and another meter answering at the entry's
address (reconfigure the entry, or add that meter).

The readings coordinator calls :func:`async_check_clock` and
:func:`async_wrong_meter` after each poll; Home Assistant's ``repairs``
integration calls :func:`async_create_fix_flow` when the user fixes an issue.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

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

from .const import DOMAIN, LOGGER

if TYPE_CHECKING:
    from .coordinator import S8000ConfigEntry

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
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                await entry.runtime_data.client.set_clock(time.time())
            except (S8000Error, ValueError) as err:
                LOGGER.warning("%s: could not set the meter clock: %s", entry.title, err)
                errors["base"] = "cannot_set_clock"
            else:
                await entry.runtime_data.readings.async_request_refresh()
                ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
                return self.async_create_entry(data={})
        offset = entry.runtime_data.readings.data.clock_offset
        return self.async_show_form(
            step_id="confirm",
            data_schema=probatio.Schema({}),
            errors=errors,
            description_placeholders={"title": entry.title, "offset": str(round(offset or 0))},
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The flow that fixes a fixable issue of this integration."""
    entry_id = (data or {}).get("entry_id")
    if issue_id.startswith(f"{CLOCK_ISSUE}_") and isinstance(entry_id, str):
        return ClockRepairFlow(entry_id)
    return ConfirmRepairFlow()
