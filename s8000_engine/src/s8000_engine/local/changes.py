"""The one way a meter's configuration changes, whoever changes it.

A change comes from the web page's settings form, from the front panel
("Reset factory default IP"), from a Modbus write of a configuration register
or from the command line (``s8000-engine run --config``/``--replace-config``).
Every one goes through :meth:`LocalMeter.apply_change
<s8000_engine.local.meter.LocalMeter.apply_change>`, in the meter's thread,
between two metered seconds, and takes the same steps:

1. :func:`resolve` turns it into the new raw configuration and recording
   interval, checked by the configuration's own validators
   (:func:`~s8000_engine.config.settings.apply_changes`,
   :func:`~s8000_engine.config.meter.meter_config`).  A wrong value raises
   :class:`~s8000_engine.exceptions.ConfigError` naming each wrong field and
   changes nothing: the web page shows the message at the field, a Modbus
   write is answered with exception 03 (ILLEGAL DATA VALUE) because of that
   very error, the command line prints it;
2. what changed is described, one line per field
   (:func:`~s8000_engine.config.settings.differences`), never a secret's value;
3. the configuration, the recording interval and the change-log entry with
   the change's :class:`Origin` are stored in one transaction;
4. the running meter takes the new configuration, every register kept.

A Modbus write reaches this path as the configuration tool's change of the
same fields (:func:`register_change`): ``s8000.Pt3CT`` is
``{"points": {"2": {"ct_primary": ...}}}``.  The meter clock (``s8000.UTC``)
and the commands (``s8000.Cmd``: reset peak demand, send) are not
configuration: they take the backend's command queue, not this path.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from s8000_engine.config.meter import MeterConfig, meter_config
from s8000_engine.config.settings import apply_changes
from s8000_engine.modbus.backend import Write
from s8000_engine.protocol.regmap import RegisterMap
from s8000_engine.protocol.sunspec import DemandKind
from s8000_engine.storage.store import ConfigChange


class Origin(StrEnum):
    """Where a change came from, as the change log records it."""

    WEB = "web"
    """The web page's settings form."""
    PANEL = "panel"
    """The meter's front panel (the web page's or ``s8000-engine panel``)."""
    MODBUS = "modbus"
    """A Modbus write of a configuration register."""
    CLI = "cli"
    """The command line: ``s8000-engine run --config``/``--replace-config``."""


@dataclass(frozen=True, slots=True)
class Replacement:
    """A whole configuration in place of the stored one (the command line's);
    the recording interval stays."""

    raw: Mapping[str, Any]


type Change = Mapping[str, Any] | Replacement
"""The configuration tool's sections to change (see
:mod:`s8000_engine.config.settings`), or a whole configuration."""


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """What :meth:`LocalMeter.apply_change <s8000_engine.local.meter.LocalMeter.apply_change>`
    changed."""

    changes: tuple[str, ...] = ()
    """One human-readable line per change, as in the change log (no secret)."""
    fields: tuple[str, ...] = ()
    """The web-form paths of the changed fields (``points.8``: a point added
    or removed)."""
    registers_changed: bool = False
    """What the registers mean changed (service, PT ratio, CT primaries or
    phases, points): the interval in progress is flagged CONFIG_CHANGED."""
    map_changed: bool = False
    """The register map was rebuilt (other points or meter models)."""
    entry: ConfigChange | None = None
    """The change-log entry written (None when nothing changed)."""

    @property
    def changed(self) -> bool:
        """Whether anything changed."""
        return bool(self.fields)


def resolve(change: Change, raw: Mapping[str, Any], minutes: int) -> tuple[dict[str, Any], int]:
    """The raw configuration and recording interval after ``change`` to
    ``raw`` and ``minutes`` (neither is modified); ConfigError (a
    :class:`~s8000_engine.config.settings.SettingsError` for the form's
    changes) naming every wrong field."""
    if isinstance(change, Replacement):
        meter_config(change.raw)
        return copy.deepcopy(dict(change.raw)), minutes
    return apply_changes(raw, minutes, change)


#: Configuration registers and the configuration tool's field each one is.
_REPORT_REGISTERS: Final = {
    "RecInt": "recording_minutes",
    "DmdType": "demand_type",
    "DmdInt": "demand_interval_minutes",
    "DmdSub": "demand_subinterval_minutes",
}
_DEMAND_TYPES: Final = {DemandKind.BLOCK: "block", DemandKind.SLIDING: "sliding"}


def register_change(writes: Iterable[Write]) -> dict[str, Any]:
    """The configuration tool's change that Modbus writes of configuration
    registers make (those of one request: demand type, interval and
    subinterval are checked together).  A value the register cannot mean (a
    demand type other than 1 or 2) is passed on as it is, for the validators
    to refuse."""
    change: dict[str, Any] = {}
    for write in writes:
        name, value = write.name.removeprefix("s8000."), write.value
        if (field := _REPORT_REGISTERS.get(name)) is not None:
            if name == "DmdType":
                value = _DEMAND_TYPES.get(value, value)
            change.setdefault("report", {})[field] = value
        elif name in ("P1Scale", "P2Scale"):
            # A float32 arrives as the binary number nearest the decimal the
            # client meant (0.001 as 0.0010000000474974513): keep that decimal.
            scale = float(f"{float(value):.7g}")
            change.setdefault("pulses", {})[str(int(name[1]) - 1)] = {"scale": scale}
        elif name.startswith("Pt") and name.endswith("CT") and name[2:-2].isdigit():
            point = str(int(name[2:-2]) - 1)
            change.setdefault("points", {})[point] = {"ct_primary": value}
        else:
            raise ValueError(f"{write.name} is not a configuration register")
    return change


def needs_new_metering(old: MeterConfig, new: MeterConfig) -> bool:
    """Whether metering must be rebuilt for ``new`` (more than CT primaries,
    names, demand, pulse inputs, reporting or unit settings changed)."""
    return (
        old.service != new.service
        or old.frequency_hz != new.frequency_hz
        or old.nominal_voltage != new.nominal_voltage
        or old.pt_ratio != new.pt_ratio
        or old.calibration != new.calibration
        or [(p.phases, p.enabled) for p in old.points]
        != [(p.phases, p.enabled) for p in new.points]
    )


def layout(regmap: RegisterMap) -> tuple[Any, ...]:
    """What a register map's addresses mean (two maps with the same layout
    serve the same registers at the same addresses)."""
    return (
        regmap.profile,
        regmap.base,
        regmap.end,
        tuple((p.label, p.address, p.model.model_id, p.model.length) for p in regmap.chain),
        regmap.points,
    )


__all__ = [
    "Change",
    "ChangeResult",
    "Origin",
    "Replacement",
    "layout",
    "needs_new_metering",
    "register_change",
    "resolve",
]
