"""The accuracy suite: IEC 62053-22 class 0.2S and IEC 62053-24 class 0.5S.

Every service type is metered from synthetic waveforms that carry
harmonics, at the nominal frequency and ±5 %, through 16-bit ADCs with
noise (0.5 LSB RMS, a dither), with CT gain and phase errors that the
configured calibration has to remove; the registered energy is compared with
the exact energy of the same signals.

Test points (current in % of the CT rating In; limits in %):

* active energy, class 0.2S (IEC 62053-22 table 3 as reproduced in
  ``shared/research/metering.md``): PF 1 at 1, 2 % (±0.4) and 5–120 %
  (±0.2); PF 0.5 inductive and 0.8 capacitive at 2, 5 % (±0.5) and
  10–120 % (±0.3);
* reactive energy, class 0.5S (IEC 62053-24): sin φ 1 inductive at 1, 2 %
  (±1.0) and 5–120 % (±0.5), capacitive at 5 and 100 % (±0.5); sin φ 0.5
  inductive and capacitive at 2, 5 % (±1.0) and 10–100 % (±0.6);
* starting current: 0.1 % In at PF 1 must register in every window;
* no load: 115 % of nominal voltage, no current (noise and a DC offset on
  the CT inputs), for 60 s: nothing may register.

Waveforms: voltages carry 1.5 % 3rd, 3 % 5th and 1.5 % 7th harmonic (about
the EN 50160 planning levels), currents 20 % 3rd, 10 % 5th and 5 % 7th (an
electronic load).  The stated power factor is the fundamental's.

Run it with ``s8000-engine accuracy``; the test suite runs it too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from s8000_engine.config.meter import (
    SOURCE_ANGLES,
    TERMINAL_ANGLES,
    MeterConfig,
    Phase,
    ServiceType,
    meter_config,
)
from s8000_engine.metering.meter import (
    KVARH_DELIVERED,
    KVARH_RECEIVED,
    KWH_DELIVERED,
    KWH_RECEIVED,
    Meter,
)
from s8000_engine.metering.synth import (
    CURRENT_FULL_SCALE,
    CURRENT_HARMONICS,
    VOLTAGE_FULL_SCALE,
    VOLTAGE_HARMONICS,
    ZERO,
    Adc,
    Signal,
    active_power,
    fundamental_reactive_power,
    sample_meter,
)
from s8000_engine.models import CT_SECONDARY_A

SAMPLE_RATE = 8000.0
DURATION = 1.2  # seconds per test point
#: CT errors injected into the samples, and removed by calibration.
CT_GAIN_ERROR = 1.002
CT_PHASE_ERROR_DEG = 0.35

ACTIVE_POINTS: tuple[tuple[float, float, str, float], ...] = (
    # (current % In, PF, kind, limit %)
    (1, 1.0, "unity", 0.4),
    (2, 1.0, "unity", 0.4),
    (5, 1.0, "unity", 0.2),
    (10, 1.0, "unity", 0.2),
    (20, 1.0, "unity", 0.2),
    (50, 1.0, "unity", 0.2),
    (100, 1.0, "unity", 0.2),
    (120, 1.0, "unity", 0.2),
    (2, 0.5, "ind", 0.5),
    (5, 0.5, "ind", 0.5),
    (10, 0.5, "ind", 0.3),
    (20, 0.5, "ind", 0.3),
    (100, 0.5, "ind", 0.3),
    (120, 0.5, "ind", 0.3),
    (2, 0.8, "cap", 0.5),
    (5, 0.8, "cap", 0.5),
    (10, 0.8, "cap", 0.3),
    (100, 0.8, "cap", 0.3),
    (120, 0.8, "cap", 0.3),
)

REACTIVE_POINTS: tuple[tuple[float, float, str, float], ...] = (
    # (current % In, sin φ, kind, limit %)
    (1, 1.0, "ind", 1.0),
    (2, 1.0, "ind", 1.0),
    (5, 1.0, "ind", 0.5),
    (10, 1.0, "ind", 0.5),
    (100, 1.0, "ind", 0.5),
    (120, 1.0, "ind", 0.5),
    (5, 1.0, "cap", 0.5),
    (100, 1.0, "cap", 0.5),
    (2, 0.5, "ind", 1.0),
    (5, 0.5, "ind", 1.0),
    (10, 0.5, "ind", 0.6),
    (100, 0.5, "ind", 0.6),
    (2, 0.5, "cap", 1.0),
    (10, 0.5, "cap", 0.6),
    (100, 0.5, "cap", 0.6),
)


@dataclass(frozen=True, slots=True)
class Service:
    """A service type wired to a model, with its source voltages."""

    name: str
    config: dict[str, Any]
    voltages: tuple[float, float, float]
    """RMS voltage at terminals A, B, C (0 where unused), secondary volts."""
    network: bool = False
    """A 1p3w service on two phases of a 120/208 V wye: B at -120°, not 180°."""

    def _table(self, angles: Mapping[ServiceType, Mapping[Phase, float]]) -> Mapping[Phase, float]:
        service = ServiceType(self.config["service"])
        return angles[ServiceType.WYE_4W if self.network else service]

    @property
    def angles(self) -> tuple[float, float, float]:
        """Phase angle of each terminal's voltage, degrees (0 where unused)."""
        table = self._table(TERMINAL_ANGLES)
        return (table.get(Phase.A, 0.0), table.get(Phase.B, 0.0), table.get(Phase.C, 0.0))

    @property
    def current_angles(self) -> tuple[float, ...]:
        """Angle of each element's current at unity PF (its phase's L-N voltage)."""
        table = self._table(SOURCE_ANGLES)
        return tuple(table[Phase(p)] for p in self.config["points"][0]["phases"])

    @property
    def meter_config(self) -> MeterConfig:
        """The validated meter configuration."""
        return meter_config(self.config)


