"""Sensors: per point energy, power and demand; per meter voltage, frequency,
the pulse inputs, the clock and the backfill's progress.

The energy counters come from the meter's own 64-bit registers through the
readings coordinator's guard (:mod:`.counters`): a read that fails or does not
fit makes them unavailable, never 0 or a jump, so the Energy dashboard's
statistics never see a dip or a spike.

Every sensor has one :class:`S8000SensorEntityDescription`: whether it exists
on this meter, and how its value is read from a poll out of what it belongs
to (a point, the meter, a pulse input, the backfill).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    Platform,
    UnitOfApparentPower,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfFrequency,
    UnitOfPower,
    UnitOfReactiveEnergy,
    UnitOfReactivePower,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from s8000_engine.client import Identity, PointData, Service

from .const import DOMAIN, OPT_POINTS, OPT_PULSES, PULSE_KIND, PULSE_UNIT
from .entity import S8000Entity
from .models import (
    ENERGY_COUNTERS,
    BackfillProgress,
    Reading,
    S8000ConfigEntry,
    entity_unique_id,
    point_key,
    points_in_use,
    pulse_key,
)

# Coordinator-driven: the readings poll updates every entity at once.
PARALLEL_UPDATES = 0
#: The register (a PointData attribute) of each energy counter, by key.
COUNTER_REGISTERS: Final = dict(ENERGY_COUNTERS)

type Value = float | datetime | None


@dataclass(frozen=True, kw_only=True)
class S8000SensorEntityDescription[SourceT](SensorEntityDescription):
    """A sensor of something of the meter's (``SourceT``: a point, the meter
    itself, a pulse input, the backfill)."""

    #: Whether the sensor exists for what the meter reported at setup.
    exists_fn: Callable[[SourceT], bool] = lambda _: True
    #: Its value in a poll (None: unknown).
    value_fn: Callable[[Reading, SourceT], Value]
    #: A guarded total (see :mod:`.counters`): unavailable, not unknown, while
    #: the guard holds it.
    guarded: bool = False
    #: What the poll reads for it: the :class:`~s8000_engine.client.PointData`
    #: or :class:`~s8000_engine.client.MeterData` values it shows.  The poll
    #: reads only what the enabled sensors ask for.
    reads: tuple[str, ...] = ()


def _total(key: str) -> Callable[[Reading, PointData], Value]:
    def value(reading: Reading, point: PointData) -> Value:
        return reading.totals.get(point_key(point.number, key))

    return value


def _timestamp(seconds: float | None) -> datetime | None:
    return None if not seconds else dt_util.utc_from_timestamp(seconds)


def _percent(pf: float | None) -> float | None:
    return None if pf is None else round(pf * 100.0, 1)


def _energy(key: str) -> S8000SensorEntityDescription[PointData]:
    return S8000SensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        guarded=True,
        reads=(COUNTER_REGISTERS[key],),
        value_fn=_total(key),
    )


def _reactive_energy(key: str) -> S8000SensorEntityDescription[PointData]:
    return S8000SensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.REACTIVE_ENERGY,
        native_unit_of_measurement=UnitOfReactiveEnergy.KILO_VOLT_AMPERE_REACTIVE_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        entity_registry_enabled_default=False,
        guarded=True,
        reads=(COUNTER_REGISTERS[key],),
        value_fn=_total(key),
    )


def _power(
    key: str,
    value_fn: Callable[[Reading, PointData], Value],
    reads: str,
    *,
    translated: bool = False,
    enabled: bool = False,
) -> S8000SensorEntityDescription[PointData]:
    return S8000SensorEntityDescription(
        key=key,
        translation_key=key if translated else None,
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_registry_enabled_default=enabled,
        reads=(reads,),
        value_fn=value_fn,
    )


#: The CT phases a point of each SunSpec meter model has.
PHASES: Final = {201: ("A",), 202: ("A", "B"), 203: ("A", "B", "C"), 204: ("A", "B", "C")}


def _phase_sensors(phase: str) -> tuple[S8000SensorEntityDescription[PointData], ...]:
    """The power and current of one phase (CT) of a point, disabled until enabled."""

    def has_phase(point: PointData) -> bool:
        return phase in PHASES.get(point.model_id, ())

    return (
        S8000SensorEntityDescription(
            key=f"phase_power_{phase.lower()}",
            translation_key="phase_power",
            translation_placeholders={"phase": phase},
            device_class=SensorDeviceClass.POWER,
            native_unit_of_measurement=UnitOfPower.WATT,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=0,
            entity_registry_enabled_default=False,
            exists_fn=has_phase,
            reads=("phase_w",),
            value_fn=lambda _, point: point.phase_w.get(phase),
        ),
        S8000SensorEntityDescription(
            key=f"phase_current_{phase.lower()}",
            translation_key="phase_current",
            translation_placeholders={"phase": phase},
            device_class=SensorDeviceClass.CURRENT,
            native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
            state_class=SensorStateClass.MEASUREMENT,
            suggested_display_precision=2,
            entity_registry_enabled_default=False,
            exists_fn=has_phase,
            reads=("phase_a",),
            value_fn=lambda _, point: point.phase_a.get(phase),
        ),
    )


POINT_SENSORS: Final[tuple[S8000SensorEntityDescription[PointData], ...]] = (
    _energy("energy_delivered"),
    _energy("energy_received"),
    _reactive_energy("reactive_energy_delivered"),
    _reactive_energy("reactive_energy_received"),
    _power("power", lambda _, point: point.w, "w", enabled=True),
    S8000SensorEntityDescription(
        key="reactive_power",
        entity_registry_enabled_default=False,
        device_class=SensorDeviceClass.REACTIVE_POWER,
        native_unit_of_measurement=UnitOfReactivePower.VOLT_AMPERE_REACTIVE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        reads=("var",),
        value_fn=lambda _, point: point.var,
    ),
    S8000SensorEntityDescription(
        key="apparent_power",
        entity_registry_enabled_default=False,
        device_class=SensorDeviceClass.APPARENT_POWER,
        native_unit_of_measurement=UnitOfApparentPower.VOLT_AMPERE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        reads=("va",),
        value_fn=lambda _, point: point.va,
    ),
    S8000SensorEntityDescription(
        key="power_factor",
        entity_registry_enabled_default=False,
        device_class=SensorDeviceClass.POWER_FACTOR,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        reads=("pf",),
        value_fn=lambda _, point: _percent(point.pf),
    ),
    S8000SensorEntityDescription(
        key="current",
        entity_registry_enabled_default=False,
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        reads=("a",),
        value_fn=lambda _, point: point.a,
    ),
    _power("demand", lambda _, point: point.demand_w, "demand_w", translated=True),
    _power("peak_demand", lambda _, point: point.peak_demand_w, "peak_demand_w", translated=True),
    S8000SensorEntityDescription(
        key="peak_demand_time",
        translation_key="peak_demand_time",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_registry_enabled_default=False,
        reads=("peak_demand_time",),
        value_fn=lambda _, point: _timestamp(point.peak_demand_time),
    ),
    S8000SensorEntityDescription(
        key="ct_primary",
        translation_key="ct_primary",
        entity_registry_enabled_default=False,
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        entity_category=EntityCategory.DIAGNOSTIC,
        reads=("ct_primary_a",),
        value_fn=lambda _, point: point.ct_primary_a,
    ),
    *_phase_sensors("A"),
    *_phase_sensors("B"),
    *_phase_sensors("C"),
)


#: The voltages a meter measures, by its service (its
#: :attr:`~s8000_engine.client.Identity.service`): its phases to neutral, and
#: between which lines.
SERVICE_VOLTAGES: Final[dict[Service, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    Service.SINGLE_PHASE_2W: (("A",), ()),
    Service.SINGLE_PHASE_3W: (("A", "B"), ("AB",)),
    Service.WYE_4W: (("A", "B", "C"), ("AB", "BC", "CA")),
    Service.DELTA_3W: ((), ("AB", "BC", "CA")),
}
#: A meter that does not say its service may measure any of them.
ANY_VOLTAGES: Final = (("A", "B", "C"), ("AB", "BC", "CA"))


def _voltages(identity: Identity) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The voltages the meter measures: what its wiring gives it, not what
    one poll happened to carry (a meter without voltage at that moment, as
    when it has just started, reports none)."""
    if identity.service is None:
        return ANY_VOLTAGES
    return SERVICE_VOLTAGES.get(identity.service, ANY_VOLTAGES)


