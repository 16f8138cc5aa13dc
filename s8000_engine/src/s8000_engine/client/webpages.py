"""Read an S8000 through its built-in web pages (the PowerHawk pages), not Modbus.

Some units answer no Modbus request on their Ethernet port but serve the
real-time pages of the PowerHawk line they descend from.  Their layout is
known from the only public code that reads them, the Android app
faganqui/PowerhawkRealtime2.0 (``docs/integration.md``, *Web pages*):

* ``http://METER/`` is a ``FRAMESET``: the ``src`` of one frame contains
  ``nav`` (the navigation page), of one ``header`` (the meter's title: the
  first ``<p>`` of the header page's first ``<TABLE>``);
* the navigation page links to ``…active.htm`` and ``…reactive.htm``;
* those may redirect with ``<meta http-equiv="refresh" content="0; url=….htm">``;
* the values are in each page's first ``<TABLE>``: row 0 holds the ``<th>``
  column headers, each later row is one meter point, its cell 1 the point's
  name; the value cells are plain numbers.

Columns are found by their header, never by position: `` W `` or
`` Watts ``, `` kWh delivered ``, ``kWh received``, ``var``, ``VA``,
``kvarh received`` (``kvarh delivered`` too, should a page carry it),
matched without case and whitespace (``kWhReceived`` is ``kwh received``).
Whichever page carries a column, it is read from there.

:class:`WebPagesClient` has the shape of the Modbus
:class:`~s8000_engine.client.S8000Client` (the
:class:`~s8000_engine.client.reader.MeterReader` protocol):
:meth:`~WebPagesClient.identify` and :meth:`~WebPagesClient.read` give an
:class:`~s8000_engine.client.Identity` and a
:class:`~s8000_engine.client.MeterData` whose points carry what the pages
show (kWh delivered and received, W, var, VA, kvarh received); every other
field is None (a string the pages do not carry is ``""``, a point's SunSpec
model is 0: not known).  The pages carry no serial number, so
:attr:`~WebPagesClient.serial` is None: a caller names the meter otherwise
(the Home Assistant integration by its MAC address or its address).
There is no interval memory, clock or command over the pages.

This module is public but not part of the package's façade: it is the one
module of the client layer that needs aiohttp, which the base install
(``pip install s8000-engine``, what Home Assistant installs) does not bring.
Import it as ``s8000_engine.client.webpages``; aiohttp comes with Home
Assistant, with the ``[webpages]`` extra, or with ``[local]``.  The HTTP
session is the caller's (Home Assistant shares one between integrations):
the client never opens or closes one.

Bad input loses nothing and raises one line: a page that is not the
PowerHawk layout is :class:`~s8000_engine.client.S8000NotAnS8000` at
identification; an HTTP error, a refused connection or a timeout is
:class:`~s8000_engine.client.S8000ConnectionError`; a body over
:data:`MAX_BYTES`, a column that went missing, a cell that is not a number,
a negative energy are :class:`~s8000_engine.client.S8000BadData`.  Nothing
leads to another host: a frame, link, redirect or refresh elsewhere is refused.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Final, override
from urllib.parse import urljoin, urlsplit

import aiohttp

from s8000_engine.client.data import (
    Identity,
    IntervalMemory,
    MeterData,
    PointData,
    PointValue,
    Selection,
)
from s8000_engine.exceptions import (
    S8000BadData,
    S8000ConnectionError,
    S8000Error,
    S8000MapChanged,
    S8000NotAnS8000,
)

#: The port the pages are served on.
DEFAULT_PORT: Final = 80
#: The most bytes read of one page: a 24-point meter's table is a few kB, so
#: anything near this is not the meter's page (and is not held in memory).
MAX_BYTES: Final = 256 * 1024
#: The most redirects (HTTP or meta refresh) followed from one page.
MAX_HOPS: Final = 3
#: How long one page may take, in seconds.
DEFAULT_TIMEOUT: Final = 5.0

#: The column headers the pages use, without case and whitespace, and the
#: :class:`~s8000_engine.client.PointData` attribute each one fills.
COLUMNS: Final[Mapping[str, PointValue]] = {
    "w": "w",
    "watts": "w",
    "kwhdelivered": "kwh_delivered",
    "kwhreceived": "kwh_received",
    "var": "var",
    "va": "va",
    "kvarhdelivered": "kvarh_delivered",
    "kvarhreceived": "kvarh_received",
}
#: Energies: never negative on a meter (as the Modbus client checks).
_ENERGIES: Final = frozenset({"kwh_delivered", "kwh_received", "kvarh_delivered", "kvarh_received"})
#: A value cell: what the app itself accepted (an optional minus, digits, one point).
_NUMBER: Final = re.compile(r"-?\d*\.?\d+")
#: ``content`` of a meta refresh: a delay, then optionally ``url=…`` (quoted or not).
_REFRESH: Final = re.compile(
    r"""^\s*[\d.]*\s*[;,]?\s*(?:url\s*=\s*)?['"]?([^'"]*)['"]?\s*$""", re.I
)
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


# -- parsing ------------------------------------------------------------------------------


def _key(header: str) -> str:
    """A column header as :data:`COLUMNS` names it: lower case, no whitespace."""
    return "".join(header.split()).lower()


@dataclass(slots=True)
class Page:
    """What the reader uses of one HTML page."""

    frames: list[str] = field(default_factory=list)
    """The ``src`` of every ``<frame>``, in order."""
    links: list[str] = field(default_factory=list)
    """The ``href`` of every ``<a>``, in order."""
    refresh: str | None = None
    """The ``url`` of a ``<meta http-equiv="refresh">`` ("" for a refresh in place)."""
    rows: list[list[tuple[str, str]]] = field(default_factory=list)
    """The rows of the first ``<table>``: each cell as (``td`` or ``th``, its text)."""
    title: str | None = None
    """The text of the first ``<p>`` in the first ``<table>``."""


class _Parser(HTMLParser):
    """Collects a :class:`Page` (the standard library's forgiving parser: end
    tags a page leaves out, as old embedded servers do, are implied)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._tables = 0  # tables opened and not closed
        self._first_done = False  # the first table has ended
        self._cell: list[str] | None = None
        self._cell_tag = ""
        self._paragraph: list[str] | None = None

    @property
    def _in_first(self) -> bool:
        return self._tables > 0 and not self._first_done

    @override
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "frame" and "src" in values:
            self.page.frames.append(values["src"].strip())
        elif tag == "a" and "href" in values:
            self.page.links.append(values["href"].strip())
        elif tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            found = _REFRESH.match(values.get("content", ""))
            if found is not None and self.page.refresh is None:
                self.page.refresh = found.group(1).strip()
        elif tag == "table":
            self._tables += 1
        elif not self._in_first or self._tables != 1:
            return  # outside the first table, or in a table inside it
        elif tag == "tr":
            self._end_cell()
            self.page.rows.append([])
        elif tag in ("td", "th"):
            self._end_cell()
            if not self.page.rows:
                self.page.rows.append([])  # a cell before any <tr>
            self._cell, self._cell_tag = [], tag
        elif tag == "p" and self.page.title is None:
            self._paragraph = []

    @override
    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._tables:
            if self._tables == 1 and not self._first_done:
                self._end_cell()
                self._end_paragraph()
                self._first_done = True
            self._tables -= 1
        elif tag in ("td", "th", "tr") and self._in_first and self._tables == 1:
            self._end_cell()
        elif tag == "p":
            self._end_paragraph()

    @override
    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._paragraph is not None:
            self._paragraph.append(data)

    @override
    def close(self) -> None:
        """The end of the page: a cell or paragraph left open ends here."""
        super().close()
        self._end_cell()
        self._end_paragraph()

    def _end_cell(self) -> None:
        if self._cell is not None:
            self.page.rows[-1].append((self._cell_tag, " ".join("".join(self._cell).split())))
            self._cell = None

    def _end_paragraph(self) -> None:
        if self._paragraph is not None:
            self.page.title = " ".join("".join(self._paragraph).split()) or None
            self._paragraph = None


