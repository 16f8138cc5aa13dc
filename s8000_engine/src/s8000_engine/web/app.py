"""The local meter's web interface: the S8000 configuration tool in a browser.

``s8000-engine run --web HOST:PORT`` serves it beside Modbus, from the same
process: the meter meters in its own thread, the web server runs on the
event loop and never touches the meter's state directly.  It reads the
:class:`~s8000_engine.live.LiveView` the meter shares after every second,
reads the interval memory through a connection of its own, and hands every
change to the meter as a task it runs between two seconds
(:meth:`LocalMeter.submit <s8000_engine.local.LocalMeter.submit>`), so a
change is applied whole or not at all.

Pages (after login, see :mod:`s8000_engine.web.auth`):

``/``
    the single-page interface: live readings, interval charts, settings,
    front panel, discovery and the change log (``static/``).
``/login``
    the login page.

JSON API (every state-changing request carries the session's CSRF token):

==============================  ==============================================
``GET /api/live``               the live view (the display's six values, per
                                phase watts, vars and amps, voltages)
``GET /api/live/stream``        the same as server-sent events, every second
``GET /api/intervals``          interval energy in buckets: ``span`` day
                                (hours), week or month (days), ``point`` N or
                                ``all``, ``end`` (ISO 8601, default now)
``GET /api/intervals.csv``      the records of the same range as CSV
``GET/POST /api/settings``      the configuration tool's four sections
``GET /api/changes``            the configuration change log
``GET/POST /api/discovery``     S8000 units found on the scanned networks
``GET /api/panel``              the front panel's LCD
``POST /api/panel/button``      press or release Display, left, right
``POST /api/send``              the "Send" command
==============================  ==============================================
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from s8000_engine.client import discovery
from s8000_engine.config.settings import SettingsError, public_settings
from s8000_engine.const import FIRMWARE, FIRMWARE_BUILD
from s8000_engine.exceptions import ConfigError
from s8000_engine.local.changes import Origin
from s8000_engine.panel.state import Button, FrontPanel, PanelInfo
from s8000_engine.storage import export
from s8000_engine.storage.store import IntervalRecord, Store
from s8000_engine.web.auth import (
    IDLE_TIMEOUT,
    IPNetwork,
    current_session,
    json_body,
    setup_auth,
    still_signed_in,
)

if TYPE_CHECKING:
    from s8000_engine.local.live import LiveView
    from s8000_engine.local.meter import LocalMeter

_LOGGER = logging.getLogger(__name__)

#: Buckets per span: (bucket seconds, buckets).
SPANS: Final = {"day": (3600, 24), "week": (86400, 7), "month": (86400, 30)}
#: How long a change may wait for the meter's thread.
APPLY_TIMEOUT_S: Final = 15.0
#: Server-sent events: a comment this often keeps idle proxies from closing the stream.
KEEPALIVE_S: Final = 15.0
#: Open live streams allowed per session (a few tabs) and in all: each is a
#: listener the metering thread calls every second.
MAX_STREAMS_PER_SESSION: Final = 4
MAX_STREAMS: Final = 32
#: What a refused stream is told to wait (s).
STREAMS_RETRY_S: Final = 10
STATIC: Final = resources.files("s8000_engine.web") / "static"


class ApiError(web.HTTPException):
    """An error answered as JSON ``{"error": message}`` with a status code."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        self.status_code = status
        super().__init__(
            text=json.dumps({"error": message, **extra}), content_type="application/json"
        )


