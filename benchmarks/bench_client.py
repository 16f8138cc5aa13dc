"""The client's own CPU for one read of a 24-point meter, in process.

The meter's register image (the local meter's renderer, an S8UTS-241) is
answered by a unit that hands out its slices with no socket and no server, so
what is timed is the client alone: planning, decoding every field through its
profile, the checks, and building :class:`~s8000_engine.client.MeterData`.
Two reads: the whole map, and what Home Assistant's default entities need
(``bench_modbus.DEFAULT_ENTITIES``).  CPU time (``time.process_time``), the
best of 7 runs of 300 reads each, after 50 reads to warm up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from modbus_connection import ModbusUnit

from benchmarks.bench_modbus import CONFIG, DEFAULT_ENTITIES
from s8000_engine.client import S8000Client
from s8000_engine.config.meter import meter_config
from s8000_engine.local.image import MeterSnapshot, build_map, render

SERIAL = "0212060212"


@dataclass(frozen=True, slots=True)
class ClientCpu:
    """CPU milliseconds per read."""

    full_ms: float
    default_entities_ms: float


class _Image:
    """A unit that answers from a register image, in process."""

    def __init__(self, base: int, image: list[int]) -> None:
        self.base, self.image = base, image

    async def read_holding_registers(self, address: int, count: int) -> list[int]:
        return self.image[address - self.base : address - self.base + count]


async def _best(read: Callable[[], Awaitable[Any]], reads: int, runs: int) -> float:
    for _ in range(50):
        await read()
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        for _ in range(reads):
            await read()
        best = min(best, (time.process_time() - start) / reads * 1000.0)
    return best


async def _run(reads: int, runs: int) -> ClientCpu:
    config = meter_config(CONFIG)
    regmap = build_map(config)
    # Registers that are not zero, so every energy decodes a real number.
    registers = [[1_000 * (n + 1)] * 8 for n in range(len(config.points))]
    snapshot = MeterSnapshot(config, serial=SERIAL, utc=1_795_600_000, registers=registers)
    unit = _Image(regmap.base, render(regmap, snapshot))
    client = S8000Client(cast("ModbusUnit", unit))
    await client.identify()
    return ClientCpu(
        await _best(client.read, reads, runs),
        await _best(lambda: client.read(DEFAULT_ENTITIES), reads, runs),
    )


def run(reads: int = 300, runs: int = 7) -> ClientCpu:
    """CPU per read of the whole map, and of the default entities' selection."""
    return asyncio.run(_run(reads, runs))
