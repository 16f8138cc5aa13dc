"""A Modbus client for an S8000: identify a meter, read it, set its clock, send commands.

The client speaks to a meter through a :class:`modbus_connection.ModbusUnit`,
the unit handle Home Assistant's ``modbus.async_get_unit`` hands out, so an
integration shares Home Assistant's link (tmodbus) with every other device on
it.  Outside Home Assistant, :func:`connect_tcp` opens a link of its own with
either of modbus-connection's backends (``tmodbus`` or ``pymodbus``)::

    async with connect_tcp("192.0.2.10", backend="pymodbus") as client:
        identity = await client.identify()
        data = await client.read()
        print(identity.model, data.points[0].kwh_delivered)

and ``s8000-engine read HOST[:PORT]`` (:func:`read_command`) prints one
reading as a table or JSON.

Identification
--------------
:meth:`S8000Client.identify` walks the SunSpec chain from register 40000 with
modbus-connection's :func:`~modbus_connection.model.sunspec.scan`.  An S8000
has, in this order: the Common model (1) whose manufacturer is ``Leviton``
and whose model is an S8000 code (:data:`s8000_engine.models.MODELS`); one
meter model per meter point (201 single phase, 202 split phase, 203 wye, 204
delta); the S8000 vendor model (64800); the end model.  From the model ids
the client rebuilds the :class:`~s8000_engine.registers.RegisterMap` the
meter's own server is built from (:mod:`s8000_engine.registers` is the one
definition of the map), and checks that it puts every model exactly where
the scan found it.  Anything else is not an S8000
(:class:`S8000NotAnS8000`), or an S8000 whose map this version does not
know (:class:`S8000Error`).

Other maps
----------
The map is a profile (:mod:`s8000_engine.protocol.profile`, ``docs/profiles.md``):
``S8000Client(unit, profile=load_profile("my-meter.json"))`` reads a meter
whose registers are elsewhere.  A profile of fixed addresses (``registers``
layout) is identified by function 43 (Read Device Identification) or 17
(Report Server ID) and its serial-number register, then read block by block,
never across the gaps between them; every value is found by what it is (its
role), decoded in the profile's word order and sentinels, and converted to
the unit :class:`PointData` gives it in.  Writes go to the fields whose role
is the clock or the command.

Reading
-------
:meth:`S8000Client.read` reads the whole map, marker to end model, in blocks
of at most 125 registers — the most one Modbus read may carry — planned by
modbus-connection's read planner (a
:class:`~modbus_connection.model.ManualComponent` holding every field of the
map over one declared readable range).  The planner never cuts a value in
two, so a 64-bit energy register always comes from one answer, never half
from one second and half from the next; on the S8000 maps that costs no
extra read: 1 157 registers of an S8UTS-083 (eight wye points) take
``ceil(1157 / 125) = 10`` reads, as do all the catalogue's layouts.
:attr:`MeterData.transactions` says how many reads the poll took.

``read(Selection.of(meter=[...], points={n: [...]}))`` reads only the values
it names (the :class:`MeterData` and :class:`PointData` attribute names), in
the reads that cost least for the link: ``frame_cost`` is what one more
request costs in registers, :data:`FRAME_COST_TCP` for the fewest requests,
:data:`FRAME_COST_RTU` for the least time on an RS-485 line (a 24-point
meter's energies and power at 19,200 baud: under a second, against four for
the whole map).  It always reads what checks the meter: the Common model's
model and serial, the marker, the Common and vendor models' headers and the
end model.  The meter models' scale factors are static for a configuration
(``docs/registers.md``): they are read once and again only when what they
follow (service, PT ratio, nominal voltage, a point's CT, read every time)
changes.  A point rewired as another meter model of the same length moves
no register; only a full read (and an identification) sees that.

Every field is decoded through the map (``registers.decode``): SunSpec
scale factors applied, "not implemented" values as ``None``.  Then the poll
is checked before anything uses it:

* the marker, every model header (ID and length) and the end model are where
  the map says — else the meter was reconfigured, or another answers: the
  client identifies again and reads once more over the new map
  (:class:`S8000MapChanged` if it moved again meanwhile);
* the serial number and model are the identified meter's — else
  :class:`S8000WrongMeter` (another meter answers at this address);
* every scale factor is within −10…10 and no energy register is negative —
  else :class:`S8000BadData`.

Energy comes from the vendor model's registers — unsigned 64-bit mWh, the
meter's own full-resolution registers — not from the SunSpec ``acc32`` Wh
totals (those are in :attr:`MeterData.raw`).  Delivered is utility to load
(import), received is load to utility (export); W is positive importing, so
a solar point reads negative W by day.  Power factor is a fraction (−1…1),
not the percent SunSpec carries.

Interval memory
---------------
:meth:`S8000Client.read_intervals` reads the stored intervals with function
20 (Read File Record): one row of ``W = 6 + 16 N`` words per interval, at
the file and record :func:`~s8000_engine.registers.file_position` gives
(``docs/registers.md``), decoded by
:func:`~s8000_engine.registers.decode_row` into :class:`IntervalRow`.  It
reads the vendor model's ``IntLen``, ``IntOldest`` and ``IntNewest`` first,
so it only asks for rows the meter holds.  One answer carries at most 121
words, so a row of a 24-point meter (390 words) takes four requests; runs of
consecutive rows are read as one span, in 121-word requests across row
boundaries.  With ``step=3600`` it reads only the row ending on each hour —
all hourly statistics need — a quarter of the rows of a 15-minute meter.
(modbus-connection 4.12's pymodbus backend cannot read file records: it
gives pymodbus the length in words where pymodbus takes bytes; use tmodbus.)

Writing
-------
:meth:`~S8000Client.set_clock` writes the vendor model's ``UTC`` register,
:meth:`~S8000Client.reset_peak_demand` and :meth:`~S8000Client.send_now`
write its ``Cmd`` register (:class:`~s8000_engine.registers.Command`); all
with function 16 (Write Multiple Registers), which SunSpec requires of every
device.  The addresses come from the map.

One meter per client
--------------------
A client is for one meter: the serial number it is given
(``S8000Client(unit, serial=...)``, what an integration knows from its
configuration), or else the first meter it identifies.  Every identification
compares before it adopts anything, and a write or an interval read first
checks the serial number that answers; another meter is
:class:`S8000WrongMeter`, whose ``expected`` and ``found`` name both.  To talk
to the other meter, make another client.

Errors
------
Everything the client raises is an :class:`S8000Error`.  Failures of the
link — connection refused or lost, no answer in time, a Modbus exception
response (e.g. a write the meter refuses) — are :class:`S8000ConnectionError`
with a one-line message naming what failed; the modbus-connection exception
is its ``__cause__``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from modbus_connection import (
    ExceptionCode,
    IllegalDataAddressError,
    IllegalFunctionError,
    ModbusConnection,
    ModbusConnectionError,
    ModbusError,
    ModbusExceptionError,
    ModbusTcpParams,
    ModbusTimeoutError,
    ModbusUnit,
)
from modbus_connection.model import ManualComponent, RawField
from modbus_connection.model.sunspec import SunSpecError, SunSpecModel, scan

from s8000_engine.client.data import (
    Identity,
    IntervalMemory,
    MeterData,
    PointData,
    PulseData,
    Selection,
)
from s8000_engine.exceptions import (
    S8000BadData,
    S8000ConnectionError,
    S8000Error,
    S8000MapChanged,
    S8000NotAnS8000,
    S8000WrongMeter,
)
from s8000_engine.models import MODELS
from s8000_engine.protocol.intervals import (
    IntervalRow,
    decode_row,
    file_position,
    row_words,
    rows_per_file,
)
from s8000_engine.protocol.profile import (
    Profile,
    builtin_profile,
)
from s8000_engine.protocol.regmap import (
    Field,
    RegisterMap,
    meter_model_id,
    registers_map,
    sunspec_map,
)
from s8000_engine.protocol.sunspec import (
    PHASES,
    SUNSPEC_MARKER,
    Command,
    DataType,
    Model,
    Service,
    Status,
    decode,
)

#: The most registers one Modbus read (function 03) may carry.
MAX_READ: Final = 125
#: The most words one Read File Record (function 20) answer may carry.
MAX_FILE_READ: Final = 121
#: The range SunSpec allows a scale factor.
SF_RANGE: Final = (-10, 10)
#: The modbus-connection backends :func:`connect_tcp` can use.
BACKENDS: Final = ("tmodbus", "pymodbus")
#: What one more request costs the planner of a :class:`Selection`'s reads,
#: in registers: it reads the registers between two wanted values when that
#: costs less than asking again.  Over TCP a request is a round trip and the
#: bytes cost next to nothing, so it reads across any gap: the fewest requests.
FRAME_COST_TCP: Final = MAX_READ
#: Over RS-485 a request costs its own 8 bytes, the answer's 5 bytes of
#: address, function, count and CRC, and two t3.5 silences of 3.5 characters
#: each: 20 characters, the time of 10 registers.
FRAME_COST_RTU: Final = 10

type BackendName = Literal["tmodbus", "pymodbus"]

_LINES: Final = ("AB", "BC", "CA")
_END_MODEL_ID: Final = 0xFFFF
#: The units of energy registers, which are never negative.
_ENERGY_UNITS: Final = frozenset({"Wh", "kWh", "MWh", "varh", "kvarh", "Mvarh", "VAh", "kVAh"})

#: The roles (:mod:`s8000_engine.protocol.profile`) that hold each value of
#: a point, in the order of the result's dict for the per-phase ones.
_POINT_VALUES: Final[dict[str, tuple[str, ...]]] = {
    "kwh_delivered": ("kwh_delivered",),
    "kwh_received": ("kwh_received",),
    "kvarh_delivered": ("kvarh_delivered",),
    "kvarh_received": ("kvarh_received",),
    "w": ("w",),
    "var": ("var",),
    "va": ("va",),
    "pf": ("pf",),
    "a": ("current",),
    "phase_w": tuple(f"w_{p.lower()}" for p in PHASES),
    "phase_a": tuple(f"current_{p.lower()}" for p in PHASES),
    "demand_w": ("demand_w",),
    "peak_demand_w": ("peak_demand_w",),
    "peak_demand_time": ("peak_demand_time",),
    "ct_primary_a": ("ct_primary_a",),
}
#: The roles that hold each value of the meter (the voltages and the
#: frequency, where a profile keeps them per point, are the first point's).
_METER_VALUES: Final[dict[str, tuple[str, ...]]] = {
    "utc": ("utc",),
    "status": ("status",),
    "voltage": tuple(f"voltage_{p.lower()}" for p in PHASES),
    "line_voltage": tuple(f"line_voltage_{p.lower()}" for p in _LINES),
    "frequency": ("frequency",),
    "pulses": tuple(
        f"pulse{n}_{what}" for n in (1, 2) for what in ("count", "errors", "scale", "value")
    ),
    "intervals": ("interval_length", "interval_count", "interval_oldest", "interval_newest"),
}
#: Read with every selection: the meter's model and serial (another meter at
#: the address) and, on a SunSpec map, the marker, the Common and vendor
#: models' headers and the end model (a map that moved); on a map of fixed
#: addresses, the number of points.  And the configuration the scale factors
#: of SunSpec's meter models follow (docs/registers.md: static for a
#: configuration, from the service, the PT ratio, the nominal voltage and
#: each point's CT).
_ALWAYS_ROLES: Final = ("model", "serial", "service", "pt_ratio", "nominal_voltage")
_CONFIGURATION: Final = frozenset({"service", "pt_ratio", "nominal_voltage", "ct_primary_a"})


def _always(regmap: RegisterMap) -> list[str]:
    """The fields every read of ``regmap`` reads (see :data:`_ALWAYS_ROLES`)."""
    names: list[str] = []
    if regmap.layout == "sunspec":
        vendor = regmap.chain[-1].label
        names += ["SunS", "common.ID", "common.L", f"{vendor}.ID", f"{vendor}.L", "end.ID", "end.L"]
    roles = (*_ALWAYS_ROLES, "points") if regmap.layout != "sunspec" else _ALWAYS_ROLES
    names += (f.name for role in roles if (f := regmap.role(role)) is not None)
    return names


@dataclass(frozen=True, slots=True)
class _Plan:
    """The reads of one selection: the blocks, the fields decoded from them,
    the scale factors among them, and the configuration the scales follow."""

    reader: ManualComponent
    fields: tuple[Field, ...]
    scales: tuple[str, ...]
    basis: tuple[str, ...]


# -- the client --------------------------------------------------------------------------


def _connection_error(what: str, err: BaseException) -> S8000ConnectionError:
    """One clear line for a failure of the link."""
    if isinstance(err, ModbusExceptionError):
        code = err.exception_code
        label = f"{code:02d} {code.name}" if isinstance(code, ExceptionCode) else str(code)
        return S8000ConnectionError(
            f"{what}: the device answered with Modbus exception {label} ({err})",
            exception_code=code,
        )
    if isinstance(err, ModbusTimeoutError | TimeoutError):
        return S8000ConnectionError(f"{what}: no answer in time ({err})")
    if isinstance(err, ModbusConnectionError | OSError):
        return S8000ConnectionError(f"{what}: the connection failed ({err})")
    return S8000ConnectionError(f"{what}: Modbus error ({err})")


@contextlib.contextmanager
def _link(what: str) -> Iterator[None]:
    """Turn modbus-connection's exceptions into :class:`S8000ConnectionError`."""
    try:
        yield
    except (ModbusError, OSError, TimeoutError) as err:
        raise _connection_error(what, err) from err


