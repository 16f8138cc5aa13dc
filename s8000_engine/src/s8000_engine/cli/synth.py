"""``s8000-engine synth FILE``: write a waveform file of a known load (every
configured point carries it), for test benches."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from s8000_engine.cli._config import add_config_options, chosen_config
from s8000_engine.config.meter import SOURCE_ANGLES, TERMINAL_ANGLES, Phase
from s8000_engine.exceptions import ConfigError
from s8000_engine.metering.synth import (
    CURRENT_FULL_SCALE,
    CURRENT_HARMONICS,
    VOLTAGE_FULL_SCALE,
    VOLTAGE_HARMONICS,
    ZERO,
    Adc,
    Signal,
    sample_meter,
)
from s8000_engine.metering.waveform import WaveformWriter
from s8000_engine.models import CT_SECONDARY_A


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("file", type=Path, help="the waveform file to write (WAVE)")
    add_config_options(parser, "meter configuration (JSON) the file is made for")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sample-rate", type=int, default=8000)
    parser.add_argument("--frequency", type=float, help="line frequency (default: nominal)")
    parser.add_argument("--current", type=float, default=50.0, help="load in %% of the CT rating")
    parser.add_argument("--pf", type=float, default=1.0, help="displacement power factor")
    parser.add_argument("--capacitive", action="store_true", help="leading instead of lagging")
    parser.add_argument("--harmonics", action="store_true", help="add 3rd/5th/7th harmonics")
    parser.add_argument("--encoding", choices=("pcm16", "float32"), default="pcm16")
    parser.epilog = (
        "The file carries its configuration: s8000-engine meter FILE meters it as configured."
    )


def run(args: argparse.Namespace) -> int:
    """Write the file."""
    config, raw = chosen_config(args)
    if not 0 < args.pf <= 1:
        raise ConfigError("--pf: must be in (0, 1]")
    if not 0 <= args.current <= 200:
        raise ConfigError("--current: must be between 0 and 200 (% of the CT rating)")
    if not args.seconds > 0:
        raise ConfigError("--seconds: must be positive")
    if not args.sample_rate > 0:
        raise ConfigError("--sample-rate: must be positive")
    frequency = args.frequency or float(config.frequency_hz)
    angle = math.degrees(math.acos(args.pf)) * (-1 if args.capacitive else 1)
    v_harmonics = VOLTAGE_HARMONICS if args.harmonics else ()
    i_harmonics = CURRENT_HARMONICS if args.harmonics else ()
    nominal = config.nominal_voltage
    terminal = TERMINAL_ANGLES[config.service]
    source = SOURCE_ANGLES[config.service]
    voltages = [
        Signal(nominal, terminal[phase], v_harmonics) if phase in terminal else ZERO
        for phase in Phase
    ]
    currents = [ZERO] * config.model.channel_count
    rms = CT_SECONDARY_A * args.current / 100.0
    for number, point in enumerate(config.points, start=1):
        for element, phase in enumerate(point.phases, start=1):
            channel = config.model.channel(number, element)
            currents[channel.index] = Signal(rms, source[phase] - angle, i_harmonics)
    rng = np.random.default_rng(1)
    v_adc = Adc(VOLTAGE_FULL_SCALE, rng=rng) if args.encoding == "pcm16" else None
    i_adc = Adc(CURRENT_FULL_SCALE, rng=rng) if args.encoding == "pcm16" else None
    total = int(args.seconds * args.sample_rate)
    with WaveformWriter(
        args.file, config.model, args.sample_rate, encoding=args.encoding, config=raw
    ) as writer:
        for start in range(0, total, args.sample_rate):
            n = min(args.sample_rate, total - start)
            v, i = sample_meter(
                voltages, currents, frequency=frequency, sample_rate=args.sample_rate,
                samples=n, start=start, voltage_adc=v_adc, current_adc=i_adc,
            )  # fmt: skip
            writer.write(v, i)
    print(
        f"wrote {args.file}: {args.seconds:g} s at {args.sample_rate} Hz, {config.model.code} "
        f"({len(config.points)} points)"
    )
    return 0
