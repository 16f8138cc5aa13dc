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
from s8000_engine.protocol.regmap import Field, Placed, RegisterMap, sunspec_map
from s8000_engine.protocol.sunspec import (
    BASE_ADDRESS,
    COMMON,
    MANUFACTURER,
    METER_MODELS,
    PHASES,
    SUNSPEC_MARKER,
    VENDOR_MODEL_ID,
    Command,
    DataType,
    Model,
    Service,
    Status,
    decode,
    encode,
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

#: Where each value of a point is: ``{m}`` is the point's meter model,
#: ``{n}`` its number in the vendor model.
_POINT_REGISTERS: Final[dict[str, tuple[str, ...]]] = {
    "kwh_delivered": ("s8000.Pt{n}WhImp",),
    "kwh_received": ("s8000.Pt{n}WhExp",),
    "kvarh_delivered": ("s8000.Pt{n}VArhImp",),
    "kvarh_received": ("s8000.Pt{n}VArhExp",),
    "w": ("{m}.W",),
    "var": ("{m}.VAR",),
    "va": ("{m}.VA",),
    "pf": ("{m}.PF",),
    "a": ("{m}.A",),
    "phase_w": tuple(f"{{m}}.Wph{p}" for p in PHASES),
    "phase_a": tuple(f"{{m}}.Aph{p}" for p in PHASES),
    "demand_w": ("s8000.Pt{n}Dmd",),
    "peak_demand_w": ("s8000.Pt{n}PkDmd",),
    "peak_demand_time": ("s8000.Pt{n}PkDmdT",),
    "ct_primary_a": ("s8000.Pt{n}CT",),
}
#: Where each value of the meter is (the voltages and the frequency are the
#: first meter model's, as in a full read).
_METER_REGISTERS: Final[dict[str, tuple[str, ...]]] = {
    "utc": ("s8000.UTC",),
    "status": ("s8000.Status",),
    "voltage": tuple(f"point1.PhVph{p}" for p in PHASES),
    "line_voltage": tuple(f"point1.PhVph{p}" for p in _LINES),
    "frequency": ("point1.Hz",),
    "pulses": tuple(
        f"s8000.P{n}{what}" for n in (1, 2) for what in ("Count", "Errors", "Scale", "Value")
    ),
    "intervals": ("s8000.IntLen", "s8000.IntCount", "s8000.IntOldest", "s8000.IntNewest"),
}
#: Read with every selection: the marker, the Common model's header, model
#: and serial (another meter at the address), the vendor model's header and
#: the end model (a map that moved), and the configuration the meter models'
#: scale factors follow (docs/registers.md: static for a configuration, from
#: the service, the PT ratio, the nominal voltage and each point's CT).
_ALWAYS: Final = (
    "SunS", "common.ID", "common.L", "common.Md", "common.SN", "s8000.ID", "s8000.L",
    "s8000.Service", "s8000.PTRatio", "s8000.NomV", "end.ID", "end.L",
)  # fmt: skip
_CONFIGURATION: Final = ("s8000.Service", "s8000.PTRatio", "s8000.NomV")


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
    """The points of a model from the words read at its header (as many as there are)."""
    values: dict[str, Any] = {}
    for p in model.points:
        if p.offset + p.size <= len(words):
            values[p.name] = decode(p.type, words[p.offset : p.offset + p.size])
    return values


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
        self, unit: ModbusUnit, *, base: int = BASE_ADDRESS, serial: str | None = None
    ) -> None:
        self.unit = unit
        self.base = base
        # The one meter this client is for: the serial number it is given (a
        # config entry's), or else the first meter it identifies.  Nothing
        # the client does afterwards adopts another meter's identity, map or
        # registers, so whatever answers at the address later (a reused DHCP
        # lease, a rewired bus) is refused until this meter answers again.
        self._serial = serial
        self._identity: Identity | None = None
        self._regmap: RegisterMap | None = None
        self._fields: list[Field] = []
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
        if not chain or ids[0] != COMMON.model_id:
            raise S8000NotAnS8000(f"the SunSpec chain does not start with model 1: {ids}")
        common = chain[0]
        with _link("identify: Common model"):
            words = await self.unit.read_holding_registers(
                common.address, min(common.span, MAX_READ)
            )
        info = _decode_block(COMMON, words)
        manufacturer, code = info.get("Mn"), info.get("Md")
        if manufacturer != MANUFACTURER:
            raise S8000NotAnS8000(f"the manufacturer is {manufacturer!r}, not {MANUFACTURER!r}")
        if code not in MODELS:
            raise S8000NotAnS8000(f"{code!r} is not an S8000 model")
        meter_ids = ids[1:-1]
        if (
            len(ids) < 3
            or ids[-1] != VENDOR_MODEL_ID
            or not meter_ids
            or any(i not in METER_MODELS for i in meter_ids)
        ):
            raise S8000NotAnS8000(
                f"{code}: the SunSpec chain is not model 1, meter models 201–204 and "
                f"vendor model {VENDOR_MODEL_ID}: {ids}"
            )
        catalogue = MODELS[code]
        if len(meter_ids) > catalogue.points:
            raise S8000Error(
                f"{code} has {catalogue.points} meter points, the chain has {len(meter_ids)}"
            )
        regmap = sunspec_map(ids, self.base)
        _check_layout(regmap, chain)
        vendor = regmap.placed("s8000")
        with _link("identify: vendor model"):
            words = await self.unit.read_holding_registers(
                vendor.address, min(vendor.model.length + 2, MAX_READ)
            )
        fixed = _decode_block(vendor.model, words)
        if fixed.get("Points") != len(meter_ids):
            raise S8000Error(
                f"{code}: the vendor model counts {fixed.get('Points')} points, "
                f"the chain has {len(meter_ids)} meter models"
            )
        if fixed.get("Elements") not in (None, catalogue.elements):
            raise S8000Error(
                f"{code}: {fixed.get('Elements')} elements per point, the model has "
                f"{catalogue.elements}"
            )
        service_code = fixed.get("Service")
        try:
            service = None if service_code is None else Service(service_code)
        except ValueError:
            raise S8000Error(f"{code}: unknown service code {service_code}") from None
        serial = info.get("SN")
        if not serial:
            raise S8000Error(f"{code}: the meter reports no serial number")
        identity = Identity(
            manufacturer=manufacturer,
            model=code,
            serial=serial,
            firmware=info.get("Vr") or "",
            firmware_build=fixed.get("FwBuild"),
            mac=fixed.get("MAC"),
            points=len(meter_ids),
            elements=catalogue.elements,
            service=service,
            options=info.get("Opt"),
            point_models=tuple(meter_ids),
            device_address=info.get("DA"),
        )
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

    async def _identified(self) -> tuple[RegisterMap, Identity]:
        """The map and identity, identifying the meter first if there are none
        (the lock held)."""
        if self._regmap is None or self._identity is None:
            await self._identify()
        assert self._regmap is not None
        assert self._identity is not None
        return self._regmap, self._identity

    async def _read_points(self, placed: Placed, names: Sequence[str], what: str) -> list[Any]:
        """Points of one placed model, decoded, read in one request over the
        span that holds them all."""
        wanted = [placed.model.point(name) for name in names]
        first = min(p.offset for p in wanted)
        count = max(p.offset + p.size for p in wanted) - first
        with _link(what):
            words = await self.unit.read_holding_registers(placed.address + first, count)
        return [decode(p.type, words[p.offset - first : p.offset - first + p.size]) for p in wanted]

    def _use(self, regmap: RegisterMap) -> None:
        """Plan the reads of a map: every field, over one readable range."""
        self._regmap = regmap
        self._fields = regmap.fields
        reader = ManualComponent(
            cast("ModbusUnit", self._counter),
            max_span=MAX_READ,
            holding_ranges=((regmap.base, regmap.end - 1),),
        )
        for f in self._fields:
            reader.add(f.name, RawField(f.address, count=f.size))
        self._reader = reader
        self._plans, self._scales, self._basis = {}, {}, {}

    def _check_places(
        self, regmap: RegisterMap, registers: Mapping[int, int], models: Sequence[Placed]
    ) -> None:
        """:func:`_check_places`, forgetting the map when it is not where it was
        (the next read identifies the meter again)."""
        try:
            _check_places(regmap, registers, models)
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
        try:
            words = [int(registers[a]) for a in range(regmap.base, regmap.end)]
        except KeyError as err:
            raise S8000Error(f"read: register {err} was not read") from None
        self._check_places(regmap, registers, regmap.chain)
        values = _decode_all(self._fields, regmap.base, words)
        _check_same_meter(identity, values.get("common.Md"), values.get("common.SN"))
        return _meter_data(regmap, values, transactions)

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
            self._check_places(regmap, registers, (regmap.chain[0], regmap.chain[-1]))
            values = _decode_some(plan.fields, registers, self._scales)
            _check_same_meter(identity, values.get("common.Md"), values.get("common.SN"))
            basis = {name: values[name] for name in plan.basis}
            if plan.scales or all(self._basis.get(k, v) == v for k, v in basis.items()):
                break
            # The configuration the scale factors follow has changed since
            # they were read: they may have too.  Read them again.
            self._scales, self._basis = {}, {}
        if plan.scales:
            self._scales.update((name, values[name]) for name in plan.scales)
            self._basis.update(basis)
        return _meter_data(regmap, values, self._counter.reads - before)

    def _plan(self, regmap: RegisterMap, selection: Selection, frame_cost: int) -> _Plan:
        """The reads of ``selection``: its values' fields, their scale factors
        unless the client knows them, and what every selection reads."""
        key = (selection, frame_cost, len(self._scales))
        if (plan := self._plans.get(key)) is not None:
            return plan
        names: list[str] = list(_ALWAYS)
        for meter_value in selection.meter:
            names += _METER_REGISTERS[meter_value]
        labels = {p.point + 1: p.label for p in regmap.chain if p.point is not None}
        for number, values in selection.points:
            label = labels.get(number)
            if label is None:
                continue  # the meter has no such point
            names.append(f"s8000.Pt{number}CT")  # what its scale factors follow
            for value in values:
                names += (r.format(m=label, n=number) for r in _POINT_REGISTERS[value])
        by_name = {f.name: f for f in self._fields}
        wanted = [by_name[name] for name in dict.fromkeys(names)]
        scales = sorted({f.scale for f in wanted if isinstance(f.scale, str)})
        read_scales = any(name not in self._scales for name in scales)
        if read_scales:
            wanted += (by_name[name] for name in scales)
        blocks = _blocks([(f.address, f.size) for f in wanted], frame_cost)
        reader = ManualComponent(
            cast("ModbusUnit", self._counter),
            max_span=MAX_READ,
            holding_ranges=tuple((start, start + count - 1) for start, count in blocks),
        )
        for start, count in blocks:
            reader.add(f"@{start}", RawField(start, count=count))
        basis = tuple(
            f.name
            for f in wanted
            if f.name in _CONFIGURATION or (f.name.startswith("s8000.Pt") and f.name.endswith("CT"))
        )
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
        code, serial = await self._read_points(
            regmap.placed("common"), ("Md", "SN"), f"{what}: the meter's serial number"
        )
        _check_same_meter(identity, code, serial)

    async def _interval_pointers(
        self, regmap: RegisterMap
    ) -> tuple[int | None, int | None, int | None, int | None, int | None]:
        """IntLen, IntOldest, IntNewest, IntRowWords, IntRowsPerFile, read in one request."""
        length, oldest, newest, width, per_file = await self._read_points(
            regmap.placed("s8000"),
            ("IntLen", "IntOldest", "IntNewest", "IntRowWords", "IntRowsPerFile"),
            "read intervals: the interval-memory pointers",
        )
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
        await self._write("UTC", round(utc))

    async def reset_peak_demand(self) -> None:
        """Reset every point's peak demand."""
        await self._write("Cmd", Command.RESET_PEAK_DEMAND)

    async def send_now(self) -> None:
        """Report the interval memory to the configured host now ("Send")."""
        await self._write("Cmd", Command.SEND_DATA)

    async def _write(self, point: str, value: int) -> None:
        async with self._lock:
            regmap, identity = await self._identified()
            placed = regmap.placed("s8000")
            p = placed.model.point(point)
            if (
                p.minimum is not None
                and p.maximum is not None
                and not p.minimum <= value <= p.maximum
            ):
                raise ValueError(f"{point}: {value} is outside {p.minimum:g}–{p.maximum:g}")
            # A command meant for this meter must not reach another one that
            # took its address since the last read.
            await self._confirm(regmap, identity, f"write {point}")
            address = placed.address + p.offset
            with _link(f"write {point}"):
                await self.unit.write_registers(address, encode(p.type, value, p.size))


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


