"""The web-page reader against hand-written PowerHawk pages (``fixtures/powerhawk``)
served on loopback by a small aiohttp server: the layout the research
describes, both column-header variants, and every way a page can be wrong."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from s8000_engine.client import (
    S8000BadData,
    S8000ConnectionError,
    S8000MapChanged,
    S8000NotAnS8000,
    Selection,
)
from s8000_engine.client.reader import MeterReader
from s8000_engine.client.webpages import WebPagesClient, parse_page, parse_table
from tests.engine.meterproc import free_port, serving_app

FIXTURES = Path(__file__).parent / "fixtures" / "powerhawk"

#: A page's text, or a handler that answers otherwise (an error, a redirect, late).
type Answer = str | bytes | Callable[[web.Request], Awaitable[web.StreamResponse]]


def unit(name: str) -> dict[str, Answer]:
    """A fixture unit's pages by lower-case path ("/" is its index.htm)."""
    pages: dict[str, Answer] = {}
    for path in (FIXTURES / name).rglob("*.htm"):
        key = "/" + path.relative_to(FIXTURES / name).as_posix().lower()
        pages[key] = path.read_text()
    pages["/"] = pages.pop("/index.htm")
    return pages


@contextlib.asynccontextmanager
async def serving(pages: dict[str, Answer]) -> AsyncIterator[int]:
    """Serve ``pages`` (changeable while served) on 127.0.0.1; yields the port.
    Paths are matched without case, as the units' small servers do."""

    async def handle(request: web.Request) -> web.StreamResponse:
        answer = pages.get(request.path.lower())
        if answer is None:
            return web.Response(status=404, text="not found")
        if callable(answer):
            return await answer(request)
        if isinstance(answer, bytes):
            return web.Response(body=answer, content_type="text/html")
        return web.Response(text=answer, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    async with serving_app(app) as port:
        yield port


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def _reader(reader: MeterReader) -> MeterReader:
    """Both links have the shape the integration's poll uses."""
    return reader


async def test_the_watts_unit_through_its_frameset_nav_and_refreshes(
    session: aiohttp.ClientSession,
) -> None:
    async with serving(unit("watts")) as port:
        client = WebPagesClient(session, "127.0.0.1", port)
        assert client.identity is None
        identity = await _reader(client).identify()
        assert identity.points == 3
        assert identity.serial == ""
        assert client.serial is None
        assert client.title == "Maple Court & Annex"
        assert client.point_names == ("Unit 101", "Unit 102 & shop", "House panel")
        assert client.carried == {
            "w",
            "kwh_delivered",
            "kwh_received",
            "var",
            "va",
            "kvarh_received",
        }
        assert client.requests == 0  # identification is not a poll
        data = await client.read()
    # Every page behind a refresh: active.htm, active1.htm, reactive.htm, reactive1.htm.
    assert data.transactions == 4
    assert client.requests == 4
    one, two, three = data.points
    assert (one.number, one.w, one.kwh_delivered, one.kwh_received) == (1, 1520.0, 12345.6, 0.0)
    assert (one.var, one.va, one.kvarh_received) == (210.0, 1534.4, 12.5)
    assert (two.w, two.kwh_delivered, two.kwh_received, two.var) == (-640.5, 875.25, 431.75, -35.0)
    assert (three.kwh_delivered, three.kwh_received) == (0.001, 0.5)
    # What the pages do not carry is None, not 0.
    assert (one.pf, one.a, one.kvarh_delivered, one.demand_w, one.ct_primary_a) == (None,) * 5
    assert (data.utc, data.status, data.frequency, data.pulses) == (None, None, None, ())
    assert data.raw["reactive.point2.var"] == -35.0


async def test_the_w_unit_with_upper_case_tags_and_no_reactive_page(
    session: aiohttp.ClientSession,
) -> None:
    async with serving(unit("w")) as port:
        client = WebPagesClient(session, "127.0.0.1", port)
        identity = await client.identify()
        data = await client.read()
    assert identity.points == 2
    assert client.title == "Unit 7 North"
    assert client.point_names == ("Suite A", "Suite B")
    assert client.carried == {"w", "kwh_delivered", "kwh_received"}
    # The columns are found by their headers, in whatever order the page has them.
    assert [(p.w, p.kwh_delivered, p.kwh_received) for p in data.points] == [
        (98.0, 1000.125, 2.5),
        (-12.0, 20.0, 0.0),
    ]
    assert data.points[0].var is None
    assert data.transactions == 1


async def test_a_selection_reads_the_reactive_page_only_when_it_wants_from_it(
    session: aiohttp.ClientSession,
) -> None:
    async with serving(unit("watts")) as port:
        client = WebPagesClient(session, "127.0.0.1", port)
        energy = await client.read(Selection.of(points={1: ["kwh_delivered", "w"]}))
        assert energy.transactions == 2  # the active page and its refresh
        assert (energy.points[0].kwh_delivered, energy.points[0].w) == (12345.6, 1520.0)
        # Not selected: None, as the Modbus client gives it.
        assert energy.points[0].kwh_received is None
        assert energy.points[1].kwh_delivered is None
        reactive = await client.read(Selection.of(points={2: ["var"]}))
        assert reactive.transactions == 4
        assert reactive.points[1].var == -35.0


def test_the_parser_reads_the_first_table_only_and_the_headers_by_name() -> None:
    page = parse_page((FIXTURES / "watts" / "rt" / "active1.htm").read_text())
    assert page.refresh == ""  # a refresh in place is not a redirect
    table = parse_table(page, "active1.htm")
    assert dict(table.columns) == {"w": 2, "kwh_delivered": 3, "kwh_received": 4}
    assert len(table.values) == 3
    refresh = parse_page((FIXTURES / "watts" / "rt" / "reactive.htm").read_text())
    assert refresh.refresh == "reactive1.htm"


def _with(pages: dict[str, Answer], path: str, old: str, new: str) -> dict[str, Answer]:
    page = pages[path]
    assert isinstance(page, str)
    assert old in page
    return {**pages, path: page.replace(old, new)}


def respond(status: int, **headers: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def answer(_: web.Request) -> web.Response:
        return web.Response(status=status, headers=headers, text="")

    return answer


async def _slow(_: web.Request) -> web.StreamResponse:
    await asyncio.sleep(5)
    return web.Response(text="late")


async def _endless(request: web.Request) -> web.StreamResponse:
    """A body with no length that never ends."""
    response = web.StreamResponse()
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        for _ in range(100):
            await response.write(b" " * 65536)
    return response


WATTS = unit("watts")
#: Never contacted: the reader refuses to go there.
ELSEWHERE = "http://meter.invalid/"

#: Pages that are not (or no longer) the PowerHawk layout, each with the
#: error identification raises and what its message says.
IDENTIFY_FAILURES = {
    "no frameset": (
        {**WATTS, "/": "<html><body><p>router login</p></body></html>"},
        S8000NotAnS8000, "no frame named nav",
    ),
    "a nav frame on another host": (
        _with(WATTS, "/", 'src="nav.htm"', f'src="{ELSEWHERE}nav.htm"'),
        S8000NotAnS8000, "another host",
    ),
    "a refresh to another host": (
        _with(WATTS, "/rt/active.htm", "url=active1.htm", f"url={ELSEWHERE}active1.htm"),
        S8000NotAnS8000, "another host",
    ),
    "an HTTP redirect to another host": (
        {**WATTS, "/rt/active.htm": respond(302, Location=ELSEWHERE)},
        S8000NotAnS8000, "another host",
    ),
    "a refresh loop": (
        {**WATTS, "/rt/active1.htm": WATTS["/rt/active.htm"]},
        S8000NotAnS8000, "redirects",
    ),
    "no active page link": (
        _with(WATTS, "/nav.htm", 'href="rt/active.htm"', 'href="rt/summary.htm"'),
        S8000NotAnS8000, "no link to active.htm",
    ),
    "no kWh delivered column": (
        _with(WATTS, "/rt/active1.htm", " kWh delivered ", " kWh total "),
        S8000NotAnS8000, "no kWh delivered column",
    ),
    "a table without headers": (
        _with(WATTS, "/rt/active1.htm", "<th>", "<td>"),
        S8000NotAnS8000, "no table with a header row",
    ),
    "an HTTP error": (
        {**WATTS, "/nav.htm": respond(500)},
        S8000ConnectionError, "HTTP 500",
    ),
    "a page too large": (
        {**WATTS, "/nav.htm": b"<html>" + b" " * 300_000},
        S8000BadData, "more than 262144 bytes",
    ),
    "a page too large, sent without a length": (
        {**WATTS, "/nav.htm": _endless},
        S8000BadData, "more than 262144 bytes",
    ),
    "a timeout": ({**WATTS, "/nav.htm": _slow}, S8000ConnectionError, "no answer in 0.5 s"),
}  # fmt: skip


@pytest.mark.parametrize("case", IDENTIFY_FAILURES)
async def test_a_wrong_unit_gets_one_clear_line(session: aiohttp.ClientSession, case: str) -> None:
    pages, error, message = IDENTIFY_FAILURES[case]
    async with serving(dict(pages)) as port:
        client = WebPagesClient(session, "127.0.0.1", port, timeout=0.5)
        with pytest.raises(error, match=message) as caught:
            await client.identify()
    assert "\n" not in str(caught.value)
    assert client.identity is None


async def test_nothing_answers(session: aiohttp.ClientSession) -> None:
    client = WebPagesClient(session, "127.0.0.1", free_port())
    with pytest.raises(S8000ConnectionError, match="the connection failed"):
        await client.read()


#: A page that changes after identification: what a poll then raises.
READ_FAILURES = {
    "a missing column": (
        "/rt/active1.htm", "<th>kWh received</th>", "<th>Notes</th>",
        S8000BadData, "no kwh_received column any more",
    ),
    "a cell that is not a number": (
        "/rt/active1.htm", "<td>875.25</td>", "<td>n/a</td>",
        S8000BadData, "point 2, column 'kWh delivered': 'n/a' is not a number",
    ),
    "a negative energy": (
        "/rt/active1.htm", "<td>431.75</td>", "<td>-431.75</td>",
        S8000BadData, "an energy is never negative",
    ),
    "other points on the reactive page": (
        "/rt/reactive1.htm", "House panel", "Garage",
        S8000BadData, "its points are not the active page's",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", READ_FAILURES)
async def test_a_page_that_goes_wrong_fails_the_poll_and_the_next_good_one_reads(
    session: aiohttp.ClientSession, case: str
) -> None:
    path, old, new, error, message = READ_FAILURES[case]
    pages = dict(WATTS)
    async with serving(pages) as port:
        client = WebPagesClient(session, "127.0.0.1", port)
        before = await client.read()
        good = pages[path]
        pages.update(_with(pages, path, old, new))
        with pytest.raises(error, match=message):
            await client.read()
        pages[path] = good
        after = await client.read()
    assert after.points == before.points


async def test_points_added_on_the_pages_are_a_new_map(session: aiohttp.ClientSession) -> None:
    pages = dict(WATTS)
    async with serving(pages) as port:
        client = WebPagesClient(session, "127.0.0.1", port)
        await client.identify()
        row = "<tr><td>4</td><td>Pump</td><td>5</td><td>1</td><td>0</td></tr>\n</table>"
        pages.update(_with(pages, "/rt/active1.htm", "</table>", row))
        pages.update(_with(pages, "/rt/reactive1.htm", "</table>", row))
        with pytest.raises(S8000MapChanged, match="4 points, 3 identified"):
            await client.read()
        assert client.identity is None
        data = await client.read()  # identifies again first
    assert client.identity is not None
    assert client.identity.points == 4
    assert len(data.points) == 4
    assert data.points[3].w == 5.0
