"""The local meter's web interface: what its pages cost a 24-point meter.

A fresh store holds ``bench_backfill``'s 120 days of 15-minute intervals of
a 24-point S8UTS-241 (the map of ``bench_modbus``), ending at the last full
hour.  The engine's local meter (``s8000-engine run --simulate --web``, at
the wall clock's speed, in a process of its own, with its Modbus TCP unused)
serves it on loopback, with a password set from the command line.  A client logs in and times, one
request after another: ``GET /api/live`` (the live view of every point), the
month chart of every point (``/api/intervals?span=month&point=all``: 30 days
of records summed into daily buckets), the same month's CSV, and the login
itself (scrypt at its stored cost, n = 2^15).  Reported: p50 and p95 wall
time and the response size.

Separately, in this process, the live view a real ``LocalMeter`` of that
model takes after every metered second (:func:`live_view`), which is what
the web page and the front panel add to the meter's own work: its CPU time
per second of metering.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path

from benchmarks.bench_backfill import HOUR, _fill
from benchmarks.bench_modbus import CONFIG
from benchmarks.bench_storage import SCRATCH
from benchmarks.localmeter import engine, free_port, serving
from s8000_engine.config.meter import meter_config
from s8000_engine.local.live import live_view
from s8000_engine.local.meter import LocalMeter, SimulatedClock
from s8000_engine.local.simulate import PanelSimulator
from s8000_engine.storage.store import DATABASE_NAME, Store

PASSWORD = "benchmark password"


@dataclass(frozen=True, slots=True)
class Timing:
    """One kind of request."""

    name: str
    requests: int
    p50_ms: float
    p95_ms: float
    bytes: int
    """The response's size (0: not measured)."""


@dataclass(frozen=True, slots=True)
class WebRun:
    """Every request kind, and the live view's cost."""

    timings: list[Timing]
    live_view_ms: float
    """CPU time of one live view of a 24-point meter, ms (per metered second)."""


def _timing(name: str, samples: list[float], size: int) -> Timing:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return Timing(name, len(samples), statistics.median(ordered), p95, size)


def _live_view_cost(seconds: int) -> float:
    """CPU ms of one live_view of a metering 24-point LocalMeter."""
    config = meter_config(CONFIG)
    with tempfile.TemporaryDirectory(dir=SCRATCH, prefix="web-live-") as name:
        store = Store.open(Path(name) / DATABASE_NAME)
        clock = SimulatedClock(1000.0, 1_780_000_000.0)
        meter = LocalMeter(config, store, PanelSimulator(config, sample_rate=4000), clock,
                           sample_rate=4000)  # fmt: skip
        meter.start()
        meter.run(seconds=2)  # readings exist
        began = time.process_time()
        for _ in range(seconds):
            live_view(meter)
        spent = time.process_time() - began
        store.close()
    return spent / seconds * 1000


def run(requests: int = 100, logins: int = 5) -> WebRun:
    """Fill 120 days, serve them with --web, time ``requests`` of each kind."""
    end = math.floor(time.time() / HOUR) * HOUR
    SCRATCH.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=SCRATCH, prefix="web-") as name:
        data = Path(name) / "meter"
        data.mkdir()
        config = Path(name) / "meter.json"
        config.write_text(json.dumps(CONFIG))
        _fill(data, 120, end)
        subprocess.run(
            [engine(), "web-password", "--data", str(data)],
            input=PASSWORD + "\n", text=True, check=True, capture_output=True,
        )  # fmt: skip
        port = free_port()
        with serving(
            data, "--config", str(config), "--retention-days", "130",
            "--web", f"127.0.0.1:{port}", also=[port],
        ):  # fmt: skip
            timings = _requests(f"http://127.0.0.1:{port}", requests, logins)
    return WebRun(timings, _live_view_cost(200 if requests >= 100 else 20))


def _requests(url: str, requests: int, logins: int) -> list[Timing]:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_body = json.dumps({"username": "admin", "password": PASSWORD}).encode()
    login_times = []
    for _ in range(logins):
        request = urllib.request.Request(url + "/api/login", data=login_body, method="POST")
        request.add_header("Content-Type", "application/json")
        began = time.perf_counter()
        with opener.open(request, timeout=30) as response:
            response.read()
        login_times.append((time.perf_counter() - began) * 1000)
    timings = [_timing("POST /api/login (scrypt)", login_times, 0)]
    # The meter has metered a second (its live view exists).
    for _ in range(100):
        try:
            opener.open(url + "/api/live", timeout=5).close()
            break
        except OSError:
            time.sleep(0.1)
    for name, path in (
        ("GET /api/live", "/api/live"),
        ("GET /api/intervals (month, all points)", "/api/intervals?span=month&point=all"),
        ("GET /api/intervals.csv (month, all points)", "/api/intervals.csv?span=month&point=all"),
    ):
        samples = []
        size = 0
        for _ in range(requests):
            began = time.perf_counter()
            with opener.open(url + path, timeout=30) as response:
                size = len(response.read())
            samples.append((time.perf_counter() - began) * 1000)
        timings.append(_timing(name, samples, size))
    return timings