def _check_same_meter(identity: Identity, code: Any, serial: Any) -> None:
    """The model and serial number read are ``identity``'s; S8000WrongMeter otherwise."""
    if serial != identity.serial or code != identity.model:
        raise S8000WrongMeter(identity.serial, f"{code} serial {serial}")


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


def _check_places(
    regmap: RegisterMap, registers: Mapping[int, int], models: Sequence[Placed]
) -> None:
    """The marker, the headers (ID and L) of ``models`` and the end model are
    where the map says, in the registers read.

    A full read checks every model.  A partial one checks the Common and
    vendor models: every SunSpec meter model (201–204) is 105 registers
    long, so a point added or removed moves the vendor model and the end
    model; a point rewired as another meter model moves nothing (its values
    keep their addresses), and only a full read, or the identity check of
    whoever keeps the client, sees that."""

    def at(address: int, count: int) -> tuple[int | None, ...]:
        return tuple(registers.get(a) for a in range(address, address + count))

    if at(regmap.base, 2) != SUNSPEC_MARKER:
        raise S8000MapChanged(f"no SunSpec marker at {regmap.base} any more")
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
    decoded = {
        f.name: decode(f.type, [registers[a] for a in range(f.address, f.address + f.size)])
        for f in fields
    }
    return _checked(fields, {**scales, **decoded})


