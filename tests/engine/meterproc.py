"""Shared test helpers: the installed command, free ports, a running local
meter serving Modbus TCP, waiting on a meter that makes progress, and a clock
the test moves by hand."""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import tty
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
from aiohttp import web

from s8000_engine.modbus.server import Backend, Exc, Handler, ModbusError, TcpServer


def free_port(*hosts: str) -> int:
    """A TCP port that nothing listens on now on each of ``hosts`` (127.0.0.1
    by default).  Another process may take it before it is used: where a
    server can bind port 0 and say which port it got, let it (serving_meter)."""
    hosts = hosts or ("127.0.0.1",)
    while True:
        with socket.socket() as first:
            first.bind((hosts[0], 0))
            port = int(first.getsockname()[1])
            try:
                for host in hosts[1:]:
                    with socket.socket() as other:
                        other.bind((host, port))
            except OSError:
                continue  # taken on another address: another port
            return port


def engine() -> str:
    """The installed ``s8000-engine`` command of this environment."""
    command = shutil.which("s8000-engine", path=str(Path(sys.executable).parent))
    assert command is not None, "the s8000-engine entry point is not installed"
    return command


class StderrLines:
    """A child process's stderr, read line by line in a thread of its own (so
    the child never blocks on a full pipe), and waited on for a line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()  # the process ended

    def wait_for(self, pattern: re.Pattern[str], seconds: float) -> re.Match[str] | None:
        """The first line matching ``pattern``; None if the process ends or
        ``seconds`` pass first."""
        deadline = time.monotonic() + seconds
        with self._seen:
            while True:
                for line in self.lines:
                    if found := pattern.search(line):
                        return found
                left = deadline - time.monotonic()
                if self.process.poll() is not None or left <= 0:
                    return None
                self._seen.wait(min(left, 0.5))

    def text(self) -> str:
        with self._seen:
            return "".join(self.lines)

    def close(self) -> None:
        """Once the process has ended: the last lines read, the pipe closed."""
        self._reader.join(5)
        assert self.process.stderr is not None
        self.process.stderr.close()


SERVING_TCP = re.compile(r"serving Modbus TCP on 127\.0\.0\.1:(\d+)")


@contextlib.contextmanager
def serving_meter(data: Path, *options: str) -> Iterator[int]:
    """``s8000-engine run --simulate`` serving Modbus TCP on 127.0.0.1 at a
    port the system picks (no race with another test for a free port); yields
    the port once the server listens, and stops the meter on exit."""
    process = subprocess.Popen(
        [engine(), "run", "--simulate", "--data", str(data), "--speed", "20",
         *options, "--modbus-tcp", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stderr = StderrLines(process)
    serving = stderr.wait_for(SERVING_TCP, 60)
    if serving is None:
        process.kill()
        process.wait()
        stderr.close()
        pytest.fail(f"the meter did not start: {stderr.text()}")
    try:
        yield int(serving.group(1))
    finally:
        process.terminate()
        process.wait(10)
        stderr.close()


class Progress:
    """A deadline for waiting on a meter that moves on while the meter makes
    progress: a slow (loaded) machine is not a failure, a stalled meter is.
    ``seen(value)`` after each poll; ``value`` is what should keep changing."""

    def __init__(self, what: str, stall_s: float = 90.0, limit_s: float = 900.0) -> None:
        self.what = what
        self.stall_s = stall_s
        now = time.monotonic()
        self._limit = now + limit_s
        self._deadline = now + stall_s
        self._last: object = None

    def seen(self, value: object) -> None:
        now = time.monotonic()
        if value != self._last:
            self._last = value
            self._deadline = now + self.stall_s
        assert now < self._deadline, f"{self.what}: nothing moved in {self.stall_s} s (at {value})"
        assert now < self._limit, f"{self.what}: still not done (at {value})"


class ManualClock:
    """Meter time that moves only when told to."""

    speed = 1e9

    def __init__(self, now: float) -> None:
        self.value = now
        self._step = 0.0

    def now(self) -> float:
        return self.value

    def take_step(self) -> float:
        step, self._step = self._step, 0.0
        return step

    def step(self, seconds: float) -> None:
        self.value += seconds
        self._step += seconds


class Image(Backend):
    """A device serving a fixed block of registers (and exception 02 elsewhere)."""

    def __init__(self, base: int, words: Sequence[int]) -> None:
        self.base = base
        self.words = list(words)

    async def read(self, address: int, count: int) -> list[int]:
        if address < self.base or address + count > self.base + len(self.words):
            raise ModbusError(Exc.ILLEGAL_ADDRESS)
        return self.words[address - self.base : address - self.base + count]


@contextlib.asynccontextmanager
async def serving(backend: Backend) -> AsyncIterator[int]:
    """A Modbus TCP server on loopback in the test's own event loop; yields its port."""
    server = TcpServer(Handler(backend))
    _host, port = await server.start("127.0.0.1", 0)
    try:
        yield port
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def serving_app(app: web.Application) -> AsyncIterator[int]:
    """An aiohttp application served on 127.0.0.1 at a port the system picks;
    yields the port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


class Bus:
    """Pseudo-terminals joined like devices on one RS-485 pair: what one writes,
    every other one reads."""

    def __init__(self, drops: int) -> None:
        self.ends = [os.openpty() for _ in range(drops)]
        for master, slave in self.ends:
            tty.setraw(master)
            tty.setraw(slave)
        self.paths = [os.ttyname(slave) for _, slave in self.ends]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        masters = [master for master, _ in self.ends]
        while not self._stop.is_set():
            ready, _, _ = select.select(masters, [], [], 0.05)
            for fd in ready:
                with contextlib.suppress(OSError):
                    data = os.read(fd, 4096)
                    for other in masters:
                        if other != fd:
                            os.write(other, data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for master, slave in self.ends:
            os.close(master)
            os.close(slave)


class NullModem(Bus):
    """Two pseudo-terminals joined like a null-modem cable: what is written to
    one device comes out of the other (the test's socat)."""

    def __init__(self) -> None:
        super().__init__(2)


def uncovered_environ() -> dict[str, str]:
    """This process's environment without coverage's subprocess measurement:
    coverage itself loads sqlite3, which the light-import checks look for."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
