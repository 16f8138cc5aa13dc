"""The engine's local meter in a process of its own, for the benchmarks that
talk to it over Modbus TCP on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def engine() -> str:
    """The ``s8000-engine`` command installed next to this Python."""
    command = shutil.which("s8000-engine", path=str(Path(sys.executable).parent))
    if command is None:
        raise RuntimeError("the s8000-engine entry point is not installed next to Python")
    return command


@contextmanager
def serving(
    data: Path, *options: str, wait_s: float = 60.0, also: Sequence[int] = ()
) -> Iterator[int]:
    """``s8000-engine run --simulate --data DATA OPTIONS`` serving Modbus TCP on
    127.0.0.1, once it accepts connections (and on the ports ``also``, e.g. its
    web interface's); yields its Modbus port, stops it on exit."""
    port = free_port()
    process = subprocess.Popen(
        [engine(), "run", "--simulate", "--data", str(data), *options,
         "--modbus-tcp", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + wait_s
        waiting = [port, *also]
        while waiting:
            try:
                socket.create_connection(("127.0.0.1", waiting[0]), timeout=0.2).close()
                waiting.pop(0)
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError(
                        f"the local meter did not start: {process.communicate()[1]}"
                    ) from None
                time.sleep(0.05)
        yield port
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