@dataclass(slots=True)
class DiscoveryScope:
    """Where the discovery page looks: networks scanned for Modbus TCP meters."""

    networks: list[str] = field(default_factory=list)
    port: int = 502
    unit: int = 1
    wait_s: float = 1.0
    found: list[discovery.Found] = field(default_factory=list)
    scanned_at: float | None = None
    running: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The scope and the last scan, for JSON."""
        return {
            "networks": self.networks,
            "port": self.port,
            "found": [f.as_dict() for f in self.found],
            "scanned_at": self.scanned_at,
            "running": self.running,
            "error": self.error,
        }


#: The times the meter's clock (and so its records) can hold, s since 1970.
TIME_RANGE: Final = (0.0, float(2**32))
#: How much of a refused request's message one log line keeps.
LOGGED_MESSAGE: Final = 160


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: str, what: str) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    except (ValueError, OverflowError):  # year 1 at UTC+14 is before year 1
        raise ApiError(400, f"{what}: not an ISO 8601 time: {text[:40]!r}") from None
    # What the meter's clock can hold (an unsigned 32-bit count of seconds):
    # a time outside it has no records, and the day arithmetic on it would
    # run off datetime's range.
    if not TIME_RANGE[0] <= seconds < TIME_RANGE[1]:
        raise ApiError(400, f"{what}: {text[:40]!r} is outside 1970–2106, the meter's clock")
    return seconds


class WebMeter:
    """What the web interface needs of a running local meter."""

    def __init__(
        self,
        meter: LocalMeter,
        *,
        discovery_scope: DiscoveryScope | None = None,
        local_ip: str = "127.0.0.1",
        panel_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.meter = meter
        self.path = meter.store.path
        self.discovery = discovery_scope or DiscoveryScope()
        self.local_ip = local_ip
        #: The meter's one front panel: the web page and ``s8000-engine panel`` share it.
        self.panel = FrontPanel(lambda: meter.live, self.panel_info, self, clock=panel_clock)

    # -- the front panel's view of the unit -------------------------------------------

    def panel_info(self) -> PanelInfo:
        """The diagnostics mode's "Local IP address" list, from the configuration."""

        config = self.meter.config
        unit = getattr(config, "unit", None)
        reporting = config.reporting
        return PanelInfo(
            local_ip=self.local_ip,
            remote_host=reporting.host or reporting.url,
            time_server=getattr(unit, "ntp_host", ""),
            default_ip=getattr(unit, "ip", ""),
            default_netmask=getattr(unit, "netmask", ""),
            default_gateway=getattr(unit, "gateway", ""),
            ppp_user=getattr(unit, "ppp_username", ""),
            phone_number=getattr(unit, "phone", ""),
            at_command=getattr(unit, "at_string", ""),
            alt_phone_number=getattr(unit, "alt_phone", ""),
            serial_number=self.meter.serial,
            firmware_build=FIRMWARE_BUILD,
            mac_address=self.meter.mac,
            firmware_revision=FIRMWARE,
            pt_ratio=config.pt_ratio,
        )

    def send(self) -> bool:
        """The panel's "Send": True if a report starts (in the meter's thread)."""
        if not self.meter.config.reporting.configured:
            return False
        self.meter.submit(self.meter.send)
        return True

    def reset_default_ip(self) -> None:
        """The panel's "Reset default IP": recorded in the change log."""
        self.meter.submit(lambda: self.meter.reset_default_ip(user="front panel"))

    # -- reading ---------------------------------------------------------------------

    def live(self) -> LiveView:
        """The last second's values."""
        view = self.meter.live
        if view is None:
            raise ApiError(503, "the meter has not metered a second yet")
        return view

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        """A connection of its own to the meter's store (for a worker thread)."""
        with Store.open(self.path, create=False) as store:
            yield store

    def records(
        self, start: float, end: float, points: Sequence[int] | None
    ) -> list[IntervalRecord]:
        """Interval records starting in [start, end) (a thread of its own may call this)."""
        with self.store() as store:
            return store.intervals(start, end, points)

    def stored_meta(self, *keys: str) -> list[Any]:
        """Meta values of the store, read through a connection of its own."""
        with self.store() as store:
            return [store.get_meta(key) for key in keys]

    # -- changing ----------------------------------------------------------------------

    async def in_meter[T](self, task: Callable[[], T]) -> T:
        """Run ``task`` in the meter's thread between two seconds."""
        future = self.meter.submit(task)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), APPLY_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            raise ApiError(503, "the meter is not metering: the change was not applied") from None


METER_KEY: Final = web.AppKey("meter", WebMeter)


