"""The local meter's PowerHawk-style real-time pages, read-only and without login.

Some S8000 units are read through the built-in web pages of the PowerHawk
line (``docs/integration.md``, *Web pages*) rather than Modbus.  So that the
web-page link (:mod:`s8000_engine.client.webpages`) is tested end to end,
``s8000-engine run --pages [HOST:]PORT`` serves the same layout on a
listener of its own, apart from the login-protected configuration tool
(:mod:`s8000_engine.web.app`, which stays at ``--web``'s ``/``):

``/`` (and ``/index.htm``)
    a ``FRAMESET``: ``header.htm``, ``nav.htm`` and ``rt/active.htm``;
``/header.htm``
    the meter's title, the first ``<p>`` of its first ``<table>``;
``/nav.htm``
    links to ``rt/active.htm`` and ``rt/reactive.htm``;
``/rt/active.htm``, ``/rt/reactive.htm``
    a meta refresh to ``active1.htm`` and ``reactive1.htm``, as some units do;
``/rt/active1.htm``
    per point: `` W ``, `` kWh delivered ``, `` kWh received ``;
``/rt/reactive1.htm``
    per point: ``var``, ``VA``, ``kvarh received``.

Each table's row 0 holds the ``<th>`` headers, then one row per point: its
number, its name, its values.  The values come from the very
:class:`~s8000_engine.local.image.MeterSnapshot` the Modbus registers are
rendered from (the meter hands every one to :func:`pages_view` in its own
thread), so the pages and the registers agree; energies are truncated to
the watt-hour, never rounded up past the register.  Before the meter's
first metered second the real-time pages answer 503.

Like the real units' pages there is no login, so nothing secret is on them:
the model and serial number (which Modbus serves to anyone too), the point
names and the readings.  Only GET (and HEAD) of these paths is answered.
"""

from __future__ import annotations

import html
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from s8000_engine.local.image import MeterSnapshot
from s8000_engine.metering.meter import KVARH_RECEIVED, KWH_DELIVERED, KWH_RECEIVED

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: How often the real-time pages ask the browser to reload them, in seconds.
REFRESH_S: Final = 5
#: Every answer: never cached (the values change every second), never sniffed.
_HEADERS: Final = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True, slots=True)
class PointRow:
    """One point as the pages show it."""

    name: str
    watts: float
    var: float
    va: float
    wh_delivered: int
    wh_received: int
    varh_received: int


@dataclass(frozen=True, slots=True)
class PagesView:
    """What the pages show at one metered second (immutable: the server reads
    it in its own thread while the meter takes the next)."""

    title: str
    points: tuple[PointRow, ...]


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def pages_view(snapshot: MeterSnapshot) -> PagesView | None:
    """The pages' values from the snapshot the registers are rendered from
    (None before the first metered second: no readings yet)."""
    readings = snapshot.readings
    config = snapshot.config
    if readings is None or len(snapshot.registers) < len(config.points):
        return None
    points = []
    for index, point in enumerate(config.points):
        registers = snapshot.registers[index]  # mWh, mvarh
        points.append(
            PointRow(
                name=point.name,
                watts=_finite(float(readings.power[index])),
                var=_finite(float(readings.reactive[index])),
                va=_finite(float(readings.apparent[index])),
                wh_delivered=int(registers[KWH_DELIVERED]) // 1000,
                wh_received=int(registers[KWH_RECEIVED]) // 1000,
                varh_received=int(registers[KVARH_RECEIVED]) // 1000,
            )
        )
    return PagesView(f"{config.model.code} {snapshot.serial}", tuple(points))


class PagesSource:
    """The latest view, set in the meter's thread and read by the server's."""

    def __init__(self) -> None:
        self.view: PagesView | None = None

    def update(self, snapshot: MeterSnapshot) -> None:
        """Take the pages' values of a new snapshot (a snapshot listener)."""
        self.view = pages_view(snapshot)


def _kilo(units: int) -> str:
    """Wh as kWh with three decimals, exactly (no float rounding)."""
    return f"{units // 1000}.{units % 1000:03d}"


def _document(body: str, *, head: str = "") -> str:
    return f"<html>\n<head><title>S8000</title>{head}</head>\n<body>\n{body}\n</body>\n</html>\n"


def _refresh(target: str) -> str:
    return _document("", head=f'<meta http-equiv="refresh" content="0; url={target}">')


def _table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ['<table border="1">', "<tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr>"]
    lines += ["<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows]
    lines.append("</table>")
    return "\n".join(lines)


def _realtime(view: PagesView, page: str) -> str:
    """The active or reactive page's table (names escaped: a user sets them)."""
    if page == "active":
        headers = ("#", "Meter Point", " W ", " kWh delivered ", " kWh received ")
        rows = [
            (str(n), html.escape(p.name), f"{p.watts:.1f}", _kilo(p.wh_delivered),
             _kilo(p.wh_received))
            for n, p in enumerate(view.points, start=1)
        ]  # fmt: skip
    else:
        headers = ("#", "Meter Point", "var", "VA", "kvarh received")
        rows = [
            (str(n), html.escape(p.name), f"{p.var:.1f}", f"{p.va:.1f}", _kilo(p.varh_received))
            for n, p in enumerate(view.points, start=1)
        ]
    return _document(
        _table(headers, rows), head=f'<meta http-equiv="refresh" content="{REFRESH_S}">'
    )


_FRAMESET: Final = """<html>
<head><title>S8000</title></head>
<frameset rows="80,*">
  <frame name="header" src="header.htm" scrolling="no">
  <frameset cols="160,*">
    <frame name="nav" src="nav.htm">
    <frame name="main" src="rt/active.htm">
  </frameset>
</frameset>
</html>
"""
_NAV: Final = _document(
    '<p><a href="rt/active.htm" target="main">Active</a></p>\n'
    '<p><a href="rt/reactive.htm" target="main">Reactive</a></p>'
)


def create_pages_app(view: Callable[[], PagesView | None]) -> web.Application:
    """The pages' application; ``view`` gives the latest values (None: not yet)."""

    def answer(text: str, status: int = 200) -> web.Response:
        return web.Response(text=text, status=status, content_type="text/html", headers=_HEADERS)

    def fixed(text: str) -> Handler:
        async def handler(_: web.Request) -> web.Response:
            return answer(text)

        return handler

    def with_view(render: Callable[[PagesView], str]) -> Handler:
        async def handler(_: web.Request) -> web.Response:
            current = view()
            if current is None:
                return answer(_document("<p>The meter has not metered yet.</p>"), status=503)
            return answer(render(current))

        return handler

    def header(current: PagesView) -> str:
        return _document(f'<table width="100%"><tr><td><p>{html.escape(current.title)}</p></td>'
                         "<td><p>Real Time</p></td></tr></table>")  # fmt: skip

    # A GET has no body: anything more than a few bytes is refused before it is read.
    app = web.Application(client_max_size=1024)
    routes: dict[str, Handler] = {
        "/": fixed(_FRAMESET),
        "/index.htm": fixed(_FRAMESET),
        "/nav.htm": fixed(_NAV),
        "/header.htm": with_view(header),
        "/rt/active.htm": fixed(_refresh("active1.htm")),
        "/rt/reactive.htm": fixed(_refresh("reactive1.htm")),
        "/rt/active1.htm": with_view(lambda current: _realtime(current, "active")),
        "/rt/reactive1.htm": with_view(lambda current: _realtime(current, "reactive")),
    }
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    return app


__all__ = ["PagesSource", "PagesView", "PointRow", "create_pages_app", "pages_view"]
