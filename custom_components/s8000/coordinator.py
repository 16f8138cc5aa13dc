"""The meter's readings, polled every few seconds, and its identity, checked
again now and then.

Both use one :class:`~s8000_engine.client.S8000Client`, which sits on the
Modbus unit Home Assistant's ``modbus`` integration lends, so a meter on an
RS-485 bus shared with other devices, or behind a gateway that takes one
connection, is polled beside every other integration talking to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final, override

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import UpdateFailed

from s8000_engine.client import (
    MeterData,
    S8000BadData,
    S8000Client,
    S8000ConnectionError,
    S8000Error,
    S8000MapChanged,
    S8000WrongMeter,
)

from . import repairs
from .const import DOMAIN, LOGGER, OPT_REVERSED
from .counters import CounterGuard, Outcome, Verdict, bound_volts, max_kw
from .direction import DirectionWatch, apply_reversal, option_points
from .models import (
    ENERGY_COUNTERS,
    Reading,
    S8000ConfigEntry,
    S8000Coordinator,
    point_key,
    pulse_key,
)

STORAGE_VERSION: Final = 1
SAVE_DELAY: Final = 30.0


def _update_failed(err: S8000Error) -> UpdateFailed:
    """A failed poll, said in the user's language: another meter answers, the
    meter does not answer, or it answered with data that cannot be used."""
    if isinstance(err, S8000WrongMeter):
        key = "wrong_meter"
    elif isinstance(err, S8000ConnectionError):
        key = "communication_error"
    else:
        key = "bad_data"
    return UpdateFailed(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"error": str(err)},
    )


class S8000ReadingsCoordinator(S8000Coordinator):
    """Reads the whole register map, and guards the energy counters.

    One poll is one read of the map in 125-register blocks, the fewest the
    map allows (10 for eight points, 26 for 24).  A poll that fails is tried
    once more before the entities go unavailable, so a single lost frame on
    a busy bus does not blank them; Home Assistant logs the meter going away
    once, and its return once."""

    config_entry: S8000ConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: S8000ConfigEntry,
        client: S8000Client,
        *,
        interval: timedelta,
    ) -> None:
        """Set up the readings poll."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{entry.title} readings",
            update_interval=interval,
            always_update=True,
        )
        self.client = client
        self.store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry.entry_id}.counters"
        )
        self.guard = CounterGuard()
        #: The points read reversed, as the guards' state last saw them.
        self.reversed = option_points(entry.options, OPT_REVERSED)
        #: Points whose counters continue from a new register at the next poll.
        self._rebase: set[int] = set()
        self.direction = DirectionWatch()
        self.transactions = 0
        #: Called after a poll that follows failed ones (the meter is back).
        self.on_recovery: Callable[[], None] | None = None

    async def async_load_counters(self) -> None:
        """Load the guards' state kept from the last run."""
        stored = await self.store.async_load()
        self.guard = CounterGuard((stored or {}).get("counters"))
        # A point turned round since: its delivered and received counters now
        # read the other register, and continue from their totals.
        before = {int(p) for p in (stored or {}).get("reversed", [])}
        self._rebase = before ^ self.reversed

    def _stored(self) -> dict[str, Any]:
        return {"counters": self.guard.as_dict(), "reversed": sorted(self.reversed)}

    async def async_save_counters(self) -> None:
        """Write the guards' state now (on unload)."""
        await self.store.async_save(self._stored())

    @override
    def counter_offset(self, key: str) -> float:
        """What counter ``key``'s total adds to its register."""
        state = self.guard.counters.get(key)
        return 0.0 if state is None else state.offset

    @override
    def counter_states(self) -> dict[str, dict[str, Any]]:
        """What the guards remember of every counter."""
        return self.guard.as_dict()

    @override
    async def _async_update_data(self) -> Reading:
        """Read the meter (retrying once), then guard its counters."""
        try:
            try:
                data = await self.client.read()
            except (S8000ConnectionError, S8000BadData, S8000MapChanged) as err:
                # One lost frame on a busy bus, or a map that moved (the
                # client identifies again), should not blank every entity.
                LOGGER.debug("%s: %s; trying once more", self.name, err)
                data = await self.client.read()
        except S8000Error as err:
            if isinstance(err, S8000WrongMeter):
                repairs.async_wrong_meter(self.hass, self.config_entry, str(err))
            raise _update_failed(err) from err
        data = apply_reversal(data, self.reversed)
        reading = self._guard(data)
        self.direction.async_check(
            self.hass,
            self.config_entry,
            data.utc if data.utc is not None else reading.polled_at,
            {
                point.number: (
                    reading.totals[point_key(point.number, "energy_delivered")],
                    reading.totals[point_key(point.number, "energy_received")],
                )
                for point in data.points
            },
            len(data.points),
        )
        repairs.async_wrong_meter(self.hass, self.config_entry, None)
        repairs.async_check_clock(self.hass, self.config_entry, reading.clock_offset)
        if not self.last_update_success and self.on_recovery is not None:
            self.on_recovery()
        self.transactions = data.transactions
        self.store.async_delay_save(self._stored, SAVE_DELAY)
        return reading

    def _guard(self, data: MeterData) -> Reading:
        now = time.time()
        utc = data.utc if data.utc is not None else now
        identity = self.client.identity
        elements = identity.elements if identity is not None else 3
        totals: dict[str, float | None] = {}
        stepped: list[str] = []
        volts = bound_volts(data)
        for point in data.points:
            bound = max_kw(point, elements, volts)
            rebase = point.number in self._rebase
            for name, attribute in ENERGY_COUNTERS:
                key = point_key(point.number, name)
                if rebase:
                    self.guard.rebase(key, getattr(point, attribute), utc)
                verdict = self.guard.check(key, getattr(point, attribute), utc, bound)
                totals[key] = verdict.total
                if verdict.outcome in (Outcome.RESET, Outcome.JUMP):
                    stepped.append(key)
                    self._raise_step(key, point.number, name, verdict)
        self._rebase = set()
        for pulse in data.pulses:
            key = pulse_key(pulse.number)
            # A pulse input has no rating to bound it: only a step down is caught.
            verdict = self.guard.check(key, pulse.value, utc, None)
            totals[key] = verdict.total
            if verdict.outcome is Outcome.RESET:
                stepped.append(key)
                self._raise_step(key, 0, f"pulse_{pulse.number}", verdict)
        offset = None if data.utc is None else data.utc - now
        return Reading(data, totals, now, offset, stepped)

    def _raise_step(self, key: str, point: int, counter: str, verdict: Verdict) -> None:
        LOGGER.warning(
            "%s: %s went from %s to %s (%s); the total continues from where it was",
            self.config_entry.title,
            key,
            verdict.previous_raw,
            verdict.raw,
            verdict.outcome.value,
        )
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            f"counter_step_{self.config_entry.entry_id}_{key}",
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="counter_reset" if verdict.outcome is Outcome.RESET else "counter_jump",
            translation_placeholders={
                "title": self.config_entry.title,
                "point": str(point),
                "counter": counter,
                "before": f"{verdict.previous_raw:.3f}",
                "after": f"{verdict.raw:.3f}",
            },
        )


