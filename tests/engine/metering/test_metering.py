"""The metering engine on synthetic samples."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from s8000_engine.config.meter import meter_config
from s8000_engine.metering.meter import (
    KVARH_DELIVERED,
    KVARH_Q1,
    KVARH_Q2,
    KVARH_Q3,
    KVARH_Q4,
    KVARH_RECEIVED,
    KWH_DELIVERED,
    KWH_RECEIVED,
    EnergyRegisters,
    Meter,
)
from s8000_engine.metering.synth import (
    CURRENT_HARMONICS,
    VOLTAGE_HARMONICS,
    ZERO,
    Harmonic,
    Signal,
    sample_meter,
)

FS = 8000.0


def single_phase(**point: Any) -> Meter:
    config = meter_config(
        {
            "model": "S8UTS-241",
            "service": "1p2w",
            "points": [{"name": "Kitchen", "ct_primary": 100, "phases": ["A"], **point}],
        }
    )
    return Meter(config, FS)


def feed(
    meter: Meter,
    voltage: Signal,
    current: Signal,
    seconds: float,
    frequency: float = 60.0,
    start: int = 0,
    chunk: int = 8000,
) -> int:
    channels = [ZERO] * meter.channels
    channels[0] = current
    total = int(seconds * FS)
    for offset in range(0, total, chunk):
        v, i = sample_meter(
            [voltage, ZERO, ZERO],
            channels,
            frequency=frequency,
            sample_rate=FS,
            samples=min(chunk, total - offset),
            start=start + offset,
        )
        meter.process(v, i)
    return start + total


def test_readings_of_a_clean_inductive_load() -> None:
    meter = single_phase()
    # 10 % of a 100 A CT: 10 A primary = 10 mA secondary, PF 0.8 lagging.
    feed(meter, Signal(120.0), Signal(0.01, -math.degrees(math.acos(0.8))), 2.0)
    r = meter.readings
    assert r is not None
    assert r.voltage_valid
    assert r.frequency == pytest.approx(60.0, rel=1e-6)
    assert r.voltage[0] == pytest.approx(120.0, rel=1e-6)
    assert r.current[0] == pytest.approx(10.0, rel=1e-6)
    assert r.power[0] == pytest.approx(960.0, rel=1e-6)
    assert r.reactive[0] == pytest.approx(720.0, rel=1e-6)
    assert r.apparent[0] == pytest.approx(1200.0, rel=1e-6)
    assert r.power_factor[0] == pytest.approx(0.8, rel=1e-6)
    assert r.element_power.sum() == pytest.approx(r.power[0])
    assert r.duration == pytest.approx(12 / 60, rel=1e-6)
    # Energy is the integral of v·i, partial first cycle included:
    # v·i = V·I·(cos θ + cos(2ωt − θ)).
    theta, omega, seconds = math.acos(0.8), 2 * math.pi * 60.0, meter.metered_seconds
    exact = 1200.0 * (
        seconds * math.cos(theta)
        + (math.sin(2 * omega * seconds - theta) + math.sin(theta)) / (2 * omega)
    )
    energy = meter.energy.value_wh[0]
    assert energy[KWH_DELIVERED] == pytest.approx(exact / 3600, rel=1e-5)
    assert energy[KWH_RECEIVED] == 0.0


@pytest.mark.parametrize(
    ("angle", "quadrant", "p_register", "q_register"),
    [
        (30.0, KVARH_Q1, KWH_DELIVERED, KVARH_DELIVERED),  # load, lagging
        (150.0, KVARH_Q2, KWH_RECEIVED, KVARH_DELIVERED),  # export, Q imported
        (-150.0, KVARH_Q3, KWH_RECEIVED, KVARH_RECEIVED),  # export, Q exported
        (-30.0, KVARH_Q4, KWH_DELIVERED, KVARH_RECEIVED),  # load, leading
    ],
)
def test_four_quadrants(angle: float, quadrant: int, p_register: int, q_register: int) -> None:
    meter = single_phase()
    feed(meter, Signal(120.0), Signal(0.05, -angle), 3.0)
    energy = meter.energy.value_wh[0]
    registered = {i for i, value in enumerate(energy) if value > 0}
    assert registered == {p_register, q_register, quadrant}
    assert energy[quadrant] == pytest.approx(energy[q_register])


def test_chunk_size_does_not_change_the_result() -> None:
    voltage = Signal(121.0, 0.0, VOLTAGE_HARMONICS)
    current = Signal(0.037, -25.0, CURRENT_HARMONICS)
    results = []
    for chunk in (8000, 997, 160, 7):
        meter = single_phase()
        feed(meter, voltage, current, 1.5, frequency=59.7, chunk=chunk)
        results.append((meter.energy.value_wh.copy(), meter.position, meter.windows))
    for energy, position, windows in results[1:]:
        np.testing.assert_allclose(energy, results[0][0], rtol=1e-12, atol=1e-12)
        assert position == pytest.approx(results[0][1], abs=1e-9)
        assert windows == results[0][2]


@pytest.mark.parametrize("frequency", [57.0, 58.8, 61.2, 63.0])
def test_reactive_power_tracks_the_frequency(frequency: float) -> None:
    # The trap: a DFT at the nominal 60 Hz is 12 % off in Q at +2 % frequency.
    voltage = Signal(120.0, 0.0, (Harmonic(5, 0.1),))
    current = Signal(0.1, -60.0, (Harmonic(5, 0.4),))
    meter = single_phase()
    feed(meter, voltage, current, 1.0, frequency=frequency)
    r = meter.readings
    assert r is not None
    assert r.frequency == pytest.approx(frequency, rel=1e-6)
    q1 = 120.0 * 100.0 * math.sin(math.radians(60.0))
    assert r.reactive[0] == pytest.approx(q1, rel=1e-4)
    # Active power includes the 5th harmonic's: V5 = 12 V at 0°, I5 = 40 A at
    # 5 × (−60°) = −300°.
    p = 120.0 * 100.0 * 0.5 + 12.0 * 40.0 * math.cos(math.radians(300.0))
    assert r.power[0] == pytest.approx(p, rel=1e-4)


def test_drifting_frequency_is_followed() -> None:
    meter = single_phase()
    seconds = 20.0
    n = int(seconds * FS)
    t = np.arange(n) / FS
    frequency = 59.5 + t / seconds  # 59.5 → 60.5 Hz
    phase = 2 * np.pi * np.cumsum(frequency) / FS
    lag = math.radians(30.0)
    v = np.zeros((3, n))
    v[0] = 120.0 * math.sqrt(2) * np.cos(phase)
    i = np.zeros((meter.channels, n))
    i[0] = 0.05 * math.sqrt(2) * np.cos(phase - lag)
    frequencies = []
    for start in range(0, n, 8000):
        windows = meter.process(v[:, start : start + 8000], i[:, start : start + 8000])
        frequencies.extend(window.frequency for window in windows)
    assert min(frequencies) == pytest.approx(59.5, abs=0.05)
    assert max(frequencies) == pytest.approx(60.5, abs=0.05)
    energy = meter.energy.value_wh[0]
    seconds_metered = meter.metered_seconds
    p = 120.0 * 50.0 * math.cos(lag)
    q = 120.0 * 50.0 * math.sin(lag)
    # The first window is unsynchronised (no Q for up to a cycle).
    assert energy[KWH_DELIVERED] == pytest.approx(p * seconds_metered / 3600, rel=5e-4)
    assert energy[KVARH_DELIVERED] == pytest.approx(q * seconds_metered / 3600, rel=2e-3)


def test_power_outage_and_return() -> None:
    meter = single_phase()
    voltage, current = Signal(120.0), Signal(0.05)
    position = feed(meter, voltage, current, 1.0)
    before = meter.energy.value_wh.copy()
    position = feed(meter, ZERO, ZERO, 2.0, start=position)
    during = meter.energy.value_wh.copy()
    assert meter.readings is not None
    assert not meter.readings.voltage_valid
    assert meter.readings.voltage[0] == pytest.approx(0.0, abs=1e-9)
    assert during[0, KWH_DELIVERED] - before[0, KWH_DELIVERED] < 120 * 50 * 0.25 / 3600
    feed(meter, voltage, current, 1.0, start=position)
    after = meter.energy.value_wh
    assert meter.readings.voltage_valid
    assert meter.readings.frequency == pytest.approx(60.0, rel=1e-6)
    assert (after >= during).all()
    assert (during >= before).all()


def test_disabled_point_registers_nothing() -> None:
    meter = single_phase(enabled=False)
    feed(meter, Signal(120.0), Signal(0.05), 1.0)
    assert meter.energy.value_wh.sum() == 0.0
    assert meter.readings is not None
    assert meter.readings.power[0] == 0.0


def test_delta_phase_b_ct_is_measured_but_not_metered() -> None:
    config = meter_config(
        {
            "model": "S8UTS-083",
            "service": "3p3w",
            "pt_ratio": 4,
            "points": [{"ct_primary": 100, "phases": ["A", "B", "C"]}],
        }
    )
    meter = Meter(config, FS)
    voltages = [Signal(120.0, 30.0), ZERO, Signal(120.0, 90.0)]
    currents = [ZERO] * meter.channels
    currents[0] = Signal(0.05, 0.0)
    currents[1] = Signal(0.05, -120.0)
    currents[2] = Signal(0.05, 120.0)
    v, i = sample_meter(voltages, currents, frequency=60.0, sample_rate=FS, samples=16000)
    meter.process(v, i)
    r = meter.readings
    assert r is not None
    assert r.current[1] == pytest.approx(50.0, rel=1e-6)
    assert r.element_power[1] == 0.0
    # Balanced 480 V delta, 50 A: P = √3 · 480 · 50.
    assert r.power[0] == pytest.approx(math.sqrt(3) * 480 * 50, rel=1e-5)
    assert r.voltage[0] == pytest.approx(480.0, rel=1e-6)


def test_no_load_threshold_starts_at_starting_current() -> None:
    meter = single_phase()
    threshold = meter.no_load_threshold[0]
    # Half a starting-current element's power at nominal voltage.
    assert threshold == pytest.approx(0.5 * 120 * 0.001 * 100)
    feed(meter, Signal(120.0), Signal(0.1 * 0.0004), 1.0)  # 0.04 % In: below
    assert meter.energy.value_wh.sum() == 0.0
    feed(meter, Signal(120.0), Signal(0.1 * 0.001), 1.0, start=8000)  # 0.1 % In: registers
    assert meter.energy.value_wh[0, KWH_DELIVERED] > 0


def test_bad_input_is_refused_clearly() -> None:
    meter = single_phase()
    with pytest.raises(ValueError, match=r"voltages must have shape \(3, n\)"):
        meter.process(np.zeros((2, 10)), np.zeros((24, 10)))
    with pytest.raises(ValueError, match=r"currents must have shape \(24, 10\) for S8UTS-241"):
        meter.process(np.zeros((3, 10)), np.zeros((3, 10)))
    bad = np.zeros((3, 10))
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        meter.process(bad, np.zeros((24, 10)))
    with pytest.raises(ValueError, match="below the minimum 4000 Hz"):
        Meter(meter.config, 2000.0)


def test_registers_never_lose_small_increments() -> None:
    registers = EnergyRegisters(1, 1)
    registers.whole[:] = 10**12  # a billion kWh already registered
    for _ in range(100_000):
        registers.add(np.array([[1e-6]]))  # one µWh at a time
    assert registers.value_wh[0, 0] == pytest.approx(10**9 + 0.1, abs=1e-9)
    assert registers.whole[0, 0] == 10**12 + 100


def test_demand_of_delivered_power_aligned_to_the_utc_clock() -> None:
    config = meter_config(
        {
            "model": "S8UTS-241",
            "service": "1p2w",
            "demand": {"type": "block", "interval_minutes": 1},
            "points": [{"ct_primary": 100, "phases": ["A"]}],
        }
    )
    midnight = 1_795_564_800.0  # 2026-11-25T00:00:00Z
    meter = Meter(config, FS, start_time=midnight)
    channels = [ZERO] * meter.channels
    channels[0] = Signal(0.05, -30.0)
    for second in range(125):
        v, i = sample_meter(
            [Signal(120.0), ZERO, ZERO], channels, frequency=60.0, sample_rate=FS,
            samples=8000, start=second * 8000,
        )  # fmt: skip
        meter.process(v, i)
    demand = meter.demand
    assert demand.demand_time == midnight + 120
    assert not demand.demand_partial
    assert demand.demand_w[0] == pytest.approx(120 * 50 * math.cos(math.radians(30)), rel=1e-4)
    assert demand.peak_time[0] in {midnight + 60, midnight + 120}


def test_fifty_hertz_windows_are_ten_cycles() -> None:
    config = meter_config(
        {
            "model": "277WH-241",
            "service": "1p2w",
            "frequency": 50,
            "nominal_voltage": 230,
            "points": [{"ct_primary": 60, "phases": ["A"]}],
        }
    )
    meter = Meter(config, FS)
    currents = [ZERO] * meter.channels
    currents[0] = Signal(0.1, -10.0)
    v, i = sample_meter(
        [Signal(230.0), ZERO, ZERO], currents, frequency=50.0, sample_rate=FS, samples=8000
    )
    windows = meter.process(v, i)
    assert windows[-1].duration == pytest.approx(0.2, rel=1e-6)
    assert windows[-1].power[0] == pytest.approx(230 * 60 * math.cos(math.radians(10)), rel=1e-6)