def _voltage(phase: str) -> S8000SensorEntityDescription[Identity]:
    """A phase's voltage to neutral, where the meter measures one."""
    return S8000SensorEntityDescription(
        key=f"voltage_{phase.lower()}",
        translation_key="phase_voltage",
        translation_placeholders={"phase": phase},
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_registry_enabled_default=False,
        exists_fn=lambda identity: phase in _voltages(identity)[0],
        reads=("voltage",),
        value_fn=lambda reading, _: reading.meter_data.voltage.get(phase),
    )


def _line_voltage(pair: str) -> S8000SensorEntityDescription[Identity]:
    """The voltage between two lines, where the meter measures one."""
    return S8000SensorEntityDescription(
        key=f"line_voltage_{pair.lower()}",
        translation_key="line_voltage",
        translation_placeholders={"phase": pair},
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_registry_enabled_default=False,
        exists_fn=lambda identity: pair in _voltages(identity)[1],
        reads=("line_voltage",),
        value_fn=lambda reading, _: reading.meter_data.line_voltage.get(pair),
    )


def _clock_offset(reading: Reading, _: Identity) -> float | None:
    return None if reading.clock_offset is None else round(reading.clock_offset)


METER_SENSORS: Final[tuple[S8000SensorEntityDescription[Identity], ...]] = (
    *(_voltage(phase) for phase in ("A", "B", "C")),
    *(_line_voltage(pair) for pair in ("AB", "BC", "CA")),
    S8000SensorEntityDescription(
        key="frequency",
        entity_registry_enabled_default=False,
        device_class=SensorDeviceClass.FREQUENCY,
        native_unit_of_measurement=UnitOfFrequency.HERTZ,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        reads=("frequency",),
        value_fn=lambda reading, _: reading.meter_data.frequency,
    ),
    S8000SensorEntityDescription(
        key="clock_offset",
        translation_key="clock_offset",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        reads=("utc",),
        value_fn=_clock_offset,
    ),
    S8000SensorEntityDescription(
        key="stored_intervals",
        translation_key="stored_intervals",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        reads=("intervals",),
        value_fn=lambda reading, _: reading.meter_data.intervals.count,
    ),
)

