"""Shared test helpers: the installed command, free ports, a running local
meter serving Modbus TCP, and a clock the test moves by hand."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from s8000_engine.modbus.server import Backend, Exc, ModbusError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def engine() -> str:
    """The installed ``s8000-engine`` command of this environment."""
    command = shutil.which("s8000-engine", path=str(Path(sys.executable).parent))
    assert command is not None, "the s8000-engine entry point is not installed"
    return command


@contextlib.contextmanager
def serving_meter(data: Path, port: int, *options: str) -> Iterator[int]:
    """``s8000-engine run --simulate`` serving Modbus TCP on 127.0.0.1:port,
    once it accepts connections; stopped on exit."""
    process = subprocess.Popen(
        [engine(), "run", "--simulate", "--data", str(data), "--speed", "20",
         *options, "--modbus-tcp", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the meter did not start: {process.communicate()[1]}")
            time.sleep(0.1)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(10)


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
