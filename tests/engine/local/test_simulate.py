"""The simulated panel: deterministic, continuous in time, and metered as it says."""

from __future__ import annotations

import itertools
import math
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from s8000_engine.config.meter import MeterConfig, meter_config
from s8000_engine.local.simulate import (
    FIRST_LOADS,
    FREQUENCY_DRIFT,
    LoadKind,
    PanelSimulator,
    assign_load,
)
from s8000_engine.metering.meter import (
    KVARH_Q2,
    KWH_DELIVERED,
    KWH_RECEIVED,
    REGISTER_NAMES,
    Meter,
    Readings,
)
from s8000_engine.metering.synth import CURRENT_FULL_SCALE, VOLTAGE_FULL_SCALE

FS = 8000


def utc(year: int, month: int, day: int, hour: int = 0) -> float:
    return datetime(year, month, day, hour, tzinfo=UTC).timestamp()


SUMMER_NOON = utc(2026, 6, 20, 12)  # a Saturday
WINTER_MIDNIGHT = utc(2026, 11, 25)  # a Wednesday


def make_config(service: str, model: str, phases: list[list[str]], **extra: Any) -> MeterConfig:
    ratings = (20, 50, 100, 200)
    return meter_config(
        {
            "model": model,
            "service": service,
            "points": [
                {"name": f"C{n + 1}", "ct_primary": ratings[n % 4], "phases": p}
                for n, p in enumerate(phases)
            ],
            **extra,
        }
    )


#: One configuration per service type, on the three layouts of the catalogue.
CONFIGS: dict[str, MeterConfig] = {
    "1p2w S8UTS-241": make_config("1p2w", "S8UTS-241", [["A"]] * 24),
    "1p3w S8UTS-122": make_config("1p3w", "S8UTS-122", [["A", "B"], ["A"], ["B"], ["B", "A"]] * 3),
    "3p4w S8UTS-083": make_config(
        "3p4w",
        "S8UTS-083",
        [["A", "B", "C"]] * 4 + [["A", "B"], ["B"], ["C", "A"], ["A", "B", "C"]],
    ),
    "3p3w S8UTS-083": make_config(
        "3p3w",
        "S8UTS-083",
        [["A", "C"], ["A", "B", "C"], ["A", "C"], ["A", "C"], ["A"], ["C"], ["A", "B"], ["B"]],
        pt_ratio=4,
    ),
}


def meter(sim: PanelSimulator, start: float, seconds: int) -> tuple[Meter, list[Readings]]:
    """Meter ``seconds`` of the panel from ``start`` with the real engine."""
    m = Meter(sim.config, FS, start_time=start)
    readings: list[Readings] = []
    for second in range(seconds):
        readings += m.process(*sim.samples(start + second, 1.0))
    return m, readings


def inside_one_second(readings: list[Readings]) -> list[tuple[float, Readings]]:
    """Synchronised windows that lie within one second (where every load is constant)."""
    return [
        (r.time - r.duration, r)
        for r in readings
        if r.voltage_valid and math.floor(r.time - r.duration) == math.floor(r.time - 1e-9)
    ]


# -- determinism and continuity ------------------------------------------------------------


def test_two_one_second_calls_are_exactly_one_two_second_call() -> None:
    config = CONFIGS["3p4w S8UTS-083"]
    t = SUMMER_NOON + 7
    sim = PanelSimulator(config, seed=5)
    v1, i1 = sim.samples(t, 1.0)
    v2, i2 = sim.samples(t + 1, 1.0)
    v, i = PanelSimulator(config, seed=5).samples(t, 2.0)
    assert v.shape == (3, 2 * FS)
    assert i.shape == (config.model.channel_count, 2 * FS)
    assert np.array_equal(np.concatenate([v1, v2], axis=1), v)
    assert np.array_equal(np.concatenate([i1, i2], axis=1), i)


def test_any_span_gives_the_same_samples_as_whole_seconds() -> None:
    config = CONFIGS["1p3w S8UTS-122"]
    t = WINTER_MIDNIGHT + 3600 * 19
    v, i = PanelSimulator(config, seed=2).samples(t, 3.0)
    sim = PanelSimulator(config, seed=2)
    pieces = [(0.25, 0.5), (0.75, 1.5), (2.25, 0.125), (2.375, 0.625)]
    for offset, seconds in pieces:
        pv, pi = sim.samples(t + offset, seconds)
        a, b = round(offset * FS), round((offset + seconds) * FS)
        assert np.array_equal(pv, v[:, a:b])
        assert np.array_equal(pi, i[:, a:b])
    assert sim.samples(t, 0.0)[1].shape == (config.model.channel_count, 0)


