"""The probe's web side: the PowerHawk pages fetched, read-only and bounded.

:func:`probe_http` fetches ``/`` of a web server and, unless ``quick``, the
pages it leads to (its frames, meta refreshes and redirects, the links to
``active.htm`` and ``reactive.htm``) on the same host and port only, each
bounded in size and time.  The standard library and not aiohttp: the client
layer installs without the software meter's libraries (aiohttp is the
``[local]`` extra's), and these are a few small requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import re
import socket
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Final, cast
from urllib.parse import urljoin, urlsplit

from s8000_engine import __version__

#: Bounds of the web pages: bytes of a body kept, pages fetched, seconds each.
HTTP_BODY_LIMIT: Final = 65536
HTTP_MAX_PAGES: Final = 8
HTTP_TIMEOUT: Final = 5.0


@dataclass(slots=True)
class HttpPage:
    """One page fetched."""

    url: str
    status: int | None = None
    content_type: str | None = None
    body: str = ""
    """The body as text, at most :data:`HTTP_BODY_LIMIT` bytes of it."""
    truncated: bool = False
    title: str | None = None
    frames: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    refresh: str | None = None
    table: list[list[str]] = field(default_factory=list)
    """The first table's rows (cells as text): the PowerHawk data tables."""
    error: str | None = None


@dataclass(slots=True)
class HttpFinding:
    """The web server on one port."""

    port: int
    answered: bool = False
    pages: list[HttpPage] = field(default_factory=list)
    error: str | None = None

    @property
    def powerhawk(self) -> bool:
        """Whether the pages look like the PowerHawk's: ``/`` a frameset with a
        ``nav`` and a ``header`` frame, or a table of Watts / kWh per meter point."""
        for page in self.pages:
            frames = " ".join(page.frames).lower()
            if "nav" in frames and "header" in frames:
                return True
            head = " ".join(page.table[0]).lower() if page.table else ""
            if "kwh" in head or "watts" in head:
                return True
        return False


