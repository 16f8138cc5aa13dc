"""One poll of a 24-point meter inside Home Assistant: time, transactions, CPU.

The meter is the engine's local meter, ``s8000-engine run --simulate``, as an
S8UTS-241 (24 points of one CT, the map of ``bench_modbus``) serving Modbus
TCP on loopback, in a process of its own.  Home Assistant is a real one, run
in this process as the integration's tests run it
(``pytest_homeassistant_custom_component``), with the integration loaded
from ``custom_components/s8000`` through a config entry, exactly as a user
adds it; no recorder.

Each poll is one ``async_refresh`` of the readings coordinator: the reads of
the map through Home Assistant's ``modbus`` integration, the counter guards,
and every entity writing its state.  Timed per poll: the wall time, the
Modbus reads it took, and the CPU time of this process (``process_time``,
all threads), which is Home Assistant's alone, since the meter runs
elsewhere.  The read of the map within the poll is timed on its own (wall
and CPU time), the rest being the guards and the state writes.  Between
polls the benchmark waits until the meter has metered another second, so
every poll brings new values, as a poll every 10 s does; the polls
themselves run back to back with nothing else for Home Assistant to do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TYPE
from homeassistant.const import __version__ as ha_version
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.loader import DATA_CUSTOM_COMPONENTS
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    MockConfigEntry,
    async_test_home_assistant,
)

from benchmarks.bench_modbus import CONFIG
from benchmarks.localmeter import serving
from custom_components.s8000.const import CONF_UNIT_ID, DOMAIN
from custom_components.s8000.coordinator import S8000ReadingsCoordinator
from s8000_engine.client.data import MeterData
from s8000_engine.storage.store import DATABASE_NAME, Store

SERIAL = "4200012345"
MAC = "00:21:B6:12:34:56"
#: The meter's simulated time runs this much faster than the wall clock: a
#: little, so that polls 1.1 meter seconds apart (each sees new values, as a
#: poll every 10 s does) fit in the run; not more, since the simulator
#: generates and meters its signals in the process that answers Modbus, and
#: the busier it is the longer its answers wait (a real meter's do not).
SPEED = 2.0
#: Meter seconds between polls.
GAP = 1.1
#: Polls before the timed ones (imports, caches, first state writes).
WARMUP = 2


@dataclass(frozen=True, slots=True)
class Spread:
    """Median and 95th percentile of a figure per poll."""

    p50: float
    p95: float


@dataclass(frozen=True, slots=True)
class HaPollResult:
    """Figures of one run of polls."""

    home_assistant: str
    """Home Assistant's version."""
    polls: int
    transactions: int
    """Modbus reads of one poll."""
    entities: int
    """Entities of the config entry with a state."""
    writes: float
    """State writes per poll (mean)."""
    changes: float
    """State changes per poll (mean): writes with a new state or new attributes."""
    wall_ms: Spread
    """Wall time of a poll, ms."""
    read_ms: Spread
    """Wall time of the client's read of the map within the poll, ms."""
    cpu_ms: Spread
    """CPU time of Home Assistant's process per poll, ms."""
    read_cpu_ms: Spread
    """The part of it spent in the read of the map, ms."""


def _spread(values: list[float]) -> Spread:
    ordered = sorted(values)
    return Spread(
        statistics.median(ordered),
        ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)],
    )


def meter_files(scratch: Path) -> tuple[Path, Path]:
    """A data directory with the meter's identity (the entry's serial) and
    the S8UTS-241's configuration file, under ``scratch``."""
    data = scratch / "meter"
    data.mkdir()
    with Store.open(data / DATABASE_NAME) as store:
        store.set_meta("serial", SERIAL)
        store.set_meta("mac", MAC)
    config = scratch / "meter.json"
    config.write_text(json.dumps(CONFIG))
    return data, config


@contextmanager
def quiet_logs() -> Iterator[None]:
    """Home Assistant's and the integration's logs at ERROR while a benchmark runs."""
    quiet: dict[str, int] = {}
    for name in ("homeassistant", "custom_components", "s8000_engine", "aiohttp_fast_zlib"):
        quiet[name] = logging.getLogger(name).level
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


@contextmanager
def _meter(scratch: Path) -> Iterator[int]:
    """The local meter, a 24-point S8UTS-241, serving Modbus TCP; yields its port."""
    data, config = meter_files(scratch)
    with serving(data, "--config", str(config), "--speed", str(SPEED), wait_s=30) as port:
        yield port


