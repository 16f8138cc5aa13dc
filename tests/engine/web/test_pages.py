"""The local meter's PowerHawk-style pages, read by the web-page link: in
process against the registers rendered from the same snapshot, and from a
running ``s8000-engine run --pages`` beside its Modbus server."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from s8000_engine.client import S8000ConnectionError, connect_tcp
from s8000_engine.client.client import _decode_some
from s8000_engine.client.webpages import WebPagesClient
from s8000_engine.config.meter import meter_config
from s8000_engine.local.image import MeterSnapshot, render
from s8000_engine.local.meter import DEMO_CONFIG, LocalMeter, SimulatedClock
from s8000_engine.local.simulate import PanelSimulator
from s8000_engine.storage.store import Store
from s8000_engine.web.pages import PagesView, PointRow, create_pages_app, pages_view
from tests.engine.meterproc import StderrLines, engine, serving_app

SERVING_PAGES = re.compile(r"serving the PowerHawk pages on http://127\.0\.0\.1:(\d+)/")
SERVING_TCP = re.compile(r"serving Modbus TCP on 127\.0\.0\.1:(\d+)")


def _snapshots(tmp_path: Path, seconds: int) -> tuple[LocalMeter, list[MeterSnapshot]]:
    """The demo meter run in process for ``seconds``, and every snapshot it published."""
    config = meter_config(DEMO_CONFIG)
    store = Store.open(tmp_path / "meter.db")
    clock = SimulatedClock(1000.0, 1_700_000_000.0)
    meter = LocalMeter(config, store, PanelSimulator(config, sample_rate=4000), clock,
                       sample_rate=4000)  # fmt: skip
    seen: list[MeterSnapshot] = []
    meter.add_snapshot_listener(seen.append)
    meter.start()
    meter.run(seconds=seconds)
    return meter, seen


async def test_the_pages_show_what_the_registers_of_the_same_snapshot_hold(
    tmp_path: Path,
) -> None:
    meter, seen = _snapshots(tmp_path, 4)
    assert len(seen) == 4  # one per metered second
    snapshot = seen[-1]
    view = pages_view(snapshot)
    assert view is not None
    regmap = meter.regmap
    image = render(regmap, snapshot)
    values = _decode_some(regmap.fields, dict(enumerate(image, start=regmap.base)), {})
    async with (
        aiohttp.ClientSession() as session,
        serving_app(create_pages_app(lambda: view)) as port,
    ):
        client = WebPagesClient(session, "127.0.0.1", port)
        identity = await client.identify()
        data = await client.read()
    meter.store.close()
    assert identity.points == len(meter.config.points) == 8
    assert client.title == f"S8UTS-083 {meter.serial}"
    assert client.point_names == tuple(p.name for p in meter.config.points)
    for point in data.points:
        n = point.number
        labels = [p.label for p in regmap.chain if p.point == n - 1]
        # Energies: the register (Wh, mWh resolution) truncated to the Wh.
        for shown, register in (
            (point.kwh_delivered, values[f"s8000.Pt{n}WhImp"]),
            (point.kwh_received, values[f"s8000.Pt{n}WhExp"]),
            (point.kvarh_received, values[f"s8000.Pt{n}VArhExp"]),
        ):
            assert shown is not None
            assert shown <= register / 1000 < shown + 0.001
        # Power: within half the register's step (its scale factor) and the page's 0.05.
        label = labels[0]
        for shown, register, sf in (
            (point.w, values[f"{label}.W"], values[f"{label}.W_SF"]),
            (point.var, values[f"{label}.VAR"], values[f"{label}.VAR_SF"]),
            (point.va, values[f"{label}.VA"], values[f"{label}.VA_SF"]),
        ):
            assert shown == pytest.approx(register, abs=10**sf / 2 + 0.05)
    assert any(point.kwh_delivered for point in data.points)  # the demo panel meters


async def test_names_are_escaped_and_nothing_else_is_served() -> None:
    view = PagesView("Tower <1> & 2", (PointRow("<b>A&B</b>", -5.0, 1.0, 6.0, 1234, 0, 7),))
    async with (
        aiohttp.ClientSession() as session,
        serving_app(create_pages_app(lambda: view)) as port,
    ):
        client = WebPagesClient(session, "127.0.0.1", port)
        await client.identify()
        data = await client.read()
        base = f"http://127.0.0.1:{port}"
        for path in ("/login", "/api/live", "/rt/active2.htm", "/static/app.js"):
            async with session.get(base + path) as response:
                assert response.status == 404, path
        async with session.post(base + "/nav.htm", data=b"x") as response:
            assert response.status == 405
        async with session.get(base + "/rt/active1.htm") as response:
            assert response.headers["Cache-Control"] == "no-store"
    assert client.title == "Tower <1> & 2"
    assert client.point_names == ("<b>A&B</b>",)
    (point,) = data.points
    assert (point.w, point.kwh_delivered, point.kvarh_received, point.kwh_received) == (
        -5.0, 1.234, 0.007, 0.0,
    )  # fmt: skip


async def test_before_the_first_second_the_real_time_pages_are_unavailable() -> None:
    async with (
        aiohttp.ClientSession() as session,
        serving_app(create_pages_app(lambda: None)) as port,
    ):
        client = WebPagesClient(session, "127.0.0.1", port)
        with pytest.raises(S8000ConnectionError, match="HTTP 503"):
            await client.identify()


@pytest.fixture
def pages_meter(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """``run --simulate`` serving Modbus TCP and the pages on ports it picks:
    yields (pages port, Modbus port)."""
    process = subprocess.Popen(
        [engine(), "run", "--simulate", "--data", str(tmp_path / "data"), "--speed", "20",
         "--modbus-tcp", "127.0.0.1:0", "--pages", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stderr = StderrLines(process)
    try:
        pages = stderr.wait_for(SERVING_PAGES, 60)
        modbus = stderr.wait_for(SERVING_TCP, 5)
        if pages is None or modbus is None:
            pytest.fail(f"the meter did not start: {stderr.text()}")
        yield int(pages.group(1)), int(modbus.group(1))
    finally:
        process.terminate()
        process.wait(10)
        stderr.close()


async def test_a_running_meter_serves_its_pages_beside_modbus(
    pages_meter: tuple[int, int],
) -> None:
    pages_port, modbus_port = pages_meter
    async with aiohttp.ClientSession() as session:
        client = WebPagesClient(session, "127.0.0.1", pages_port)
        for _ in range(600):  # the first second may not be metered yet (503)
            with contextlib.suppress(S8000ConnectionError):
                await client.identify()
                break
            await asyncio.sleep(0.05)
        from_pages = await client.read()
    async with connect_tcp("127.0.0.1", modbus_port) as modbus:
        identity = await modbus.identify()
        from_registers = await modbus.read()
    assert client.title == f"{identity.model} {identity.serial}"
    assert len(from_pages.points) == identity.points == 8
    for shown, later in zip(from_pages.points, from_registers.points, strict=True):
        assert shown.kwh_delivered is not None
        assert later.kwh_delivered is not None
        # Read a moment later, the register has only grown since.
        assert shown.kwh_delivered <= later.kwh_delivered


def test_a_wrong_pages_address_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [engine(), "run", "--simulate", "--data", str(tmp_path / "data"), "--pages", "host:x"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--pages" in done.stderr
    assert "Traceback" not in done.stderr
