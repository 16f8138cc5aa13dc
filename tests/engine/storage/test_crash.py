"""kill -9 the running local meter at random moments, many times.

``s8000-engine run --simulate`` records 1-minute intervals with simulated
time running 60 times faster (one interval per second), and prints a JSON
line after every committed second.  The test kills it with SIGKILL at a
random moment, starts it again, and checks after every restart:

* the restored registers are those of the last committed second: never
  below what was last reported (nothing committed is lost, no register goes
  back) and at most one second of metering above it (the second committed
  just before the kill) — so a crash loses at most the second being metered;
* every interval committed before the crash is still there, unchanged, and
  the interval keys are contiguous (no hole, no duplicate), with registers
  that never go back and deltas that add up;
* the registers never went backwards in any reported second.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from s8000_engine.storage.store import Flag, IntervalRecord, Store

CRASHES = int(os.environ.get("S8000_CRASHES", "40"))


def _command(data: Path) -> list[str]:
    command = shutil.which("s8000-engine", path=str(Path(sys.executable).parent))
    assert command is not None
    return [
        command, "run", "--simulate", "--data", str(data), "--seed", "7", "--speed", "60",
        "--interval", "1", "--start", "2026-11-25T06:00:00Z", "--progress",
    ]  # fmt: skip


class Run:
    """One life of the local meter, its output read by a thread."""

    def __init__(self, data: Path) -> None:
        self.process = subprocess.Popen(
            _command(data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(json.loads(line))

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.lines) < count:
            if self.process.poll() is not None:
                assert self.process.stderr is not None
                pytest.fail(f"the meter exited: {self.process.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("the meter did not report in time")
            time.sleep(0.01)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._reader.join(timeout=5)
        for pipe in (self.process.stdout, self.process.stderr):
            assert pipe is not None
            pipe.close()


def _check_sequence(records: list[IntervalRecord]) -> None:
    if not records:
        return
    starts = [r.start for r in records]
    assert starts == list(range(starts[0], starts[-1] + 60, 60)), "an interval is missing"
    for before, after in itertools.pairwise(records):
        for p, q in zip(before.points, after.points, strict=True):
            for k in range(4):
                assert q.registers[k] >= p.registers[k], "a register went back"
                assert q.registers[k] - p.registers[k] == q.deltas[k], "deltas do not add up"


def _flat(registers: list[list[int]]) -> list[int]:
    return [value for point in registers for value in point]


def test_kill_9_at_random_moments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(2026)
    committed: dict[int, IntervalRecord] = {}
    last_reported: list[int] | None = None
    largest_second = [0] * 64  # per register, the most one second added
    for _ in range(CRASHES):
        run = Run(tmp_path)
        run.wait_for(2)
        start = run.lines[0]
        assert start["event"] == "start"
        restored = _flat(start["registers"])
        if last_reported is not None:
            assert start["restored"]
            for k, (before, now) in enumerate(zip(last_reported, restored, strict=True)):
                assert now >= before, "the restart lost committed energy"
                assert now - before <= largest_second[k] * 1.5 + 2, "more than one second appeared"
        time.sleep(rng.uniform(0.2, 2.0))
        run.kill()
        seconds = [_flat(line["registers"]) for line in run.lines if line["event"] == "second"]
        previous = restored
        for values in seconds:
            for k, (a, b) in enumerate(zip(previous, values, strict=True)):
                assert b >= a, "a register went back"
                largest_second[k] = max(largest_second[k], b - a)
            previous = values
        if seconds:
            last_reported = seconds[-1]
        with Store.open(tmp_path) as store:
            records = store.intervals()
        for record in records:
            if record.start in committed:
                kept = committed[record.start]
                assert record.points == kept.points, "a committed interval changed"
        missing = set(committed) - {r.start for r in records}
        assert not missing, f"committed intervals vanished: {sorted(missing)}"
        committed = {r.start: r for r in records}
        _check_sequence(records)
    assert len(committed) >= CRASHES // 2, "the meter hardly recorded anything"
    # Every restart leaves an outage of about a second of real time, a minute
    # of meter time: the interval it falls in is flagged.
    outages = sum(1 for r in committed.values() if r.flags & Flag.POWER_OFF)
    assert outages >= CRASHES // 2, "the outages left no mark in the interval data"
    with capsys.disabled():
        print(
            f"\n{CRASHES} kill -9 crashes: {len(committed)} intervals committed, "
            f"{outages} flagged POWER_OFF, none lost or duplicated; "
            f"largest energy a restart could have lost: one metered second "
            f"({max(largest_second)} mWh on the busiest register)"
        )
    assert sum(largest_second) > 0