def _point(phases: list[str], ct: float) -> dict[str, Any]:
    return {"name": "Test", "ct_primary": ct, "phases": phases}


#: Every service type, as the accuracy suite meters them.
SERVICES: tuple[Service, ...] = (
    Service(
        "1P2W 120 V",
        {"model": "S8UTS-241", "service": "1p2w", "points": [_point(["A"], 100)]},
        (120.0, 0.0, 0.0),
    ),
    Service(
        "1P3W 120/240 V",
        {"model": "S8UTS-122", "service": "1p3w", "points": [_point(["A", "B"], 200)]},
        (120.0, 120.0, 0.0),
    ),
    Service(
        "1P3W 120/208 V network",
        {"model": "S8UWH-122", "service": "1p3w", "points": [_point(["A", "B"], 100)]},
        (120.0, 120.0, 0.0),
        network=True,
    ),
    Service(
        "3P4W 120/208 V",
        {"model": "S8UTS-083", "service": "3p4w", "points": [_point(["A", "B", "C"], 400)]},
        (120.0, 120.0, 120.0),
    ),
    Service(
        "3P4W 277/480 V",
        {"model": "277TS-083", "service": "3p4w", "points": [_point(["A", "B", "C"], 800)]},
        (277.0, 277.0, 277.0),
    ),
    Service(
        "3P4W 347/600 V via PTs",
        {
            "model": "S8UTS-083",
            "service": "3p4w",
            "pt_ratio": 347 / 120,
            "points": [_point(["A", "B", "C"], 1200)],
        },
        (120.0, 120.0, 120.0),
    ),
    Service(
        "3P3W 480 V delta via 2 PTs",
        {
            "model": "S8UTS-122",
            "service": "3p3w",
            "pt_ratio": 4.0,
            "points": [_point(["A", "C"], 600)],
        },
        # Terminal A sees V_AB, terminal C sees V_CB (config.meter.TERMINAL_ANGLES).
        (120.0, 0.0, 120.0),
    ),
    Service(
        "3P4W 230/400 V 50 Hz",
        {
            "model": "277WH-083",
            "service": "3p4w",
            "frequency": 50,
            "nominal_voltage": 230,
            "points": [_point(["A", "B", "C"], 250)],
        },
        (230.0, 230.0, 230.0),
    ),
)


@dataclass(frozen=True, slots=True)
class Result:
    """One test point's outcome."""

    service: str
    quantity: str  # "active" or "reactive"
    frequency: float
    current_pct: float
    factor: float
    kind: str
    limit_pct: float
    error_pct: float

    @property
    def passed(self) -> bool:
        """Within the class limit."""
        return abs(self.error_pct) <= self.limit_pct