def parse_page(html: str) -> Page:
    """The frames, links, refresh, first table and title of one page."""
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.page


@dataclass(frozen=True, slots=True)
class Table:
    """The values of one real-time page: its columns and, per point row, its values."""

    columns: Mapping[PointValue, int]
    """Which cell holds each value the page carries."""
    names: tuple[str | None, ...]
    """Each point's name (cell 1), in row order."""
    values: tuple[dict[PointValue, float], ...]
    """Each point's values, in row order."""


def parse_table(page: Page, what: str) -> Table:
    """The points of a real-time page (``what`` names it in errors).

    Raises :class:`S8000BadData` for a page without a header row or points,
    and for a value cell that is not a number (or a negative energy)."""
    if not page.rows or not any(tag == "th" for tag, _ in page.rows[0]):
        raise S8000BadData(f"{what}: no table with a header row")
    columns: dict[PointValue, int] = {}
    for index, (_, header) in enumerate(page.rows[0]):
        value = COLUMNS.get(_key(header))
        if value is not None and value not in columns:
            columns[value] = index
    names: list[str | None] = []
    values: list[dict[PointValue, float]] = []
    for row in page.rows[1:]:
        if not row:
            continue
        names.append(row[1][1] or None if len(row) > 1 else None)
        point: dict[PointValue, float] = {}
        for value, index in columns.items():
            text = row[index][1] if index < len(row) else ""
            if not _NUMBER.fullmatch(text):
                raise S8000BadData(
                    f"{what}: point {len(names)}, column {page.rows[0][index][1]!r}: "
                    f"{text[:40]!r} is not a number"
                )
            number = float(text)
            if value in _ENERGIES and number < 0:
                raise S8000BadData(
                    f"{what}: point {len(names)}: {value} = {number}: an energy is never negative"
                )
            point[value] = number
        values.append(point)
    if not values:
        raise S8000BadData(f"{what}: the table has no meter point")
    return Table(columns, tuple(names), tuple(values))


