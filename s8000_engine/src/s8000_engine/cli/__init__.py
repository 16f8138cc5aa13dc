"""The ``s8000-engine`` command line.

Commands:

``models``
    The model catalogue: points, elements, CT channels and wire colours.
``meter FILE``
    Meter a waveform file (docs/waveform-format.md) and print the energy
    registers and the last readings of every point.
``synth FILE``
    Write a waveform file of a known load (every configured point carries it),
    for test benches.
``accuracy``
    Run the IEC 62053-22/-24 accuracy suite and print its tables.
``run``
    Run the local meter: meter a simulated panel (``--simulate``) or a
    waveform file (``--replay``), record intervals and keep the registers in
    the data directory's non-volatile store.
``registers``
    The Modbus register map (SunSpec profile) as JSON, CSV or Markdown.
``read HOST[:PORT]``
    A meter's readings over Modbus TCP, as a table or JSON
    (``s8000-engine read --help``).
``discover``
    Scan the given IPv4 networks for Modbus TCP devices that identify as an
    S8000 and list them like the configuration tool's "Unit Discovery".
``send``
    The display's "Send" command: report every unreported interval to the
    configured host (FTP/FTPS or HTTP(S) POST); intervals are marked reported
    only once the host acknowledged them.
``export``
    Interval data from the store, by time range and point, as CSV or JSON.
``panel``
    The front panel (2x16 LCD and its three buttons) of a running local meter
    in a terminal, through its web interface (``s8000-engine panel --help``).
``web-password``
    Set the web interface's admin password (from stdin, typed twice, or
    ``--generate``d and printed once); signed-in browsers must log in again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import ipaddress
import json
import math
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from s8000_engine import __version__
from s8000_engine.config.meter import MeterConfig, meter_config
from s8000_engine.const import FIRMWARE
from s8000_engine.exceptions import ConfigError, StorageError
from s8000_engine.metering.meter import REGISTER_NAMES, Meter
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
from s8000_engine.metering.waveform import WaveformReader, WaveformWriter
from s8000_engine.models import CT_SECONDARY_A, MODELS, get_model
from s8000_engine.storage.export import parse_time
from s8000_engine.storage.recorder import RECORDING_INTERVALS
from s8000_engine.storage.store import DATABASE_NAME, Store


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``s8000-engine``."""
    parser = argparse.ArgumentParser(
        prog="s8000-engine",
        description=(
            "The Leviton Series 8000 multi-point submeter in software: "
            "models, metering, interval memory, Modbus, and a local meter."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    models = commands.add_parser("models", help="list the S8000 models and their CT channels")
    models.add_argument("--format", choices=("table", "json"), default="table")
    models.add_argument("model", nargs="?", help="show one model's channels and wire colours")

    meter = commands.add_parser("meter", help="meter a waveform file and print the registers")
    meter.add_argument("file", type=Path, help="waveform file (docs/waveform-format.md)")
    meter.add_argument(
        "--config", type=Path, help="meter configuration (JSON); default: the file's own"
    )
    meter.add_argument("--format", choices=("table", "json"), default="table")

    synth = commands.add_parser("synth", help="write a waveform file of a known load")
    synth.add_argument("file", type=Path)
    synth.add_argument("--config", type=Path, required=True, help="meter configuration (JSON)")
    synth.add_argument("--seconds", type=float, default=10.0)
    synth.add_argument("--sample-rate", type=int, default=8000)
    synth.add_argument("--frequency", type=float, help="line frequency (default: nominal)")
    synth.add_argument("--current", type=float, default=50.0, help="load in %% of the CT rating")
    synth.add_argument("--pf", type=float, default=1.0, help="displacement power factor")
    synth.add_argument("--capacitive", action="store_true", help="leading instead of lagging")
    synth.add_argument("--harmonics", action="store_true", help="add 3rd/5th/7th harmonics")
    synth.add_argument("--encoding", choices=("pcm16", "float32"), default="pcm16")

    accuracy = commands.add_parser("accuracy", help="run the IEC 62053-22/-24 accuracy suite")
    accuracy.add_argument("--quick", action="store_true", help="the first service type only")

    run = commands.add_parser("run", help="run the local meter (simulated panel or replay)")
    run.add_argument("--data", type=Path, default=Path("s8000-data"), help="data directory")
    run.add_argument(
        "--config",
        type=Path,
        help="meter configuration (JSON) for a data directory that has none yet; "
        "afterwards the stored one (changed in the web interface) is kept",
    )
    run.add_argument(
        "--replace-config",
        action="store_true",
        help="replace the stored configuration with --config's",
    )
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--simulate", action="store_true", help="meter a simulated panel")
    source.add_argument("--replay", type=Path, metavar="FILE", help="meter a waveform file")
    run.add_argument("--seed", type=int, default=0, help="simulated panel's seed")
    run.add_argument(
        "--speed", type=float, default=1.0, help="simulated time runs this much faster"
    )
    run.add_argument("--start", help="simulated start time, ISO 8601 UTC (first run only)")
    run.add_argument(
        "--interval",
        type=int,
        choices=RECORDING_INTERVALS,
        help="recording minutes (default: the stored one, set over Modbus, or 15)",
    )
    run.add_argument("--retention-days", type=float, default=120.0)
    run.add_argument("--seconds", type=float, help="stop after this much meter time")
    run.add_argument("--sample-rate", type=int, default=8000)
    run.add_argument(
        "--progress", action="store_true", help="print a JSON line after every committed second"
    )
    run.add_argument(
        "--modbus-tcp", metavar="HOST:PORT", help="serve Modbus TCP, e.g. 127.0.0.1:5020"
    )
    run.add_argument("--modbus-rtu", metavar="DEVICE", help="serve Modbus RTU on a serial device")
    run.add_argument("--baud", type=int, default=19200, choices=(9600, 19200))
    run.add_argument("--parity", choices=("N", "E", "O"), default="E")
    run.add_argument("--unit-id", type=int, default=1, help="Modbus unit id (the base address)")
    run.add_argument(
        "--web",
        metavar="[HOST:]PORT",
        help="serve the web configuration interface, e.g. 8080 (on 127.0.0.1) or "
        "0.0.0.0:8080 (every interface); it asks for the web admin password",
    )
    run.add_argument(
        "--discover-network",
        action="append",
        default=[],
        metavar="NETWORK",
        help="IPv4 network the web interface's discovery page scans (repeatable; "
        "default: the /24 of the --web address when it is one interface's)",
    )
    run.add_argument(
        "--discover-port", type=int, default=502, help="Modbus TCP port the discovery page probes"
    )
    run.add_argument(
        "--announce",
        action="append",
        metavar="IP",
        help="announce the Modbus TCP service with zeroconf on this interface address "
        "(repeatable; nothing is announced without it)",
    )

    registers = commands.add_parser(
        "registers", help="print the Modbus register map (JSON, CSV or Markdown)"
    )
    registers.add_argument("--format", choices=("json", "csv", "markdown"), default="markdown")
    registers.add_argument(
        "--config", type=Path, help="meter configuration (JSON); default: the demo meter"
    )

    read_cmd = commands.add_parser(
        "read", help="read a meter's readings over Modbus TCP (table or JSON)", add_help=False
    )
    read_cmd.add_argument("rest", nargs=argparse.REMAINDER)

    discover = commands.add_parser(
        "discover", help="find S8000 meters on the given networks (Modbus TCP)"
    )
    discover.add_argument(
        "--network",
        action="append",
        default=[],
        help="IPv4 network or address to scan, e.g. 192.0.2.0/24 (repeatable)",
    )
    discover.add_argument(
        "--zeroconf",
        action="append",
        default=[],
        metavar="IP",
        help="browse for announced meters on this interface address (repeatable)",
    )
    discover.add_argument("--browse-seconds", type=float, default=3.0)
    discover.add_argument(
        "--serial",
        metavar="DEVICE",
        help="scan the unit ids of an RS-485 bus on this serial device",
    )
    discover.add_argument("--baud", type=int, default=19200, choices=(9600, 19200))
    discover.add_argument("--parity", choices=("N", "E", "O"), default="E")
    discover.add_argument("--units", default="1-247", help="unit ids to try on the bus, e.g. 1-32")
    discover.add_argument("--port", type=int, default=502)
    discover.add_argument("--unit-id", type=int, default=1)
    discover.add_argument("--concurrency", type=int, default=64)
    discover.add_argument("--timeout", type=float, default=1.0, help="seconds per address")
    discover.add_argument("--format", choices=("table", "json"), default="table")

    send = commands.add_parser(
        "send", help="report unreported intervals to the configured host now (the Send command)"
    )
    send.add_argument("--data", type=Path, default=Path("s8000-data"), help="data directory")

    export = commands.add_parser("export", help="export interval data as CSV or JSON")
    export.add_argument("--data", type=Path, default=Path("s8000-data"), help="data directory")
    export.add_argument("--from", dest="start", help="first interval start, ISO 8601 UTC")
    export.add_argument("--to", dest="end", help="end of the range (exclusive), ISO 8601 UTC")
    export.add_argument("--points", help="meter points, e.g. 1,3-5 (default: all)")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")

    from s8000_engine.panel import terminal as panelterm  # noqa: PLC0415

    panel = commands.add_parser(
        "panel",
        help="the front panel of a running local meter, in a terminal",
        description=panelterm.DESCRIPTION,
        epilog=panelterm.EPILOG,
    )
    panelterm.add_arguments(panel)
    web_password = commands.add_parser(
        "web-password",
        help="set the web interface's admin password (read from stdin or typed twice)",
    )
    web_password.add_argument(
        "--data", type=Path, default=Path("s8000-data"), help="data directory"
    )
    web_password.add_argument("--user", help="admin user name (default: keep it, or admin)")
    web_password.add_argument(
        "--generate", action="store_true", help="generate a password and print it once"
    )
    return parser


def _load_config(path: Path) -> MeterConfig:
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a JSON object")
    return meter_config(data)


def _models(args: argparse.Namespace) -> int:
    chosen = [get_model(args.model)] if args.model else list(MODELS.values())
    if args.format == "json":
        payload = [
            {
                "model": m.code,
                "voltage": m.voltage,
                "connection": m.connection.value,
                "points": m.points,
                "elements": m.elements,
                "channels": [{"name": c.name, "x1": c.x1, "x2": c.x2} for c in m.channels],
            }
            for m in chosen
        ]
        print(json.dumps(payload, indent=2))
        return 0
    if args.model:
        model = chosen[0]
        print(f"{model.code}: {model.points} points × {model.elements} elements, {model.voltage} V")
        print(f"{'channel':8} {'CT X1':8} {'CT X2':8}")
        for channel in model.channels:
            print(f"{channel.name:8} {channel.x1:8} {channel.x2:8}")
        return 0
    print(f"{'model':10} {'V':>4} {'points':>6} {'elements':>8}  connection")
    for model in chosen:
        print(
            f"{model.code:10} {model.voltage:>4} {model.points:>6} {model.elements:>8}  "
            f"{model.connection.value}"
        )
    return 0


def _meter(args: argparse.Namespace) -> int:
    with WaveformReader(args.file) as reader:
        info = reader.info
        if args.config is not None:
            config = _load_config(args.config)
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


def _synth(args: argparse.Namespace) -> int:
    config = _load_config(args.config)
    raw = json.loads(args.config.read_text())
    if not 0 < args.pf <= 1:
        raise ConfigError("--pf: must be in (0, 1]")
    if not 0 <= args.current <= 200:
        raise ConfigError("--current: must be between 0 and 200 (% of the CT rating)")
    frequency = args.frequency or float(config.frequency_hz)
    angle = math.degrees(math.acos(args.pf)) * (-1 if args.capacitive else 1)
    v_harmonics = VOLTAGE_HARMONICS if args.harmonics else ()
    i_harmonics = CURRENT_HARMONICS if args.harmonics else ()
    nominal = config.nominal_voltage
    delta = config.service.value == "3p3w"
    base = {"A": 30.0 if delta else 0.0, "B": -120.0, "C": 90.0 if delta else 120.0}
    current_base = {"A": 0.0, "B": -120.0, "C": 120.0}
    if config.service.value == "1p3w":
        base["B"] = 180.0
        current_base["B"] = 180.0
    voltages = [
        Signal(nominal, base[p], v_harmonics) if p in {x.value for x in config.phases} else ZERO
        for p in "ABC"
    ]
    currents = [ZERO] * config.model.channel_count
    rms = CT_SECONDARY_A * args.current / 100.0
    for number, point in enumerate(config.points, start=1):
        for element, phase in enumerate(point.phases, start=1):
            channel = config.model.channel(number, element)
            currents[channel.index] = Signal(rms, current_base[phase.value] - angle, i_harmonics)
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
    print(f"wrote {args.file}: {args.seconds:g} s at {args.sample_rate} Hz, {config.model.code}")
    return 0


def _accuracy(args: argparse.Namespace) -> int:
    from s8000_engine.metering import accuracy  # noqa: PLC0415  (heavy; only for this command)

    services = accuracy.SERVICES[:1] if args.quick else accuracy.SERVICES
    results = list(accuracy.run_accuracy(services))
    print(accuracy.format_table(results))
    thresholds = list(accuracy.run_threshold_tests(services))
    print()
    print(accuracy.format_threshold_table(thresholds))
    ok = all(r.passed for r in results) and all(t.passed for t in thresholds)
    return 0 if ok else 1


def _points(text: str | None) -> list[int] | None:
    """'1,3-5' → [0, 2, 3, 4] (0-based)."""
    if not text:
        return None
    chosen: set[int] = set()
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            chosen.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise ConfigError(f"--points: not a list of point numbers: {text!r}") from None
    if min(chosen) < 1:
        raise ConfigError("--points: points are numbered from 1")
    return sorted(p - 1 for p in chosen)


def _run(args: argparse.Namespace) -> int:
    from s8000_engine.local import changes  # noqa: PLC0415
    from s8000_engine.local import meter as local  # noqa: PLC0415

    if not args.speed > 0:
        raise ConfigError("--speed: must be positive")
    args.data.mkdir(parents=True, exist_ok=True)
    with Store.open(args.data) as store:
        raw: dict[str, Any] | None
        raw = store.get_meta("config")
        if args.replace_config and args.config is None:
            raise ConfigError("--replace-config: name the configuration with --config")
        if args.config is not None:
            _load_config(args.config)  # a wrong file is refused even when it is not used
            given = json.loads(args.config.read_text())
            if raw is None or args.replace_config:
                raw = given
            elif raw != given:
                print(
                    f"keeping the stored configuration (changed since {args.config}); "
                    "--replace-config replaces it",
                    file=sys.stderr,
                )
        source: local.SampleSource
        clock: local.Clock
        if args.replay is not None:
            reader = WaveformReader(args.replay)
            if raw is None and reader.info.config is not None:
                raw = dict(reader.info.config)
            if raw is None:
                raise ConfigError(
                    f"{args.replay}: the file carries no configuration; pass --config"
                )
            start = parse_time(reader.info.start) if reader.info.start else None
            clock = local.simulated_clock(store, args.speed, start)
            source = local.ReplaySource(reader)
            sample_rate = reader.info.sample_rate
        else:
            from s8000_engine.local.simulate import PanelSimulator  # noqa: PLC0415

            raw = raw or local.DEMO_CONFIG
            config = meter_config(raw)
            start = parse_time(args.start) if args.start else None
            clock = (
                local.SystemClock()
                if args.speed == 1.0 and start is None
                else local.simulated_clock(store, args.speed, start)
            )
            source = PanelSimulator(config, seed=args.seed, sample_rate=args.sample_rate)
            sample_rate = args.sample_rate
        config = meter_config(raw)

        def progress(event: local.Progress) -> None:
            line = {"event": event.event, "time": event.time, "registers": event.registers}
            if event.event == "start":
                line["restored"] = event.restored
            print(json.dumps(line), flush=True)

        meter = local.LocalMeter(
            config,
            store,
            source,
            clock,
            sample_rate=sample_rate,
            recording_minutes=args.interval or int(store.get_meta("recording_minutes") or 15),
            retention_days=args.retention_days,
            pulses=local.SimulatedPulses(args.seed) if args.simulate else None,
            on_progress=progress if args.progress else None,
        )
        # A configuration given here is a change like any other: validated,
        # stored with its change-log entry (origin "cli"), before metering starts.
        meter.apply_change(changes.Replacement(raw), origin=changes.Origin.CLI, user=_user())
        meter.start()
        if args.modbus_tcp or args.modbus_rtu or args.web:
            if not 1 <= args.unit_id <= 247:
                raise ConfigError("--unit-id: must be between 1 and 247")
            asyncio.run(_serve(meter, args))
            return 0
        if not args.progress:
            print(
                f"local meter: {config.model.code}, {len(config.points)} points, "
                f"data in {store.path}" + (" (restored)" if meter.restored else ""),
                file=sys.stderr,
            )
        with contextlib.suppress(KeyboardInterrupt, EOFError):  # Ctrl-C; end of a replay
            meter.run(seconds=args.seconds)
    return 0


def _user() -> str:
    """Who runs the command, for the change log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "command line"


def _registers(args: argparse.Namespace) -> int:
    from s8000_engine.local.image import build_map  # noqa: PLC0415
    from s8000_engine.local.meter import DEMO_CONFIG  # noqa: PLC0415
    from s8000_engine.protocol import publish  # noqa: PLC0415

    config = _load_config(args.config) if args.config else meter_config(DEMO_CONFIG)
    regmap = build_map(config)
    if args.format == "json":
        print(publish.as_json(regmap))
    elif args.format == "csv":
        sys.stdout.write(publish.as_csv(regmap))
    else:
        sys.stdout.write(publish.as_markdown(regmap))
    return 0


def _read(args: argparse.Namespace) -> int:
    from s8000_engine.cli.read import read_command  # noqa: PLC0415

    return read_command(args.rest)


def _panel(args: argparse.Namespace) -> int:
    from s8000_engine.panel.terminal import run_panel  # noqa: PLC0415

    return run_panel(args)


def _discover(args: argparse.Namespace) -> int:
    from s8000_engine.client import discovery  # noqa: PLC0415

    if not args.network and not args.zeroconf and not args.serial:
        raise ConfigError(
            "discover: name the networks to scan (--network), --zeroconf IP or --serial DEVICE"
        )
    rows: list[discovery.Found] = []
    if args.serial:
        units = [u + 1 for u in _points(args.units) or []]
        rows += asyncio.run(
            discovery.scan_serial(args.serial, baudrate=args.baud, parity=args.parity, units=units)
        )
    if args.zeroconf:
        from s8000_engine.local.announce import browse  # noqa: PLC0415

        rows += [
            discovery.Found(
                a.host, a.port, a.model, a.name, a.mac, a.firmware, "", a.serial, "Announced"
            )
            for a in asyncio.run(browse(args.zeroconf, args.browse_seconds))
        ]
    total = len(discovery.addresses(args.network)) if args.network else 0
    show = sys.stderr.isatty()

    def progress(done: int, of: int) -> None:
        if show:
            print(f"\rscanning {done}/{of} addresses", end="", file=sys.stderr, flush=True)

    if args.network:
        rows += asyncio.run(
            discovery.scan(
                args.network,
                port=args.port,
                unit=args.unit_id,
                concurrency=args.concurrency,
                wait_s=args.timeout,
                progress=progress,
            )
        )
        if show:
            print(file=sys.stderr)
    if args.format == "json":
        print(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        print(discovery.format_table(rows))
        print(f"{len(rows)} meter(s) found among {total} address(es)", file=sys.stderr)
    return 0


def _send(args: argparse.Namespace) -> int:
    from s8000_engine.storage.reporting import Reporter  # noqa: PLC0415

    path = args.data / DATABASE_NAME if args.data.is_dir() else args.data
    with Store.open(path, create=False) as store:
        raw = store.get_meta("config")
        if raw is None:
            raise ConfigError(f"{path}: no meter configuration stored; run the meter first")
        config = meter_config(raw)
        reporter = Reporter(
            store,
            config.reporting,
            serial=str(store.get_meta("serial") or "unknown"),
            names=[p.name for p in config.points],
        )
        result = reporter.send_now(time.time())
    for destination in result.destinations:
        print(f"sent: {destination}")
    if result.error:
        print(f"s8000-engine send: {result.error}", file=sys.stderr)
        return 1
    print(f"{result.intervals} intervals in {result.files} files acknowledged")
    return 0


async def _serve(meter: Any, args: argparse.Namespace) -> None:
    """Serve Modbus while the meter meters in a worker thread."""
    from s8000_engine.modbus.backend import MeterBackend  # noqa: PLC0415
    from s8000_engine.modbus.server import Handler, RtuServer, TcpServer  # noqa: PLC0415

    # Function 20 reads the interval memory through its own connection:
    # SQLite transactions do not mix across the meter's and the server's threads.
    history_store = Store.open(meter.store.path, create=False)
    backend = MeterBackend(
        meter.regmap,
        model=meter.config.model.code,
        serial=meter.serial,
        firmware=FIRMWARE,
        history=history_store.intervals,
        interval_s=meter.recorder.length,
    )
    meter.serve(backend)
    handler = Handler(backend)
    closers: list[Any] = []
    if args.modbus_tcp:
        host, _, port = args.modbus_tcp.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"--modbus-tcp: expected HOST:PORT, not {args.modbus_tcp!r}")
        tcp = TcpServer(handler, unit_id=args.unit_id)
        bound = await tcp.start(host.strip("[]"), int(port))
        print(
            f"serving Modbus TCP on {bound[0]}:{bound[1]}, unit {args.unit_id}",
            file=sys.stderr,
            flush=True,
        )
        closers.append(tcp.close)
        if args.announce:
            from s8000_engine.local.announce import announce  # noqa: PLC0415

            address = bound[0] if bound[0] not in ("0.0.0.0", "::") else args.announce[0]
            announcement = await announce(
                address,
                bound[1],
                interfaces=args.announce,
                serial=meter.serial,
                model=meter.config.model.code,
                unit_id=args.unit_id,
                firmware=FIRMWARE,
                mac=meter.mac,
            )
            closers.insert(0, announcement.close)
            print(f"announced with zeroconf on {', '.join(args.announce)}", file=sys.stderr)
    if args.modbus_rtu:
        rtu = RtuServer(
            handler, args.modbus_rtu, unit_id=args.unit_id, baudrate=args.baud, parity=args.parity
        )
        await rtu.start()
        print(
            f"serving Modbus RTU on {args.modbus_rtu} at {args.baud} baud 8{args.parity}1, "
            f"unit {args.unit_id}",
            file=sys.stderr,
            flush=True,
        )
        closers.append(rtu.close)
    if args.web:
        closers.insert(0, await _serve_web(meter, args))
    try:
        with contextlib.suppress(KeyboardInterrupt, EOFError):
            await asyncio.to_thread(meter.run, args.seconds)
    finally:
        for close in closers:
            await close()
        history_store.close()


def _local_ip(args: argparse.Namespace, web_host: str) -> str:
    """The address the front panel shows as the meter's local IP."""
    for given in (args.modbus_tcp.rpartition(":")[0] if args.modbus_tcp else "", web_host):
        host = given.strip("[]")
        if host and host not in ("0.0.0.0", "::"):
            return host
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def _is_lan_address(host: str) -> bool:
    """Whether ``host`` is one interface's IPv4 address (not loopback, not every interface)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and not address.is_loopback and not address.is_unspecified


def _web_address(text: str) -> tuple[str, int]:
    """``--web``: ``PORT`` (on 127.0.0.1) or ``HOST:PORT``."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--web: expected [HOST:]PORT, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def _serve_web(meter: Any, args: argparse.Namespace) -> Callable[[], Awaitable[None]]:
    """Start the web interface; returns its closer."""
    from s8000_engine.client import discovery  # noqa: PLC0415
    from s8000_engine.web.app import DiscoveryScope, WebMeter, create_app, serving  # noqa: PLC0415
    from s8000_engine.web.auth import CREDENTIAL_NAME, Credentials  # noqa: PLC0415

    host, port = _web_address(args.web)
    discovery.addresses(args.discover_network)  # refuses a wrong or too large network now
    credential = args.data / CREDENTIAL_NAME
    made, password = Credentials.ensure(credential)
    if password is not None:
        print(
            f"web interface: user {made.username!r}, password {password!r} "
            "(shown once: change it with s8000-engine web-password)",
            file=sys.stderr,
            flush=True,
        )
    networks = list(args.discover_network)
    if not networks and _is_lan_address(host):
        # As the configuration tool: the local subnet (a /24) of the interface it serves on.
        networks = [str(ipaddress.ip_network(f"{host}/24", strict=False))]
    scope = DiscoveryScope(networks, port=args.discover_port)
    app = create_app(
        WebMeter(meter, discovery_scope=scope, local_ip=_local_ip(args, host)), credential
    )
    context = serving(app, host, port)
    bound = await context.__aenter__()
    print(f"web interface on http://{bound[0]}:{bound[1]}/", file=sys.stderr, flush=True)
    if not ipaddress.ip_address(bound[0]).is_loopback:
        print(
            "web interface: reachable from the network (plain HTTP): keep it on a trusted LAN",
            file=sys.stderr,
            flush=True,
        )

    async def close() -> None:
        await context.__aexit__(None, None, None)

    return close


def _export(args: argparse.Namespace) -> int:
    from s8000_engine.storage import export  # noqa: PLC0415

    path = args.data / DATABASE_NAME if args.data.is_dir() else args.data
    with Store.open(path, create=False) as store:
        start = parse_time(args.start) if args.start else None
        end = parse_time(args.end) if args.end else None
        records = store.intervals(start, end, _points(args.points))
        raw = store.get_meta("config")
        names = [p.name for p in meter_config(raw).points] if raw else []
    text = export.to_csv(records, names) if args.format == "csv" else export.to_json(records, names)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
        print(f"wrote {len(records)} intervals to {args.output}", file=sys.stderr)
    return 0


def _web_password(args: argparse.Namespace) -> int:
    from s8000_engine.web import auth  # noqa: PLC0415

    password = auth.generate_password() if args.generate else auth.read_new_password()
    path = args.data / auth.CREDENTIAL_NAME
    credentials = auth.Credentials.set_password(path, password, username=args.user)
    if args.generate:
        print(password)
    print(
        f"web password of {credentials.username!r} set in {path}; "
        "signed-in browsers must log in again",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {
        "models": _models,
        "meter": _meter,
        "synth": _synth,
        "accuracy": _accuracy,
        "run": _run,
        "registers": _registers,
        "discover": _discover,
        "read": _read,
        "send": _send,
        "export": _export,
        "panel": _panel,
        "web-password": _web_password,
    }
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handlers[args.command](args)
    except (ValueError, StorageError) as error:  # ConfigError, WaveformError, unknown model
        print(f"s8000-engine {args.command}: {error}", file=sys.stderr)
        return 2
