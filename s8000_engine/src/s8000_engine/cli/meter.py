"""``s8000-engine meter FILE``: meter a waveform file and print the energy
registers and the last readings of every point."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from s8000_engine.cli._config import EXAMPLES, read_config
from s8000_engine.config.meter import meter_config
from s8000_engine.exceptions import ConfigError
from s8000_engine.metering.meter import REGISTER_NAMES, Meter
from s8000_engine.metering.waveform import WaveformReader


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("file", type=Path, help="waveform file (docs/waveform-format.md)")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="meter configuration (JSON) when the file carries none or another one; "
        f"default: the file's own (s8000-engine synth writes it); examples in {EXAMPLES}",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")


def run(args: argparse.Namespace) -> int:
    """Meter the file; print what the registers hold."""
    with WaveformReader(args.file) as reader:
        info = reader.info
        if args.config is not None:
            config = meter_config(read_config(args.config))
        elif info.config is not None:
            config = meter_config(info.config)
        else:
            raise ConfigError(f"{args.file}: the file carries no configuration; pass --config")
        if config.model != info.model:
            raise ConfigError(
                f"model: the configuration is for {config.model.code}, "
                f"the file for {info.model.code}"
            )
        meter = Meter(config, info.sample_rate)
        for voltages, currents in reader.blocks():
            meter.process(voltages, currents)
    readings = meter.readings
    registers = meter.energy.value_wh
    points = []
    for number, point in enumerate(config.points):
        entry: dict[str, Any] = {"point": number + 1, "name": point.name}
        entry.update(
            {
                name: round(float(registers[number, k]) / 1000.0, 9)
                for k, name in enumerate(REGISTER_NAMES)
            }
        )
        if readings is not None:
            entry.update(
                power_w=round(float(readings.power[number]), 3),
                reactive_var=round(float(readings.reactive[number]), 3),
                apparent_va=round(float(readings.apparent[number]), 3),
                power_factor=None
                if math.isnan(readings.power_factor[number])
                else round(float(readings.power_factor[number]), 5),
            )
        points.append(entry)
    summary: dict[str, Any] = {
        "file": str(args.file),
        "model": info.model.code,
        "seconds": round(meter.metered_seconds, 6),
        "frequency_hz": None if readings is None else round(readings.frequency, 4),
        "voltage_v": None if readings is None else [round(float(v), 3) for v in readings.voltage],
        "points": points,
    }
    if args.format == "json":
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{args.file}: {info.model.code}, {summary['seconds']:.3f} s metered")
    if readings is not None:
        volts = ", ".join(f"{v:.2f}" for v in readings.voltage)
        print(f"frequency {readings.frequency:.3f} Hz, voltage A/B/C {volts} V")
    columns = ("kWh D", "kWh R", "kvarh D", "kvarh R")
    print(f"{'point':16} " + " ".join(f"{c:>12}" for c in columns) + f" {'W':>10} {'var':>10}")
    for entry in points:
        print(
            f"{entry['name'][:16]:16} {entry['kwh_delivered']:12.6f} {entry['kwh_received']:12.6f} "
            f"{entry['kvarh_delivered']:12.6f} {entry['kvarh_received']:12.6f} "
            f"{entry.get('power_w', 0.0):10.2f} {entry.get('reactive_var', 0.0):10.2f}"
        )
    return 0