# -- the client ---------------------------------------------------------------------------


def _base_url(host: str, port: int) -> str:
    """``http://HOST:PORT/`` (an IPv6 address in brackets)."""
    host = host.strip()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port or (80 if parts.scheme == "http" else None)
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _matching(links: Sequence[str], word: str, unless: str | None = None) -> str | None:
    """The first link whose target contains ``word`` (and not ``unless``)."""
    for link in links:
        lowered = link.lower()
        if word in lowered and (unless is None or unless not in lowered):
            return link
    return None


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where a meter's pages are, and which values each real-time page carries."""

    title: str | None
    pages: tuple[tuple[str, frozenset[PointValue]], ...]
    """(URL, values) of the active page, then of the reactive page if any."""
    names: tuple[str | None, ...]


class WebPagesClient:
    """One meter's built-in web pages, read through the caller's HTTP session.

    The client is cheap and holds no connection; ``session`` belongs to the
    caller.  Calls may overlap: one lock keeps identify and read apart."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        timeout: float = DEFAULT_TIMEOUT,  # per page, in seconds
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.session = session
        self.host = host
        self.port = port
        self.url = _base_url(host, port)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._origin = _origin(self.url)
        self._layout: _Layout | None = None
        self._identity: Identity | None = None
        self._requests = 0
        self._lock = asyncio.Lock()

    # -- what the caller sees ---------------------------------------------------------

    @property
    def identity(self) -> Identity | None:
        """The identified meter, or None before :meth:`identify`."""
        return self._identity

    @property
    def serial(self) -> None:
        """Always None: the pages carry no serial number."""
        return None

    @property
    def requests(self) -> int:
        """How many pages :meth:`read` has asked for (redirects included)."""
        return self._requests

    @property
    def title(self) -> str | None:
        """The meter's title on its header page (None before :meth:`identify`, or
        when the header shows none)."""
        return None if self._layout is None else self._layout.title

    @property
    def point_names(self) -> tuple[str | None, ...]:
        """Each point's name on the pages, in point order (empty before :meth:`identify`)."""
        return () if self._layout is None else self._layout.names

    @property
    def carried(self) -> frozenset[PointValue]:
        """The values of a point the pages carry (empty before :meth:`identify`)."""
        if self._layout is None:
            return frozenset()
        return frozenset[PointValue]().union(*(values for _, values in self._layout.pages))

    # -- identification ---------------------------------------------------------------

    async def identify(self) -> Identity:
        """Walk the frameset, the navigation page and the real-time pages.

        Raises :class:`S8000NotAnS8000` when the host does not serve the
        PowerHawk pages, :class:`S8000ConnectionError` when it cannot be
        read, :class:`S8000BadData` when a page is too large."""
        async with self._lock:
            return await self._identify()

    async def _identify(self) -> Identity:
        _, root = await self._page(self.url, "the start page", lambda p: bool(p.frames))
        nav_src = _matching(root.frames, "nav")
        if nav_src is None:
            raise S8000NotAnS8000(f"{self.url}: not the PowerHawk pages (no frame named nav)")
        nav_url = self._resolve(self.url, nav_src, "the nav frame")
        title = None
        if (header_src := _matching(root.frames, "header")) is not None:
            header_url = self._resolve(self.url, header_src, "the header frame")
            _, header = await self._page(header_url, "the header page", lambda p: bool(p.rows))
            title = header.title
        _, nav = await self._page(nav_url, "the nav page", lambda p: bool(p.links))
        active_href = _matching(nav.links, "active", unless="reactive")
        if active_href is None:
            raise S8000NotAnS8000(f"{nav_url}: not the PowerHawk pages (no link to active.htm)")
        urls = [self._resolve(nav_url, active_href, "the active page link")]
        if (reactive_href := _matching(nav.links, "reactive")) is not None:
            urls.append(self._resolve(nav_url, reactive_href, "the reactive page link"))
        tables: list[Table] = []
        for url in urls:
            try:
                tables.append(await self._table(url))
            except S8000BadData as err:
                if isinstance(err, _TooLarge):
                    raise
                raise S8000NotAnS8000(f"not the PowerHawk pages: {err}") from err
        active = tables[0]
        if "kwh_delivered" not in active.columns:
            raise S8000NotAnS8000(f"{urls[0]}: not the PowerHawk pages (no kWh delivered column)")
        for url, table in zip(urls[1:], tables[1:], strict=True):
            self._check_rows(active, table, url, S8000NotAnS8000)
        layout = _Layout(
            title=title,
            pages=tuple(
                (url, frozenset(table.columns)) for url, table in zip(urls, tables, strict=True)
            ),
            names=active.names,
        )
        identity = Identity(
            manufacturer="",
            model="",
            serial="",
            firmware="",
            firmware_build=None,
            mac=None,
            points=len(active.values),
            elements=0,
            service=None,
            options=None,
            point_models=(0,) * len(active.values),
        )
        self._layout, self._identity = layout, identity
        return identity

    # -- reading ----------------------------------------------------------------------

    async def read(
        self,
        fields: Selection | None = None,
        *,
        frame_cost: int = 0,  # the Modbus client's: a page costs what it costs
    ) -> MeterData:
        """Read the real-time pages: every value they carry, or those of ``fields``.

        The active page is read every time (it carries the energies), the
        reactive page only when a value it carries is wanted.  Identifies
        the meter first when it has not been (or the points changed since).
        A number of points other than the identified one is
        :class:`S8000MapChanged` (the next read identifies again)."""
        async with self._lock:
            if self._layout is None or self._identity is None:
                await self._identify()
            layout, identity = self._layout, self._identity
            assert layout is not None
            assert identity is not None
            wanted = _wanted(fields, identity.points)
            before = self._requests
            merged: list[dict[PointValue, float]] = [{} for _ in range(identity.points)]
            raw: dict[str, Any] = {}
            first: Table | None = None
            for number, (url, values) in enumerate(layout.pages):
                if number and not values & frozenset[PointValue]().union(*wanted.values()):
                    continue
                table = await self._table(url, count=True)
                missing = values - table.columns.keys()
                if missing:
                    raise S8000BadData(f"{url}: no {', '.join(sorted(missing))} column any more")
                if len(table.values) != identity.points:
                    self._layout = self._identity = None
                    raise S8000MapChanged(
                        f"{url}: {len(table.values)} points, {identity.points} identified"
                    )
                if first is None:
                    first = table
                else:
                    self._check_rows(first, table, url, S8000BadData)
                page = "active" if number == 0 else "reactive"
                for index, point in enumerate(table.values):
                    for value, number_read in point.items():
                        raw[f"{page}.point{index + 1}.{value}"] = number_read
                        merged[index].setdefault(value, number_read)
            return _meter_data(merged, wanted, raw, self._requests - before)

    # -- fetching ---------------------------------------------------------------------

    async def _table(self, url: str, *, count: bool = False) -> Table:
        """The table of a real-time page, following its redirect."""
        final, page = await self._page(url, url, lambda p: bool(p.rows), count=count)
        return parse_table(page, final)

    def _check_rows(self, first: Table, other: Table, url: str, error: type[S8000Error]) -> None:
        """The reactive page lists the active page's points."""
        if len(other.values) != len(first.values) or any(
            a is not None and b is not None and a != b
            for a, b in zip(first.names, other.names, strict=True)
        ):
            raise error(f"{url}: its points are not the active page's")

    def _resolve(self, base: str, link: str, what: str) -> str:
        """``link`` from ``base``, refused when it leads to another host."""
        url = urljoin(base, link)
        if _origin(url) != self._origin:
            raise S8000NotAnS8000(f"{what} leads to another host ({url[:120]}); not followed")
        return url

    async def _page(
        self, url: str, what: str, done: Callable[[Page], bool], *, count: bool = False
    ) -> tuple[str, Page]:
        """A page, following HTTP redirects and meta refreshes (at most
        :data:`MAX_HOPS`, on this host only) until ``done(page)``."""
        for _ in range(MAX_HOPS + 1):
            status, location, body = await self._get(url, what, count=count)
            if status in _REDIRECTS and location:
                url = self._resolve(url, location, f"{what}: the redirect")
                continue
            page = parse_page(body)
            if done(page) or not page.refresh:
                return url, page
            url = self._resolve(url, page.refresh, f"{what}: the refresh")
        raise S8000NotAnS8000(f"{what}: more than {MAX_HOPS} redirects")

    async def _get(self, url: str, what: str, *, count: bool) -> tuple[int, str | None, str]:
        """One GET: its status, its Location, and its body (at most ``max_bytes``)."""
        if count:
            self._requests += 1
        try:
            async with (
                asyncio.timeout(self.timeout),
                self.session.get(url, allow_redirects=False) as response,
            ):
                if response.status in _REDIRECTS:
                    return response.status, response.headers.get("Location"), ""
                if response.status != 200:
                    raise S8000ConnectionError(
                        f"{what}: HTTP {response.status} {response.reason or ''}".rstrip()
                    )
                if (response.content_length or 0) > self.max_bytes:
                    raise _TooLarge(f"{what}: more than {self.max_bytes} bytes")
                body = bytearray()
                while chunk := await response.content.read(65536):
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise _TooLarge(f"{what}: more than {self.max_bytes} bytes")
                charset = response.charset or "iso-8859-1"
        except TimeoutError as err:
            raise S8000ConnectionError(f"{what}: no answer in {self.timeout:g} s") from err
        except aiohttp.ClientError as err:
            raise S8000ConnectionError(f"{what}: the connection failed ({err})") from err
        try:
            return 200, None, bytes(body).decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            return 200, None, bytes(body).decode("iso-8859-1")


