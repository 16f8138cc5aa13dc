"""Polling a 24-point meter over Modbus: transactions, bytes and latency.

The server is the local meter's own (``s8000_engine.modbus``), serving the
register image of a 24-point S8UTS-241 rendered once; the clients are plain
asyncio sockets that read the whole map from 40000 to its end in reads of
125 registers, as ``s8000_engine.client`` does.

* TCP: one full poll's transactions and bytes on the wire (MBAP included);
  latency per poll, p50 and p99, with 1 and with 50 clients polling at once.
* RTU at 19200 baud 8E1 on a pseudo-terminal pair (which moves bytes
  instantly): the measured poll time against the wire-time limit, bytes × 11
  bits / 19200 plus the t3.5 silence after every frame, what a real 19200
  baud line would take at best.
* RTU again, for what Home Assistant's default entities need (energy
  delivered and received and power per point, and what the integration's
  guards and repairs read every poll): the reads ``S8000Client.read`` plans
  for that selection on an RS-485 line (``FRAME_COST_RTU``), recorded from
  the client itself against the same image over TCP, then sent the same way
  as the full poll's.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import struct
import time
import tty
from dataclasses import dataclass
from typing import Any, Final

from custom_components.s8000.coordinator import POLL_METER, POLL_POINT
from s8000_engine.client import FRAME_COST_RTU, S8000Client, Selection, connect_tcp
from s8000_engine.config.meter import meter_config
from s8000_engine.local.image import MeterSnapshot, build_map, render
from s8000_engine.modbus.backend import MeterBackend
from s8000_engine.modbus.server import Handler, RtuServer, TcpServer, crc16, frame_gap, rtu_frame

CONFIG = {
    "model": "S8UTS-241",
    "service": "3p4w",
    "points": [{"ct_primary": 100, "phases": ["ABC"[n % 3]]} for n in range(24)],
}


#: What a poll of Home Assistant's default entities reads: the integration's
#: own needs every poll, and the power the default entities add per point.
DEFAULT_ENTITIES: Final = Selection.of(
    POLL_METER, dict.fromkeys(range(1, len(CONFIG["points"]) + 1), (*POLL_POINT, "w"))
)


@dataclass(frozen=True, slots=True)
class PollResult:
    """Figures of one transport."""

    name: str
    clients: int
    transactions: int
    bytes_on_wire: int
    p50_ms: float
    p99_ms: float
    wire_limit_ms: float | None = None


def _backend() -> tuple[MeterBackend, list[tuple[int, int]]]:
    config = meter_config(CONFIG)
    regmap = build_map(config)
    backend = MeterBackend(regmap, model="S8UTS-241", serial="0212060212", firmware="1.60")
    backend.update(render(regmap, MeterSnapshot(config, serial="0212060212", utc=1.8e9)))
    reads = [(start, min(125, regmap.end - start)) for start in range(regmap.base, regmap.end, 125)]
    return backend, reads


async def _tcp_client(
    port: int, reads: list[tuple[int, int]], polls: int
) -> tuple[list[float], int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies = []
    wire = 0
    for poll in range(polls):
        began = time.perf_counter()
        for number, (address, count) in enumerate(reads):
            request = struct.pack(">HHHBBHH", number, 0, 6, 1, 3, address, count)
            writer.write(request)
            header = await reader.readexactly(7)
            body = await reader.readexactly(struct.unpack(">H", header[4:6])[0] - 1)
            if poll == 0:
                wire += len(request) + 7 + len(body)
        latencies.append((time.perf_counter() - began) * 1000)
    writer.close()
    return latencies, wire


async def _tcp(clients: int, polls: int) -> PollResult:
    backend, reads = _backend()
    server = TcpServer(Handler(backend))
    _, port = await server.start("127.0.0.1", 0)
    try:
        results = await asyncio.gather(*(_tcp_client(port, reads, polls) for _ in range(clients)))
    finally:
        await server.close()
    latencies = sorted(x for r in results for x in r[0])
    return PollResult(
        "Modbus TCP, loopback",
        clients,
        len(reads),
        results[0][1],
        statistics.median(latencies),
        latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)],
    )


class _Recording:
    """A unit that records the register reads going through it."""

    def __init__(self, unit: Any) -> None:
        self._unit = unit
        self.reads: list[tuple[int, int]] = []

    async def read_holding_registers(self, address: int, count: int) -> list[int]:
        self.reads.append((address, count))
        words: list[int] = await self._unit.read_holding_registers(address, count)
        return words

    def __getattr__(self, name: str) -> Any:
        return getattr(self._unit, name)


async def _planned_reads(selection: Selection) -> list[tuple[int, int]]:
    """The reads the client plans for ``selection`` on an RS-485 line, once
    it knows the scale factors (the first poll reads them; later ones do not)."""
    backend, _ = _backend()
    server = TcpServer(Handler(backend))
    _, port = await server.start("127.0.0.1", 0)
    try:
        async with connect_tcp("127.0.0.1", port) as linked:
            recording = _Recording(linked.unit)
            client = S8000Client(recording)
            await client.read(selection, frame_cost=FRAME_COST_RTU)
            recording.reads.clear()
            await client.read(selection, frame_cost=FRAME_COST_RTU)
    finally:
        await server.close()
    return recording.reads


async def _rtu(
    polls: int, planned: list[tuple[int, int]] | None = None, what: str = ""
) -> PollResult:
    backend, reads = _backend()
    reads = planned or reads
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    server = RtuServer(Handler(backend), os.ttyname(slave), unit_id=1, baudrate=19200, parity="E")
    await server.start()
    loop = asyncio.get_running_loop()
    os.set_blocking(master, False)
    latencies = []
    wire = 0
    try:
        for poll in range(polls):
            began = time.perf_counter()
            for address, count in reads:
                request = rtu_frame(1, struct.pack(">BHH", 3, address, count))
                os.write(master, request)
                expected = 5 + 2 * count
                data = b""
                while len(data) < expected:
                    ready = asyncio.Event()
                    loop.add_reader(master, ready.set)
                    await asyncio.wait_for(ready.wait(), 5)
                    loop.remove_reader(master)
                    data += os.read(master, 4096)
                assert crc16(data[:-2]) == struct.unpack("<H", data[-2:])[0]
                if poll == 0:
                    wire += len(request) + len(data)
            latencies.append((time.perf_counter() - began) * 1000)
    finally:
        await server.close()
        os.close(master)
        os.close(slave)
    frames = 2 * len(reads)
    limit = (wire * 11 / 19200 + frames * frame_gap(19200)) * 1000
    latencies.sort()
    return PollResult(
        f"Modbus RTU, 19200 baud 8E1 (pty){what}",
        1,
        len(reads),
        wire,
        statistics.median(latencies),
        latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)],
        limit,
    )


def run(polls: int = 200) -> list[PollResult]:
    """TCP with 1 and 50 clients, RTU, and RTU for the default entities."""
    planned = asyncio.run(_planned_reads(DEFAULT_ENTITIES))
    return [
        asyncio.run(_tcp(1, polls)),
        asyncio.run(_tcp(50, max(10, polls // 10))),
        asyncio.run(_rtu(max(5, polls // 20))),
        asyncio.run(_rtu(max(5, polls // 20), planned, ", default entities only")),
    ]