async def loaded_entry(hass: HomeAssistant, port: int) -> MockConfigEntry:
    """The meter on ``port`` added to ``hass`` as a user adds it, set up."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=SERIAL,
        title=f"S8UTS-241 {SERIAL}",
        data={CONF_TYPE: "tcp", CONF_HOST: "127.0.0.1", CONF_PORT: port, CONF_UNIT_ID: 1},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    if entry.state is not ConfigEntryState.LOADED:
        raise RuntimeError(f"the config entry did not set up: {entry.state} ({entry.reason})")
    return entry


async def _run(polls: int, port: int, config_dir: Path) -> HaPollResult:
    async with _home_assistant(config_dir) as hass:
        entry = await loaded_entry(hass, port)
        try:
            return await _polls(hass, entry, polls)
        finally:
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()


async def _polls(hass: HomeAssistant, entry: MockConfigEntry, polls: int) -> HaPollResult:
    coordinator: S8000ReadingsCoordinator = entry.runtime_data.coordinator
    client = coordinator.client
    entity_ids = [
        e.entity_id for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    ]
    read = client.read
    read_wall: list[float] = []
    read_cpu: list[float] = []

    async def timed_read(*args: Any, **kwargs: Any) -> MeterData:
        began_cpu = time.process_time()
        began = time.perf_counter()
        try:
            return await read(*args, **kwargs)
        finally:
            read_wall.append((time.perf_counter() - began) * 1000)
            read_cpu.append((time.process_time() - began_cpu) * 1000)

    wall: list[float] = []
    cpu: list[float] = []
    reads_wall: list[float] = []
    reads_cpu: list[float] = []
    writes = changes = transactions = 0
    with patch.object(client, "read", timed_read):
        for poll in range(WARMUP + polls):
            await asyncio.sleep(GAP / SPEED)  # the meter meters on: new values
            before = {
                i: (s.last_reported, s.last_updated)
                for i in entity_ids
                if (s := hass.states.get(i)) is not None
            }
            read_wall.clear()
            read_cpu.clear()
            began_cpu = time.process_time()
            began = time.perf_counter()
            await coordinator.async_refresh()
            ended = time.perf_counter()
            ended_cpu = time.process_time()
            if not coordinator.last_update_success:
                raise RuntimeError(f"poll {poll} failed: {coordinator.last_exception}")
            if poll < WARMUP:
                continue
            wall.append((ended - began) * 1000)
            cpu.append((ended_cpu - began_cpu) * 1000)
            # One read per poll, unless the coordinator had to try again.
            reads_wall.append(sum(read_wall))
            reads_cpu.append(sum(read_cpu))
            transactions = max(transactions, coordinator.transactions)
            for i in entity_ids:
                if (state := hass.states.get(i)) is None:
                    continue
                reported, updated = before.get(i, (None, None))
                writes += state.last_reported != reported
                changes += state.last_updated != updated
    return HaPollResult(
        home_assistant=ha_version,
        polls=polls,
        transactions=transactions,
        entities=sum(hass.states.get(i) is not None for i in entity_ids),
        writes=writes / polls,
        changes=changes / polls,
        wall_ms=_spread(wall),
        read_ms=_spread(reads_wall),
        cpu_ms=_spread(cpu),
        read_cpu_ms=_spread(reads_cpu),
    )


@asynccontextmanager
async def _home_assistant(config_dir: Path) -> AsyncIterator[HomeAssistant]:
    """A running Home Assistant with custom integrations enabled."""
    async with async_test_home_assistant(config_dir=str(config_dir)) as hass:
        ha: HomeAssistant = hass
        # As the enable_custom_integrations fixture does: custom_components/
        # is found on sys.path (the checkout, the working directory).
        ha.data.pop(DATA_CUSTOM_COMPONENTS)
        try:
            yield ha
        finally:
            await ha.async_stop(force=True)


def run(polls: int = 80) -> HaPollResult:
    """Set up the meter in Home Assistant and time ``polls`` polls."""
    with (
        quiet_logs(),
        tempfile.TemporaryDirectory(prefix="s8000-bench-ha-") as name,
        _meter(Path(name)) as port,
    ):
        (Path(name) / "ha").mkdir()
        return asyncio.run(_run(polls, port, Path(name) / "ha"))