def test_samples_do_not_depend_on_what_was_asked_before() -> None:
    config = CONFIGS["1p2w S8UTS-241"]
    t = SUMMER_NOON
    fresh = PanelSimulator(config, seed=9).samples(t, 1.0)
    used = PanelSimulator(config, seed=9)
    used.samples(t + 3600, 1.0)
    used.samples(t - 0.5, 0.75)
    used.samples(t + 0.5, 0.25)
    again = used.samples(t, 1.0)
    assert np.array_equal(fresh[0], again[0])
    assert np.array_equal(fresh[1], again[1])


def test_the_seed_the_second_and_noise_change_the_samples() -> None:
    config = CONFIGS["1p2w S8UTS-241"]
    t = SUMMER_NOON
    _, a = PanelSimulator(config, seed=1).samples(t, 1.0)
    _, b = PanelSimulator(config, seed=2).samples(t, 1.0)
    assert not np.array_equal(a, b)
    # Unused channels: only ADC dither, different every second, exactly 0 without noise.
    config = make_config("1p2w", "S8UTS-241", [["A"]] * 4)
    sim = PanelSimulator(config, seed=1)
    _, first = sim.samples(t, 1.0)
    _, second = sim.samples(t + 1, 1.0)
    lsb = CURRENT_FULL_SCALE / 2**15
    assert np.abs(first[4:]).max() <= 4 * lsb
    assert np.abs(first[4:]).max() > 0
    assert not np.array_equal(first[4:], second[4:])
    v, i = PanelSimulator(config, seed=1, noise=False).samples(t, 1.0)
    assert not i[4:].any()
    assert not v[1:].any()  # 1p2w: only terminal A
    assert np.abs(v).max() < VOLTAGE_FULL_SCALE


def test_loads_are_pure_functions_of_seed_point_and_time() -> None:
    config = CONFIGS["3p4w S8UTS-083"]
    times = [WINTER_MIDNIGHT + 97 * k for k in range(300)]
    forward = PanelSimulator(config, seed=4)
    backward = PanelSimulator(config, seed=4)
    for point in range(len(config.points)):
        ahead = [forward.load_at(point, t) for t in times]
        behind = [backward.load_at(point, t) for t in reversed(times)][::-1]
        assert ahead == behind
    # Constant within a second, and other seeds make other panels.
    assert forward.load_at(1, times[5]) == forward.load_at(1, times[5] + 0.999)
    other = PanelSimulator(config, seed=5)
    assert any(other.load_at(0, t) != forward.load_at(0, t) for t in times)


# -- the line ----------------------------------------------------------------------------------


def test_frequency_drifts_slowly_within_0_02_hz_and_the_meter_tracks_it() -> None:
    config = CONFIGS["1p2w S8UTS-241"]
    sim = PanelSimulator(config, seed=3)
    day = [sim.frequency_at(WINTER_MIDNIGHT + 10 * k) for k in range(8640)]
    assert max(day) <= 60.0 + sum(a for a, _ in FREQUENCY_DRIFT) + 1e-12
    assert min(day) >= 60.0 - 0.02
    assert max(day) - min(day) > 0.025  # it does drift
    assert max(abs(a - b) for a, b in itertools.pairwise(day)) < 0.005  # slowly
    _, readings = meter(sim, WINTER_MIDNIGHT + 4321, 3)
    synchronised = [r for r in readings if r.voltage_valid]
    assert len(synchronised) >= 10
    for r in synchronised:
        assert r.frequency == pytest.approx(sim.frequency_at(r.time - r.duration / 2), abs=2e-4)


def test_voltage_follows_the_day_within_2_percent_and_sags_in_the_evening() -> None:
    config = CONFIGS["3p4w S8UTS-083"]
    sim = PanelSimulator(config, seed=0)
    levels = [sim.voltage_at(WINTER_MIDNIGHT + 60 * k) for k in range(1440)]
    every = [v for three in levels for v in three]
    assert min(every) >= 120.0 * 0.98
    assert max(every) <= 120.0 * 1.02
    assert max(levels[18 * 60 + 30]) < min(levels[3 * 60])
    # The meter reads them (RMS with harmonics: +0.07 %).
    _, readings = meter(sim, WINTER_MIDNIGHT + 3600 * 18, 2)
    r = readings[-1]
    assert list(r.voltage) == pytest.approx(list(sim.voltage_at(r.time)), rel=2e-3)