class _Bench:
    """Drives one meter with one service's waveforms."""

    def __init__(self, service: Service, seed: int) -> None:
        self.service = service
        self.config = service.meter_config
        calibration = {
            channel.name: {"gain": CT_GAIN_ERROR, "phase_deg": CT_PHASE_ERROR_DEG}
            for channel in self.config.model.channels
        }
        self.config = meter_config({**service.config, "calibration": calibration})
        self.rng = np.random.default_rng(seed)

    def voltages(self, scale: float = 1.0) -> list[Signal]:
        return [
            Signal(rms * scale, angle, VOLTAGE_HARMONICS) if rms else ZERO
            for rms, angle in zip(self.service.voltages, self.service.angles, strict=True)
        ]

    def currents(
        self, current_pct: float, angle_deg: float, offset_lsb: float = 0.0
    ) -> tuple[list[Signal], list[Signal]]:
        """(true currents per element, what the CT channels carry) for a load."""
        rms = CT_SECONDARY_A * current_pct / 100.0
        model = self.config.model
        true = [
            Signal(rms, base - angle_deg, CURRENT_HARMONICS) if rms else ZERO
            for base in self.service.current_angles
        ]
        channels = [ZERO] * model.channel_count
        for element, signal in enumerate(true, start=1):
            channel = model.channel(1, element)
            channels[channel.index] = signal.scaled(CT_GAIN_ERROR, CT_PHASE_ERROR_DEG)
        return true, channels

    def run(
        self,
        voltages: list[Signal],
        channels: list[Signal],
        frequency: float,
        duration: float,
        offset_lsb: float = 0.0,
    ) -> tuple[Meter, np.ndarray[Any, np.dtype[np.float64]], float]:
        """Meter; return the meter, register deltas after the first synchronised
        window, and the metered seconds they cover."""
        meter = Meter(self.config, SAMPLE_RATE)
        v_adc = Adc(VOLTAGE_FULL_SCALE, rng=self.rng)
        i_adc = Adc(CURRENT_FULL_SCALE, offset_lsb=offset_lsb, rng=self.rng)
        chunk = int(SAMPLE_RATE * 0.1)
        total = int(SAMPLE_RATE * duration)
        baseline: tuple[np.ndarray[Any, np.dtype[np.float64]], float] | None = None
        # A random start phase, so no test point starts on a zero crossing.
        start = int(self.rng.integers(0, int(SAMPLE_RATE)))
        for offset in range(0, total, chunk):
            v, i = sample_meter(
                voltages,
                channels,
                frequency=frequency,
                sample_rate=SAMPLE_RATE,
                samples=min(chunk, total - offset),
                start=start + offset,
                voltage_adc=v_adc,
                current_adc=i_adc,
            )
            windows = meter.process(v, i)
            if baseline is None and windows and windows[-1].voltage_valid:
                baseline = (meter.energy.value_wh.copy(), meter.metered_seconds)
        assert baseline is not None, "the meter never synchronised"
        return meter, meter.energy.value_wh - baseline[0], meter.metered_seconds - baseline[1]


def _angle(factor: float, kind: str, reactive: bool) -> float:
    """Current lag angle (degrees, + = inductive) for a PF or sin φ."""
    angle = math.degrees(math.asin(factor) if reactive else math.acos(factor))
    return -angle if kind == "cap" else angle


def run_accuracy(services: tuple[Service, ...] = SERVICES, seed: int = 2026) -> Iterator[Result]:
    """Yield the result of every active and reactive test point."""
    for number, service in enumerate(services):
        bench = _Bench(service, seed + number)
        nominal = bench.config.frequency_hz
        voltages = bench.voltages()
        for frequency in (nominal * 0.95, float(nominal), nominal * 1.05):
            for quantity, table in (("active", ACTIVE_POINTS), ("reactive", REACTIVE_POINTS)):
                reactive = quantity == "reactive"
                for current_pct, factor, kind, limit in table:
                    true, channels = bench.currents(current_pct, _angle(factor, kind, reactive))
                    _, delta, seconds = bench.run(voltages, channels, frequency, DURATION)
                    ratio = (
                        bench.config.pt_ratio * bench.config.points[0].ct_primary_a / CT_SECONDARY_A
                    )
                    terminals = [bench.config.points[0].phases[k].row for k in range(len(true))]
                    if reactive:
                        power = sum(
                            fundamental_reactive_power(voltages[t], c)
                            for t, c in zip(terminals, true, strict=True)
                        )
                        measured = delta[0, KVARH_DELIVERED] - delta[0, KVARH_RECEIVED]
                    else:
                        power = sum(
                            active_power(voltages[t], c)
                            for t, c in zip(terminals, true, strict=True)
                        )
                        measured = delta[0, KWH_DELIVERED] - delta[0, KWH_RECEIVED]
                    expected = power * ratio * seconds / 3600.0
                    yield Result(
                        service.name,
                        quantity,
                        frequency,
                        current_pct,
                        factor,
                        kind,
                        limit,
                        (measured - expected) / abs(expected) * 100.0,
                    )


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    """Outcome of a starting-current or no-load test."""

    service: str
    test: str
    passed: bool
    detail: str


