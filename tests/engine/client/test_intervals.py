"""The client reads the interval memory over Modbus (function 20, Read File Record).

Rows read from the running local meter (``s8000-engine run --simulate``,
one-minute recording at 60 times the wall clock's speed) equal what its own
SQLite store holds; the request plan (how many function 20 requests, which
rows) is checked against an in-process server serving a store filled here,
a 24-point meter whose 390-word rows take four requests each.  Every live
test runs with both of modbus-connection's backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import math
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from modbus_connection import ModbusTcpParams, ModbusUnit

from s8000_engine.client.client import BACKENDS, BackendName, S8000Client, connect_tcp
from s8000_engine.config.meter import MeterConfig, meter_config
from s8000_engine.exceptions import S8000ConnectionError, S8000Error
from s8000_engine.local.image import MeterSnapshot, build_map, render
from s8000_engine.modbus.backend import MeterBackend
from s8000_engine.modbus.server import Exc, Handler, TcpServer
from s8000_engine.protocol.intervals import (
    IntervalRow,
    decode_row,
    encode_row,
    file_position,
    row_words,
    rows_per_file,
)
from s8000_engine.storage.store import Checkpoint, Flag, IntervalRecord, PointRecord, Store
from tests.engine.meterproc import Progress, serving_meter

START = "2026-11-25T12:00:00Z"
T0 = 1_795_608_000  # START
MINUTE = 60
#: A 24-point meter, as the benchmarks' (one CT per point).
CONFIG_24 = {
    "model": "S8UTS-241",
    "service": "3p4w",
    "points": [{"ct_primary": 100, "phases": ["ABC"[n % 3]]} for n in range(24)],
}
QUARTER = 900
DAY = 86400


#: Why function 20 fails through modbus-connection's pymodbus backend.
PYMODBUS_FC20 = (
    "modbus-connection 4.12's pymodbus backend gives pymodbus's FileRecord the length in "
    "words, which pymodbus 3.13 takes in bytes: odd lengths are refused, even ones read half"
)


def installed(name: BackendName) -> BackendName:
    """``name``, once its backend imports (both are in the test extra: a
    missing one is an error, not a skip)."""
    importlib.import_module(f"modbus_connection.{name}")
    return name


@pytest.fixture(
    params=[
        "tmodbus",
        pytest.param("pymodbus", marks=pytest.mark.xfail(reason=PYMODBUS_FC20, strict=True)),
    ]
)
def backend(request: pytest.FixtureRequest) -> BackendName:
    """A backend that reads file records (function 20)."""
    return installed(request.param)


@pytest.fixture(params=BACKENDS)
def any_backend(request: pytest.FixtureRequest) -> BackendName:
    """Each of modbus-connection's backends, for what needs no file record."""
    name: BackendName = request.param
    return installed(name)


class CountingUnit:
    """A unit that counts the function 20 requests going through it."""

    def __init__(self, unit: ModbusUnit) -> None:
        self.unit = unit
        self.file_reads: list[tuple[int, int, int]] = []

    async def read_file_record(self, file: int, record: int, length: int) -> list[int]:
        self.file_reads.append((file, record, length))
        return await self.unit.read_file_record(file, record, length)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.unit, name)


@contextlib.asynccontextmanager
async def counted_client(
    port: int, backend: BackendName
) -> AsyncIterator[tuple[S8000Client, CountingUnit]]:
    """A client on a unit of a connection it does not own (as in Home Assistant), counted."""
    module = importlib.import_module(f"modbus_connection.{backend}")
    connection = module.ModbusConnection(ModbusTcpParams(host="127.0.0.1", port=port), timeout=3.0)
    try:
        unit = CountingUnit(connection.for_unit(1))
        yield S8000Client(unit), unit  # type: ignore[arg-type]
    finally:
        await connection.close()