@dataclass(slots=True)
class _Streams:
    """The live streams open now, in all and by session (its CSRF token, a
    per-session secret that never leaves the server but in its own answers)."""

    total: int = 0
    by_session: dict[str, int] = field(default_factory=dict)

    @contextlib.contextmanager
    def opened(self, session: str) -> Iterator[None]:
        """Count one stream while it is open; ApiError 429 beyond the caps."""
        if self.total >= MAX_STREAMS or self.by_session.get(session, 0) >= MAX_STREAMS_PER_SESSION:
            mine = self.by_session.get(session, 0)
            refused = ApiError(
                429,
                f"too many live streams open ({mine} of this session, {self.total} in all): "
                "close a tab",
                retry_after=STREAMS_RETRY_S,
            )
            refused.headers["Retry-After"] = str(STREAMS_RETRY_S)
            raise refused
        self.total += 1
        self.by_session[session] = self.by_session.get(session, 0) + 1
        try:
            yield
        finally:
            self.total -= 1
            left = self.by_session[session] - 1
            if left:
                self.by_session[session] = left
            else:
                del self.by_session[session]


STREAMS_KEY: Final = web.AppKey("streams", _Streams)


def _meter(request: web.Request) -> WebMeter:
    return request.app[METER_KEY]


def _point_arg(request: web.Request, points: int) -> int | None:
    """``point`` of the query: a number 1..N, or ``all`` (None)."""
    text = request.query.get("point", "all")
    if text == "all":
        return None
    try:
        number = int(text)
    except ValueError:
        raise ApiError(400, f"point: expected a point number or 'all', not {text!r}") from None
    if not 1 <= number <= points:
        raise ApiError(400, f"point: this meter has points 1 to {points}, not {number}")
    return number


def _span_range(request: web.Request, now: float) -> tuple[str, int, float, float]:
    """``span`` and ``end`` of the query: the span, its bucket length, start and end."""
    span = request.query.get("span", "day")
    if span not in SPANS:
        raise ApiError(400, f"span: expected one of {', '.join(SPANS)}, not {span!r}")
    step, count = SPANS[span]
    end_text = request.query.get("end")
    end = _parse_time(end_text, "end") if end_text else now
    end = math.ceil(end / step) * step  # the bucket holding ``end`` is the last one
    return span, step, end - step * count, end


# -- handlers -------------------------------------------------------------------------


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(Path(str(STATIC / "index.html")))


async def _login_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(Path(str(STATIC / "login.html")))


async def _favicon(request: web.Request) -> web.FileResponse:
    return web.FileResponse(Path(str(STATIC / "favicon.svg")))


async def _live(request: web.Request) -> web.Response:
    return web.json_response(_meter(request).live().as_dict())


async def _live_stream(request: web.Request) -> web.StreamResponse:
    """Every second's live view as server-sent events (newest wins when a client lags)."""
    meter = _meter(request)
    session = current_session(request)
    assert session is not None  # the stream is not public
    with request.app[STREAMS_KEY].opened(session.csrf):
        return await _stream_live(request, meter)


