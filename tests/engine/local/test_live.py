"""The live view: what the front panel and the web page show, taken between seconds."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from s8000_engine.config.meter import meter_config
from s8000_engine.local.changes import Origin
from s8000_engine.local.live import LiveView
from s8000_engine.local.meter import DEMO_CONFIG, LocalMeter, SimulatedClock
from s8000_engine.local.simulate import PanelSimulator
from s8000_engine.storage.store import Store


def _meter(tmp_path: Path) -> LocalMeter:
    config = meter_config(DEMO_CONFIG)
    store = Store.open(tmp_path / "meter.db")
    clock = SimulatedClock(1000.0, 1_700_000_000.0)
    meter = LocalMeter(config, store, PanelSimulator(config, sample_rate=4000), clock,
                       sample_rate=4000)  # fmt: skip
    meter.start()
    return meter


def test_the_view_follows_the_registers_and_readings(tmp_path: Path) -> None:
    meter = _meter(tmp_path)
    assert meter.live is not None
    assert meter.live.points[0].watts is None
    seen: list[LiveView] = []
    remove = meter.add_listener(seen.append)
    meter.run(seconds=3)
    remove()
    meter.run(seconds=1)
    assert len(seen) == 3
    view = meter.live
    assert view is not None
    assert view is not seen[-1]
    whole = meter.meter.energy.whole
    for point in view.points:
        assert point.kwh_delivered == whole[point.number - 1][0] / 1e6
        assert point.kvarh_received == whole[point.number - 1][3] / 1e6
        assert point.watts == pytest.approx(float(meter.meter.readings.power[point.number - 1]))
        assert [p.phase for p in point.phases] == ["A", "B", "C"]
        # (below the no-load threshold the point reads 0 while its elements do not)
        assert sum(p.watts or 0 for p in point.phases) == pytest.approx(point.watts, abs=1.0)
    assert set(view.voltages) == {"A", "B", "C"}
    assert all(110 < (v or 0) < 130 for v in view.voltages.values())
    data = view.as_dict()
    assert data["points"][0]["phases"][0]["channel"] == "P1-1"
    assert data["serial"] == meter.serial
    meter.store.close()


def test_a_submitted_task_runs_between_seconds_in_the_meter_thread(tmp_path: Path) -> None:
    meter = _meter(tmp_path)
    threads: list[str] = []

    def task() -> int:
        threads.append(threading.current_thread().name)
        meter.apply_change({"points": {"0": {"ct_primary": 200.0}}}, origin=Origin.WEB, user="t")
        return 7

    def failing() -> None:
        raise ValueError("refused")

    done = meter.submit(task)
    failed = meter.submit(failing)
    worker = threading.Thread(target=meter.run, kwargs={"seconds": 1}, name="meter")
    worker.start()
    worker.join()
    assert done.result(timeout=0) == 7
    assert threads == ["meter"]
    with pytest.raises(ValueError, match="refused"):
        failed.result(timeout=0)
    assert meter.live is not None
    assert meter.live.points[0].ct_primary_a == 200.0
    meter.store.close()