def phasors(v: np.ndarray, frequency: float) -> np.ndarray:
    """Fundamental phasors of the rows of ``v`` over its first 12 cycles."""
    n = round(12 * FS / frequency)
    kernel = np.exp(-2j * np.pi * frequency / FS * np.arange(n))
    return np.asarray(v[:, :n] @ kernel * (2 / n))


@pytest.mark.parametrize(
    ("service", "model", "phases", "pt_ratio", "angles"),
    [
        ("1p2w", "S8UTS-241", ["A"], 1.0, [0.0, None, None]),
        ("1p3w", "S8UTS-122", ["A", "B"], 1.0, [0.0, 180.0, None]),
        ("3p4w", "S8UTS-083", ["A", "B", "C"], 1.0, [0.0, -120.0, 120.0]),
        ("3p3w", "S8UTS-083", ["A", "C"], 4.0, [30.0, None, 90.0]),
    ],
)
def test_terminal_voltages_of_each_service(
    service: str, model: str, phases: list[str], pt_ratio: float, angles: list[float | None]
) -> None:
    config = make_config(service, model, [phases], pt_ratio=pt_ratio)
    sim = PanelSimulator(config, seed=1, noise=False)
    t = SUMMER_NOON + 11
    v, _ = sim.samples(t, 1.0)
    x = phasors(v, sim.frequency_at(t))
    rms = sim.voltage_at(t)
    reference = angles[0]
    assert reference is not None
    for row, angle in enumerate(angles):
        if angle is None:
            assert not v[row].any()
            continue
        assert abs(x[row]) / math.sqrt(2) == pytest.approx(rms[row], rel=1e-3)
        assert rms[row] == pytest.approx(config.nominal_voltage, rel=0.02)
        # Relative to A; delta: A = V_AB at +30° of V_AN, so C − A = 60°.
        difference = math.degrees(np.angle(x[row] / x[0])) - (angle - reference)
        assert (difference + 180) % 360 - 180 == pytest.approx(0, abs=0.1)


# -- metering the panel ----------------------------------------------------------------------


def times_when_on(sim: PanelSimulator, start: float, days: int) -> list[float]:
    """A few times that together find every point drawing (or feeding) power."""
    candidates = [start + 600 * k for k in range(days * 144)]
    rated = [d["rated_va"] for d in sim.describe()]
    on = {
        t: {p for p in range(len(rated)) if abs(sim.load_at(p, t)[0]) > 0.01 * rated[p]}
        for t in candidates
    }
    wanted = {p for p in range(len(rated)) if rated[p] > 0}
    chosen: list[float] = []
    while wanted:
        best = max(candidates, key=lambda t: len(on[t] & wanted))
        if not on[best] & wanted:
            break
        chosen.append(best)
        wanted -= on[best]
    assert not wanted, f"points never on: {sorted(wanted)}"
    return chosen


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_metered_power_of_every_point_is_within_1_percent_of_load_at(name: str) -> None:
    config = CONFIGS[name]
    sim = PanelSimulator(config, seed=0)
    rated = [d["rated_va"] for d in sim.describe()]
    checked: set[int] = set()
    worst = 0.0
    for start in times_when_on(sim, SUMMER_NOON - 12 * 3600, days=2):
        m, readings = meter(sim, start, 3)
        windows = inside_one_second(readings)
        assert len(windows) >= 10
        for begin, r in windows:
            for point in range(len(config.points)):
                p, q = sim.load_at(point, begin)
                if abs(p) <= 0.005 * rated[point]:
                    continue
                assert r.power[point] == pytest.approx(p, rel=0.01), (point, begin)
                # Q may be small (PF 1): within 1 % of S, or below the no-load threshold.
                allowed = 0.01 * math.hypot(p, q) + m.no_load_threshold[point]
                assert abs(r.reactive[point] - q) <= allowed, (point, begin)
                worst = max(worst, abs(r.power[point] / p - 1))
                checked.add(point)
    assert checked == {n for n, va in enumerate(rated) if va > 0}
    print(f"{name}: worst active power error {worst:.3%}")


