"""Demand settings: block or sliding, interval and subinterval."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, cast

import voluptuous as vol

from s8000_engine.config.validation import validate
from s8000_engine.exceptions import ConfigError

ALLOWED_INTERVALS: Final[tuple[int, ...]] = (1, 5, 10, 15, 30, 60)
"""Demand intervals, in minutes, that the meter offers."""

#: Recording intervals the meter offers, in minutes (the same choices as demand).
RECORDING_INTERVALS: Final = ALLOWED_INTERVALS


_INTERVAL_MESSAGE: Final = "must be one of " + ", ".join(str(m) for m in ALLOWED_INTERVALS)


class DemandType(StrEnum):
    """How demand is computed: the meter's *Demand Interval Setup*."""

    BLOCK = "block"
    """Block demand: one value per interval, at the interval's end."""
    SLIDING = "sliding"
    """Sliding window demand: a value over the last interval at every subinterval end."""


def _field_error(field: str, message: str) -> ConfigError:
    return ConfigError.at(("demand", field), message)


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class DemandConfig:
    """The demand settings of a meter.

    ``subinterval_minutes`` is resolved on construction: for block demand it
    becomes the interval; for sliding demand, left out, it becomes a third of
    the interval when the interval is divisible by 3 and 1 minute otherwise.
    Invalid settings raise :class:`ConfigError` naming the field
    (``("demand", "subinterval_minutes")``).
    """

    type: DemandType = DemandType.BLOCK
    interval_minutes: int = 15
    subinterval_minutes: int | None = None

    def __post_init__(self) -> None:
        """Validate the settings and resolve the subinterval."""
        try:
            kind = DemandType(self.type)
        except (ValueError, TypeError):
            raise _field_error("type", "must be one of block, sliding") from None
        object.__setattr__(self, "type", kind)
        interval = self.interval_minutes
        if not _is_whole(interval) or interval not in ALLOWED_INTERVALS:
            raise _field_error("interval_minutes", _INTERVAL_MESSAGE)
        sub = self.subinterval_minutes
        if sub is not None and (not _is_whole(sub) or sub < 1):
            raise _field_error("subinterval_minutes", "must be a whole number of minutes, ≥ 1")
        if kind is DemandType.BLOCK:
            if sub is not None and sub != interval:
                raise _field_error(
                    "subinterval_minutes",
                    f"block demand has no subintervals: leave it out or set it to "
                    f"the interval ({interval})",
                )
            sub = interval
        elif sub is None:
            if interval == 1:
                raise _field_error(
                    "interval_minutes", "sliding window demand needs an interval over 1 minute"
                )
            sub = interval // 3 if interval % 3 == 0 else 1
        elif sub >= interval or interval % sub != 0:
            raise _field_error(
                "subinterval_minutes",
                f"must divide the interval ({interval}) and be smaller than it",
            )
        object.__setattr__(self, "subinterval_minutes", sub)

    @property
    def interval_seconds(self) -> int:
        """The demand interval in seconds."""
        return self.interval_minutes * 60

    @property
    def subinterval_seconds(self) -> int:
        """The subinterval (bucket) length in seconds; the interval for block demand."""
        return cast("int", self.subinterval_minutes) * 60

    @property
    def subintervals(self) -> int:
        """*N*, the number of subintervals in an interval (1 for block demand)."""
        return self.interval_minutes // cast("int", self.subinterval_minutes)

    def to_dict(self) -> dict[str, object]:
        """Return the settings as a mapping that :func:`demand_config` accepts."""
        return {
            "type": str(self.type),
            "interval_minutes": self.interval_minutes,
            "subinterval_minutes": self.subinterval_minutes,
        }


def _whole_minutes(value: object) -> int:
    """Accept an int, or a float with a whole value (number selectors give floats)."""
    if isinstance(value, bool):
        raise vol.Invalid("must be a whole number of minutes")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise vol.Invalid("must be a whole number of minutes")


def _interval_minutes(value: object) -> int:
    minutes = _whole_minutes(value)
    if minutes not in ALLOWED_INTERVALS:
        raise vol.Invalid(_INTERVAL_MESSAGE)
    return minutes


def _subinterval_minutes(value: object) -> int | None:
    if value is None:
        return None
    minutes = _whole_minutes(value)
    if minutes < 1:
        raise vol.Invalid("must be a whole number of minutes, ≥ 1")
    return minutes


def _demand_type(value: object) -> DemandType:
    if isinstance(value, str):
        try:
            return DemandType(value)
        except ValueError:
            pass
    raise vol.Invalid("must be one of block, sliding")


DEMAND_SCHEMA: Final = vol.Schema(
    {
        vol.Optional("type", default=str(DemandType.BLOCK)): _demand_type,
        vol.Optional("interval_minutes", default=15): _interval_minutes,
        vol.Optional("subinterval_minutes", default=None): _subinterval_minutes,
    },
    extra=vol.PREVENT_EXTRA,
)
"""The voluptuous schema of the demand settings (field by field; the rules
between fields are checked by :class:`DemandConfig`)."""


def demand_config(data: Mapping[str, object]) -> DemandConfig:
    """Validate demand settings and return them as a :class:`DemandConfig`.

    Raises :class:`ConfigError` naming every wrong field, e.g.
    ``demand.interval_minutes: must be one of 1, 5, 10, 15, 30, 60``.
    """
    if not isinstance(data, Mapping):
        raise ConfigError.at(("demand",), "expected a dictionary")
    valid = validate(DEMAND_SCHEMA, dict(data), ("demand",))
    return DemandConfig(
        type=valid["type"],
        interval_minutes=valid["interval_minutes"],
        subinterval_minutes=valid["subinterval_minutes"],
    )
