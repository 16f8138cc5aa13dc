"""The local meter's memory: intervals, restarts, clock steps, retention, full disks."""

from __future__ import annotations

import itertools
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from s8000_engine.config.meter import MeterConfig, meter_config
from s8000_engine.exceptions import StorageError
from s8000_engine.local.meter import LocalMeter, SimulatedPulses
from s8000_engine.metering.synth import ZERO, Signal, sample_meter
from s8000_engine.storage.store import Flag, IntervalRecord, Store
from tests.engine.meterproc import ManualClock

T0 = 1_795_564_800  # 2026-11-25T00:00:00Z
WATTS = 120.0 * 10.0  # 10 A on a 100 A CT at 120 V, PF 1


def config(points: int = 1) -> MeterConfig:
    return meter_config(
        {
            "model": "S8UTS-241",
            "service": "1p2w",
            "points": [
                {"name": f"C{n}", "ct_primary": 100, "phases": ["A"]} for n in range(points)
            ],
            "demand": {"type": "block", "interval_minutes": 1},
        }
    )


class ConstantLoad:
    """10 A at PF 1 on every configured point, phase-continuous in UTC time."""

    def __init__(self, meter_config: MeterConfig) -> None:
        self.channels = [ZERO] * meter_config.model.channel_count
        for n in range(len(meter_config.points)):
            self.channels[n] = Signal(0.01)

    def samples(self, start: float, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        return sample_meter(
            [Signal(120.0), ZERO, ZERO],
            self.channels,
            frequency=60.0,
            sample_rate=8000,
            samples=int(8000 * seconds),
            start=round(start * 8000),
        )


def make(store: Store, clock: ManualClock, points: int = 1, **options: object) -> LocalMeter:
    cfg = config(points)
    meter = LocalMeter(cfg, store, ConstantLoad(cfg), clock, recording_minutes=1, **options)  # type: ignore[arg-type]
    meter.start()
    return meter


def run(meter: LocalMeter, clock: ManualClock, seconds: int) -> None:
    for _ in range(seconds):
        clock.value += 1
        meter.step()


def check_sequence(records: list[IntervalRecord]) -> None:
    """Contiguous keys, registers that never go back, deltas that add up."""
    starts = [r.start for r in records]
    assert starts == list(range(starts[0], starts[-1] + 60, 60)), "missing or extra interval"
    for before, after in itertools.pairwise(records):
        for p_before, p_after in zip(before.points, after.points, strict=True):
            for k in range(4):
                assert p_after.registers[k] >= p_before.registers[k]
                assert p_after.registers[k] - p_before.registers[k] == p_after.deltas[k]


def test_intervals_are_aligned_flagged_and_add_up(tmp_path: Path) -> None:
    clock = ManualClock(T0 + 10)
    with Store.open(tmp_path) as store:
        meter = make(store, clock)
        run(meter, clock, 200)
        records = store.intervals()
    assert [r.start for r in records] == [T0, T0 + 60, T0 + 120]
    check_sequence(records)
    first, full = records[0], records[1]
    assert first.flags == Flag.POWER_OFF  # the meter started 10 s into it
    assert first.covered == pytest.approx(50, abs=0.3)
    assert full.flags == Flag(0)
    assert full.covered == pytest.approx(60, abs=0.3)
    point = full.points[0]
    # 1200 W for 60 s = 20 Wh, ± one window of attribution.
    assert point.deltas[0] == pytest.approx(20_000, abs=WATTS * 0.2 / 3.6)
    assert point.power_w[0] == pytest.approx(WATTS, rel=1e-3)
    assert point.power_w[1] is None
    assert point.current_a[0] == pytest.approx(10.0, rel=1e-3)
    assert full.voltage[0] == pytest.approx(120.0, rel=1e-4)
    assert full.frequency == pytest.approx(60.0, rel=1e-5)
    assert point.peak_demand_w == pytest.approx(WATTS, rel=1e-2)
    assert point.peak_demand_time == T0 + 120


def test_restart_restores_registers_and_flags_the_outage(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with Store.open(tmp_path) as store:
        meter = make(store, clock)
        run(meter, clock, 95)
        registers = meter.meter.energy.whole.copy()
    # The process dies at T0 + 95; at T0 + 185 the meter starts again.
    clock.value += 90
    with Store.open(tmp_path) as store:
        meter = make(store, clock)
        assert meter.restored
        np.testing.assert_array_equal(meter.meter.energy.whole, registers)
        run(meter, clock, 130)
        records = store.intervals()
    check_sequence(records)
    flags = {r.start - T0: r.flags for r in records}
    assert flags[0] == Flag(0)
    assert flags[60] == Flag.POWER_OFF  # died 35 s into it
    assert flags[120] == Flag.POWER_OFF  # nothing metered at all
    assert flags[180] == Flag.POWER_OFF  # came back 5 s into it
    assert flags[240] == Flag(0)
    assert next(r for r in records if r.start == T0 + 180).covered == pytest.approx(55, abs=0.3)
    empty = next(r for r in records if r.start == T0 + 120)
    assert empty.covered == 0
    assert empty.points[0].deltas == [0, 0, 0, 0]


def test_clock_stepped_forward_fills_and_flags(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with Store.open(tmp_path) as store:
        meter = make(store, clock)
        run(meter, clock, 70)
        clock.step(185)
        run(meter, clock, 120)
        records = store.intervals()
    check_sequence(records)
    flagged = [r.start - T0 for r in records if r.flags & Flag.CLOCK_SET]
    assert flagged == [60, 120, 180, 240]
    assert all(not r.flags & Flag.POWER_OFF for r in records[1:-1])


def test_clock_set_back_merges_instead_of_duplicating(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with Store.open(tmp_path) as store:
        meter = make(store, clock)
        run(meter, clock, 150)
        clock.step(-100)  # back to T0 + 50
        run(meter, clock, 200)
        total = meter.meter.energy.whole[0, 0]
        records = store.intervals()
    check_sequence_keys = [r.start for r in records]
    assert check_sequence_keys == sorted(set(check_sequence_keys))
    assert check_sequence_keys == list(range(T0, T0 + 60 * len(records), 60))
    flagged = [r.start - T0 for r in records if r.flags & Flag.CLOCK_SET]
    assert flagged == [0, 60, 120]
    # Every metered Wh is in exactly one interval.
    assert sum(r.points[0].deltas[0] for r in records) <= total
    assert total - sum(r.points[0].deltas[0] for r in records) < WATTS * 60 / 3.6


def test_configuration_change_is_flagged(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with Store.open(tmp_path) as store:
        meter = make(store, clock)
        run(meter, clock, 30)
    with Store.open(tmp_path) as store:
        meter = make(store, clock, points=2)
        run(meter, clock, 100)
        records = store.intervals()
    assert records[0].flags & Flag.CONFIG_CHANGED
    assert not records[1].flags & Flag.CONFIG_CHANGED
    assert len(records[1].points) == 2


def test_retention_prunes_old_intervals(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with Store.open(tmp_path) as store:
        meter = make(store, clock, retention_days=5 / 1440)  # five minutes
        run(meter, clock, 600)
        starts = [r.start - T0 for r in store.intervals()]
    # At T0 + 600 the interval from 540 is still open; older than 300 is gone.
    assert starts == [300, 360, 420, 480]


def test_pulse_counts_are_recorded(tmp_path: Path) -> None:
    clock = ManualClock(T0 + 6 * 3600)  # 06:00, the busy hour
    pulses = SimulatedPulses(seed=3)
    with Store.open(tmp_path) as store:
        meter = make(store, clock, pulses=pulses)
        run(meter, clock, 300)
        records = store.intervals()
    expected = sum(pulses.count(0, T0 + 6 * 3600 + s) for s in range(300))
    assert expected > 0
    assert meter.pulses[0].count == expected
    assert sum(r.pulse_deltas[0] for r in records) <= expected
    assert records[-1].pulses[0] <= expected


def test_send_reports_to_a_real_http_host(tmp_path: Path) -> None:
    received: list[bytes] = []

    class Host(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Host)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = meter_config(
            {
                "model": "S8UTS-241",
                "service": "1p2w",
                "points": [{"name": "Oven", "ct_primary": 100, "phases": ["A"]}],
                "reporting": {
                    "protocol": "http",
                    "url": f"http://127.0.0.1:{server.server_port}/upload",
                },
            }
        )
        clock = ManualClock(T0)
        with Store.open(tmp_path) as store:
            meter = LocalMeter(cfg, store, ConstantLoad(cfg), clock, recording_minutes=1)
            meter.start()
            run(meter, clock, 185)
            assert meter.send()
            assert meter._report_thread is not None
            meter._report_thread.join(10)
            assert meter.last_report is not None
            assert meter.last_report.ok, meter.last_report.error
            reported = store.intervals()
        assert len(received) == 1
        _header, *rows = received[0].decode().splitlines()
        assert len(rows) == 3
        assert ",Oven," in rows[0]
        assert all(r.reported_at is not None for r in reported)
    finally:
        server.shutdown()
        server.server_close()


def test_a_full_disk_keeps_the_pending_intervals_in_memory(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with Store.open(tmp_path) as store:
        meter = make(store, clock, points=24)
        run(meter, clock, 61)
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StorageError, match="disk is full"):
            run(meter, clock, 120)
        stored = store.count_intervals()
        store._db.execute("PRAGMA max_page_count = 1073741823")
        run(meter, clock, 5)
        records = store.intervals()
    assert len(records) > stored
    check_sequence(records)
    assert math.isclose(
        sum(r.points[0].deltas[0] for r in records), records[-1].points[0].registers[0]
    )


def test_recording_interval_changes_at_an_end_both_lengths_share(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with Store.open(tmp_path) as store:
        meter = make(store, clock)  # 1-minute intervals
        run(meter, clock, 130)
        meter.recorder.set_minutes(5)  # from 1 to 5 minutes at T0 + 5 min
        run(meter, clock, 600)
        meter.recorder.set_minutes(1)  # and back, at the end of a 5-minute interval
        run(meter, clock, 300)
        records = store.intervals()
    spans = [(r.start - T0, r.length) for r in records]
    assert spans[:6] == [(0, 60), (60, 60), (120, 60), (180, 60), (240, 60), (300, 300)]
    # Keys never overlap and leave no hole: each interval starts where the last ended.
    for before, after in itertools.pairwise(records):
        assert after.start == before.start + before.length
    lengths = [r.length for r in records]
    assert 300 in lengths
    assert lengths[0] == 60
    switched = [r for r in records if r.flags & Flag.CONFIG_CHANGED]
    assert [r.start - T0 for r in switched][:1] == [300]
    assert all(r.start % r.length == 0 for r in records)
    for before, after in itertools.pairwise(records):
        assert (
            after.points[0].registers[0] - before.points[0].registers[0]
            == after.points[0].deltas[0]
        )
