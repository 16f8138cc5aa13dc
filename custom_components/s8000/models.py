"""What the integration's modules share: the config entry's type and its
runtime data, the reading a poll hands the entities, the identifiers of a
meter's points, and which points are in use.

A leaf: it imports nothing from the rest of the integration, so every module
may import it without making a cycle.  The readings poll
(:mod:`.coordinator`) imports this module, so the runtime data names the poll
by the abstract :class:`S8000Coordinator` declared here, which holds what
the other modules use of it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from s8000_engine.client import ENERGY_REGISTERS, Identity, MeterData, S8000Client
from s8000_engine.client.webpages import WebPagesClient

type S8000ConfigEntry = ConfigEntry[S8000RuntimeData]

#: The energy registers of a point, in the meter's order (which is also the
#: order of the four registers of an interval record): the key of the counter
#: and of its entity, and the :class:`~s8000_engine.client.PointData`
#: attribute that holds the register (the engine's names for them).
ENERGY_COUNTERS: Final = tuple(
    zip(
        ("energy_delivered", "energy_received", "reactive_energy_delivered",
         "reactive_energy_received"),
        ENERGY_REGISTERS,
        strict=True,
    )
)  # fmt: skip


# -- identifiers -------------------------------------------------------------------------
#
# Every identity derives from the meter's serial number, the entry's unique
# id: the meter's device is (s8000, SERIAL), point n's is (s8000,
# SERIAL_point_n), and an entity of point n is SERIAL_pointn_KEY.


def point_key(point: int, key: str) -> str:
    """What ``key`` of one point is called: the key of its counter in the
    guard, and (after the serial number) its entity's unique id."""
    return f"point{point}_{key}"


def pulse_key(number: int) -> str:
    """The key of one pulse input's total in the guard."""
    return f"pulse{number}"


def entity_unique_id(serial: str, key: str, point: int | None = None) -> str:
    """The unique id of an entity of the meter, or of one of its points."""
    return f"{serial}_{key if point is None else point_key(point, key)}"


def point_device_id(serial: str, point: int) -> str:
    """The identifier of one point's device, a child device of the meter."""
    return f"{serial}_point_{point}"


def points_in_use(chosen: Iterable[int | str] | None, points: int) -> frozenset[int]:
    """The points in use of a meter of ``points`` points: those the options
    chose that the meter has, or every point when none of them is chosen."""
    in_use = frozenset(int(point) for point in chosen or () if 1 <= int(point) <= points)
    return in_use or frozenset(range(1, points + 1))


# -- what a loaded entry holds ------------------------------------------------------------


@dataclass(slots=True)
class Reading:
    """One poll, as the entities read it."""

    #: What the meter answered, with the points read reversed turned round.
    meter_data: MeterData
    #: The guarded totals (kWh, kvarh, pulse units) by counter key
    #: (:func:`point_key`, :func:`pulse_key`); None while a counter is held.
    totals: dict[str, float | None]
    #: Home Assistant's clock when the poll finished (s since 1970).
    polled_at: float
    #: Meter clock minus Home Assistant's clock (s), None if the meter has no time.
    clock_offset: float | None = None
    #: Keys of the counters that stepped (reset or jump) in this poll.
    stepped: list[str] = field(default_factory=list)


class S8000Coordinator(DataUpdateCoordinator[Reading], ABC):
    """The readings poll, as the entities, actions, repairs, backfill and
    diagnostics use it; :class:`.coordinator.S8000ReadingsCoordinator` polls."""

    @abstractmethod
    def counter_offset(self, key: str) -> float:
        """What counter ``key``'s total adds to its register: 0 until a step
        (a reset, a jump, a point turned round) moved the two apart."""

    @abstractmethod
    def counter_states(self) -> dict[str, dict[str, Any]]:
        """What the guards remember of every counter, by key (as stored)."""


class BackfillProgress:
    """Whether one meter's backfill runs, and how far it has got.

    At most one runs at a time; the progress sensor follows it."""

    def __init__(self) -> None:
        """Idle."""
        self.running = False
        #: 0 to 100 while one runs, None otherwise.
        self.progress: float | None = None
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` when the progress changes; returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def set(self, progress: float | None) -> None:
        """Move the progress on (None: none runs any more), and say so."""
        self.progress = progress
        for listener in list(self._listeners):
            listener()


@dataclass(kw_only=True, slots=True)
class S8000RuntimeData:
    """What a loaded config entry keeps while it runs."""

    #: The link: Modbus, or the meter's web pages (read only: see :attr:`modbus`).
    client: S8000Client | WebPagesClient
    #: Who the meter was when the entry was set up; the identity re-check
    #: compares what it finds with this.  Over the web pages, which carry no
    #: serial number, its serial is the entry's unique id.
    identity: Identity
    coordinator: S8000Coordinator
    device_info: DeviceInfo
    device_id: str
    backfill: BackfillProgress = field(default_factory=BackfillProgress)
    #: Why the last identity re-check failed; None once one succeeds.
    identity_error: str | None = None

    @property
    def modbus(self) -> S8000Client | None:
        """The Modbus client, for what only Modbus can do (the interval
        memory, the clock, the commands); None over the web pages."""
        return self.client if isinstance(self.client, S8000Client) else None

    @property
    def carried(self) -> frozenset[str] | None:
        """The :class:`~s8000_engine.client.PointData` and
        :class:`~s8000_engine.client.MeterData` values the link carries
        (None: every one, as Modbus does)."""
        client = self.client
        return frozenset(client.carried) if isinstance(client, WebPagesClient) else None
