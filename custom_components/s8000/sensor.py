"""Sensors: per point energy, power and demand; per meter voltage, frequency,
the pulse inputs and the clock.

The energy counters come from the meter's own 64-bit registers through the
readings coordinator's guard (:mod:`.counters`): a read that fails or does not
fit makes them unavailable, never 0 or a jump, so the Energy dashboard's
statistics never see a dip or a spike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
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
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from s8000_engine.client import PointData

from .const import OPT_POINTS, OPT_PULSES, PULSE_KIND, PULSE_UNIT
from .entity import S8000Entity
from .models import Reading, S8000ConfigEntry, point_key, points_in_use, pulse_key

# Coordinator-driven: the readings poll updates every entity at once.
PARALLEL_UPDATES = 0

type Value = float | datetime | None


@dataclass(frozen=True, kw_only=True)
class PointSensorDescription(SensorEntityDescription):
    """A sensor of one meter point; ``value`` reads it from a poll."""

    value: Callable[[Reading, PointData], Value]
    counter: bool = False  # a guarded energy counter


def _total(name: str) -> Callable[[Reading, PointData], Value]:
    def value(reading: Reading, point: PointData) -> Value:
        return reading.totals.get(point_key(point.number, name))

    return value


def _timestamp(seconds: float | None) -> datetime | None:
    return None if not seconds else dt_util.utc_from_timestamp(seconds)


def _percent(pf: float | None) -> float | None:
    return None if pf is None else round(pf * 100.0, 1)


ENERGY: Final = {
    "device_class": SensorDeviceClass.ENERGY,
    "native_unit_of_measurement": UnitOfEnergy.KILO_WATT_HOUR,
    "state_class": SensorStateClass.TOTAL_INCREASING,
    "suggested_display_precision": 3,
    "counter": True,
}
REACTIVE_ENERGY: Final = {
    "device_class": SensorDeviceClass.REACTIVE_ENERGY,
    "native_unit_of_measurement": UnitOfReactiveEnergy.KILO_VOLT_AMPERE_REACTIVE_HOUR,
    "state_class": SensorStateClass.TOTAL_INCREASING,
    "suggested_display_precision": 3,
    "counter": True,
}
POWER: Final = {
    "device_class": SensorDeviceClass.POWER,
    "native_unit_of_measurement": UnitOfPower.WATT,
    "state_class": SensorStateClass.MEASUREMENT,
    "suggested_display_precision": 0,
}

POINT_SENSORS: Final[tuple[PointSensorDescription, ...]] = (
    PointSensorDescription(
        key="energy_delivered",
        translation_key="energy_delivered",
        value=_total("energy_delivered"),
        **ENERGY,  # type: ignore[arg-type]
    ),
    PointSensorDescription(
        key="energy_received",
        translation_key="energy_received",
        value=_total("energy_received"),
        **ENERGY,  # type: ignore[arg-type]
    ),
    PointSensorDescription(
        key="reactive_energy_delivered",
        translation_key="reactive_energy_delivered",
        value=_total("reactive_energy_delivered"),
        **REACTIVE_ENERGY,  # type: ignore[arg-type]
    ),
    PointSensorDescription(
        key="reactive_energy_received",
        translation_key="reactive_energy_received",
        value=_total("reactive_energy_received"),
        **REACTIVE_ENERGY,  # type: ignore[arg-type]
    ),
    PointSensorDescription(
        key="power",
        value=lambda _, point: point.w,
        **POWER,  # type: ignore[arg-type]
    ),
    PointSensorDescription(
        key="reactive_power",
        device_class=SensorDeviceClass.REACTIVE_POWER,
        native_unit_of_measurement=UnitOfReactivePower.VOLT_AMPERE_REACTIVE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value=lambda _, point: point.var,
    ),
    PointSensorDescription(
        key="apparent_power",
        device_class=SensorDeviceClass.APPARENT_POWER,
        native_unit_of_measurement=UnitOfApparentPower.VOLT_AMPERE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value=lambda _, point: point.va,
    ),
    PointSensorDescription(
        key="power_factor",
        device_class=SensorDeviceClass.POWER_FACTOR,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value=lambda _, point: _percent(point.pf),
    ),
    PointSensorDescription(
        key="current",
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        value=lambda _, point: point.a,
    ),
    PointSensorDescription(
        key="demand",
        translation_key="demand",
        value=lambda _, point: point.demand_w,
        **POWER,  # type: ignore[arg-type]
    ),
    PointSensorDescription(
        key="peak_demand",
        translation_key="peak_demand",
        value=lambda _, point: point.peak_demand_w,
        **POWER,  # type: ignore[arg-type]
    ),
    PointSensorDescription(
        key="peak_demand_time",
        translation_key="peak_demand_time",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_registry_enabled_default=False,
        value=lambda _, point: _timestamp(point.peak_demand_time),
    ),
    PointSensorDescription(
        key="ct_primary",
        translation_key="ct_primary",
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda _, point: point.ct_primary_a,
    ),
)

#: The CT phases a point of each SunSpec meter model has.
PHASES: Final = {201: ("A",), 202: ("A", "B"), 203: ("A", "B", "C"), 204: ("A", "B", "C")}

PHASE_POWER: Final = SensorEntityDescription(
    key="phase_power",
    translation_key="phase_power",
    device_class=SensorDeviceClass.POWER,
    native_unit_of_measurement=UnitOfPower.WATT,
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=0,
    entity_registry_enabled_default=False,
)
PHASE_CURRENT: Final = SensorEntityDescription(
    key="phase_current",
    translation_key="phase_current",
    device_class=SensorDeviceClass.CURRENT,
    native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=2,
    entity_registry_enabled_default=False,
)
VOLTAGE: Final = SensorEntityDescription(
    key="voltage",
    translation_key="phase_voltage",
    device_class=SensorDeviceClass.VOLTAGE,
    native_unit_of_measurement=UnitOfElectricPotential.VOLT,
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=1,
)
LINE_VOLTAGE: Final = SensorEntityDescription(
    key="line_voltage",
    translation_key="line_voltage",
    device_class=SensorDeviceClass.VOLTAGE,
    native_unit_of_measurement=UnitOfElectricPotential.VOLT,
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=1,
    entity_registry_enabled_default=False,
)
FREQUENCY: Final = SensorEntityDescription(
    key="frequency",
    device_class=SensorDeviceClass.FREQUENCY,
    native_unit_of_measurement=UnitOfFrequency.HERTZ,
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=2,
)
CLOCK_OFFSET: Final = SensorEntityDescription(
    key="clock_offset",
    translation_key="clock_offset",
    device_class=SensorDeviceClass.DURATION,
    native_unit_of_measurement=UnitOfTime.SECONDS,
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=0,
    entity_category=EntityCategory.DIAGNOSTIC,
)
INTERVALS: Final = SensorEntityDescription(
    key="stored_intervals",
    translation_key="stored_intervals",
    state_class=SensorStateClass.MEASUREMENT,
    entity_category=EntityCategory.DIAGNOSTIC,
    entity_registry_enabled_default=False,
)
BACKFILL: Final = SensorEntityDescription(
    key="backfill_progress",
    translation_key="backfill_progress",
    native_unit_of_measurement=PERCENTAGE,
    entity_category=EntityCategory.DIAGNOSTIC,
    suggested_display_precision=0,
)
#: What a pulse input counts: its device class (None: plain pulses).
PULSE_DEVICE_CLASSES: Final = {
    "count": None,
    "water": SensorDeviceClass.WATER,
    "gas": SensorDeviceClass.GAS,
    "energy": SensorDeviceClass.ENERGY,
}


async def async_setup_entry(
    hass: HomeAssistant,
    entry: S8000ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of a meter and of the points in use."""
    runtime = entry.runtime_data
    data = runtime.coordinator.data.meter_data
    in_use = points_in_use(entry.options.get(OPT_POINTS), runtime.identity.points)
    entities: list[SensorEntity] = []
    for point in data.points:
        if point.number not in in_use:
            continue
        entities.extend(
            S8000PointSensor(entry, description, point.number) for description in POINT_SENSORS
        )
        for phase in PHASES.get(point.model_id, ()):
            entities.append(S8000PhaseSensor(entry, PHASE_POWER, point.number, phase))
            entities.append(S8000PhaseSensor(entry, PHASE_CURRENT, point.number, phase))
    entities.extend(
        S8000VoltageSensor(entry, VOLTAGE, phase)
        for phase, volts in data.voltage.items()
        if volts is not None
    )
    entities.extend(
        S8000VoltageSensor(entry, LINE_VOLTAGE, pair)
        for pair, volts in data.line_voltage.items()
        if volts is not None
    )
    entities.append(S8000MeterSensor(entry, FREQUENCY, lambda r: r.meter_data.frequency))
    entities.append(S8000MeterSensor(entry, CLOCK_OFFSET, _clock_offset))
    entities.append(S8000MeterSensor(entry, INTERVALS, lambda r: r.meter_data.intervals.count))
    entities.append(S8000BackfillSensor(entry))
    pulses = entry.options.get(OPT_PULSES, {})
    entities.extend(
        S8000PulseSensor(entry, number, pulses.get(str(number), {})) for number in (1, 2)
    )
    async_add_entities(entities)