def run_threshold_tests(
    services: tuple[Service, ...] = SERVICES, seed: int = 7
) -> Iterator[ThresholdResult]:
    """Starting current (0.1 % In, PF 1, 10 s) and no load (115 % Un, 0 A, 60 s)."""
    for number, service in enumerate(services):
        bench = _Bench(service, seed + number)
        frequency = float(bench.config.frequency_hz)
        true, channels = bench.currents(0.1, 0.0)
        meter = Meter(bench.config, SAMPLE_RATE)
        v_adc = Adc(VOLTAGE_FULL_SCALE, rng=bench.rng)
        i_adc = Adc(CURRENT_FULL_SCALE, rng=bench.rng)
        voltages = bench.voltages()
        chunk = int(SAMPLE_RATE)
        registering = 0
        windows_seen = 0
        for second in range(10):
            v, i = sample_meter(
                voltages, channels, frequency=frequency, sample_rate=SAMPLE_RATE,
                samples=chunk, start=second * chunk, voltage_adc=v_adc, current_adc=i_adc,
            )  # fmt: skip
            for window in meter.process(v, i):
                if window.voltage_valid:
                    windows_seen += 1
                    registering += int(window.power[0] > 0)
        terminals = [bench.config.points[0].phases[k].row for k in range(len(true))]
        ratio = bench.config.pt_ratio * bench.config.points[0].ct_primary_a / CT_SECONDARY_A
        expected = sum(active_power(voltages[t], c) for t, c in zip(terminals, true, strict=True))
        expected *= ratio * meter.metered_seconds / 3600.0
        error = (meter.energy.value_wh[0, KWH_DELIVERED] - expected) / expected * 100.0
        yield ThresholdResult(
            service.name,
            "starting current 0.1 % In",
            registering == windows_seen > 0,
            f"registered in {registering}/{windows_seen} windows, energy error {error:+.2f} %",
        )

        meter = Meter(bench.config, SAMPLE_RATE)
        i_adc = Adc(CURRENT_FULL_SCALE, offset_lsb=3.0, rng=bench.rng)
        high = bench.voltages(1.15)
        silent = [ZERO] * bench.config.model.channel_count
        for second in range(60):
            v, i = sample_meter(
                high, silent, frequency=frequency, sample_rate=SAMPLE_RATE,
                samples=chunk, start=second * chunk, voltage_adc=v_adc, current_adc=i_adc,
            )  # fmt: skip
            meter.process(v, i)
        registered = float(meter.energy.value_wh.sum())
        yield ThresholdResult(
            service.name,
            "no load 115 % Un, 60 s",
            registered == 0.0,
            f"registered {registered:.6f} Wh+varh",
        )


def format_table(results: list[Result]) -> str:
    """The error of every test point as a Markdown table."""
    lines = [
        "| service | quantity | f (Hz) | I (% In) | PF / sin φ | limit (%) | error (%) | |",
        "|---|---|---:|---:|---|---:|---:|---|",
    ]
    lines.extend(
        f"| {r.service} | {r.quantity} | {r.frequency:.1f} | {r.current_pct:g} | "
        f"{r.factor:g} {r.kind} | ±{r.limit_pct:g} | {r.error_pct:+.4f} | "
        f"{'pass' if r.passed else 'FAIL'} |"
        for r in results
    )
    worst = max(results, key=lambda r: abs(r.error_pct) / r.limit_pct)
    lines.append("")
    lines.append(
        f"{sum(r.passed for r in results)}/{len(results)} points within the class limit; "
        f"largest error relative to its limit: {worst.error_pct:+.4f} % of ±{worst.limit_pct:g} % "
        f"({worst.service}, {worst.quantity}, {worst.current_pct:g} % In, "
        f"{worst.factor:g} {worst.kind}, {worst.frequency:.1f} Hz)"
    )
    return "\n".join(lines)


def format_threshold_table(results: list[ThresholdResult]) -> str:
    """Starting-current and no-load results as a Markdown table."""
    lines = ["| service | test | result | |", "|---|---|---|---|"]
    lines.extend(
        f"| {r.service} | {r.test} | {r.detail} | {'pass' if r.passed else 'FAIL'} |"
        for r in results
    )
    return "\n".join(lines)


__all__ = [
    "SERVICES",
    "Result",
    "Service",
    "ThresholdResult",
    "format_table",
    "format_threshold_table",
    "run_accuracy",
    "run_threshold_tests",
]