def test_a_delta_ct_on_b_alone_is_measured_but_meters_nothing() -> None:
    config = CONFIGS["3p3w S8UTS-083"]
    sim = PanelSimulator(config, seed=0)
    info = sim.describe()[7]
    assert info["phases"] == ["B"]
    assert info["rated_va"] == 0.0
    assert all(sim.load_at(7, SUMMER_NOON + 600 * k) == (0.0, 0.0) for k in range(144))


def test_a_calibrated_meter_reads_the_panel_true() -> None:
    """The channels carry the errors their calibration describes; the meter removes them."""
    base = CONFIGS["3p4w S8UTS-083"]
    config = make_config(
        "3p4w",
        "S8UTS-083",
        [["A", "B", "C"]] * 4,
        calibration={
            "VB": {"gain": 1.01, "phase_deg": 0.3},
            "P2-1": {"gain": 0.98, "phase_deg": -1.5},
            "P2-3": {"gain": 1.02, "phase_deg": 2.0},
        },
    )
    assert base.points[1].phases == config.points[1].phases
    sim = PanelSimulator(config, seed=0)
    start = next(
        SUMMER_NOON + 60 * k for k in range(600) if sim.load_at(1, SUMMER_NOON + 60 * k)[0] > 0
    )
    _, readings = meter(sim, start, 3)
    for begin, r in inside_one_second(readings):
        p, q = sim.load_at(1, begin)
        assert r.power[1] == pytest.approx(p, rel=0.01)
        assert r.reactive[1] == pytest.approx(q, rel=0.02)


def test_multi_element_points_carry_a_balanced_ish_load() -> None:
    config = CONFIGS["3p4w S8UTS-083"]
    sim = PanelSimulator(config, seed=0)
    start = next(
        WINTER_MIDNIGHT + 60 * k
        for k in range(1440)
        if sim.load_at(2, WINTER_MIDNIGHT + 60 * k)[0] > 0  # the EV charger
    )
    m, readings = meter(sim, start, 2)
    r = readings[-1]
    elements = r.element_power[m.element_point == 2]
    assert len(elements) == 3
    assert elements.max() / elements.min() < 1.05
    assert elements.max() / elements.min() > 1.0001
    currents = r.current[[config.model.channel(3, e).index for e in (1, 2, 3)]]
    assert currents.max() / currents.min() < 1.05


# -- the loads -----------------------------------------------------------------------------------


def local_hour(t: float) -> float:
    return (t % 86400) / 3600


def test_the_solar_point_feeds_back_at_noon_and_registers_nothing_at_night() -> None:
    config = CONFIGS["1p2w S8UTS-241"]
    sim = PanelSimulator(config, seed=0)
    solar = 3
    assert sim.describe()[solar]["load"] == "solar"
    day = [sim.load_at(solar, WINTER_MIDNIGHT + 300 * k) for k in range(288)]
    assert all(p <= 0 for p, _ in day)
    assert all(p == 0 for p, _ in day[: 4 * 12] + day[20 * 12 :])  # before 4:00, after 20:00
    assert day[12 * 12][0] < 0  # noon
    assert day[12 * 12][1] > 0  # absorbing vars: quadrant II

    m, _ = meter(sim, SUMMER_NOON, 3)
    registers = dict(zip(REGISTER_NAMES, m.energy.value_wh[solar], strict=True))
    assert sim.load_at(solar, SUMMER_NOON)[0] < 0
    assert registers["kwh_received"] > 0
    assert registers["kwh_delivered"] == 0
    assert m.energy.value_wh[solar, KVARH_Q2] > 0
    # What load_at says over the metered span.
    covered = m.metered_seconds
    expected = sum(
        -sim.load_at(solar, SUMMER_NOON + k)[0] * min(1.0, covered - k) / 3600
        for k in range(math.ceil(covered))
    )
    assert registers["kwh_received"] == pytest.approx(expected, rel=0.01)

    m, _ = meter(sim, WINTER_MIDNIGHT + 2 * 3600, 3)
    assert not m.energy.value_wh[solar].any()


