"""``s8000-engine run``: the local meter.

It meters a simulated panel (``--simulate``) or a waveform file
(``--replay``), records intervals and keeps the registers in the data
directory's non-volatile store, and serves them over Modbus TCP or RTU, in
the web configuration interface, and as PowerHawk-style real-time pages
(``--pages``, read-only and without login, as the real units serve them).

SIGINT (Ctrl-C) and SIGTERM stop it the same way: it finishes the second it
is metering, commits it to the store (the registers, the interval under way,
demand and pulse counts: what a restart restores), closes its servers and
exits with status 0.  A second signal while it stops ends it at once, which
loses at most that second, as a power cut would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import ipaddress
import json
import re
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from s8000_engine.cli._common import (
    STOP_SIGNALS,
    StopRequest,
    UsageError,
    add_profile_option,
    parse_address,
)
from s8000_engine.cli._config import EXAMPLES, given_config, model_config
from s8000_engine.cli.discover import network_addresses
from s8000_engine.config.demand import RECORDING_INTERVALS
from s8000_engine.config.meter import meter_config
from s8000_engine.const import BAUDRATES, DEFAULT_BAUDRATE, DEFAULT_PARITY, FIRMWARE
from s8000_engine.demo import DEFAULT_MODEL
from s8000_engine.exceptions import ConfigError
from s8000_engine.local import changes
from s8000_engine.local import meter as local
from s8000_engine.local.announce import announce
from s8000_engine.local.simulate import PanelSimulator
from s8000_engine.metering.waveform import WaveformReader
from s8000_engine.modbus.backend import MeterBackend
from s8000_engine.modbus.server import Handler, RtuServer, TcpServer
from s8000_engine.storage.export import parse_time
from s8000_engine.storage.store import Store, private_directory
from s8000_engine.web.app import DiscoveryScope, WebMeter, create_app, serving
from s8000_engine.web.auth import CREDENTIAL_NAME, IDLE_TIMEOUT, Credentials
from s8000_engine.web.pages import PagesSource, create_pages_app

EPILOG: Final = (
    "SIGINT (Ctrl-C) or SIGTERM stops the meter after the second it is metering, once that "
    "second is stored (exit status 0); a second signal stops it at once."
)


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.epilog = EPILOG
    parser.add_argument("--data", type=Path, default=Path("s8000-data"), help="data directory")
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="meter configuration (JSON) for a data directory that has none yet; "
        "afterwards the stored one (changed in the web interface) is kept; "
        f"examples in {EXAMPLES}",
    )
    given.add_argument(
        "--model",
        metavar="CODE",
        help="with --simulate: a simulated panel of this model, every point in use, "
        f"for a data directory that has no configuration yet (default {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--replace-config",
        action="store_true",
        help="replace the stored configuration with --config's (or --model's)",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--simulate", action="store_true", help="meter a simulated panel")
    source.add_argument("--replay", type=Path, metavar="FILE", help="meter a waveform file")
    parser.add_argument("--seed", type=int, default=0, help="simulated panel's seed")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated time runs this much faster"
    )
    parser.add_argument("--start", help="simulated start time, ISO 8601 UTC (first run only)")
    parser.add_argument(
        "--interval",
        type=int,
        choices=RECORDING_INTERVALS,
        help="recording minutes (default: the stored one, set over Modbus, or 15)",
    )
    parser.add_argument("--retention-days", type=float, default=120.0)
    parser.add_argument("--seconds", type=float, help="stop after this much meter time")
    parser.add_argument("--sample-rate", type=int, default=8000)
    parser.add_argument(
        "--progress", action="store_true", help="print a JSON line after every committed second"
    )
    parser.add_argument(
        "--modbus-tcp", metavar="HOST:PORT", help="serve Modbus TCP, e.g. 127.0.0.1:5020"
    )
    parser.add_argument(
        "--modbus-rtu", metavar="DEVICE", help="serve Modbus RTU on a serial device"
    )
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUDRATE, choices=BAUDRATES)
    parser.add_argument("--parity", choices=("N", "E", "O"), default=DEFAULT_PARITY)
    parser.add_argument("--unit-id", type=int, default=1, help="Modbus unit id (the base address)")
    add_profile_option(parser, "the meter serves over Modbus")
    parser.add_argument(
        "--web",
        metavar="[HOST:]PORT",
        help="serve the web configuration interface, e.g. 8080 (on 127.0.0.1) or "
        "0.0.0.0:8080 (every interface); it generates the web admin password at the first "
        "start and shows it once (set your own with s8000-engine web-password)",
    )
    parser.add_argument(
        "--pages",
        metavar="[HOST:]PORT",
        help="serve the PowerHawk-style real-time pages (a frameset, active.htm and "
        "reactive.htm) on a listener of their own, e.g. 8081 (on 127.0.0.1): read-only, "
        "no login, like the real units' pages",
    )
    parser.add_argument(
        "--web-secure-cookie",
        action="store_true",
        help="mark the session cookie Secure (named __Host-s8000_session): for a web "
        "interface reached over HTTPS through a TLS reverse proxy",
    )
    parser.add_argument(
        "--web-trusted-proxy",
        action="append",
        default=[],
        metavar="ADDRESS[/PREFIX]",
        help="a reverse proxy whose X-Forwarded-For and X-Forwarded-Proto are believed "
        "(repeat for more): the login limit and the log then see the client",
    )
    parser.add_argument(
        "--web-host-name",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the web interface answers to (e.g. meter.lan; repeat for more); "
        "it always answers to its addresses and localhost, and refuses other names "
        "(DNS rebinding)",
    )
    parser.add_argument(
        "--web-idle-timeout",
        type=float,
        default=IDLE_TIMEOUT,
        metavar="SECONDS",
        help=f"sign a web session out after this long without a request "
        f"(default {IDLE_TIMEOUT:.0f}; {IDLE_BOUNDS[0]:.0f} to {IDLE_BOUNDS[1]:.0f})",
    )
    parser.add_argument(
        "--discover-network",
        action="append",
        default=[],
        metavar="NETWORK",
        help="IPv4 network the web interface's discovery page scans (repeatable; "
        "default: the /24 of the --web address when it is one interface's)",
    )
    parser.add_argument(
        "--discover-port", type=int, default=502, help="Modbus TCP port the discovery page probes"
    )
    parser.add_argument(
        "--announce",
        action="append",
        metavar="IP",
        help="announce the Modbus TCP service with zeroconf on this interface address "
        "(repeatable; nothing is announced without it)",
    )


def _check(args: argparse.Namespace) -> None:
    """Refuse wrong options before anything is opened or started."""
    if not args.speed > 0:
        raise UsageError("--speed: must be positive")
    if args.replace_config and args.config is None and args.model is None:
        raise UsageError("--replace-config: name the configuration with --config or --model")
    if args.model is not None and args.replay is not None:
        raise UsageError("--model: only with --simulate (a waveform file carries its own)")
    if (args.modbus_tcp or args.modbus_rtu or args.web) and not 1 <= args.unit_id <= 247:
        raise UsageError("--unit-id: must be between 1 and 247")
    if args.modbus_tcp:
        parse_address(args.modbus_tcp, "--modbus-tcp")
    if args.web:
        parse_address(args.web, "--web", default_host="127.0.0.1")
        network_addresses(args.discover_network, "--discover-network")
    if args.pages:
        parse_address(args.pages, "--pages", default_host="127.0.0.1")
    for proxy in args.web_trusted_proxy:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise UsageError(
                f"--web-trusted-proxy: {proxy[:80]!r} is not an address or network"
            ) from None
    for name in args.web_host_name:
        if not HOST_NAME.fullmatch(name):
            raise UsageError(f"--web-host-name: {name[:80]!r} is not a host name")
    # (NaN fails both comparisons, and is refused too.)
    if not IDLE_BOUNDS[0] <= args.web_idle_timeout <= IDLE_BOUNDS[1]:
        raise UsageError(
            f"--web-idle-timeout: {args.web_idle_timeout:g} s is outside "
            f"{IDLE_BOUNDS[0]:.0f}–{IDLE_BOUNDS[1]:.0f} s"
        )


def _configuration(store: Store, args: argparse.Namespace) -> dict[str, Any] | None:
    """The configuration to meter with: the stored one, unless there is none
    yet or ``--replace-config`` replaces it with ``--config``'s or ``--model``'s."""
    raw: dict[str, Any] | None = store.get_meta("config")
    given = given_config(args)  # a wrong file is refused even when it is not used
    if given is not None:
        if raw is None or args.replace_config:
            raw = given
        elif raw != given:
            named = args.config if args.config is not None else f"--model {args.model}"
            print(
                f"keeping the stored configuration (changed since {named}); "
                "--replace-config replaces it",
                file=sys.stderr,
            )
    return raw


#: A DNS host name: dot-separated labels of letters, digits and hyphens.
HOST_NAME: Final = re.compile(
    r"(?=.{1,253}\.?$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
#: The idle timeouts a web session may be given (s): a few seconds (a kiosk)
#: to a day.
IDLE_BOUNDS: Final = (5.0, 86400.0)


def run(args: argparse.Namespace) -> int:
    """Run the local meter until ``--seconds`` of meter time, the end of a
    replay, or SIGINT/SIGTERM; 0 once its state is stored."""
    _check(args)
    private_directory(args.data)
    stop = StopRequest()
    with stop.handling(), Store.open(args.data) as store:
        raw = _configuration(store, args)
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
            config = meter_config(raw)
            start = parse_time(reader.info.start) if reader.info.start else None
            clock = local.simulated_clock(store, args.speed, start)
            source = local.ReplaySource(reader)
            sample_rate = reader.info.sample_rate
        else:
            raw = raw or model_config(DEFAULT_MODEL)
            config = meter_config(raw)
            try:
                start = parse_time(args.start) if args.start else None
            except ValueError as error:
                raise UsageError(f"--start: {error}") from None
            clock = (
                local.SystemClock()
                if args.speed == 1.0 and start is None
                else local.simulated_clock(store, args.speed, start)
            )
            source = PanelSimulator(config, seed=args.seed, sample_rate=args.sample_rate)
            sample_rate = args.sample_rate

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
            profile=args.profile,
        )
        # A configuration given here is a change like any other: validated,
        # stored with its change-log entry (origin "cli"), before metering starts.
        meter.apply_change(changes.Replacement(raw), origin=changes.Origin.CLI, user=_user())
        meter.start()
        if args.modbus_tcp or args.modbus_rtu or args.web or args.pages:
            asyncio.run(_serve(meter, args, stop))
        else:
            if not args.progress:
                print(
                    f"local meter: {config.model.code}, {len(config.points)} points, "
                    f"data in {store.path}" + (" (restored)" if meter.restored else ""),
                    file=sys.stderr,
                )
            with contextlib.suppress(EOFError):  # the end of a replay
                meter.run(args.seconds, stop.is_set)
        if stop.signum is not None:
            at = datetime.fromtimestamp(meter.t, UTC).isoformat().replace("+00:00", "Z")
            print(
                f"local meter stopped ({signal.Signals(stop.signum).name}) at meter time {at}; "
                f"its state is stored in {store.path}",
                file=sys.stderr,
                flush=True,
            )
    return 0


@contextlib.contextmanager
def _signals_in_loop(stop: StopRequest) -> Iterator[None]:
    """Hand SIGINT and SIGTERM to ``stop`` through the running event loop, which
    wakes at once (a plain handler waits for the loop's next event)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.request, signum)
    try:
        yield
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
            signal.signal(signum, stop.handler)  # back to the process's (until run ends)


async def _serve(meter: local.LocalMeter, args: argparse.Namespace, stop: StopRequest) -> None:
    """Serve Modbus and the web interface while the meter meters in a worker thread."""
    with _signals_in_loop(stop):
        async with contextlib.AsyncExitStack() as servers:
            # Function 20 reads the interval memory through its own connection:
            # SQLite transactions do not mix across the meter's and the server's threads.
            history_store = Store.open(meter.store.path, create=False)
            servers.callback(history_store.close)
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
            if args.modbus_tcp:
                await _serve_tcp(servers, meter, handler, args)
            if args.modbus_rtu:
                rtu = RtuServer(
                    handler,
                    args.modbus_rtu,
                    unit_id=args.unit_id,
                    baudrate=args.baud,
                    parity=args.parity,
                )
                await rtu.start()
                servers.push_async_callback(rtu.close)
                print(
                    f"serving Modbus RTU on {args.modbus_rtu} at {args.baud} baud "
                    f"8{args.parity}1, unit {args.unit_id}",
                    file=sys.stderr,
                    flush=True,
                )
            if args.web:
                await _serve_web(servers, meter, args)
            if args.pages:
                await _serve_pages(servers, meter, args)
            with contextlib.suppress(EOFError):  # the end of a replay
                await asyncio.to_thread(meter.run, args.seconds, stop.is_set)


async def _serve_tcp(
    servers: contextlib.AsyncExitStack,
    meter: local.LocalMeter,
    handler: Handler,
    args: argparse.Namespace,
) -> None:
    host, port = parse_address(args.modbus_tcp, "--modbus-tcp")
    tcp = TcpServer(handler, unit_id=args.unit_id)
    try:
        bound = await tcp.start(host, port)
    except OSError as error:
        raise ConfigError(f"--modbus-tcp: cannot serve on {args.modbus_tcp}: {error}") from None
    servers.push_async_callback(tcp.close)
    print(
        f"serving Modbus TCP on {bound[0]}:{bound[1]}, unit {args.unit_id}",
        file=sys.stderr,
        flush=True,
    )
    if args.announce:
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
        servers.push_async_callback(announcement.close)
        print(f"announced with zeroconf on {', '.join(args.announce)}", file=sys.stderr)


def _local_ip(args: argparse.Namespace, web_host: str) -> str:
    """The address the front panel shows as the meter's local IP."""
    modbus_host = parse_address(args.modbus_tcp, "--modbus-tcp")[0] if args.modbus_tcp else ""
    for host in (modbus_host, web_host):
        if host and host not in ("0.0.0.0", "::"):
            return host
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def is_lan_address(host: str) -> bool:
    """Whether ``host`` is one interface's IPv4 address (not loopback, not every interface)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and not address.is_loopback and not address.is_unspecified


async def _serve_web(
    servers: contextlib.AsyncExitStack, meter: local.LocalMeter, args: argparse.Namespace
) -> None:
    """Start the web interface; it stops with ``servers``."""
    host, port = parse_address(args.web, "--web", default_host="127.0.0.1")
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
    if not networks and is_lan_address(host):
        # As the configuration tool: the local subnet (a /24) of the interface it serves on.
        networks = [str(ipaddress.ip_network(f"{host}/24", strict=False))]
    scope = DiscoveryScope(networks, port=args.discover_port)
    app = create_app(
        WebMeter(meter, discovery_scope=scope, local_ip=_local_ip(args, host)),
        credential,
        idle_timeout=args.web_idle_timeout,
        host_names=args.web_host_name,
        secure_cookie=args.web_secure_cookie,
        trusted_proxies=[ipaddress.ip_network(p, strict=False) for p in args.web_trusted_proxy],
    )
    try:
        bound = await servers.enter_async_context(serving(app, host, port))
    except OSError as error:
        raise ConfigError(f"--web: cannot serve on {args.web}: {error}") from None
    print(f"web interface on http://{bound[0]}:{bound[1]}/", file=sys.stderr, flush=True)
    if not ipaddress.ip_address(bound[0]).is_loopback:
        print(
            "web interface: reachable from the network (plain HTTP): keep it on a trusted LAN",
            file=sys.stderr,
            flush=True,
        )


async def _serve_pages(
    servers: contextlib.AsyncExitStack, meter: local.LocalMeter, args: argparse.Namespace
) -> None:
    """Start the PowerHawk-style pages; they stop with ``servers``."""
    host, port = parse_address(args.pages, "--pages", default_host="127.0.0.1")
    source = PagesSource()
    # Every snapshot the registers are rendered from, in the meter's thread:
    # the pages show what Modbus serves.
    meter.add_snapshot_listener(source.update)
    try:
        bound = await servers.enter_async_context(
            serving(create_pages_app(lambda: source.view), host, port)
        )
    except OSError as error:
        raise ConfigError(f"--pages: cannot serve on {args.pages}: {error}") from None
    print(
        f"serving the PowerHawk pages on http://{bound[0]}:{bound[1]}/", file=sys.stderr, flush=True
    )


def _user() -> str:
    """Who runs the command, for the change log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "command line"
