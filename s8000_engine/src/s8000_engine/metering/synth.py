"""Synthetic waveforms: what a meter's ADCs would sample.

Used by the accuracy suite, the benchmarks and the simulated panel of the
local meter.  A signal is a fundamental with harmonics,

    x(t) = √2 · Σ_h X_h · cos(h·ω·t + h·φ₁ + δ_h)

where X_1 is the fundamental's RMS value, φ₁ its phase, X_h = m_h·X_1 and δ_h
the harmonic's own phase offset, so rotating the fundamental rotates the
harmonics with it.  The :class:`Adc` model scales to a bipolar full scale,
adds Gaussian noise and a DC offset, and quantises to ``bits`` bits.

The exact reference powers of a pair of signals follow from the same
parameters (:func:`active_power`, :func:`fundamental_reactive_power`), which
is how the accuracy suite knows the true energy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from s8000_engine.metering.arrays import FloatArray


@dataclass(frozen=True, slots=True)
class Harmonic:
    """One harmonic of a signal, relative to its fundamental."""

    order: int
    magnitude: float
    """RMS value as a fraction of the fundamental's RMS value."""
    phase_deg: float = 0.0
    """Phase offset δ_h in degrees of the harmonic."""


@dataclass(frozen=True, slots=True)
class Signal:
    """A periodic signal: fundamental RMS and phase, plus harmonics."""

    rms: float
    phase_deg: float = 0.0
    harmonics: tuple[Harmonic, ...] = ()

    def phasor(self, order: int = 1) -> complex:
        """RMS phasor of one harmonic order (1 = fundamental)."""
        phase = math.radians(self.phase_deg)
        if order == 1:
            return self.rms * complex(math.cos(phase), math.sin(phase))
        for harmonic in self.harmonics:
            if harmonic.order == order:
                angle = order * phase + math.radians(harmonic.phase_deg)
                return self.rms * harmonic.magnitude * complex(math.cos(angle), math.sin(angle))
        return 0j

    def orders(self) -> set[int]:
        """The harmonic orders present, fundamental included."""
        return {1, *(h.order for h in self.harmonics)}

    def scaled(self, factor: float, phase_shift_deg: float = 0.0) -> Signal:
        """This signal scaled in amplitude and shifted in (fundamental) phase."""
        return Signal(self.rms * factor, self.phase_deg + phase_shift_deg, self.harmonics)


ZERO = Signal(0.0)


def active_power(voltage: Signal, current: Signal) -> float:
    """Mean of v·i: Σ over common orders of Re(V_h · conj(I_h))."""
    return float(
        sum(
            (voltage.phasor(h) * current.phasor(h).conjugate()).real
            for h in voltage.orders() & current.orders()
        )
    )


def fundamental_reactive_power(voltage: Signal, current: Signal) -> float:
    """IEEE 1459 Q1 = Im(V1 · conj(I1)); positive when the current lags."""
    return float((voltage.phasor(1) * current.phasor(1).conjugate()).imag)


def waveform(
    signal: Signal, frequency: float, sample_rate: float, samples: int, start: int = 0
) -> FloatArray:
    """Sample a signal at ``sample_rate`` from sample index ``start``."""
    if signal.rms == 0.0:
        return np.zeros(samples)
    t = (np.arange(start, start + samples, dtype=np.float64)) / sample_rate
    omega_t = 2.0 * np.pi * frequency * t
    phase = math.radians(signal.phase_deg)
    x = math.sqrt(2.0) * signal.rms * np.cos(omega_t + phase)
    for harmonic in signal.harmonics:
        x += (
            math.sqrt(2.0)
            * signal.rms
            * harmonic.magnitude
            * np.cos(harmonic.order * (omega_t + phase) + math.radians(harmonic.phase_deg))
        )
    return x


@dataclass(slots=True)
class Adc:
    """A bipolar ADC: full scale (peak), resolution, noise and offset."""

    full_scale: float
    bits: int = 16
    noise_lsb: float = 0.5
    """RMS Gaussian noise in LSB, added before quantisation (acts as dither)."""
    offset_lsb: float = 0.0
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    @property
    def lsb(self) -> float:
        """Value of one code step."""
        return float(self.full_scale / 2 ** (self.bits - 1))

    def sample(self, x: FloatArray) -> FloatArray:
        """Quantise analogue values to what the ADC reads back."""
        codes = x / self.lsb + self.offset_lsb
        if self.noise_lsb > 0:
            codes = codes + self.rng.normal(0.0, self.noise_lsb, size=x.shape)
        top = 2 ** (self.bits - 1)
        quantised: FloatArray = np.clip(np.round(codes), -top, top - 1) * self.lsb
        return quantised


#: Realistic harmonic content: voltage about the EN 50160 planning levels
#: (1.5 % 3rd, 3 % 5th, 1.5 % 7th), current of an electronic load (20 % 3rd,
#: 10 % 5th, 5 % 7th).
VOLTAGE_HARMONICS = (Harmonic(3, 0.015, 10.0), Harmonic(5, 0.03, -20.0), Harmonic(7, 0.015, 40.0))
CURRENT_HARMONICS = (Harmonic(3, 0.20, 30.0), Harmonic(5, 0.10, -60.0), Harmonic(7, 0.05, 15.0))

#: Full scale of the meter's inputs: 450 V peak on the voltage terminals
#: (300 V RMS maximum with margin) and 0.4 A peak of CT secondary
#: (100 mA RMS rated current at 35 % of full scale, room for 120 % with a
#: crest factor of 2.3).
VOLTAGE_FULL_SCALE = 450.0
CURRENT_FULL_SCALE = 0.4


def sample_meter(
    voltages: Sequence[Signal],
    currents: Sequence[Signal],
    *,
    frequency: float,
    sample_rate: float,
    samples: int,
    start: int = 0,
    voltage_adc: Adc | None = None,
    current_adc: Adc | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Sample three voltage terminals and every CT channel through ADCs.

    Returns ``(voltages (3, samples), currents (len(currents), samples))``
    in volts and amperes as the meter would read them.  Without ADCs the
    samples are exact.
    """
    v = np.stack([waveform(s, frequency, sample_rate, samples, start) for s in voltages])
    i = np.stack([waveform(s, frequency, sample_rate, samples, start) for s in currents])
    if voltage_adc is not None:
        v = voltage_adc.sample(v)
    if current_adc is not None:
        i = current_adc.sample(i)
    return v, i
