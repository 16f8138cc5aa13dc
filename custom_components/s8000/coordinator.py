"""The meter's two polls: readings every few seconds, identity now and then.

Both borrow one :class:`~s8000_engine.client.S8000Client`, which sits on the
Modbus unit Home Assistant's ``modbus`` integration lends, so a meter on an
RS-485 bus shared with other devices, or behind a gateway that takes one
connection, is polled beside every other integration talking to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from s8000_engine.client.client import S8000Client
from s8000_engine.client.data import Identity, MeterData, PointData
from s8000_engine.exceptions import (
    S8000BadData,
    S8000ConnectionError,
    S8000Error,
    S8000MapChanged,
    S8000WrongMeter,
)

from . import repairs
from .const import DOMAIN, IDENTITY_SCAN_INTERVAL, LOGGER, OPT_REVERSED
from .counters import CounterGuard, Outcome
from .direction import DirectionWatch, apply_reversal, option_points

if TYPE_CHECKING:
    from .backfill import Backfill

type S8000ConfigEntry = ConfigEntry[S8000RuntimeData]

#: The energy registers of a point: (key, PointData attribute).
ENERGY_COUNTERS: Final = (
    ("energy_delivered", "kwh_delivered"),
    ("energy_received", "kwh_received"),
    ("reactive_energy_delivered", "kvarh_delivered"),
    ("reactive_energy_received", "kvarh_received"),
)
#: The voltage a counter's rate bound assumes at least: the largest
#: line-to-line voltage of a direct-connected S8000 service.  A service on
#: PTs reports its primary voltages, and the bound follows them.
MAX_VOLTS: Final = 600.0
STORAGE_VERSION: Final = 1
SAVE_DELAY: Final = 30.0


def counter_key(point: int, name: str) -> str:
    """The guard key of one energy counter of one point."""
    return f"point{point}_{name}"


def pulse_key(number: int) -> str:
    """The guard key of one pulse input's total."""
    return f"pulse{number}"


@dataclass(slots=True)
class Reading:
    """One poll, as the entities read it."""

    data: MeterData
    #: The guarded totals (kWh, kvarh, pulse units) by :func:`counter_key`;
    #: None while a counter is held.
    totals: dict[str, float | None]
    #: Home Assistant's clock when the poll finished (s since 1970).
    polled_at: float
    #: Meter clock minus Home Assistant's clock (s), None if the meter has no time.
    clock_offset: float | None = None
    #: Keys of the counters that stepped (reset or jump) in this poll.
    stepped: list[str] = field(default_factory=list)


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


def _max_kw(point: PointData, elements: int, volts: float) -> float | None:
    """The largest power a point can meter, from its CT rating."""
    if not point.ct_primary_a:
        return None
    return elements * point.ct_primary_a * volts / 1000.0


def _bound_volts(data: MeterData) -> float:
    """The voltage the rate bounds use: what the meter measures, with room."""
    measured = [v for v in (*data.voltage.values(), *data.line_voltage.values()) if v]
    return max([MAX_VOLTS, *(1.2 * v for v in measured)])


class S8000ReadingsCoordinator(DataUpdateCoordinator[Reading]):
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
                    reading.totals[counter_key(point.number, "energy_delivered")],
                    reading.totals[counter_key(point.number, "energy_received")],
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
        volts = _bound_volts(data)
        for point in data.points:
            bound = _max_kw(point, elements, volts)
            rebase = point.number in self._rebase
            for name, attribute in ENERGY_COUNTERS:
                key = counter_key(point.number, name)
                if rebase:
                    self.guard.rebase(key, getattr(point, attribute), utc)
                verdict = self.guard.check(key, getattr(point, attribute), utc, bound)
                totals[key] = verdict.total
                if verdict.outcome in (Outcome.RESET, Outcome.JUMP):
                    stepped.append(key)
                    self._raise_step(key, point.number, name, verdict.outcome, verdict)
        self._rebase = set()
        for pulse in data.pulses:
            key = pulse_key(pulse.number)
            # A pulse input has no rating to bound it: only a step down is caught.
            verdict = self.guard.check(key, pulse.value, utc, None)
            totals[key] = verdict.total
            if verdict.outcome is Outcome.RESET:
                stepped.append(key)
                self._raise_step(key, 0, f"pulse_{pulse.number}", verdict.outcome, verdict)
        offset = None if data.utc is None else data.utc - now
        return Reading(data, totals, now, offset, stepped)

    def _raise_step(
        self, key: str, point: int, counter: str, outcome: Outcome, verdict: Any
    ) -> None:
        LOGGER.warning(
            "%s: %s went from %s to %s (%s); the total continues from where it was",
            self.config_entry.title,
            key,
            verdict.previous_raw,
            verdict.raw,
            outcome.value,
        )
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            f"counter_step_{self.config_entry.entry_id}_{key}",
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="counter_reset" if outcome is Outcome.RESET else "counter_jump",
            translation_placeholders={
                "title": self.config_entry.title,
                "point": str(point),
                "counter": counter,
                "before": f"{verdict.previous_raw:.3f}",
                "after": f"{verdict.raw:.3f}",
            },
        )


class S8000IdentityCoordinator(DataUpdateCoordinator[Identity]):
    """Walks the SunSpec chain now and then: firmware, MAC, points and wiring.

    What it finds keeps the device registry current (a firmware update shows
    without a reload) and reloads the entry when the meter's points changed,
    since the entities follow them."""

    config_entry: S8000ConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: S8000ConfigEntry, client: S8000Client, identity: Identity
    ) -> None:
        """Set up the identity poll, starting from what setup found."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{entry.title} identity",
            update_interval=IDENTITY_SCAN_INTERVAL,
        )
        self.client = client
        self.initial = identity
        self.device_id: str | None = None
        self.async_set_updated_data(identity)

    @override
    async def _async_update_data(self) -> Identity:
        try:
            identity = await self.client.identify()
        except S8000Error as err:
            raise _update_failed(err) from err
        if identity.serial != self.config_entry.unique_id:
            repairs.async_wrong_meter(
                self.hass, self.config_entry, f"{identity.model} serial {identity.serial}"
            )
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="wrong_meter",
                translation_placeholders={
                    "error": f"found serial {identity.serial}, "
                    f"expected {self.config_entry.unique_id}"
                },
            )
        if self.device_id is not None and identity.firmware != self.initial.firmware:
            dr.async_get(self.hass).async_update_device(
                self.device_id, sw_version=identity.firmware
            )
        if identity.point_models != self.initial.point_models:
            LOGGER.info(
                "%s: the meter's points changed (%s to %s); reloading",
                self.config_entry.title,
                self.initial.point_models,
                identity.point_models,
            )
            self.hass.config_entries.async_schedule_reload(self.config_entry.entry_id)
        return identity


@dataclass(kw_only=True, slots=True)
class S8000RuntimeData:
    """What a loaded config entry keeps while it runs."""

    client: S8000Client
    identity: Identity
    readings: S8000ReadingsCoordinator
    meter: S8000IdentityCoordinator
    device_info: dr.DeviceInfo
    device_id: str
    backfill: Backfill