async def _stream_live(request: web.Request, meter: WebMeter) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    latest: asyncio.Queue[LiveView] = asyncio.Queue(maxsize=1)

    def offer(view: LiveView) -> None:
        if latest.full():
            latest.get_nowait()
        latest.put_nowait(view)

    def listener(view: LiveView) -> None:  # the meter's thread
        loop.call_soon_threadsafe(offer, view)

    remove = meter.meter.add_listener(listener)
    try:
        if meter.meter.live is not None:
            offer(meter.meter.live)
        # The stream ends with its session (logout, expiry, a new password).
        while still_signed_in(request):
            try:
                view = await asyncio.wait_for(latest.get(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            await response.write(f"data: {json.dumps(view.as_dict())}\n\n".encode())
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        remove()
    return response


@dataclass(frozen=True, slots=True)
class _Range:
    """The range of intervals a chart or CSV request asks for."""

    view: LiveView
    point: int | None  # None: every point
    span: str
    step: int
    start: float
    end: float

    @property
    def points(self) -> list[int] | None:
        """The 0-based points of the range, None for all."""
        return None if self.point is None else [self.point - 1]


def _range(request: web.Request) -> _Range:
    """``point``, ``span`` and ``end`` of the query."""
    view = _meter(request).live()
    point = _point_arg(request, len(view.points))
    span, step, start, end = _span_range(request, view.time)
    return _Range(view, point, span, step, start, end)


async def _intervals(request: web.Request) -> web.Response:
    meter = _meter(request)
    found = _range(request)

    def read() -> list[tuple[int, int, int, int, int]]:
        with meter.store() as store:
            return store.energy_by_bucket(found.start, found.end, found.step, found.points)

    sums = {row[0]: row for row in await asyncio.to_thread(read)}
    buckets = []
    for k in range(SPANS[found.span][1]):
        begin = int(found.start) + k * found.step
        _, delivered, received, count, flags = sums.get(begin, (begin, 0, 0, 0, 0))
        buckets.append(
            {
                "start": _iso(begin),
                "delivered": delivered / 1e6,
                "received": received / 1e6,
                "intervals": count,
                "flags": flags,
            }
        )
    point = found.point
    return web.json_response(
        {
            "span": found.span,
            "point": point,
            "name": "All points" if point is None else found.view.point(point).name,
            "start": _iso(found.start),
            "end": _iso(found.end),
            "step": found.step,
            "intervals": sum(b["intervals"] for b in buckets),
            "buckets": buckets,
            "delivered": sum(b["delivered"] for b in buckets),
            "received": sum(b["received"] for b in buckets),
        }
    )


async def _intervals_csv(request: web.Request) -> web.Response:
    meter = _meter(request)
    found = _range(request)
    records = await asyncio.to_thread(meter.records, found.start, found.end, found.points)
    view, point = found.view, found.point
    text = export.to_csv(records, [p.name for p in view.points])
    stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(found.start))
    which = "all" if point is None else f"point{point}"
    name = f"s8000-{view.serial}-{which}-{stamp}.csv"
    return web.Response(
        text=text,
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _discovery(request: web.Request) -> web.Response:
    return web.json_response(_meter(request).discovery.as_dict())


async def _discovery_scan(request: web.Request) -> web.Response:
    scope = _meter(request).discovery
    if not scope.networks:
        raise ApiError(409, "no network to scan: start the meter with --discover-network NETWORK")
    if scope.running:
        raise ApiError(409, "a scan is already under way")
    scope.running = True
    try:
        scope.found = await discovery.scan(
            scope.networks, port=scope.port, unit=scope.unit, wait_s=scope.wait_s
        )
        scope.error = None
    except (OSError, ValueError) as error:
        scope.error = str(error)
    finally:
        scope.running = False
        scope.scanned_at = time.time()
    return web.json_response(scope.as_dict())


async def _json_object(request: web.Request, shape: str) -> dict[str, Any]:
    """The request's JSON object; a 400 saying ``shape`` for anything else."""
    try:
        body = await json_body(request)
    except ValueError:
        raise ApiError(400, "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, shape)
    return body


# -- settings ------------------------------------------------------------------------


def _settings_payload(meter: WebMeter) -> dict[str, Any]:
    raw, minutes = meter.stored_meta("config", "recording_minutes")
    config = meter.meter.config
    return public_settings(raw or {}, int(minutes or 15), config.model)


async def _settings(request: web.Request) -> web.Response:
    meter = _meter(request)
    return web.json_response(await asyncio.to_thread(_settings_payload, meter))


async def _settings_change(request: web.Request) -> web.Response:
    meter = _meter(request)
    changes = await _json_object(request, "the request body must be a JSON object of sections")
    session = current_session(request)
    user = session.user if session is not None else "?"
    try:
        result = await meter.in_meter(
            lambda: meter.meter.apply_change(changes, origin=Origin.WEB, user=user)
        )
    except ConfigError as error:
        # Each wrong field by the form's path, from the validators' own paths.
        refused = SettingsError.of(error)
        raise ApiError(400, str(refused), **refused.as_dict()) from None
    settings = await asyncio.to_thread(_settings_payload, meter)
    return web.json_response({"changes": list(result.changes), "settings": settings})


async def _changes(request: web.Request) -> web.Response:
    meter = _meter(request)

    def read() -> list[dict[str, Any]]:
        with meter.store() as store:
            return [dataclasses.asdict(c) for c in store.config_changes(100)]

    return web.json_response({"changes": await asyncio.to_thread(read)})


# -- the front panel ---------------------------------------------------------------


async def _panel(request: web.Request) -> web.Response:
    return web.json_response(_meter(request).panel.render().as_dict())


async def _panel_button(request: web.Request) -> web.Response:
    panel = _meter(request).panel
    body = await _json_object(request, 'expected {"button": ..., "action": ...}')
    try:
        button = Button(str(body.get("button")))
    except ValueError:
        raise ApiError(
            400, f"button: expected one of {', '.join(b.value for b in Button)}"
        ) from None
    action = body.get("action")
    if action == "press":
        state = panel.press(button)
    elif action == "release":
        state = panel.release(button)
    else:
        raise ApiError(400, "action: expected press or release")
    return web.json_response(state.as_dict())


async def _send(request: web.Request) -> web.Response:
    meter = _meter(request)
    started = await meter.in_meter(meter.meter.send)
    if not started and not meter.meter.config.reporting.configured:
        raise ApiError(409, "no host server is configured: set one under Settings → Unit")
    return web.json_response({"started": started})


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    """Unexpected errors answer a plain message, logged, never a traceback page;
    bad input (a 400) is logged as one short line."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as err:
        if err.status == 400:
            _log_refused(request, err.text)
        raise
    except asyncio.CancelledError:
        raise
    except Exception:
        _LOGGER.exception("web request %s %s failed", request.method, request.path)
        raise ApiError(500, "internal error: see the meter's log") from None
    if response.status == 400 and isinstance(response, web.Response):
        _log_refused(request, response.text)
    return response


def _log_refused(request: web.Request, answer: str | None) -> None:
    """One line for a request refused as bad input: who, what, and why (cut
    short, and as a Python literal, so what a client sent cannot forge lines)."""
    try:
        message = json.loads(answer or "{}").get("error", "")
    except (ValueError, AttributeError):
        message = ""
    _LOGGER.warning(
        "web request %s %s from %s: 400 %r",
        request.method,
        request.path[:80],
        request.remote,
        str(message)[:LOGGED_MESSAGE],
    )


def create_app(
    meter: WebMeter,
    credentials: Path,
    *,
    secure_cookie: bool = False,
    idle_timeout: float = IDLE_TIMEOUT,
    host_names: Sequence[str] = (),
    trusted_proxies: Sequence[IPNetwork] = (),
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The web application of ``meter``, with its login (credential file ``credentials``)."""
    app = web.Application(middlewares=[_errors], client_max_size=256 * 1024)
    app[METER_KEY] = meter
    app[STREAMS_KEY] = _Streams()
    setup_auth(
        app,
        credentials,
        secure_cookie=secure_cookie,
        idle_timeout=idle_timeout,
        host_names=host_names,
        trusted_proxies=trusted_proxies,
        clock=clock,
    )
    app.router.add_get("/", _index)
    app.router.add_get("/login", _login_page)
    app.router.add_get("/favicon.ico", _favicon)
    app.router.add_static("/static/", Path(str(STATIC)), append_version=False)
    app.router.add_get("/api/live", _live)
    app.router.add_get("/api/live/stream", _live_stream)
    app.router.add_get("/api/intervals", _intervals)
    app.router.add_get("/api/intervals.csv", _intervals_csv)
    app.router.add_get("/api/discovery", _discovery)
    app.router.add_post("/api/discovery", _discovery_scan)
    app.router.add_post("/api/send", _send)
    app.router.add_get("/api/settings", _settings)
    app.router.add_post("/api/settings", _settings_change)
    app.router.add_get("/api/changes", _changes)
    app.router.add_get("/api/panel", _panel)
    app.router.add_post("/api/panel/button", _panel_button)
    return app


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[tuple[str, int]]:
    """Serve ``app`` on ``host:port`` (0: any free port); yields the bound address."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[:2] if sockets else (host, port)
        yield str(bound[0]), int(bound[1])
    finally:
        await runner.cleanup()


__all__ = [
    "METER_KEY",
    "ApiError",
    "DiscoveryScope",
    "WebMeter",
    "create_app",
    "serving",
]