def test_the_ev_point_charges_at_night() -> None:
    config = CONFIGS["1p2w S8UTS-241"]
    sim = PanelSimulator(config, seed=0)
    ev = 2
    info = sim.describe()[ev]
    assert info["load"] == "ev_charger"
    charging = [
        t for t in (WINTER_MIDNIGHT + 300 * k for k in range(3 * 288)) if sim.load_at(ev, t)[0] > 0
    ]
    assert charging, "no session in three nights"
    assert all(local_hour(t) >= 18.5 or local_hour(t) < 5.0 for t in charging)
    # Constant current near 40 % of the CT rating at PF 0.99.
    p, q = sim.load_at(ev, charging[3])
    assert p / info["rated_va"] == pytest.approx(0.39, abs=0.02)
    assert p / math.hypot(p, q) == pytest.approx(0.99, abs=1e-3)
    m, readings = meter(sim, charging[3], 3)
    assert m.energy.value_wh[ev, KWH_DELIVERED] > 0
    assert m.energy.value_wh[ev, KWH_RECEIVED] == 0
    assert readings[-1].power[ev] == pytest.approx(p, rel=0.01)


def test_hvac_cycles_and_works_hardest_in_the_afternoon() -> None:
    config = CONFIGS["1p2w S8UTS-241"]
    sim = PanelSimulator(config, seed=0)
    assert sim.describe()[1]["load"] == "hvac"
    minutes = [sim.load_at(1, SUMMER_NOON - 12 * 3600 + 60 * k) for k in range(1440)]
    on = [p > 0.2 * sim.describe()[1]["rated_va"] for p, _ in minutes]
    starts = sum(1 for a, b in itertools.pairwise(on) if b and not a)
    assert starts >= 20  # cycling, in cycles of minutes
    assert sum(on[13 * 60 : 18 * 60]) > 2 * sum(on[0 : 5 * 60])
    p, q = next(m for m, o in zip(minutes, on, strict=True) if o)
    assert p / math.hypot(p, q) == pytest.approx(0.85, abs=0.03)


def test_lighting_is_on_in_the_morning_and_evening_and_leads() -> None:
    config = CONFIGS["1p2w S8UTS-241"]
    sim = PanelSimulator(config, seed=0)
    hours = [sim.load_at(0, WINTER_MIDNIGHT + 600 * k) for k in range(144)]
    on = [k / 6 for k, (p, _) in enumerate(hours) if p > 0]
    assert any(6 <= h < 9 for h in on)
    assert any(17 <= h < 23 for h in on)
    assert not any(0 <= h < 5 or 10 <= h < 15 for h in on)
    assert all(q < 0 for p, q in hours if p > 0)  # leading: LED drivers


def test_every_load_stays_within_120_percent_of_its_ct_rating() -> None:
    for name, config in CONFIGS.items():
        sim = PanelSimulator(config, seed=11)
        for n, info in enumerate(sim.describe()):
            worst = max(
                math.hypot(*sim.load_at(n, SUMMER_NOON - 12 * 3600 + 60 * k)) for k in range(1440)
            )
            assert worst <= 1.2 * info["rated_va"] + 1e-9, (name, info)


def test_rated_power_of_each_connection() -> None:
    sim = PanelSimulator(CONFIGS["3p4w S8UTS-083"])
    rated = [d["rated_va"] for d in sim.describe()]
    assert rated[0] == pytest.approx(3 * 120 * 20)  # three-phase, 20 A CTs
    assert rated[4] == pytest.approx(math.sqrt(3) * 120 * 20)  # 208 V A-B
    assert rated[5] == pytest.approx(120 * 50)  # B-N
    sim = PanelSimulator(CONFIGS["3p3w S8UTS-083"])
    info = sim.describe()
    assert info[0]["connection"] == "three-phase"
    assert info[0]["rated_va"] == pytest.approx(math.sqrt(3) * 480 * 20)
    assert info[4]["connection"] == "line to line A-B"
    assert info[4]["rated_va"] == pytest.approx(480 * 20)
    sim = PanelSimulator(CONFIGS["1p3w S8UTS-122"])
    assert sim.describe()[0]["rated_va"] == pytest.approx(240 * 20)