class _CountingUnit:
    """A unit that counts the register reads going through it."""

    def __init__(self, unit: ModbusUnit) -> None:
        self._unit = unit
        self.reads = 0

    async def read_holding_registers(self, address: int, count: int) -> list[int]:
        self.reads += 1
        return await self._unit.read_holding_registers(address, count)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._unit, name)


def _decode_block(model: Model, words: Sequence[int]) -> dict[str, Any]:
    """The points of a model that have a role, by role, from the words read at
    its header (as many as there are); unscaled."""
    values: dict[str, Any] = {}
    for p in model.points:
        if p.role is not None and p.offset + p.size <= len(words):
            values[p.role] = decode(p.type, words[p.offset : p.offset + p.size])
    return values


def _words(registers: Mapping[int, int], f: Field) -> list[int]:
    """A field's registers from those read (KeyError for one not read)."""
    return [registers[a] for a in range(f.address, f.address + f.size)]


def _service(code: str, value: Any) -> Service | None:
    """The service a meter reports, as its code (None when it reports none)."""
    try:
        return None if value is None else Service(value)
    except ValueError:
        raise S8000Error(f"{code}: unknown service code {value}") from None


def _identity(code: str, info: Mapping[str, Any], point_models: tuple[int, ...]) -> Identity:
    """Who the meter is, from what it says by role (``serial``, ``firmware``…)."""
    catalogue = MODELS[code]
    if info.get("elements") not in (None, catalogue.elements):
        raise S8000Error(
            f"{code}: {info.get('elements')} elements per point, the model has {catalogue.elements}"
        )
    serial = info.get("serial")
    if not serial:
        raise S8000Error(f"{code}: the meter reports no serial number")
    return Identity(
        manufacturer=info["manufacturer"],
        model=code,
        serial=serial,
        firmware=info.get("firmware") or "",
        firmware_build=info.get("firmware_build"),
        mac=info.get("mac"),
        points=len(point_models),
        elements=catalogue.elements,
        service=_service(code, info.get("service")),
        options=info.get("options"),
        point_models=point_models,
        device_address=info.get("device_address"),
    )