def _decode_all(fields: Sequence[Field], base: int, words: Sequence[int]) -> dict[str, Any]:
    """Every field by name: decoded, scaled, checked."""
    decoded = {
        f.name: decode(f.type, words[f.address - base : f.address - base + f.size]) for f in fields
    }
    return _checked(fields, decoded)


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
        if f.unit in ("Wh", "varh", "VAh") and value is not None and value < 0:
            raise S8000BadData(f"{f.name} = {value}: an energy register is never negative")
        values[f.name] = value
    return values


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


def _kilo(value: Any) -> float | None:
    return None if value is None else float(value) / 1000.0


def _meter_data(regmap: RegisterMap, values: dict[str, Any], transactions: int) -> MeterData:
    meters = [p for p in regmap.chain if p.point is not None]
    first = meters[0].label
    points = []
    for placed in meters:
        n = (placed.point or 0) + 1
        label = placed.label
        pf = values.get(f"{label}.PF")
        points.append(
            PointData(
                number=n,
                model_id=placed.model.model_id,
                kwh_delivered=_kilo(values.get(f"s8000.Pt{n}WhImp")),
                kwh_received=_kilo(values.get(f"s8000.Pt{n}WhExp")),
                kvarh_delivered=_kilo(values.get(f"s8000.Pt{n}VArhImp")),
                kvarh_received=_kilo(values.get(f"s8000.Pt{n}VArhExp")),
                w=_number(values.get(f"{label}.W")),
                var=_number(values.get(f"{label}.VAR")),
                va=_number(values.get(f"{label}.VA")),
                pf=None if pf is None else float(pf) / 100.0,
                a=_number(values.get(f"{label}.A")),
                phase_w={
                    p: float(v) for p in PHASES if (v := values.get(f"{label}.Wph{p}")) is not None
                },
                phase_a={
                    p: float(v) for p in PHASES if (v := values.get(f"{label}.Aph{p}")) is not None
                },
                demand_w=_number(values.get(f"s8000.Pt{n}Dmd")),
                peak_demand_w=_number(values.get(f"s8000.Pt{n}PkDmd")),
                peak_demand_time=_number(values.get(f"s8000.Pt{n}PkDmdT")),
                ct_primary_a=_integer(values.get(f"s8000.Pt{n}CT")),
            )
        )
    status = values.get("s8000.Status")
    return MeterData(
        utc=_number(values.get("s8000.UTC")),
        status=None if status is None else Status(status),
        voltage={p: _number(values.get(f"{first}.PhVph{p}")) for p in PHASES},
        line_voltage={p: _number(values.get(f"{first}.PhVph{p}")) for p in _LINES},
        frequency=_number(values.get(f"{first}.Hz")),
        points=tuple(points),
        pulses=tuple(
            PulseData(
                number=n,
                count=_integer(values.get(f"s8000.P{n}Count")),
                errors=_integer(values.get(f"s8000.P{n}Errors")),
                scale=_number(values.get(f"s8000.P{n}Scale")),
                value=_number(values.get(f"s8000.P{n}Value")),
            )
            for n in (1, 2)
        ),
        intervals=IntervalMemory(
            length_s=_integer(values.get("s8000.IntLen")),
            count=_integer(values.get("s8000.IntCount")),
            oldest=_number(values.get("s8000.IntOldest")),
            newest=_number(values.get("s8000.IntNewest")),
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
) -> AsyncIterator[S8000Client]:
    """A Modbus TCP link of its own to an S8000, as a client; closed on exit.

    ``backend`` is the modbus-connection backend: ``tmodbus`` (what Home
    Assistant uses) or ``pymodbus``.  Connects before it yields:
    :class:`S8000ConnectionError` if it cannot."""
    if not 0 <= unit_id <= 255:
        raise ValueError(f"unit id {unit_id} is not 0–255")
    connection = connection_class(backend)(ModbusTcpParams(host=host, port=port), timeout=timeout)
    try:
        with _link(f"connect to {host}:{port}"):
            await connection.connect()
        yield S8000Client(connection.for_unit(unit_id))
    finally:
        with contextlib.suppress(ModbusError, OSError):
            await connection.close()