def test_the_sampled_currents_stay_within_the_ct_rating_at_their_busiest() -> None:
    config = CONFIGS["1p3w S8UTS-122"]
    sim = PanelSimulator(config, seed=0)
    rated = [d["rated_va"] for d in sim.describe()]
    busiest = max(
        (SUMMER_NOON - 12 * 3600 + 300 * k for k in range(288)),
        key=lambda t: sum(math.hypot(*sim.load_at(n, t)) / rated[n] for n in range(len(rated))),
    )
    _, readings = meter(sim, busiest, 2)
    r = readings[-1]
    for n, point in enumerate(config.points):
        for element in range(len(point.phases)):
            channel = config.model.channel(n + 1, element + 1).index
            assert r.current[channel] <= 1.2 * point.ct_primary_a


def test_describe_and_the_assignment_of_loads() -> None:
    config = CONFIGS["1p2w S8UTS-241"]
    info = PanelSimulator(config, seed=3).describe()
    assert len(info) == 24
    assert [d["load"] for d in info[:8]] == [k.value for k in FIRST_LOADS]
    assert [d["load"] for d in info] == [assign_load(3, n).value for n in range(24)]
    assert {d["load"] for d in info} == {k.value for k in LoadKind}
    assert info[0]["name"] == "C1"
    assert info[5]["point"] == 6
    assert info[5]["phases"] == ["A"]
    assert info[5]["connection"] == "line to neutral A-N"
    assert all(isinstance(d["description"], str) and d["description"] for d in info)
    # Points from the 9th on depend on the seed.
    assert any(assign_load(3, n) != assign_load(4, n) for n in range(8, 24))


def test_local_time_moves_the_day() -> None:
    config = CONFIGS["1p2w S8UTS-241"]
    at_utc = PanelSimulator(config, seed=0)
    five_hours_behind = PanelSimulator(config, seed=0, utc_offset_hours=-5)
    solar = 3
    # 21:00 UTC is 16:00 five hours behind; 06:00 UTC is 01:00.
    evening, morning = SUMMER_NOON + 9 * 3600, SUMMER_NOON - 6 * 3600
    assert at_utc.load_at(solar, evening)[0] == 0
    assert five_hours_behind.load_at(solar, evening)[0] < 0
    assert at_utc.load_at(solar, morning)[0] < 0
    assert five_hours_behind.load_at(solar, morning)[0] == 0


# -- arguments and speed ---------------------------------------------------------------------


def test_bad_arguments_raise_value_error() -> None:
    config = CONFIGS["1p2w S8UTS-241"]
    for kwargs in (
        {"seed": 1.5},
        {"seed": "1"},
        {"sample_rate": 1000},
        {"sample_rate": 8000.5},
        {"sample_rate": True},
        {"utc_offset_hours": 20},
    ):
        with pytest.raises(ValueError):  # noqa: PT011
            PanelSimulator(config, **kwargs)
    with pytest.raises(ValueError, match="MeterConfig"):
        PanelSimulator({"model": "S8UTS-241"})  # type: ignore[arg-type]
    sim = PanelSimulator(config)
    with pytest.raises(ValueError, match="does not fall on a sample"):
        sim.samples(SUMMER_NOON + 1e-5, 1.0)
    for start, seconds in ((math.nan, 1.0), (math.inf, 1.0), (SUMMER_NOON, -1.0)):
        with pytest.raises(ValueError):  # noqa: PT011
            sim.samples(start, seconds)
    with pytest.raises(ValueError, match="seconds"):
        sim.samples(SUMMER_NOON, math.nan)
    with pytest.raises(ValueError, match="point index"):
        sim.load_at(24, SUMMER_NOON)
    with pytest.raises(ValueError, match="point index"):
        sim.load_at(-1, SUMMER_NOON)
    with pytest.raises(ValueError, match="time"):
        sim.load_at(0, math.nan)
    with pytest.raises(ValueError, match="point index"):
        assign_load(0, -1)


def test_speed_of_one_second_of_24_channels(capsys: pytest.CaptureFixture[str]) -> None:
    """A sanity print only: the project asserts no timings in tests."""
    config = CONFIGS["1p2w S8UTS-241"]
    sim = PanelSimulator(config, seed=0)
    sim.samples(SUMMER_NOON, 1.0)
    runs = 20
    began = time.perf_counter()
    for k in range(runs):
        _, i = sim.samples(SUMMER_NOON + 1 + k, 1.0)
    elapsed = (time.perf_counter() - began) / runs
    assert i.shape == (24, FS)
    with capsys.disabled():
        print(f"\nsamples(t, 1.0), 24 channels at {FS} Hz with noise: {elapsed * 1e3:.2f} ms")