def _ranges(fields: Sequence[Field]) -> tuple[tuple[int, int], ...]:
    """The readable ranges (first, last register) of a map: its fields' spans,
    touching ones joined.  A SunSpec map is one range, marker to end model; a
    map of fixed addresses is never read across the gaps between its blocks,
    which a real meter may refuse (exception 02)."""
    ranges: list[list[int]] = []
    for f in sorted(fields, key=lambda f: f.address):
        if ranges and f.address <= ranges[-1][1] + 1:
            ranges[-1][1] = max(ranges[-1][1], f.address + f.size - 1)
        else:
            ranges.append([f.address, f.address + f.size - 1])
    return tuple((first, last) for first, last in ranges)


def _scaled(value: int | float, sf: int) -> int | float:
    """``value × 10^sf``, dividing by an exact power of ten for negative ``sf``."""
    return value * int(10**sf) if sf >= 0 else value / int(10 ** (-sf))


class S8000Client:
    """One S8000 behind a modbus-connection unit.

    The client is cheap; the link belongs to whoever made the unit.  Calls
    may overlap: the unit's connection serialises the requests."""

    # What reads of a Selection keep (reset with every map, in _use):
    #: The plans of the selections asked for, by (selection, frame cost,
    #: how many scale factors the client knows: a plan reads those it lacks).
    _plans: dict[tuple[Selection, int, int], _Plan]
    #: The meter models' scale factors last read, and the configuration
    #: registers they follow as they were then.
    _scales: dict[str, Any]
    _basis: dict[str, Any]

    def __init__(
        self,
        unit: ModbusUnit,
        *,
        base: int | None = None,
        serial: str | None = None,
        profile: Profile | None = None,
    ) -> None:
        self.unit = unit
        # The map the meter is read by: this project's SunSpec map unless the
        # caller knows the meter keeps another (a profile file).
        self.profile = profile or builtin_profile()
        sunspec = self.profile.sunspec
        self.base = base if base is not None else (sunspec.base if sunspec else 0)
        # The one meter this client is for: the serial number it is given (a
        # config entry's), or else the first meter it identifies.  Nothing
        # the client does afterwards adopts another meter's identity, map or
        # registers, so whatever answers at the address later (a reused DHCP
        # lease, a rewired bus) is refused until this meter answers again.
        self._serial = serial
        self._identity: Identity | None = None
        self._regmap: RegisterMap | None = None
        self._fields: list[Field] = []
        self._layouts: tuple[_PointLayout, ...] = ()
        self._reader: ManualComponent | None = None
        self._counter = _CountingUnit(unit)
        self._lock = asyncio.Lock()

    @property
    def identity(self) -> Identity | None:
        """The identified meter, or None before :meth:`identify`."""
        return self._identity

    @property
    def requests(self) -> int:
        """How many register reads :meth:`read` has sent, answered or not: what
        the meter's polls cost the link."""
        return self._counter.reads

    @property
    def serial(self) -> str | None:
        """The serial number of the meter this client is for: the one it was
        given, or the first it identified; None before either."""
        return self._serial

    @property
    def regmap(self) -> RegisterMap | None:
        """The identified meter's register map, or None before :meth:`identify`."""
        return self._regmap

    # -- identification -------------------------------------------------------------

    async def identify(self) -> Identity:
        """Scan the SunSpec chain, check it is an S8000, and rebuild its register map.

        Raises :class:`S8000NotAnS8000` for another device,
        :class:`S8000WrongMeter` for an S8000 other than the one this client is
        for (:attr:`serial`; its identity and map are kept), :class:`S8000Error`
        for an S8000 map this client cannot follow, :class:`S8000ConnectionError`
        when the link fails."""
        async with self._lock:
            return await self._identify()

    async def _identify(self) -> Identity:
        if self.profile.layout == "sunspec":
            regmap, identity = await self._identify_sunspec()
        else:
            regmap, identity = await self._identify_registers()
        # Compared before anything is adopted: another meter's identity or map
        # kept here would let its registers pass the checks of every read.
        known = self._identity
        if (self._serial is not None and identity.serial != self._serial) or (
            known is not None and identity.model != known.model
        ):
            raise S8000WrongMeter(
                self._serial or identity.serial, f"{identity.model} serial {identity.serial}"
            )
        self._use(regmap)
        self._identity = identity
        self._serial = identity.serial
        return identity

    async def _identify_sunspec(self) -> tuple[RegisterMap, Identity]:
        """The SunSpec chain scanned, checked against the profile, its map rebuilt."""
        models = self.profile.sunspec
        assert models is not None
        with _link("identify: SunSpec scan"):
            try:
                found = await scan(self.unit, self.base)
            except SunSpecError as err:
                raise S8000NotAnS8000(f"not a SunSpec device: {err}") from err
            except (IllegalDataAddressError, IllegalFunctionError) as err:
                raise S8000NotAnS8000(
                    f"not a SunSpec device: register {self.base} is not served ({err})"
                ) from err
        chain = found.chain
        ids = [m.model_id for m in chain]
        if not chain or ids[0] != models.common.model_id:
            raise S8000NotAnS8000(f"the SunSpec chain does not start with model 1: {ids}")
        common = chain[0]
        with _link("identify: Common model"):
            words = await self.unit.read_holding_registers(
                common.address, min(common.span, MAX_READ)
            )
        info = _decode_block(models.common, words)
        manufacturer, code = info.get("manufacturer"), info.get("model")
        code = self._check_maker(manufacturer, code)
        meter_ids = ids[1:-1]
        known = dict(models.meter_names)
        if (
            len(ids) < 3
            or ids[-1] != models.vendor_id
            or not meter_ids
            or any(i not in known for i in meter_ids)
        ):
            raise S8000NotAnS8000(
                f"{code}: the SunSpec chain is not model 1, meter models 201–204 and "
                f"vendor model {models.vendor_id}: {ids}"
            )
        catalogue = MODELS[code]
        if len(meter_ids) > catalogue.points:
            raise S8000Error(
                f"{code} has {catalogue.points} meter points, the chain has {len(meter_ids)}"
            )
        regmap = sunspec_map(ids, self.base, self.profile)
        _check_layout(regmap, chain)
        vendor = regmap.chain[-1]
        with _link("identify: vendor model"):
            words = await self.unit.read_holding_registers(
                vendor.address, min(vendor.model.length + 2, MAX_READ)
            )
        fixed = _decode_block(vendor.model, words)
        if fixed.get("points") != len(meter_ids):
            raise S8000Error(
                f"{code}: the vendor model counts {fixed.get('points')} points, "
                f"the chain has {len(meter_ids)} meter models"
            )
        return regmap, _identity(code, {**info, **fixed}, tuple(meter_ids))

    async def _identify_registers(self) -> tuple[RegisterMap, Identity]:
        """A meter of fixed addresses: who it is by function 43 or 17 (or its
        registers), then its meter block, then its map for its points."""
        profile = self.profile
        info: dict[str, Any] = {}
        if profile.identify == 43:
            with _link("identify: Read Device Identification (43/14)"):
                objects = await self.unit.read_device_identification()
            for number, role in ((0, "manufacturer"), (1, "model"), (2, "firmware")):
                if number in objects:
                    info[role] = objects[number].decode("ascii", "replace").strip() or None
        elif profile.identify == 17:
            with _link("identify: Report Server ID (17)"):
                text = (await self.unit.report_server_id()).decode("ascii", "replace")
            # The text's layout is the device's own (Leviton's Series 4000 puts
            # an id byte and a run indicator first): the model code is found in it.
            info["model"] = next((code for code in MODELS if code in text), None)
            info["manufacturer"] = profile.manufacturer if info["model"] else None
        # The meter's own block: its serial (always), and whatever else it holds.
        probe = registers_map(profile, 1)
        meter_fields = [f for f in probe.fields if f.point is None]
        registers = await self._read_spans(
            [(f.address, f.size) for f in meter_fields], "identify: the meter's registers"
        )
        block = {f.role: f.decode(_words(registers, f)) for f in meter_fields if f.role is not None}
        info = {**block, **{k: v for k, v in info.items() if v is not None}}
        info.setdefault("manufacturer", profile.manufacturer)
        code = self._check_maker(info["manufacturer"], info.get("model"))
        catalogue = MODELS[code]
        points = info.get("points") or catalogue.points
        if not 1 <= points <= catalogue.points:
            raise S8000Error(f"{code} has {catalogue.points} meter points, the meter says {points}")
        service = _service(code, info.get("service"))
        delta = service is Service.DELTA_3W
        point_models = (meter_model_id(delta=delta, elements=catalogue.elements),) * points
        return registers_map(profile, points, point_models), _identity(code, info, point_models)

    def _check_maker(self, manufacturer: Any, code: Any) -> str:
        """The manufacturer is the profile's and the model an S8000's: the model."""
        if manufacturer != self.profile.manufacturer:
            raise S8000NotAnS8000(
                f"the manufacturer is {manufacturer!r}, not {self.profile.manufacturer!r}"
            )
        if code not in MODELS:
            raise S8000NotAnS8000(f"{code!r} is not an S8000 model")
        return cast("str", code)

    async def _read_spans(self, spans: Sequence[tuple[int, int]], what: str) -> dict[int, int]:
        """The registers of ``spans`` (address, count), in the fewest reads."""
        registers: dict[int, int] = {}
        for start, count in _blocks(spans, FRAME_COST_TCP):
            with _link(what):
                words = await self.unit.read_holding_registers(start, count)
            registers.update(zip(range(start, start + count), words, strict=False))
        return registers

    async def _identified(self) -> tuple[RegisterMap, Identity]:
        """The map and identity, identifying the meter first if there are none
        (the lock held)."""
        if self._regmap is None or self._identity is None:
            await self._identify()
        assert self._regmap is not None
        assert self._identity is not None
        return self._regmap, self._identity

    async def _read_roles(self, regmap: RegisterMap, roles: Sequence[str], what: str) -> list[Any]:
        """The meter's fields of ``roles``, decoded and unscaled (None for a role
        the map lacks), read in one request over the span that holds them all."""
        wanted = [regmap.role(role) for role in roles]
        present = [f for f in wanted if f is not None]
        if not present:
            return [None] * len(roles)
        first = min(f.address for f in present)
        count = max(f.address + f.size for f in present) - first
        with _link(what):
            words = await self.unit.read_holding_registers(first, count)
        return [
            None if f is None else f.decode(words[f.address - first : f.address - first + f.size])
            for f in wanted
        ]

    def _use(self, regmap: RegisterMap) -> None:
        """Plan the reads of a map: every field, over its readable ranges."""
        self._regmap = regmap
        self._fields = regmap.fields
        self._layouts = _point_layouts(regmap)
        reader = ManualComponent(
            cast("ModbusUnit", self._counter),
            max_span=MAX_READ,
            holding_ranges=_ranges(self._fields),
        )
        for f in self._fields:
            reader.add(f.name, RawField(f.address, count=f.size))
        self._reader = reader
        self._plans, self._scales, self._basis = {}, {}, {}

    def _check_places(
        self, regmap: RegisterMap, registers: Mapping[int, int], *, full: bool
    ) -> None:
        """:func:`_check_places` (every model when ``full``, else the Common and
        vendor models), forgetting the map when it is not where it was (the
        next read identifies the meter again)."""
        try:
            _check_places(regmap, registers, full=full)
        except S8000MapChanged:
            self._forget()
            raise

    def _forget(self) -> None:
        self._regmap = None
        self._reader = None
        self._fields = []

    # -- reading ----------------------------------------------------------------------

    async def read(
        self, fields: Selection | None = None, *, frame_cost: int = FRAME_COST_TCP
    ) -> MeterData:
        """Read and check the whole map, or only the values of ``fields``.

        A :class:`Selection` reads what it names and what checks the meter
        (see *Reading* above), in the reads that cost least when one more
        request costs ``frame_cost`` registers (:data:`FRAME_COST_TCP`, the
        fewest requests; :data:`FRAME_COST_RTU`, the least time on an RS-485
        line); a value not selected is None.

        Identifies the meter first when the client has no map (before the
        first read), and again when the map is not where it was (the meter
        was reconfigured, or another answers): then the read is made once
        more over the new map, and :class:`S8000MapChanged` is raised only if
        it moved again in between.  Another meter than this client's is
        :class:`S8000WrongMeter`."""
        async with self._lock:
            try:
                return await self._read_once(fields, frame_cost)
            except S8000MapChanged:
                return await self._read_once(fields, frame_cost)

    async def _read_once(self, fields: Selection | None, frame_cost: int) -> MeterData:
        if fields is None:
            return await self._read()
        return await self._read_selection(fields, frame_cost)

    async def _read(self) -> MeterData:
        """One read of the map (identifying first when there is none); the map
        is forgotten when it is not where it was."""
        if self._reader is None or self._regmap is None:
            await self._identify()
        reader, regmap, identity = self._reader, self._regmap, self._identity
        assert reader is not None
        assert regmap is not None
        assert identity is not None
        before = self._counter.reads
        with _link("read"):
            raw = await reader.async_read_raw(notify=False)
        transactions = self._counter.reads - before
        registers = raw.get("holding", {})
        self._check_places(regmap, registers, full=True)
        try:
            values = _decode_some(self._fields, registers, {})
        except KeyError as err:
            raise S8000Error(f"read: register {err} was not read") from None
        _check_same_meter(regmap, identity, values)
        return _meter_data(regmap, values, transactions, self._layouts)

    async def _read_selection(self, selection: Selection, frame_cost: int) -> MeterData:
        """One read of ``selection`` (identifying first when there is no map);
        the map is forgotten when it is not where it was."""
        regmap, identity = await self._identified()
        before = self._counter.reads
        while True:
            plan = self._plan(regmap, selection, frame_cost)
            with _link("read"):
                raw = await plan.reader.async_read_raw(notify=False)
            registers = raw.get("holding", {})
            self._check_places(regmap, registers, full=False)
            values = _decode_some(plan.fields, registers, self._scales)
            _check_same_meter(regmap, identity, values)
            basis = {name: values[name] for name in plan.basis}
            if plan.scales or all(self._basis.get(k, v) == v for k, v in basis.items()):
                break
            # The configuration the scale factors follow has changed since
            # they were read: they may have too.  Read them again.
            self._scales, self._basis = {}, {}
        if plan.scales:
            self._scales.update((name, values[name]) for name in plan.scales)
            self._basis.update(basis)
        return _meter_data(regmap, values, self._counter.reads - before, self._layouts)

    def _plan(self, regmap: RegisterMap, selection: Selection, frame_cost: int) -> _Plan:
        """The reads of ``selection``: its values' fields, their scale factors
        unless the client knows them, and what every selection reads."""
        key = (selection, frame_cost, len(self._scales))
        if (plan := self._plans.get(key)) is not None:
            return plan
        names: list[str] = _always(regmap)
        for meter_value in selection.meter:
            names += _role_names(regmap, _METER_VALUES[meter_value], None)
        for number, values in selection.points:
            if not 1 <= number <= regmap.points:
                continue  # the meter has no such point
            # What the point's scale factors follow.
            names += _role_names(regmap, ("ct_primary_a",), number)
            for value in values:
                names += _role_names(regmap, _POINT_VALUES[value], number)
        by_name = {f.name: f for f in self._fields}
        wanted = [by_name[name] for name in dict.fromkeys(names)]
        scales = sorted({f.scale for f in wanted if isinstance(f.scale, str)})
        read_scales = any(name not in self._scales for name in scales)
        if read_scales:
            wanted += (by_name[name] for name in scales)
        blocks = [
            block
            for first, last in _ranges(self._fields)
            for block in _blocks(
                [(f.address, f.size) for f in wanted if first <= f.address <= last], frame_cost
            )
        ]
        reader = ManualComponent(
            cast("ModbusUnit", self._counter),
            max_span=MAX_READ,
            holding_ranges=tuple((start, start + count - 1) for start, count in blocks),
        )
        for start, count in blocks:
            reader.add(f"@{start}", RawField(start, count=count))
        basis = tuple(f.name for f in wanted if f.role in _CONFIGURATION)
        plan = _Plan(reader, tuple(wanted), tuple(scales) if read_scales else (), basis)
        self._plans[key] = plan
        return plan

    # -- the interval memory -------------------------------------------------------------

    async def read_intervals(
        self,
        start: float,
        end: float,
        *,
        step: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[IntervalRow]:
        """The stored intervals whose start is in [``start``, ``end``), oldest first.

        The meter's current recording length and its oldest and newest stored
        interval are read first (the vendor model's ``IntLen``, ``IntOldest``,
        ``IntNewest``); the range is clipped to them, so a range outside the
        memory costs no row read.  With ``step`` (seconds, a multiple of the
        recording length, e.g. 3600) only the rows whose *end* is a multiple of
        ``step`` are read: the row starting at ``hour_end − length`` for every
        hour, all that hourly statistics need.  Rows the meter does not hold
        (empty, or another interval — one of another length, or the memory has
        moved on) are left out.  ``progress(done, total)`` is called after
        every row asked for.

        Identifies the meter first when the client has no map.  The client's
        lock is held for the pointers and then for one request at a time, so a
        long read lets :meth:`read` in between.  Raises ValueError for a
        ``step`` that is not a positive multiple of the length,
        :class:`S8000ConnectionError` when the link fails or the meter refuses
        a request, :class:`S8000Error` when its rows are not laid out as this
        client expects."""
        if step is not None and step <= 0:
            raise ValueError(f"step: {step} is not a positive number of seconds")
        async with self._lock:
            regmap, identity = await self._identified()
            # Another meter of the same layout would hand over its records as
            # this one's: the serial is checked before the rows, and after.
            await self._confirm(regmap, identity, "read intervals")
            pointers = await self._interval_pointers(regmap)
        points = identity.points
        length, oldest, newest, width, per_file = pointers
        if length is None or oldest is None or newest is None or length <= 0:
            return []  # nothing stored, or no recording length
        if (width, per_file) != (row_words(points), rows_per_file(points)):
            raise S8000Error(
                f"the meter lays out its interval rows as {width} words, {per_file} per file; "
                f"this client expects {row_words(points)} and {rows_per_file(points)} for "
                f"{points} points"
            )
        if step is not None and step % length:
            raise ValueError(f"step: {step} s is not a multiple of the {length} s interval")
        starts = _interval_starts(max(start, oldest), min(end, newest + 1), length, step)
        rows: list[IntervalRow] = []
        done = 0
        for run in _runs(starts, length, points):
            async for expected, row in self._read_run(run, length, points):
                if row is not None and (row.start, row.length) == (expected, length):
                    rows.append(row)
                done += 1
                if progress is not None:
                    progress(done, len(starts))
        if rows:
            async with self._lock:
                await self._confirm(regmap, identity, "read intervals")
        return rows

    async def _confirm(self, regmap: RegisterMap, identity: Identity, what: str) -> None:
        """Check in one request that the meter answering is still ``identity``
        (its model and serial number): :class:`S8000WrongMeter` otherwise."""
        roles = ("model", "serial")
        read = await self._read_roles(regmap, roles, f"{what}: the meter's serial number")
        values = {
            f.name: value
            for role, value in zip(roles, read, strict=True)
            if (f := regmap.role(role)) is not None
        }
        _check_same_meter(regmap, identity, values)

    async def _interval_pointers(
        self, regmap: RegisterMap
    ) -> tuple[int | None, int | None, int | None, int | None, int | None]:
        """The interval memory's length, oldest, newest, row words and rows per
        file, read in one request (None for what the map lacks)."""
        length, oldest, newest, width, per_file = await self._read_roles(
            regmap,
            ("interval_length", "interval_oldest", "interval_newest", "interval_row_words",
             "interval_rows_per_file"),
            "read intervals: the interval-memory pointers",
        )  # fmt: skip
        return length, oldest, newest, width, per_file

    async def _read_run(
        self, run: Sequence[int], length: int, points: int
    ) -> AsyncIterator[tuple[int, IntervalRow | None]]:
        """Consecutive rows of one file as one span, in requests of at most 121
        words across row boundaries: each row's expected start and what it holds,
        as soon as its last word is in.  The lock is held for one request at a time."""
        width = row_words(points)
        file, record = file_position(run[0], length, points)
        total = width * len(run)
        pending: list[int] = []
        done = 0
        for offset in range(0, total, MAX_FILE_READ):
            count = min(MAX_FILE_READ, total - offset)
            what = f"read intervals: file {file}, record {record + offset}"
            async with self._lock:
                with _link(what):
                    answer = await self.unit.read_file_record(file, record + offset, count)
            if len(answer) != count:
                raise S8000ConnectionError(f"{what}: {len(answer)} words answered, {count} asked")
            pending += answer
            while len(pending) >= width:
                yield run[done], decode_row(pending[:width], points)
                del pending[:width]
                done += 1

    # -- writing ----------------------------------------------------------------------

    async def set_clock(self, utc: float) -> None:
        """Set the meter clock to ``utc`` (seconds since 1970)."""
        await self._write("utc", round(utc))

    async def reset_peak_demand(self) -> None:
        """Reset every point's peak demand."""
        await self._write("command", Command.RESET_PEAK_DEMAND)

    async def send_now(self) -> None:
        """Report the interval memory to the configured host now ("Send")."""
        await self._write("command", Command.SEND_DATA)

    async def _write(self, role: str, value: int) -> None:
        async with self._lock:
            regmap, identity = await self._identified()
            f = regmap.role(role)
            if f is None or f.access != "RW":
                raise S8000Error(f"the meter's map ({regmap.profile}) has no writable {role}")
            if (
                f.minimum is not None
                and f.maximum is not None
                and not f.minimum <= value <= f.maximum
            ):
                raise ValueError(f"{f.name}: {value} is outside {f.minimum:g}–{f.maximum:g}")
            # A command meant for this meter must not reach another one that
            # took its address since the last read.
            await self._confirm(regmap, identity, f"write {f.name}")
            with _link(f"write {f.name}"):
                await self.unit.write_registers(f.address, f.encode(value))


def _interval_starts(low: float, high: float, length: int, step: int | None) -> list[int]:
    """Starts of the intervals of ``length`` s starting in [low, high) (only those
    ending on a multiple of ``step`` when it is given)."""
    if not low < high:
        return []
    if step is None:
        first = math.ceil(low / length) * length
        return list(range(first, math.ceil(high), length))
    first_end = math.ceil((low + length) / step) * step
    return [e - length for e in range(first_end, math.ceil(high + length), step)]


def _runs(starts: Sequence[int], length: int, points: int) -> list[list[int]]:
    """``starts`` cut into runs of consecutive rows of one file: each run one span."""
    per_file = rows_per_file(points)
    runs: list[list[int]] = []
    for start in starts:
        if runs and start - runs[-1][-1] == length and (start // length) % per_file:
            runs[-1].append(start)
        else:
            runs.append([start])
    return runs


def _check_layout(regmap: RegisterMap, scanned: list[SunSpecModel]) -> None:
    """The rebuilt map puts every model where the scan found it."""
    if len(regmap.chain) != len(scanned):
        raise S8000Error(f"the map has {len(regmap.chain)} models, the scan {len(scanned)}")
    for placed, found in zip(regmap.chain, scanned, strict=True):
        if (placed.model.model_id, placed.address, placed.model.length) != (
            found.model_id,
            found.address,
            found.length,
        ):
            raise S8000Error(
                f"model {found.model_id} at {found.address} (length {found.length}) is not "
                f"where this client's map puts {placed.label}: model {placed.model.model_id} "
                f"at {placed.address} (length {placed.model.length}); a firmware with "
                "another map?"
            )
    last = scanned[-1]
    if last.address + last.span != regmap.end - 2:
        raise S8000Error(f"the end model is at {last.address + last.span}, not {regmap.end - 2}")


def _check_same_meter(regmap: RegisterMap, identity: Identity, values: Mapping[str, Any]) -> None:
    """The model and serial number read (``values`` by field name) are
    ``identity``'s; S8000WrongMeter otherwise.  A map that keeps no model (the
    meter says it by function 43 or 17) is checked by its serial alone."""
    serial = _raw(regmap, values, "serial")
    code = _raw(regmap, values, "model") if regmap.role("model") else identity.model
    if serial != identity.serial or code != identity.model:
        raise S8000WrongMeter(identity.serial, f"{code} serial {serial}")


def _raw(
    regmap: RegisterMap, values: Mapping[str, Any], role: str, point: int | None = None
) -> Any:
    """The value read of the field holding ``role`` (None when there is none)."""
    f = regmap.role(role, point)
    return None if f is None else values.get(f.name)


def _role_names(regmap: RegisterMap, roles: Sequence[str], point: int | None) -> list[str]:
    """The names of the fields holding ``roles`` (those the map has)."""
    return [f.name for role in roles if (f := regmap.role(role, point)) is not None]


def _blocks(spans: Sequence[tuple[int, int]], frame_cost: int) -> list[tuple[int, int]]:
    """The reads (address, count) that cover every span (address, count)
    whole at the least cost: ``frame_cost`` per read plus the registers it
    carries, at most :data:`MAX_READ` each.  The spans in address order are
    cut into runs, each run one read; the cheapest cut is found by dynamic
    programming over where the last run starts."""
    ordered = sorted(set(spans))
    best = [0.0] + [math.inf] * len(ordered)
    start_of = [0] * (len(ordered) + 1)
    for j in range(1, len(ordered) + 1):
        end = 0
        for i in range(j - 1, -1, -1):
            end = max(end, ordered[i][0] + ordered[i][1])
            if end - ordered[i][0] > MAX_READ:
                break
            cost = best[i] + frame_cost + end - ordered[i][0]
            if cost < best[j]:
                best[j], start_of[j] = cost, i
    blocks: list[tuple[int, int]] = []
    j = len(ordered)
    while j:
        i = start_of[j]
        first = ordered[i][0]
        blocks.append((first, max(a + n for a, n in ordered[i:j]) - first))
        j = i
    return blocks[::-1]


def _check_places(regmap: RegisterMap, registers: Mapping[int, int], *, full: bool) -> None:
    """The map is where it was, in the registers read.

    On a SunSpec map: the marker, the model headers (ID and L) and the end
    model.  A full read checks every model.  A partial one checks the Common
    and vendor models: every SunSpec meter model (201–204) is 105 registers
    long, so a point added or removed moves the vendor model and the end
    model; a point rewired as another meter model moves nothing (its values
    keep their addresses), and only a full read, or the identity check of
    whoever keeps the client, sees that.

    On a map of fixed addresses: the number of points, where the profile
    keeps it (the points' blocks are where they are for any number)."""

    def at(address: int, count: int) -> tuple[int | None, ...]:
        return tuple(registers.get(a) for a in range(address, address + count))

    if regmap.layout != "sunspec":
        f = regmap.role("points")
        if f is not None and (words := at(f.address, f.size)) and None not in words:
            points = f.decode(cast("list[int]", list(words)))
            if points != regmap.points:
                raise S8000MapChanged(f"the meter has {points} points now, not {regmap.points}")
        return
    if at(regmap.base, 2) != SUNSPEC_MARKER:
        raise S8000MapChanged(f"no SunSpec marker at {regmap.base} any more")
    models = regmap.chain if full else (regmap.chain[0], regmap.chain[-1])
    for placed in models:
        expected = (placed.model.model_id, placed.model.length)
        if at(placed.address, 2) != expected:
            raise S8000MapChanged(
                f"{placed.label}: model header at {placed.address} is {at(placed.address, 2)}, "
                f"not {expected}"
            )
    if at(regmap.end - 2, 2) != (_END_MODEL_ID, 0):
        raise S8000MapChanged(f"no end model at {regmap.end - 2} any more")


def _decode_some(
    fields: Sequence[Field], registers: Mapping[int, int], scales: Mapping[str, Any]
) -> dict[str, Any]:
    """``fields`` by name, from the registers read: decoded, scaled (by the
    scale factors read, else by those of ``scales``), checked."""
    decoded = {f.name: f.decode(_words(registers, f)) for f in fields}
    return _checked(fields, {**scales, **decoded})


def _checked(fields: Sequence[Field], decoded: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` scaled by the scale factors in ``decoded``, and checked."""
    for f in fields:
        value = decoded[f.name]
        if (
            f.type is DataType.SUNSSF
            and value is not None
            and not (SF_RANGE[0] <= value <= SF_RANGE[1])
        ):
            raise S8000BadData(f"{f.name} = {value}: a scale factor must be within −10…10")
    values: dict[str, Any] = {}
    for f in fields:
        value = decoded[f.name]
        if isinstance(value, int | float) and f.type not in (DataType.SUNSSF, DataType.PAD):
            sf = decoded.get(f.scale) if isinstance(f.scale, str) else f.scale
            if isinstance(f.scale, str) and sf is None:
                value = None  # scale factor not implemented: the value cannot be known
            elif isinstance(sf, int):
                value = _scaled(value, sf)
        if f.unit in _ENERGY_UNITS and value is not None and value < 0:
            raise S8000BadData(f"{f.name} = {value}: an energy register is never negative")
        values[f.name] = value
    return values


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


#: The numbers of a point (:class:`PointData`), the role holding each, and
#: whether it is a whole number.
_POINT_NUMBERS: Final = (
    ("kwh_delivered", "kwh_delivered", False),
    ("kwh_received", "kwh_received", False),
    ("kvarh_delivered", "kvarh_delivered", False),
    ("kvarh_received", "kvarh_received", False),
    ("w", "w", False),
    ("var", "var", False),
    ("va", "va", False),
    ("pf", "pf", False),
    ("a", "current", False),
    ("demand_w", "demand_w", False),
    ("peak_demand_w", "peak_demand_w", False),
    ("peak_demand_time", "peak_demand_time", False),
    ("ct_primary_a", "ct_primary_a", True),
)
#: The per-phase numbers of a point, and the roles' stem (``w_a``…).
_PHASE_NUMBERS: Final = (("phase_w", "w"), ("phase_a", "current"))

type _Reading = tuple[str, int, int] | None


@dataclass(frozen=True, slots=True)
class _PointLayout:
    """Where each number of one point is read from (worked out once per map:
    a poll of a 24-point meter makes some 500 of them)."""

    number: int
    model_id: int
    numbers: tuple[tuple[str, _Reading, bool], ...]
    phases: tuple[tuple[str, tuple[tuple[str, _Reading], ...]], ...]


def _point_layouts(regmap: RegisterMap) -> tuple[_PointLayout, ...]:
    models = regmap.models
    return tuple(
        _PointLayout(
            n,
            models[n - 1] if n <= len(models) else 0,
            tuple((attr, regmap.reading(role, n), whole) for attr, role, whole in _POINT_NUMBERS),
            tuple(
                (attr, tuple((p, regmap.reading(f"{stem}_{p.lower()}", n)) for p in PHASES))
                for attr, stem in _PHASE_NUMBERS
            ),
        )
        for n in range(1, regmap.points + 1)
    )


def _value(reading: _Reading, values: Mapping[str, Any]) -> Any:
    """A number read, in its role's unit (None when not read, or not in the map)."""
    if reading is None:
        return None
    name, multiply, divide = reading
    value = values.get(name)
    if value is None:
        return None
    if multiply != 1:
        value *= multiply
    return value / divide if divide != 1 else value


def _point_data(layout: _PointLayout, values: Mapping[str, Any]) -> PointData:
    numbers: dict[str, Any] = {}
    for attr, reading, whole in layout.numbers:
        value = _value(reading, values)
        numbers[attr] = None if value is None else int(value) if whole else float(value)
    for attr, phases in layout.phases:
        numbers[attr] = {
            p: float(v) for p, reading in phases if (v := _value(reading, values)) is not None
        }
    return PointData(number=layout.number, model_id=layout.model_id, **numbers)


def _meter_data(
    regmap: RegisterMap,
    values: dict[str, Any],
    transactions: int,
    layouts: Sequence[_PointLayout],
) -> MeterData:
    def meter(role: str) -> Any:
        return _value(regmap.reading(role), values)

    points = tuple(_point_data(layout, values) for layout in layouts)
    status = meter("status")
    return MeterData(
        utc=_number(meter("utc")),
        status=None if status is None else Status(status),
        voltage={p: _number(meter(f"voltage_{p.lower()}")) for p in PHASES},
        line_voltage={p: _number(meter(f"line_voltage_{p.lower()}")) for p in _LINES},
        frequency=_number(meter("frequency")),
        points=points,
        pulses=tuple(
            PulseData(
                number=n,
                count=_integer(meter(f"pulse{n}_count")),
                errors=_integer(meter(f"pulse{n}_errors")),
                scale=_number(meter(f"pulse{n}_scale")),
                value=_number(meter(f"pulse{n}_value")),
            )
            for n in (1, 2)
        ),
        intervals=IntervalMemory(
            length_s=_integer(meter("interval_length")),
            count=_integer(meter("interval_count")),
            oldest=_number(meter("interval_oldest")),
            newest=_number(meter("interval_newest")),
        ),
        transactions=transactions,
        raw=values,
    )


# -- a link of its own -------------------------------------------------------------------


def connection_class(backend: str) -> type[ModbusConnection]:
    """modbus-connection's connection class of a backend (``tmodbus`` or ``pymodbus``).

    Raises :class:`S8000Error` when the backend is not installed (each is an
    extra of modbus-connection), ValueError for another name."""
    if backend == "tmodbus":
        try:
            from modbus_connection.tmodbus import ModbusConnection as Tmodbus  # noqa: PLC0415
        except ImportError as err:
            raise S8000Error(
                f"the tmodbus backend is not installed ({err}); install modbus-connection[tmodbus]"
            ) from err
        return Tmodbus
    if backend == "pymodbus":
        try:
            from modbus_connection.pymodbus import ModbusConnection as Pymodbus  # noqa: PLC0415
        except ImportError as err:
            raise S8000Error(
                f"the pymodbus backend is not installed ({err}); "
                "install modbus-connection[pymodbus]"
            ) from err
        return Pymodbus
    raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")


@contextlib.asynccontextmanager
async def connect_tcp(
    host: str,
    port: int = 502,
    unit_id: int = 1,
    *,
    backend: BackendName = "tmodbus",
    timeout: float = 3.0,  # noqa: ASYNC109 (per request, given to the connection)
    profile: Profile | None = None,
) -> AsyncIterator[S8000Client]:
    """A Modbus TCP link of its own to an S8000, as a client; closed on exit.

    ``backend`` is the modbus-connection backend: ``tmodbus`` (what Home
    Assistant uses) or ``pymodbus``; ``profile`` the meter's register map
    (the built-in SunSpec one by default).  Connects before it yields:
    :class:`S8000ConnectionError` if it cannot."""
    if not 0 <= unit_id <= 255:
        raise ValueError(f"unit id {unit_id} is not 0–255")
    connection = connection_class(backend)(ModbusTcpParams(host=host, port=port), timeout=timeout)
    try:
        with _link(f"connect to {host}:{port}"):
            await connection.connect()
        yield S8000Client(connection.for_unit(unit_id), profile=profile)
    finally:
        with contextlib.suppress(ModbusError, OSError):
            await connection.close()