async def async_check_identity(
    hass: HomeAssistant, entry: S8000ConfigEntry, _now: datetime | None = None
) -> None:
    """Walk the meter's SunSpec chain again: firmware, MAC, points and wiring.

    Run on a timer (they change rarely).  A firmware update shows on the
    device without a reload; a change of the meter's points reloads the entry,
    since the entities follow them; another meter at the address raises the
    wrong-meter issue."""
    runtime = entry.runtime_data
    try:
        # A client of its own on the same unit: identifying makes a client
        # take whichever meter answers, and the readings' client must keep
        # refusing another meter's registers as this one's.
        identity = await S8000Client(runtime.client.unit).identify()
    except S8000Error as err:
        # The readings poll already says when the meter stops answering.
        LOGGER.debug("%s: could not check the meter's identity: %s", entry.title, err)
        runtime.identity_error = str(err)
        return
    if identity.serial != entry.unique_id:
        found = f"{identity.model} serial {identity.serial}"
        repairs.async_wrong_meter(hass, entry, found)
        runtime.identity_error = f"found {found}, expected {entry.unique_id}"
        return
    runtime.identity_error = None
    if identity.firmware != runtime.identity.firmware:
        dr.async_get(hass).async_update_device(runtime.device_id, sw_version=identity.firmware)
    if identity.point_models != runtime.identity.point_models:
        LOGGER.info(
            "%s: the meter's points changed (%s to %s); reloading",
            entry.title,
            runtime.identity.point_models,
            identity.point_models,
        )
        hass.config_entries.async_schedule_reload(entry.entry_id)
