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

from homeassistant.const import CONF_TYPE
from homeassistant.core import CALLBACK_TYPE, HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import UpdateFailed
from homeassistant.util import dt as dt_util

from s8000_engine.client import (
    FRAME_COST_RTU,
    FRAME_COST_TCP,
    MeterData,
    MeterReader,
    S8000BadData,
    S8000Client,
    S8000ConnectionError,
    S8000Error,
    S8000MapChanged,
    S8000WrongMeter,
    Selection,
)
from s8000_engine.client.webpages import WebPagesClient

from . import repairs
from .const import DOMAIN, LOGGER, OPT_REVERSED, TYPE_SERIAL
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
#: How long a silent meter is still polled at the usual interval ...
SILENT_GRACE: Final = timedelta(minutes=1)
#: ... and how far apart its polls may move after that.
BACKOFF_MAX: Final = timedelta(minutes=5)
#: What every poll reads, whichever entities are enabled: the meter clock
#: (the clock repair, the guards' time) and the voltages (the guards' rate
#: bound follows them on a service with PTs); per point both energy
#: registers and the CT rating (the guards, the reversed-CT check).
POLL_METER: Final = ("utc", "voltage", "line_voltage")
POLL_POINT: Final = ("kwh_delivered", "kwh_received", "ct_primary_a")


def _update_failed(err: S8000Error, retry_after: float | None = None) -> UpdateFailed:
    """A failed poll, said in the user's language: another meter answers, the
    meter does not answer, or it answered with data that cannot be used; the
    next poll comes ``retry_after`` seconds later (None: at the usual interval)."""
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
        retry_after=retry_after,
    )


def _silent(err: S8000Error) -> bool:
    """Whether a failed poll means the meter did not answer at all (no
    Modbus answer, not even an exception response)."""
    return isinstance(err, S8000ConnectionError) and err.exception_code is None


def _counters_read(selection: Selection | None) -> dict[int, frozenset[str]]:
    """The counters a read of ``selection`` reads, by point number; 0 holds
    ``pulses`` when it reads the pulse inputs.  Empty for the whole map: a
    point (or 0) missing from it reads every counter."""
    if selection is None:
        return {}
    counted = {
        number: frozenset(name for name, attribute in ENERGY_COUNTERS if attribute in values)
        for number, values in selection.points
    }
    counted[0] = frozenset({"pulses"} & selection.meter)
    return counted