def planned_requests(first: int, count: int, length: int, points: int) -> int:
    """Function 20 requests for ``count`` consecutive rows from the one starting at
    ``first``: one span per file, in requests of 121 words across rows."""
    per_file = rows_per_file(points)
    runs: list[int] = []
    for n in range(first // length, first // length + count):
        if not runs or n % per_file == 0:
            runs.append(0)
        runs[-1] += 1
    return sum(math.ceil(row_words(points) * run / 121) for run in runs)


def expected_row(record: IntervalRecord, points: int) -> IntervalRow:
    """What a stored interval reads as over function 20."""
    by_point = {p.point: p for p in record.points}
    return IntervalRow(
        start=record.start,
        length=record.length,
        flags=int(record.flags),
        seconds=min(0xFFFF, round(record.covered)),
        registers=tuple(
            (r[0], r[1], r[2], r[3])
            for r in (
                by_point[n].registers if n in by_point else [0xFFFF_FFFF_FFFF_FFFF] * 4
                for n in range(points)
            )
        ),
    )


# -- rows: encode and decode ---------------------------------------------------------------


def record(start: int, length: int, points: int, seed: int, skip: int | None = None) -> Any:
    """An interval with random registers (up to 2^64 − 2) for every point but ``skip``."""
    rng = random.Random(seed)
    return IntervalRecord(
        start=start,
        length=length,
        flags=Flag(rng.randrange(8)),
        covered=rng.uniform(0, length),
        voltage=[120.0, None, None],
        frequency=60.0,
        pulses=[0, 0],
        pulse_deltas=[0, 0],
        points=[
            PointRecord(
                point=n,
                registers=[rng.randrange(0xFFFF_FFFF_FFFF_FFFF) for _ in range(4)],
                deltas=[rng.randrange(1 << 20) for _ in range(4)],
            )
            for n in range(points)
            if n != skip
        ],
    )


@pytest.mark.parametrize("points", [1, 2, 8, 24])
def test_decode_row_inverts_encode_row(points: int) -> None:
    for seed in range(20):
        stored = record(T0 + seed * QUARTER, QUARTER, points, seed)
        words = encode_row(stored, points)
        assert len(words) == row_words(points)
        row = decode_row(words, points)
        assert row == expected_row(stored, points)
        assert row is not None
        assert row.end == stored.end
        assert encode_row(row_as_record(row), points) == words
    stored = record(T0, 3600, points, 99)
    stored.covered = 3599.6
    row = decode_row(encode_row(stored, points), points)
    assert row is not None
    assert row.seconds == 3600
    assert row.length == 3600
    assert row.registers[0] == tuple(stored.points[0].registers)
    # The extremes of every field.
    extreme = record(0xFFFF_FFFE, 60, points, 1)
    extreme.flags = Flag(7)
    for p in extreme.points:
        p.registers = [0, 0xFFFF_FFFF_FFFF_FFFE, 1, 1 << 63]
    assert decode_row(encode_row(extreme, points), points) == expected_row(extreme, points)


def row_as_record(row: IntervalRow) -> IntervalRecord:
    return IntervalRecord(
        start=row.start,
        length=row.length,
        flags=Flag(row.flags),
        covered=row.seconds,
        voltage=[None, None, None],
        frequency=None,
        pulses=[0, 0],
        pulse_deltas=[0, 0],
        points=[
            PointRecord(point=n, registers=list(r), deltas=[0, 0, 0, 0])
            for n, r in enumerate(row.registers)
        ],
    )


def test_decode_row_of_an_empty_row_or_a_missing_point() -> None:
    assert decode_row(encode_row(None, 8), 8) is None
    stored = record(T0, QUARTER, 8, 3, skip=5)
    row = decode_row(encode_row(stored, 8), 8)
    assert row is not None
    assert row.registers[5] == (0xFFFF_FFFF_FFFF_FFFF,) * 4  # "not implemented"
    assert row.registers[4] == tuple(stored.points[4].registers)
    with pytest.raises(ValueError, match="134 words, not 133"):
        decode_row(encode_row(None, 8)[:-1], 8)


# -- the running local meter ---------------------------------------------------------------


@pytest.fixture(scope="module")
def recording_meter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """The demo meter recording one-minute intervals at 60 times real speed; its data."""
    data = tmp_path_factory.mktemp("meter")
    options = ("--start", START, "--speed", "60", "--interval", "1", "--sample-rate", "4000")
    with serving_meter(data, *options) as port:
        yield port, data


async def stored_intervals(client: S8000Client, at_least: int) -> tuple[int, int]:
    """Wait until the meter holds ``at_least`` intervals; (oldest, newest) start."""
    progress = Progress(f"{at_least} stored intervals")
    while True:
        memory = (await client.read()).intervals
        if memory.count is not None and memory.count >= at_least:
            assert memory.oldest is not None
            assert memory.newest is not None
            return int(memory.oldest), int(memory.newest)
        progress.seen(memory.count)
        await asyncio.sleep(0.5)


async def test_rows_read_over_modbus_are_the_stored_intervals(
    recording_meter: tuple[int, Path], backend: BackendName
) -> None:
    port, data = recording_meter
    progress: list[tuple[int, int]] = []
    async with counted_client(port, backend) as (client, unit):
        oldest, newest = await stored_intervals(client, 6)
        rows = await client.read_intervals(
            oldest, newest + 1, progress=lambda done, total: progress.append((done, total))
        )
        assert client.identity is not None
        points = client.identity.points
    with Store.open(data, create=False) as store:
        stored = store.intervals(oldest, newest + 1)
    assert oldest == T0
    assert len(stored) >= 6
    assert [row.start for row in rows] == [r.start for r in stored]
    assert rows == [expected_row(r, points) for r in stored]
    assert all(row.length == MINUTE for row in rows)
    for before, after in itertools.pairwise(rows):
        assert after.start == before.end
        for a, b in zip(before.registers, after.registers, strict=True):
            assert all(x <= y for x, y in zip(a, b, strict=True)), "registers never go back"
    assert any(r[0] > 0 for r in rows[-1].registers), "the loads used energy"
    total = (newest - oldest) // MINUTE + 1
    assert progress == [(done, total) for done in range(1, total + 1)]
    # Consecutive rows are read as one span per file, in requests of 121 words.
    assert len(unit.file_reads) == planned_requests(oldest, total, MINUTE, points)
    assert all(length <= 121 for _file, _record, length in unit.file_reads)
    assert sum(length for _file, _record, length in unit.file_reads) == total * row_words(points)


async def test_a_step_reads_only_the_rows_ending_on_it(
    recording_meter: tuple[int, Path], backend: BackendName
) -> None:
    port, data = recording_meter
    async with counted_client(port, backend) as (client, unit):
        oldest, newest = await stored_intervals(client, 7)
        every = await client.read_intervals(oldest, newest + 1)
        for step in (120, 180, 60):
            unit.file_reads.clear()
            rows = await client.read_intervals(oldest, newest + 1, step=step)
            assert rows == [row for row in every if row.end % step == 0], step
            assert rows, step
            if step > MINUTE:
                # One row at a time: each in ceil(W / 121) requests.
                assert len(unit.file_reads) == len(rows) * math.ceil(row_words(8) / 121)
        # A range that starts before the oldest is clipped to it.
        rows = await client.read_intervals(oldest - 86400, oldest + 120)
        assert [row.start for row in rows] == [oldest, oldest + 60]
        with pytest.raises(ValueError, match="not a multiple of the 60 s interval"):
            await client.read_intervals(oldest, newest, step=90)
        with pytest.raises(ValueError, match="positive"):
            await client.read_intervals(oldest, newest, step=0)
    with Store.open(data, create=False) as store:
        stored = [r.start for r in store.intervals(oldest, newest + 1) if r.end % 180 == 0]
    assert [row.start for row in every if row.end % 180 == 0] == stored


async def test_ranges_outside_the_memory_read_nothing(
    recording_meter: tuple[int, Path], any_backend: BackendName
) -> None:
    port, _data = recording_meter
    async with counted_client(port, any_backend) as (client, unit):
        oldest, newest = await stored_intervals(client, 2)
        assert await client.read_intervals(oldest + 60, oldest + 60) == []
        assert await client.read_intervals(oldest + 600, oldest) == []
        assert await client.read_intervals(oldest - 86400, oldest) == []
        assert await client.read_intervals(0, oldest - 0.5, step=3600) == []
        assert await client.read_intervals(newest + 3600, newest + 7200) == []
        assert unit.file_reads == [], "no row is asked for outside [oldest, newest]"


async def test_a_stopped_meter_is_a_connection_error(
    tmp_path: Path, any_backend: BackendName
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        with serving_meter(tmp_path, "--start", START, "--interval", "1") as port:
            link = connect_tcp("127.0.0.1", port, backend=any_backend, timeout=1.0)
            client = await stack.enter_async_context(link)
            await client.identify()
        # The meter's process has stopped; the client still has its map.
        with pytest.raises(S8000ConnectionError, match="read intervals"):
            await client.read_intervals(T0, T0 + 3600)


# -- an in-process server: the request plan --------------------------------------------------


def fill(path: Path, config: MeterConfig, starts: list[int], length: int) -> Store:
    """A store holding intervals at ``starts`` for every point of ``config``."""
    store = Store.open(path)
    points = len(config.points)
    registers = [0] * 4
    records = []
    for k, start in enumerate(starts):
        registers = [r + 1000 * (k + 1) for r in registers]
        records.append(
            IntervalRecord(
                start=start,
                length=length,
                flags=Flag(0),
                covered=float(length),
                voltage=[120.0, 120.0, 120.0],
                frequency=60.0,
                pulses=[0, 0],
                pulse_deltas=[0, 0],
                points=[
                    PointRecord(point=n, registers=[r + n for r in registers], deltas=[1, 2, 3, 4])
                    for n in range(points)
                ],
            )
        )
    checkpoint = Checkpoint(time=float(starts[-1] + length), registers=[[0] * 8] * points, state={})
    store.commit(checkpoint, records)
    return store


class Served:
    """A 24-point meter's image and interval memory served in this process."""

    def __init__(self, store: Store, config: MeterConfig, now: int) -> None:
        self.store = store
        self.regmap = build_map(config)
        self.backend = MeterBackend(
            self.regmap,
            model=config.model.code,
            serial="0212060212",
            firmware="1.60",
            history=store.intervals,
            interval_s=QUARTER,
        )
        stored = store.intervals()
        self.image = render(
            self.regmap,
            MeterSnapshot(
                config,
                serial="0212060212",
                utc=now,
                recording_minutes=QUARTER // 60,
                interval_count=len(stored),
                interval_oldest=stored[0].start if stored else None,
                interval_newest=stored[-1].start if stored else None,
            ),
        )
        self.backend.update(self.image)

    def poke(self, name: str, value: int) -> None:
        """Change one uint16 register of the vendor model."""
        at = self.regmap.address_of("s8000", name) - self.regmap.base
        self.image[at] = value
        self.backend.update(list(self.image))


@contextlib.asynccontextmanager
async def serving(served: MeterBackend) -> AsyncIterator[int]:
    server = TcpServer(Handler(served))
    _host, port = await server.start("127.0.0.1", 0)
    try:
        yield port
    finally:
        await server.close()


DAY0 = T0 - T0 % DAY  # 2026-11-25T00:00Z


@pytest.fixture
def two_days(tmp_path: Path) -> Iterator[tuple[Served, list[int]]]:
    """Two days of quarter hours, but for 09:15 of the first day, which was never stored."""
    config = meter_config(CONFIG_24)
    starts = [DAY0 + k * QUARTER for k in range(192) if k != 37]
    with fill(tmp_path, config, starts, QUARTER) as store:
        yield Served(store, config, DAY0 + 2 * DAY + 30), starts


async def test_a_24_point_row_takes_four_requests(
    two_days: tuple[Served, list[int]], backend: BackendName
) -> None:
    served, starts = two_days
    async with serving(served.backend) as port, counted_client(port, backend) as (client, unit):
        rows = await client.read_intervals(DAY0, DAY0 + DAY, step=3600)
        assert [row.end for row in rows] == [DAY0 + h * 3600 for h in range(1, 25)]
        assert len(unit.file_reads) == 24 * 4
        for n, row in enumerate(rows):
            reads = unit.file_reads[4 * n : 4 * n + 4]
            file, record = file_position(row.start, QUARTER, 24)
            assert reads == [
                (file, record, 121),
                (file, record + 121, 121),
                (file, record + 242, 121),
                (file, record + 363, 27),
            ]
            k = starts.index(row.start)  # the k-th interval stored
            assert row.registers[3] == (1000 * (k + 1) * (k + 2) // 2 + 3,) * 4
        stored = served.store.intervals(DAY0, DAY0 + DAY)
        assert rows == [expected_row(r, 24) for r in stored if r.end % 3600 == 0]

        # Every row of the day: runs of consecutive rows in one file, in
        # 121-word requests across rows; the row never stored is left out.
        unit.file_reads.clear()
        rows = await client.read_intervals(DAY0, DAY0 + DAY)
        assert [row.start for row in rows] == [s for s in starts if s < DAY0 + DAY]
        assert len(rows) == 95
        assert len(unit.file_reads) == planned_requests(DAY0, 96, QUARTER, 24) < 96 * 4
        per_file = rows_per_file(24)
        assert all(record + length <= per_file * 390 for _f, record, length in unit.file_reads)

        # Half-hour steps, across both days, from a start that is not on a boundary.
        rows = await client.read_intervals(DAY0 + 100, DAY0 + 2 * DAY, step=1800)
        missing = DAY0 + 37 * QUARTER
        ends = [DAY0 + h * 1800 for h in range(1, 97)]
        assert [row.end for row in rows] == [e for e in ends if e - QUARTER != missing]


async def test_rows_that_are_not_the_expected_interval_are_left_out(
    tmp_path: Path, backend: BackendName
) -> None:
    config = meter_config(CONFIG_24)
    # Intervals of half an hour where the meter now records quarter hours
    # (the recording length was changed): their rows are another interval's.
    with fill(tmp_path, config, [DAY0 + k * 1800 for k in range(8)], 1800) as store:
        served = Served(store, config, DAY0 + DAY)
        async with serving(served.backend) as port, counted_client(port, backend) as (client, u):
            assert await client.read_intervals(DAY0, DAY0 + 4 * 3600) == []
            # Up to the newest stored start, 03:30: 15 quarter-hour rows asked for.
            assert len(u.file_reads) == planned_requests(DAY0, 15, QUARTER, 24)


class MovedOn(MeterBackend):
    """A memory whose rows starting on the hour hold the interval of the next cycle
    of files (65,535 files later) at the same file and record."""

    async def read_file(self, file: int, record: int, length: int) -> list[int]:
        words = await super().read_file(file, record, length)
        width = row_words(self.points)
        for at in range(-record % width, length - 1, width):  # each row beginning here
            start = (words[at] << 16) | words[at + 1]
            if start != 0xFFFFFFFF and start % 3600 == 0:
                later = start + 65535 * rows_per_file(self.points) * self.interval_s
                words[at : at + 2] = [later >> 16, later & 0xFFFF]
        return words


async def test_rows_of_another_cycle_are_left_out(tmp_path: Path, backend: BackendName) -> None:
    config = meter_config(CONFIG_24)
    starts = [DAY0 + k * QUARTER for k in range(96)]
    with fill(tmp_path, config, starts, QUARTER) as store:
        served = Served(store, config, DAY0 + DAY)
        moved = MovedOn(
            served.regmap, model="S8UTS-241", serial="0212060212", firmware="1.60",
            history=store.intervals, interval_s=QUARTER,
        )  # fmt: skip
        moved.update(served.image)
        async with serving(moved) as port, counted_client(port, backend) as (client, _u):
            rows = await client.read_intervals(DAY0, DAY0 + DAY)
            assert [row.start for row in rows] == [s for s in starts if s % 3600]
            assert await client.read_intervals(DAY0, DAY0 + DAY, step=3600) == rows[2::3]


async def test_rows_laid_out_otherwise_are_refused(
    two_days: tuple[Served, list[int]], any_backend: BackendName
) -> None:
    served, _starts = two_days
    async with serving(served.backend) as port, counted_client(port, any_backend) as (client, u):
        served.poke("IntRowWords", 400)
        with pytest.raises(S8000Error, match="400 words, 25 per file") as caught:
            await client.read_intervals(DAY0, DAY0 + DAY)
        assert not isinstance(caught.value, S8000ConnectionError)
        assert u.file_reads == []


async def test_a_refused_file_read_is_a_connection_error(
    two_days: tuple[Served, list[int]], backend: BackendName
) -> None:
    served, _starts = two_days
    async with serving(served.backend) as port, counted_client(port, backend) as (client, _u):
        served.backend.history = None  # no interval memory: exception 02
        with pytest.raises(S8000ConnectionError, match="file") as caught:
            await client.read_intervals(DAY0, DAY0 + DAY)
        assert caught.value.exception_code == Exc.ILLEGAL_ADDRESS == 2


async def test_nothing_stored_reads_nothing(tmp_path: Path, any_backend: BackendName) -> None:
    config = meter_config(CONFIG_24)
    with Store.open(tmp_path) as store:
        served = Served(store, config, DAY0)
        async with (
            serving(served.backend) as port,
            counted_client(port, any_backend) as (
                client,
                u,
            ),
        ):
            assert await client.read_intervals(0, 2**32) == []
            assert u.file_reads == []