def _clock_offset(reading: Reading) -> float | None:
    return None if reading.clock_offset is None else round(reading.clock_offset)


class S8000PointSensor(S8000Entity, SensorEntity):
    """A sensor of one meter point."""

    entity_description: PointSensorDescription

    def __init__(
        self, entry: S8000ConfigEntry, description: PointSensorDescription, point: int
    ) -> None:
        """Set up the sensor of ``point``."""
        super().__init__(entry, description, point=point)
        self._number = point

    def _point(self) -> PointData | None:
        for point in self.coordinator.data.meter_data.points:
            if point.number == self._number:
                return point
        return None

    @property
    @override
    def available(self) -> bool:
        """Unavailable while the poll fails, and while a counter is held."""
        if not super().available or self._point() is None:
            return False
        if self.entity_description.counter:
            return self.native_value is not None
        return True

    @property
    @override
    def native_value(self) -> Value:
        """The value of the last poll."""
        point = self._point()
        return (
            None if point is None else self.entity_description.value(self.coordinator.data, point)
        )


class S8000PhaseSensor(S8000Entity, SensorEntity):
    """Power or current of one phase (CT) of a point."""

    def __init__(
        self,
        entry: S8000ConfigEntry,
        description: SensorEntityDescription,
        point: int,
        phase: str,
    ) -> None:
        """Set up the phase sensor."""
        super().__init__(
            entry,
            description,
            point=point,
            suffix=f"_{phase.lower()}",
            placeholders={"phase": phase},
        )
        self._number = point
        self._phase = phase

    @property
    @override
    def native_value(self) -> float | None:
        """The phase's value in the last poll."""
        for point in self.coordinator.data.meter_data.points:
            if point.number == self._number:
                values = (
                    point.phase_w if self.entity_description.key == "phase_power" else point.phase_a
                )
                return values.get(self._phase)
        return None