BACKFILL_SENSOR: Final[S8000SensorEntityDescription[BackfillProgress]] = (
    S8000SensorEntityDescription(
        key="backfill_progress",
        translation_key="backfill_progress",
        native_unit_of_measurement=PERCENTAGE,
        entity_category=EntityCategory.DIAGNOSTIC,
        suggested_display_precision=0,
        value_fn=lambda _, backfill: backfill.progress,
    )
)

#: The meter's two pulse inputs.
PULSE_INPUTS: Final = (1, 2)
#: What a pulse input counts: its device class (None: plain pulses).
PULSE_DEVICE_CLASSES: Final = {
    "count": None,
    "water": SensorDeviceClass.WATER,
    "gas": SensorDeviceClass.GAS,
    "energy": SensorDeviceClass.ENERGY,
}


def _pulse_total(reading: Reading, number: int) -> float | None:
    """A pulse input's total: pulses times a float32 scaling, rounded to what
    that carries."""
    total = reading.totals.get(pulse_key(number))
    return None if total is None else round(total, 6)


def pulse_described(options: Mapping[str, str]) -> bool:
    """Whether the options say what a pulse input counts.  A bare count is
    what they say of an input nobody has described (the options form's
    default), so it stays disabled, like an input with nothing wired."""
    return options.get(PULSE_KIND, "count") != "count"