class S8000ReadingsCoordinator(S8000Coordinator):
    """Reads the meter, and guards the energy counters.

    The first poll reads the whole map in 125-register blocks (10 for eight
    points, 26 for 24); the next ones what the entities listening need
    (:meth:`_wanted`), planned for the link.  A poll that fails is tried
    once more before the entities go unavailable, so a single lost frame on
    a busy bus does not blank them; Home Assistant logs the meter going away
    once, and its return once.

    A meter that stays silent is not: each request to it costs a whole
    timeout, which on a shared RS-485 bus is taken from every other device.
    So only a meter that has just gone silent is tried twice; after that one
    request per poll, and once it has been silent for :data:`SILENT_GRACE`,
    the polls move apart (doubling, up to :data:`BACKOFF_MAX`) until it
    answers again."""

    config_entry: S8000ConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: S8000ConfigEntry,
        client: MeterReader,
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
        #: Since when the meter has not answered (None: it answered last).
        self.silent_since: datetime | None = None
        self._backoff: timedelta | None = None
        #: What a poll reads, planned from the entities listening (None: not yet).
        self._selection: Selection | None = None
        #: The counters the last read read, by point (0: the pulse inputs),
        #: and the selection that read them.
        self._counted_in: Selection | None = None
        self._counted: dict[int, frozenset[str]] = _counters_read(None)

    @override
    def async_add_listener(
        self, update_callback: CALLBACK_TYPE, context: Any = None
    ) -> Callable[[], None]:
        """Follow the entities: one added (enabled) or removed (disabled, or
        the entry unloading) changes what the next poll reads."""
        remove = super().async_add_listener(update_callback, context)
        self._selection = None

        def remove_listener() -> None:
            remove()
            self._selection = None

        return remove_listener

    def _wanted(self) -> Selection | None:
        """What the next poll reads: what the entities listening need (their
        context is (point or None, the values they show)) and what the
        guards, the clock repair and the reversed-CT check need.  None (the
        whole map) until entities listen: the first poll, at setup."""
        if self._selection is None and self._listeners:
            identity = self.client.identity
            points: dict[int, set[Any]] = {
                n: set(POLL_POINT) for n in range(1, (identity.points if identity else 0) + 1)
            }
            meter: set[Any] = set(POLL_METER)
            for context in self.async_contexts():
                point, values = context if isinstance(context, tuple) else (None, ())
                (meter if point is None else points.setdefault(point, set())).update(values)
            self._selection = Selection.of(meter, points)
        return self._selection

    async def _read(self) -> MeterData:
        """One read of what the poll needs, planned for the link."""
        serial = self.config_entry.data.get(CONF_TYPE) == TYPE_SERIAL
        selection = self._wanted()
        data = await self.client.read(
            selection, frame_cost=FRAME_COST_RTU if serial else FRAME_COST_TCP
        )
        if selection is not self._counted_in:
            self._counted_in = selection
            self._counted = _counters_read(selection)
        return data

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
        """Read the meter (retrying once if it answered last time), then guard
        its counters."""
        try:
            try:
                data = await self._read()
            except (S8000ConnectionError, S8000BadData, S8000MapChanged) as err:
                if self.silent_since is not None and _silent(err):
                    raise  # still silent: one timeout per poll is enough
                # One lost frame on a busy bus should not blank every entity.
                LOGGER.debug("%s: %s; trying once more", self.name, err)
                data = await self._read()
        except S8000Error as err:
            if isinstance(err, S8000WrongMeter):
                repairs.async_wrong_meter(self.hass, self.config_entry, err.found)
            raise _update_failed(err, self._poll_later(err)) from err
        self.silent_since = None
        self._backoff = None
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

    def _poll_later(self, err: S8000Error) -> float | None:
        """When to poll after a failed poll (s), None for the usual interval:
        later and later while the meter stays silent past the grace."""
        if not _silent(err):
            return None
        now = dt_util.utcnow()
        if self.silent_since is None:
            self.silent_since = now
        if now - self.silent_since < SILENT_GRACE or self.update_interval is None:
            return None
        self._backoff = min(2 * (self._backoff or self.update_interval), BACKOFF_MAX)
        return self._backoff.total_seconds()

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
                counted = self._counted.get(point.number)
                if counted is not None and name not in counted:
                    continue  # not read: no entity shows it
                if rebase:
                    self.guard.rebase(key, getattr(point, attribute), utc)
                verdict = self.guard.check(key, getattr(point, attribute), utc, bound)
                totals[key] = verdict.total
                if verdict.outcome in (Outcome.RESET, Outcome.JUMP):
                    stepped.append(key)
                    translation_key = (
                        "counter_reset" if verdict.outcome is Outcome.RESET else "counter_jump"
                    )
                    self._raise_step(
                        key, verdict, translation_key, {"point": str(point.number), "counter": name}
                    )
        self._rebase = set()
        for pulse in data.pulses if self._counted.get(0, True) else ():
            key = pulse_key(pulse.number)
            # A pulse input has no rating to bound it: only a step down is caught.
            verdict = self.guard.check(key, pulse.value, utc, None)
            totals[key] = verdict.total
            if verdict.outcome is Outcome.RESET:
                stepped.append(key)
                self._raise_step(key, verdict, "pulse_reset", {"pulse": str(pulse.number)})
        offset = None if data.utc is None else data.utc - now
        return Reading(data, totals, now, offset, stepped)

    def _raise_step(
        self, key: str, verdict: Verdict, translation_key: str, which: dict[str, str]
    ) -> None:
        """Log a counter's step, and raise its issue (``which`` names the
        counter in the issue's text)."""
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
            translation_key=translation_key,
            translation_placeholders={
                "title": self.config_entry.title,
                **which,
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
    assert entry.unique_id is not None
    try:
        # A throw-away client for the entry's serial number: a change of the
        # meter's points must be seen without the readings' client taking
        # the new map before the entry reloads.
        client = runtime.client
        checker: S8000Client | WebPagesClient = (
            WebPagesClient(client.session, client.host, client.port, timeout=client.timeout)
            if isinstance(client, WebPagesClient)
            else S8000Client(client.unit, serial=entry.unique_id, profile=client.profile)
        )
        identity = await checker.identify()
    except S8000WrongMeter as err:
        repairs.async_wrong_meter(hass, entry, err.found)
        runtime.identity_error = str(err)
        return
    except S8000Error as err:
        # The readings poll already says when the meter stops answering.
        LOGGER.debug("%s: could not check the meter's identity: %s", entry.title, err)
        runtime.identity_error = str(err)
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