class S8000VoltageSensor(S8000Entity, SensorEntity):
    """A phase (to neutral) or line (to line) voltage of the meter."""

    def __init__(
        self, entry: S8000ConfigEntry, description: SensorEntityDescription, phase: str
    ) -> None:
        """Set up the voltage sensor."""
        super().__init__(
            entry, description, suffix=f"_{phase.lower()}", placeholders={"phase": phase}
        )
        self._phase = phase

    @property
    @override
    def native_value(self) -> float | None:
        """The voltage in the last poll."""
        data = self.coordinator.data.meter_data
        table = data.voltage if self.entity_description.key == "voltage" else data.line_voltage
        return table.get(self._phase)


class S8000MeterSensor(S8000Entity, SensorEntity):
    """A sensor of the meter as a whole."""

    def __init__(
        self,
        entry: S8000ConfigEntry,
        description: SensorEntityDescription,
        value: Callable[[Reading], float | None],
    ) -> None:
        """Set up the meter sensor."""
        super().__init__(entry, description)
        self._value = value

    @property
    @override
    def native_value(self) -> float | None:
        """The value in the last poll."""
        return self._value(self.coordinator.data)


class S8000PulseSensor(S8000Entity, SensorEntity):
    """A pulse input: pulses times the meter's scaling, counted as water, gas,
    energy or plain pulses, in the unit the options give it."""

    _attr_state_class = SensorStateClass.TOTAL_INCREASING

    def __init__(self, entry: S8000ConfigEntry, number: int, options: dict[str, str]) -> None:
        """Set up pulse input ``number`` as the options describe it."""
        kind = options.get(PULSE_KIND, "count")
        super().__init__(
            entry,
            SensorEntityDescription(key="pulse", translation_key=f"pulse_{kind}"),
            suffix=f"_{number}",
            placeholders={"number": str(number)},
        )
        self._key = pulse_key(number)
        self._attr_device_class = PULSE_DEVICE_CLASSES.get(kind)
        unit = options.get(PULSE_UNIT) or None
        self._attr_native_unit_of_measurement = unit if self._attr_device_class else None

    @property
    @override
    def available(self) -> bool:
        """Unavailable while the poll fails, and while the total is held."""
        return super().available and self.native_value is not None

    @property
    @override
    def native_value(self) -> float | None:
        """The input's total (pulses times a float32 scaling: rounded to what
        that carries)."""
        total = self.coordinator.data.totals.get(self._key)
        return None if total is None else round(total, 6)


class S8000BackfillSensor(S8000Entity, SensorEntity):
    """How far an import of the meter's records into the statistics has got:
    a percentage while one runs, unknown otherwise."""

    def __init__(self, entry: S8000ConfigEntry) -> None:
        """Set up the progress sensor of the entry's backfill."""
        super().__init__(entry, BACKFILL)
        self._backfill = entry.runtime_data.backfill

    @override
    async def async_added_to_hass(self) -> None:
        """Follow the backfill's progress as well as the polls."""
        await super().async_added_to_hass()
        self.async_on_remove(self._backfill.add_listener(self.async_write_ha_state))

    @property
    @override
    def native_value(self) -> float | None:
        """The share of the meter's records read so far (None: idle)."""
        return self._backfill.progress
