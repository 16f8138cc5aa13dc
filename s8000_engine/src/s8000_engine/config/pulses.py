"""Pulse input settings: name, unit, scale and the debounce limits."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, cast

import voluptuous as vol

from s8000_engine.config.validation import one_line, validate
from s8000_engine.const import PULSE_SCALE_MAX, PULSE_SCALE_MIN
from s8000_engine.exceptions import ConfigError

PULSE_INPUTS: Final = 2
"""The number of pulse inputs of a Series 8000 meter."""

DEFAULT_NAME: Final = "Pulse 1"
DEFAULT_MIN_PULSE_WIDTH_S: Final = 0.020
"""The user guide's minimum pulse width."""
DEFAULT_MAX_RATE_HZ: Final = 10.0
"""The user guide's maximum pulse frequency."""
DEFAULT_BOUNCE_S: Final = 0.005
"""Level changes that revert sooner than this are contact bounce."""
DEFAULT_RESOLUTION_S: Final = 1e-6
"""Default timing tolerance of :meth:`PulseInput.feed_edges` (float rounding)."""

NAME_MAX_LENGTH: Final = 32
UNIT_MAX_LENGTH: Final = 16


# --------------------------------------------------------------------------- configuration


def _name(value: object) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("expected a string")
    one_line(value)
    if not value.strip():
        raise vol.Invalid("value must not be empty")
    if len(value) > NAME_MAX_LENGTH:
        raise vol.Invalid(f"value must be at most {NAME_MAX_LENGTH} characters")
    return value


def _unit(value: object) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("expected a string")
    one_line(value)
    if len(value) > UNIT_MAX_LENGTH:
        raise vol.Invalid(f"value must be at most {UNIT_MAX_LENGTH} characters")
    return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise vol.Invalid("expected a number")
    result = float(value)
    if not math.isfinite(result):
        raise vol.Invalid("value must be a finite number")
    return result


class _PulseInputSchema(vol.Schema):
    """A dict schema that also checks the rule between two of its fields.

    ``schema`` stays the plain dict (so it can be extended and introspected);
    calling the schema additionally requires ``bounce_s < min_pulse_width_s``.
    """

    def __call__(self, data: object) -> dict[str, Any]:
        validate = cast("Callable[[object], dict[str, Any]]", super().__call__)
        result = validate(data)
        bounce, width = result.get("bounce_s"), result.get("min_pulse_width_s")
        if bounce is not None and width is not None and not bounce < width:
            error = vol.Invalid(
                f"value must be shorter than min_pulse_width_s ({width} s)",
                path=["bounce_s"],
            )
            raise vol.MultipleInvalid([error])
        return result


PULSE_INPUT_SCHEMA: Final[vol.Schema] = _PulseInputSchema(
    {
        vol.Optional("name", default=DEFAULT_NAME): _name,
        vol.Optional("unit", default=""): _unit,
        vol.Optional("scale", default=1.0): vol.All(
            _number,
            vol.Range(
                min=PULSE_SCALE_MIN,
                max=PULSE_SCALE_MAX,
                msg=f"value must be from {PULSE_SCALE_MIN:g} to {PULSE_SCALE_MAX:g}",
            ),
        ),
        vol.Optional("min_pulse_width_s", default=DEFAULT_MIN_PULSE_WIDTH_S): vol.All(
            _number, vol.Range(min=0.001, max=1.0, msg="value must be between 0.001 and 1 s")
        ),
        vol.Optional("max_rate_hz", default=DEFAULT_MAX_RATE_HZ): vol.All(
            _number,
            vol.Range(
                min=0,
                max=100.0,
                min_included=False,
                msg="value must be greater than 0 and at most 100 Hz",
            ),
        ),
        vol.Optional("bounce_s", default=DEFAULT_BOUNCE_S): vol.All(
            _number,
            vol.Range(
                min=0,
                max=0.05,
                max_included=False,
                msg="value must be at least 0 and less than 0.05 s",
            ),
        ),
    }
)
"""The settings of one pulse input, with defaults and ranges.

Keys: ``name`` (non-empty, at most 32 characters), ``unit`` (at most 16),
``scale`` (units per pulse, from 1e-6 to 1e6), ``min_pulse_width_s`` (0.001 to 1),
``max_rate_hz`` (above 0, at most 100) and ``bounce_s`` (0 up to but excluding
0.05, and below ``min_pulse_width_s``).  Numbers must be int or float (not bool
or text); they come out as float.
"""


def _validated(data: object) -> dict[str, Any]:
    """Run :data:`PULSE_INPUT_SCHEMA`; ConfigError with every wrong field, its
    path from the input on (``("scale",)``)."""
    return cast("dict[str, Any]", validate(PULSE_INPUT_SCHEMA, data))


@dataclass(frozen=True, slots=True)
class PulseInputConfig:
    """The settings of one pulse input; always valid (checked on creation).

    ``scale`` is the quantity per pulse, in ``unit``; ``name`` labels the input.
    The timing limits are those described in the module documentation.
    Invalid values raise :class:`ConfigError` naming every wrong field, its
    path from the input on (``("scale",)``).
    """

    name: str = DEFAULT_NAME
    unit: str = ""
    scale: float = 1.0
    min_pulse_width_s: float = DEFAULT_MIN_PULSE_WIDTH_S
    max_rate_hz: float = DEFAULT_MAX_RATE_HZ
    bounce_s: float = DEFAULT_BOUNCE_S

    def __post_init__(self) -> None:
        """Validate the fields and store numbers as float."""
        validated = _validated({field.name: getattr(self, field.name) for field in fields(self)})
        for key, value in validated.items():
            object.__setattr__(self, key, value)


def pulse_input_config(data: Mapping[str, object]) -> PulseInputConfig:
    """Validate ``data`` with :data:`PULSE_INPUT_SCHEMA` and return the configuration.

    Missing keys take their defaults.  Raises :class:`ConfigError` naming every
    wrong field, its path from the input on (``scale: value must be greater
    than 0``); :func:`~s8000_engine.config.meter.meter_config` places it
    (``pulse_inputs[1].scale``).
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a pulse input must be a mapping, not {type(data).__name__}")
    return PulseInputConfig(**_validated(dict(data)))