class _Page(HTMLParser):
    """What the probe wants of a page: title, frames, links, meta refresh, first table."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: str | None = None
        self.frames: list[str] = []
        self.links: list[str] = []
        self.refresh: str | None = None
        self.table: list[list[str]] = []
        self._in_title = False
        self._tables = 0
        self._depth = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v or "" for k, v in attrs}
        if tag in ("frame", "iframe") and a.get("src"):
            self.frames.append(a["src"])
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "meta" and a.get("http-equiv", "").lower() == "refresh":
            found = re.search(r"url\s*=\s*['\"]?([^'\";]+)", a.get("content", ""), re.IGNORECASE)
            if found:
                self.refresh = found.group(1).strip()
        elif tag == "title":
            self._in_title = True
        elif tag == "table":
            self._tables += 1
            self._depth += 1
        elif tag == "tr" and self._first_table() and len(self.table) < 100:
            self.table.append([])
        elif tag in ("td", "th") and self._first_table() and self.table:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "table" and self._depth:
            self._depth -= 1
        elif tag in ("td", "th") and self._cell is not None:
            if len(self.table[-1]) < 30:
                self.table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = ((self.title or "") + data).strip()
        if self._cell is not None:
            self._cell.append(data)

    def _first_table(self) -> bool:
        return self._tables == 1 and self._depth == 1


class _Fake:
    """The bytes read, as the socket :class:`http.client.HTTPResponse` parses."""

    def __init__(self, data: bytes) -> None:
        self._file = io.BytesIO(data)

    def makefile(self, *_: Any, **__: Any) -> io.BytesIO:
        return self._file


async def _fetch(host: str, port: int, url: str, timeout: float) -> HttpPage:  # noqa: ASYNC109
    """One GET, HTTP/1.0 over asyncio streams, the answer read up to a bound.

    The standard library and not aiohttp: the client layer installs without
    the software meter's libraries (aiohttp is the ``[local]`` extra's), and
    this is one small request.  http.client parses the answer (chunks too)."""
    page = HttpPage(url)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            request = (
                f"GET {target} HTTP/1.0\r\nHost: {parts.netloc}\r\n"
                f"User-Agent: s8000-engine-probe/{__version__}\r\nConnection: close\r\n\r\n"
            )
            writer.write(request.encode())
            await writer.drain()
            data = b""
            while len(data) <= HTTP_BODY_LIMIT + 16384 and (chunk := await reader.read(65536)):
                data += chunk
    except (OSError, TimeoutError) as err:
        page.error = http_error(err)
        return page
    finally:
        if writer is not None:
            writer.close()
    answer = http.client.HTTPResponse(cast("socket.socket", _Fake(data)))
    try:
        answer.begin()
        try:
            body = answer.read()
        except http.client.IncompleteRead as err:
            body = err.partial
    except (http.client.HTTPException, ValueError) as err:
        page.error = f"not an HTTP answer ({type(err).__name__}: {err})"[:200]
        return page
    page.status = answer.status
    page.content_type = answer.getheader("Content-Type")
    page.truncated = len(body) > HTTP_BODY_LIMIT or len(data) > HTTP_BODY_LIMIT + 16384
    page.body = body[:HTTP_BODY_LIMIT].decode("latin-1")
    location = answer.getheader("Location")
    parsed = _Page()
    with contextlib.suppress(Exception):  # a broken page is still what it is
        parsed.feed(page.body)
        parsed.close()
    page.title = parsed.title
    page.frames = [urljoin(url, f) for f in parsed.frames]
    page.links = [urljoin(url, f) for f in parsed.links][:100]
    refresh = parsed.refresh or (location if 300 <= answer.status < 400 else None)
    page.refresh = None if refresh is None else urljoin(url, refresh)
    page.table = parsed.table
    return page


def http_error(err: BaseException) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, TimeoutError):
        return "no answer in time"
    return str(err) or type(err).__name__


async def probe_http(
    host: str,
    port: int = 80,
    *,
    quick: bool = False,
    timeout: float = HTTP_TIMEOUT,  # noqa: ASYNC109 (per page)
    max_pages: int = HTTP_MAX_PAGES,
) -> HttpFinding:
    """The web server at ``host``: ``/``, and unless ``quick`` the PowerHawk pages
    it leads to (its frames, links to ``active.htm`` and ``reactive.htm``, meta
    refreshes and redirects) on the same host and port only."""
    finding = HttpFinding(port)
    await crawl(finding, host, quick=quick, timeout=timeout, max_pages=max_pages)
    return finding


async def crawl(
    finding: HttpFinding,
    host: str,
    *,
    quick: bool,
    timeout: float = HTTP_TIMEOUT,  # noqa: ASYNC109 (per page)
    max_pages: int = HTTP_MAX_PAGES,
) -> None:
    """:func:`probe_http` into ``finding``, page by page (a probe cut short keeps
    the pages it has)."""
    port = finding.port
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    queue = [f"http://{netloc}/"]
    seen: set[str] = set()
    finding.error = "not finished"
    while queue and len(finding.pages) < (1 if quick else max_pages):
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        page = await _fetch(host, port, url, timeout)
        if page.error is not None and not finding.pages:
            finding.error = page.error
            return
        finding.pages.append(page)
        finding.answered = finding.answered or page.status is not None
        follow = [*page.frames, *([page.refresh] if page.refresh else [])]
        follow += [u for u in page.links if urlsplit(u).path.lower().endswith("active.htm")]
        queue += [u for u in follow if urlsplit(u)[:2] == ("http", netloc)]
    finding.error = None


__all__ = [
    "HTTP_BODY_LIMIT",
    "HTTP_MAX_PAGES",
    "HTTP_TIMEOUT",
    "HttpFinding",
    "HttpPage",
    "crawl",
    "http_error",
    "probe_http",
]