def pulse_sensor(number: int, options: Mapping[str, str]) -> S8000SensorEntityDescription[int]:
    """Pulse input ``number``, counted as water, gas, energy or plain pulses
    in the unit the options give it; enabled once the options describe it."""
    kind = options.get(PULSE_KIND, "count")
    device_class = PULSE_DEVICE_CLASSES.get(kind)
    return S8000SensorEntityDescription(
        key=f"pulse_{number}",
        translation_key=f"pulse_{kind}",
        translation_placeholders={"number": str(number)},
        device_class=device_class,
        native_unit_of_measurement=(options.get(PULSE_UNIT) or None) if device_class else None,
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_registry_enabled_default=pulse_described(options),
        guarded=True,
        reads=("pulses",),
        value_fn=_pulse_total,
    )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: S8000ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of the meter and of the points in use."""
    runtime = entry.runtime_data
    data = runtime.coordinator.data.meter_data
    in_use = points_in_use(entry.options.get(OPT_POINTS), runtime.identity.points)
    carried = runtime.carried

    def on_link(description: S8000SensorEntityDescription[Any]) -> bool:
        """Whether the link carries what the sensor shows (the web pages carry
        a point's energies and power, not the meter's clock, voltages, pulse
        inputs or records): no sensor that could never have a value."""
        return carried is None or (bool(description.reads) and set(description.reads) <= carried)

    entities: list[SensorEntity] = [
        S8000PointSensor(entry, description, point.number)
        for point in data.points
        if point.number in in_use
        for description in POINT_SENSORS
        if description.exists_fn(point) and on_link(description)
    ]
    entities.extend(
        S8000MeterSensor(entry, description)
        for description in METER_SENSORS
        if description.exists_fn(runtime.identity) and on_link(description)
    )
    if on_link(BACKFILL_SENSOR):
        entities.append(S8000BackfillSensor(entry, BACKFILL_SENSOR))
    pulses = entry.options.get(OPT_PULSES, {})
    _enable_described_pulses(hass, entry, pulses)
    entities.extend(
        S8000PulseSensor(entry, description, number)
        for number in PULSE_INPUTS
        if on_link(description := pulse_sensor(number, pulses.get(str(number), {})))
    )
    async_add_entities(entities)


def _enable_described_pulses(
    hass: HomeAssistant, entry: S8000ConfigEntry, pulses: Mapping[str, Mapping[str, str]]
) -> None:
    """Enable a pulse input the options have come to describe.  Its entity
    was registered disabled while nothing said what it counts, and the
    registry keeps that: the default applies only to a new entity.  A user's
    own choice (disabled by the user) is left alone."""
    registry = er.async_get(hass)
    for number in PULSE_INPUTS:
        if not pulse_described(pulses.get(str(number), {})):
            continue
        unique_id = entity_unique_id(entry.runtime_data.identity.serial, f"pulse_{number}")
        entity_id = registry.async_get_entity_id(Platform.SENSOR, DOMAIN, unique_id)
        if entity_id is None:
            continue
        registered = registry.async_get(entity_id)
        if (
            registered is not None
            and registered.disabled_by is er.RegistryEntryDisabler.INTEGRATION
        ):
            registry.async_update_entity(entity_id, disabled_by=None)


class S8000Sensor[SourceT](S8000Entity, SensorEntity):
    """A sensor whose value is read from what it belongs to (its source)."""

    entity_description: S8000SensorEntityDescription[SourceT]

    def __init__(
        self,
        entry: S8000ConfigEntry,
        description: S8000SensorEntityDescription[SourceT],
        *,
        point: int | None = None,
    ) -> None:
        """Set up the sensor; its context tells the poll what to read for it."""
        super().__init__(entry, description, point=point)
        self.coordinator_context = (point, description.reads)

    @abstractmethod
    def _source(self) -> SourceT | None:
        """What the sensor belongs to, as the last poll has it (None: not in it)."""

    @property
    @override
    def available(self) -> bool:
        """Unavailable while the poll fails, and while a guarded total is held."""
        if not super().available or self._source() is None:
            return False
        return not self.entity_description.guarded or self.native_value is not None

    @property
    @override
    def native_value(self) -> Value:
        """The value in the last poll."""
        source = self._source()
        if source is None:
            return None
        return self.entity_description.value_fn(self.coordinator.data, source)


class S8000PointSensor(S8000Sensor[PointData]):
    """A sensor of one meter point."""

    def __init__(
        self,
        entry: S8000ConfigEntry,
        description: S8000SensorEntityDescription[PointData],
        point: int,
    ) -> None:
        """Set up the sensor of ``point``."""
        super().__init__(entry, description, point=point)
        self._number = point

    @override
    def _source(self) -> PointData | None:
        for point in self.coordinator.data.meter_data.points:
            if point.number == self._number:
                return point
        return None


class S8000MeterSensor(S8000Sensor[Identity]):
    """A sensor of the meter as a whole."""

    def __init__(
        self, entry: S8000ConfigEntry, description: S8000SensorEntityDescription[Identity]
    ) -> None:
        """Set up the sensor of the entry's meter."""
        super().__init__(entry, description)
        self._identity = entry.runtime_data.identity

    @override
    def _source(self) -> Identity:
        return self._identity


class S8000PulseSensor(S8000Sensor[int]):
    """A pulse input's total."""

    def __init__(
        self, entry: S8000ConfigEntry, description: S8000SensorEntityDescription[int], number: int
    ) -> None:
        """Set up pulse input ``number``."""
        super().__init__(entry, description)
        self._number = number

    @override
    def _source(self) -> int:
        return self._number


class S8000BackfillSensor(S8000Sensor[BackfillProgress]):
    """How far an import of the meter's records into the statistics has got:
    a percentage while one runs, unknown otherwise."""

    def __init__(
        self, entry: S8000ConfigEntry, description: S8000SensorEntityDescription[BackfillProgress]
    ) -> None:
        """Set up the progress sensor of the entry's backfill."""
        super().__init__(entry, description)
        self._backfill = entry.runtime_data.backfill

    @override
    async def async_added_to_hass(self) -> None:
        """Follow the backfill's progress as well as the polls."""
        await super().async_added_to_hass()
        self.async_on_remove(self._backfill.add_listener(self.async_write_ha_state))

    @override
    def _source(self) -> BackfillProgress:
        return self._backfill