class _TooLarge(S8000BadData):
    """A page over the size bound: bad data, never a sign of another device."""


def _wanted(fields: Selection | None, points: int) -> dict[int, frozenset[PointValue]]:
    """The values to give per point number (all the pages carry: ``fields`` None)."""
    every = frozenset(COLUMNS.values())
    if fields is None:
        return dict.fromkeys(range(1, points + 1), every)
    return {number: values & every for number, values in fields.points}


def _meter_data(
    merged: Sequence[Mapping[PointValue, float]],
    wanted: Mapping[int, frozenset[PointValue]],
    raw: dict[str, Any],
    transactions: int,
) -> MeterData:
    points = []
    for index, values in enumerate(merged):
        number = index + 1
        chosen = wanted.get(number, frozenset())

        def value(name: PointValue, read: Mapping[PointValue, float] = values) -> float | None:
            return read.get(name) if name in chosen else None  # noqa: B023 (called at once)

        points.append(
            PointData(
                number=number,
                model_id=0,
                kwh_delivered=value("kwh_delivered"),
                kwh_received=value("kwh_received"),
                kvarh_delivered=value("kvarh_delivered"),
                kvarh_received=value("kvarh_received"),
                w=value("w"),
                var=value("var"),
                va=value("va"),
                pf=None,
                a=None,
                phase_w={},
                phase_a={},
                demand_w=None,
                peak_demand_w=None,
                peak_demand_time=None,
            )
        )
    return MeterData(
        utc=None,
        status=None,
        voltage={},
        line_voltage={},
        frequency=None,
        points=tuple(points),
        pulses=(),
        intervals=IntervalMemory(None, None, None, None),
        transactions=transactions,
        raw=raw,
    )


__all__ = [
    "COLUMNS",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "MAX_BYTES",
    "MAX_HOPS",
    "Page",
    "Table",
    "WebPagesClient",
    "parse_page",
    "parse_table",
]
