"""The web interface's login, sessions, CSRF and rate limit, on a real aiohttp server.

Every credential here is hashed with scrypt n=2**4 (the ``n`` keyword, meant
for tests only) instead of the production 2**15: these tests log in dozens of
times, and what they check is who gets in, not how long a hash takes.  One test
writes the production cost to check it lands in the file, and the command-line
tests run the real command with its real cost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pty
import select
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientResponse, ClientSession, CookieJar, DummyCookieJar, TCPConnector, web
from aiohttp.test_utils import TestClient, TestServer

import s8000_engine
from s8000_engine.exceptions import CredentialError
from s8000_engine.web.auth import (
    AUTH_KEY,
    CONTENT_SECURITY_POLICY,
    CREDENTIAL_NAME,
    DEFAULT_PUBLIC,
    SCRYPT_N,
    Credentials,
    LoginLimiter,
    SessionStore,
    current_session,
    safe_next,
    setup_auth,
)

TEST_N = 2**4
"""Cheap scrypt cost for tests (see the module docstring)."""
START = 1_800_000_000.0
NEW_PASSWORD = "a new password, long enough"


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Site:
    """A tiny protected app served on 127.0.0.1."""

    client: TestClient[web.Request, web.Application]
    app: web.Application
    clock: ManualClock
    state: dict[str, int]
    path: Path
    password: str


def make_app(
    path: Path, clock: ManualClock, state: dict[str, int], **options: object
) -> web.Application:
    """One protected page, a protected GET and POST under /api, and a public login page."""
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        session = current_session(request)
        assert session is not None
        return web.Response(text=f"meter page of {session.user}")

    async def login_page(request: web.Request) -> web.Response:
        return web.Response(text="login page")

    async def thing(request: web.Request) -> web.Response:
        return web.json_response({"count": state["count"]})

    async def change(request: web.Request) -> web.Response:
        state["count"] += 1
        return web.json_response({"count": state["count"]})

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/", page)
    app.router.add_get("/login", login_page)
    app.router.add_get("/api/thing", thing)
    app.router.add_post("/api/thing", change)
    app.router.add_get("/health", health)
    static = path.parent / "static"
    static.mkdir(exist_ok=True)
    (static / "app.js").write_text("// the page's script\n")
    app.router.add_static("/static/", static)
    setup_auth(app, path, clock=clock, **options)  # type: ignore[arg-type]
    return app


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """The app on a real socket, its credential in ``tmp_path`` (the data directory)."""
    path = tmp_path / CREDENTIAL_NAME
    _, password = Credentials.ensure(path, n=TEST_N)
    assert password is not None
    clock = ManualClock()
    state = {"count": 0}
    app = make_app(path, clock, state)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Site(client, app, clock, state, path, password)


async def login(
    client: TestClient[web.Request, web.Application], password: str, username: str = "admin"
) -> ClientResponse:
    return await client.post("/api/login", json={"username": username, "password": password})


async def logged_in(site: Site) -> str:
    """Log in; return the session's CSRF token."""
    response = await login(site.client, site.password)
    assert response.status == 200
    body = await response.json()
    assert isinstance(body["csrf"], str)
    return body["csrf"]


async def with_cookie(site: Site, token: str, path: str = "/api/thing") -> ClientResponse:
    """GET ``path`` from another browser that holds a copy of the session cookie ``token``."""
    async with ClientSession(cookie_jar=DummyCookieJar()) as browser:
        response = await browser.get(
            site.client.make_url(path),
            headers={"Cookie": f"s8000_session={token}"},
            allow_redirects=False,
        )
        await response.read()
        return response


def cookie_of(site: Site) -> str:
    cookie = site.client.session.cookie_jar.filter_cookies(site.client.make_url("/"))
    return cookie["s8000_session"].value


# -- the credential file ---------------------------------------------------------


def test_first_start_creates_the_credential_and_shows_its_password_once(tmp_path: Path) -> None:
    path = tmp_path / "data" / CREDENTIAL_NAME
    credentials, password = Credentials.ensure(path, n=TEST_N)
    assert password is not None
    assert len(password) >= 16
    again, none = Credentials.ensure(path, n=TEST_N)
    assert none is None
    assert again.generation == credentials.generation
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    assert password.encode() not in raw
    data = json.loads(raw)
    assert data["username"] == "admin"
    assert data["kdf"] == {"name": "scrypt", "n": TEST_N, "r": 8, "p": 3}
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert credentials.verify("admin", password)
    assert not credentials.verify("admin", password + "x")
    assert not credentials.verify("root", password)
    assert "hash" not in repr(credentials)
    assert password not in repr(credentials)


def test_a_given_password_is_used_and_not_returned(tmp_path: Path) -> None:
    path = tmp_path / CREDENTIAL_NAME
    credentials, shown = Credentials.ensure(
        path, password="chosen on the command line", username="owner", n=TEST_N
    )
    assert shown is None
    assert credentials.username == "owner"
    assert credentials.verify("owner", "chosen on the command line")
    assert b"chosen on the command line" not in path.read_bytes()


def test_the_production_cost_is_stored_with_the_hash(tmp_path: Path) -> None:
    path = tmp_path / CREDENTIAL_NAME
    Credentials.ensure(path, password="twelve chars")
    # OWASP's scrypt cost: N=2^15, r=8, p=3 (32 MiB, three passes).
    assert json.loads(path.read_text())["kdf"] == {"name": "scrypt", "n": 2**15, "r": 8, "p": 3}
    assert SCRYPT_N == 2**15
    Credentials.set_password(path, "another password", n=TEST_N)
    credentials = Credentials.load(path)
    assert json.loads(path.read_text())["kdf"]["n"] == TEST_N
    assert credentials.verify("admin", "another password")


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"not json at all", "not JSON"),
        (b'{"format": "something-else"}', "format"),
        (b'{"format": "s8000-web-credential", "version": 9}', "version"),
        (
            b'{"format": "s8000-web-credential", "version": 1, "username": "admin",'
            b' "kdf": {"name": "scrypt", "n": 1000, "r": 8, "p": 1}}',
            "kdf.n",
        ),
    ],
)
def test_a_corrupt_or_foreign_file_is_refused_and_left_alone(
    tmp_path: Path, content: bytes, field: str
) -> None:
    path = tmp_path / CREDENTIAL_NAME
    path.write_bytes(content)
    with pytest.raises(CredentialError, match=field) as error:
        Credentials.ensure(path, n=TEST_N)
    assert str(path) in str(error.value)
    assert "left untouched" in str(error.value)
    with pytest.raises(CredentialError, match=field):
        Credentials.set_password(path, NEW_PASSWORD, n=TEST_N)
    with pytest.raises(CredentialError, match=field):
        Credentials.set_password(path, NEW_PASSWORD, username="admin", n=TEST_N)
    assert path.read_bytes() == content


def test_short_passwords_and_bad_names_are_refused_and_change_nothing(tmp_path: Path) -> None:
    path = tmp_path / CREDENTIAL_NAME
    with pytest.raises(CredentialError, match="password: at least 12 characters"):
        Credentials.ensure(path, password="short", n=TEST_N)
    assert not path.exists()
    credentials, password = Credentials.ensure(path, n=TEST_N)
    before = path.read_bytes()
    with pytest.raises(CredentialError, match="password: at least 12 characters"):
        Credentials.set_password(path, "12345678901", n=TEST_N)
    with pytest.raises(CredentialError, match="username"):
        Credentials.set_password(path, NEW_PASSWORD, username=" admin", n=TEST_N)
    with pytest.raises(CredentialError, match="line breaks"):
        Credentials.set_password(path, "two\nlines of it", n=TEST_N)
    assert path.read_bytes() == before
    assert password is not None
    assert credentials.verify("admin", password)


def test_set_password_changes_the_generation_and_is_seen_by_a_loaded_object(
    tmp_path: Path,
) -> None:
    path = tmp_path / CREDENTIAL_NAME
    credentials, old = Credentials.ensure(path, n=TEST_N)
    assert old is not None
    generation = credentials.generation
    Credentials.set_password(path, NEW_PASSWORD, username="owner", n=TEST_N)
    assert credentials.generation != generation
    assert credentials.username == "owner"
    assert credentials.verify("owner", NEW_PASSWORD)
    assert not credentials.verify("admin", old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- sessions and limiter, on their own --------------------------------------------


def test_session_store_idle_timeout_lifetime_generation_and_logout() -> None:
    clock = ManualClock()
    store = SessionStore(idle_timeout=100.0, lifetime=250.0, clock=clock)
    token, session = store.create("admin", "gen-1")
    assert session.expires == START + 100.0
    assert session.csrf not in repr(session)
    clock.advance(99.0)
    touched = store.get(token, "gen-1")
    assert touched is not None
    assert touched.csrf == session.csrf
    assert touched.expires == START + 199.0
    clock.advance(99.0)
    assert store.get(token, "gen-1") is not None  # idle 99 s twice: still alive
    clock.advance(52.0)  # 250 s in all: the lifetime is over even though it was used
    assert store.get(token, "gen-1") is None
    token, _ = store.create("admin", "gen-1")
    clock.advance(100.0)
    assert store.get(token, "gen-1") is None  # idle for the whole timeout
    token, _ = store.create("admin", "gen-1")
    assert store.get(token, "gen-2") is None  # a new password
    assert store.get(token, "gen-1") is None  # and it stays gone
    token, _ = store.create("admin", "gen-1")
    store.delete(token)
    assert store.get(token, "gen-1") is None
    assert store.get("made-up", "gen-1") is None


def test_session_store_keeps_a_bounded_number() -> None:
    store = SessionStore(max_sessions=3, clock=ManualClock())
    tokens = [store.create("admin", "g")[0] for _ in range(5)]
    assert len(store) == 3
    assert store.get(tokens[0], "g") is None
    assert store.get(tokens[4], "g") is not None


def test_limiter_grows_caps_resets_and_forgets() -> None:
    clock = ManualClock()
    limiter = LoginLimiter(clock=clock)
    for _ in range(4):
        assert limiter.failure("192.0.2.1", "admin") == 0.0
    assert limiter.failure("192.0.2.1", "admin") == 1.0
    # Per user name from another address, and per address for another user name.
    assert limiter.retry_after("192.0.2.99", "admin") == 1.0
    assert limiter.retry_after("192.0.2.1", "someone") == 1.0
    assert limiter.retry_after("192.0.2.99", "someone") == 0.0
    waits = []
    for _ in range(12):
        clock.advance(limiter.retry_after("192.0.2.1", "admin"))
        waits.append(limiter.failure("192.0.2.1", "admin"))
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
    clock.advance(900.0 + 899.0)
    assert limiter.retry_after("192.0.2.1", "admin") == 0.0  # the delay is over ...
    limiter.failure("192.0.2.1", "admin")
    assert limiter.retry_after("192.0.2.1", "admin") == 900.0  # ... but not forgotten
    clock.advance(900.0 + 900.0)
    assert limiter.failure("192.0.2.1", "admin") == 0.0  # a quiet window: forgotten
    for _ in range(6):
        limiter.failure("192.0.2.1", "admin")
    limiter.success("192.0.2.1", "admin")
    assert limiter.retry_after("192.0.2.1", "admin") == 0.0
    assert len(limiter) == 0


def test_limiter_memory_is_bounded() -> None:
    limiter = LoginLimiter(max_entries=10, clock=ManualClock())
    for number in range(100):
        limiter.failure(f"198.51.100.{number}", f"user{number}")
    assert len(limiter) == 10


# -- the web server ----------------------------------------------------------------


async def test_a_wrong_password_is_refused_and_the_right_one_logs_in(site: Site) -> None:
    wrong = await login(site.client, "not the password")
    assert wrong.status == 401
    assert (await wrong.json()) == {"error": "wrong username or password"}
    assert "Set-Cookie" not in wrong.headers
    assert (await login(site.client, site.password, username="root")).status == 401
    assert (await site.client.get("/api/thing")).status == 401

    right = await login(site.client, site.password)
    assert right.status == 200
    body = await right.json()
    assert body["user"] == "admin"
    cookie = right.headers["Set-Cookie"]
    assert cookie.startswith("s8000_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie
    page = await site.client.get("/")
    assert page.status == 200
    assert await page.text() == "meter page of admin"
    session = await (await site.client.get("/api/session")).json()
    assert session == {"user": "admin", "csrf": body["csrf"], "expires": START + 1800.0}
    assert (await site.client.get("/api/thing")).status == 200
    # Logging in again replaces the session: the earlier cookie stops working.
    first = cookie_of(site)
    assert (await login(site.client, site.password)).status == 200
    assert cookie_of(site) != first
    assert (await with_cookie(site, first)).status == 401
    assert (await with_cookie(site, cookie_of(site))).status == 200


async def test_the_login_form_fields_work_too(site: Site) -> None:
    response = await site.client.post(
        "/api/login", data={"username": "admin", "password": site.password}
    )
    assert response.status == 200
    assert (await response.json())["user"] == "admin"
    assert (await site.client.get("/api/thing")).status == 200
    bad = await site.client.post("/api/login", data={"username": "admin"})
    assert bad.status == 400
    assert "password" in (await bad.json())["error"]


async def test_the_cookie_is_secure_when_asked(tmp_path: Path) -> None:
    path = tmp_path / CREDENTIAL_NAME
    _, password = Credentials.ensure(path, n=TEST_N)
    assert password is not None
    app = make_app(path, ManualClock(), {"count": 0}, secure_cookie=True)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await login(client, password)
        assert response.status == 200
        assert "Secure" in response.headers["Set-Cookie"]


async def test_a_brute_force_burst_is_slowed_down(site: Site) -> None:
    statuses = [(await login(site.client, f"guess number {n}")).status for n in range(12)]
    assert statuses == [401] * 5 + [429] * 7
    limited = await login(site.client, f"guess number {99}")
    assert limited.headers["Retry-After"] == "1"
    assert "try again in 1 s" in (await limited.json())["error"]
    refused = await login(site.client, site.password)  # even the right one, while limited
    assert refused.status == 429
    assert (await site.client.get("/api/thing")).status == 401

    retry_after = []
    for _ in range(3):
        site.clock.advance(float(limited.headers["Retry-After"]))
        assert (await login(site.client, "one more guess")).status == 401
        limited = await login(site.client, "one more guess")
        assert limited.status == 429
        retry_after.append(int(limited.headers["Retry-After"]))
    assert retry_after == [2, 4, 8]

    assert (await login(site.client, site.password)).status == 429
    site.clock.advance(8.0)
    assert (await login(site.client, site.password)).status == 200
    # The success wiped the slate: the next few mistakes are not delayed.
    typos = [(await login(site.client, f"a typo, sorry {n}")).status for n in range(5)]
    assert typos == [401] * 5


async def test_parallel_guesses_cannot_outrun_the_limit(site: Site) -> None:
    responses = await asyncio.gather(*(login(site.client, f"guess {n}") for n in range(10)))
    assert sorted(r.status for r in responses) == [401] * 5 + [429] * 5


async def test_state_changes_need_the_csrf_token_and_a_same_site_origin(site: Site) -> None:
    csrf = await logged_in(site)
    host = f"http://127.0.0.1:{site.client.port}"
    refused = [
        await site.client.post("/api/thing"),
        await site.client.post("/api/thing", headers={"X-CSRF-Token": "not-the-token"}),
        await site.client.post("/api/thing", data={"csrf": "not-the-token"}),
        await site.client.post(
            "/api/thing", headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
        ),
        await site.client.post(
            "/api/thing", headers={"X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:1"}
        ),
        await site.client.post("/api/thing", headers={"X-CSRF-Token": csrf, "Origin": "null"}),
        await site.client.post(
            "/api/thing",
            headers={"X-CSRF-Token": csrf, "Referer": "https://evil.example/meter"},
        ),
        await site.client.delete("/api/thing", headers={"Origin": host}),
    ]
    assert [r.status for r in refused] == [403] * len(refused)
    errors = [(await r.json())["error"] for r in refused]
    assert "missing CSRF token" in errors[0]
    assert "wrong CSRF token" in errors[1]
    assert "wrong CSRF token" in errors[2]
    assert "the Origin does not match" in errors[3]
    assert "the Referer does not match" in errors[6]
    assert site.state["count"] == 0
    assert (await (await site.client.get("/api/thing")).json()) == {"count": 0}

    ok = await site.client.post("/api/thing", headers={"X-CSRF-Token": csrf})
    assert ok.status == 200
    same_site = await site.client.post(
        "/api/thing", headers={"X-CSRF-Token": csrf, "Origin": host, "Referer": f"{host}/"}
    )
    assert same_site.status == 200
    form = await site.client.post("/api/thing", data={"csrf": csrf})
    assert form.status == 200
    assert site.state["count"] == 3


async def test_login_and_websockets_check_the_origin(site: Site) -> None:
    foreign = await site.client.post(
        "/api/login",
        json={"username": "admin", "password": site.password},
        headers={"Origin": "http://evil.example"},
    )
    assert foreign.status == 403
    assert "Set-Cookie" not in foreign.headers
    await logged_in(site)
    upgrade = await site.client.get(
        "/api/thing",
        headers={"Upgrade": "websocket", "Connection": "Upgrade", "Origin": "http://evil.example"},
    )
    assert upgrade.status == 403


async def test_logout_needs_the_token_and_ends_the_session(site: Site) -> None:
    csrf = await logged_in(site)
    token = cookie_of(site)
    assert (await site.client.post("/api/logout")).status == 403
    assert (await site.client.get("/api/thing")).status == 200
    out = await site.client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    assert out.status == 200
    assert "s8000_session=" in out.headers["Set-Cookie"]
    assert (await site.client.get("/api/thing")).status == 401
    # The server forgot it too: a copy of the cookie kept elsewhere is worthless.
    assert (await with_cookie(site, token)).status == 401


async def test_a_new_password_ends_every_session(site: Site) -> None:
    await logged_in(site)
    Credentials.set_password(site.path, NEW_PASSWORD, n=TEST_N)
    stale = await site.client.get("/api/thing")
    assert stale.status == 401
    assert "s8000_session=" in stale.headers["Set-Cookie"]  # the browser is told to drop it
    assert (await login(site.client, site.password)).status == 401
    assert (await login(site.client, NEW_PASSWORD)).status == 200
    assert (await site.client.get("/api/thing")).status == 200


COMMAND = [sys.executable, "-m", "s8000_engine", "web-password"]
# The command runs the code under test even when the shared environment's
# editable install points at another checkout meanwhile.
COMMAND_ENV = {**os.environ, "PYTHONPATH": str(Path(s8000_engine.__file__).parents[1])}


def web_password(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=COMMAND_ENV,
    )


async def test_the_command_line_sets_the_password_while_the_server_runs(site: Site) -> None:
    await logged_in(site)
    data = str(site.path.parent)
    done = await asyncio.to_thread(web_password, "--data", data, stdin=NEW_PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert NEW_PASSWORD not in done.stderr
    assert "signed-in browsers must log in again" in done.stderr
    assert (await site.client.get("/api/thing")).status == 401
    assert (await login(site.client, site.password)).status == 401
    assert (await login(site.client, NEW_PASSWORD)).status == 200

    generated = await asyncio.to_thread(web_password, "--data", data, "--generate", stdin="")
    assert generated.returncode == 0, generated.stderr
    password = generated.stdout.strip()
    assert len(password) >= 16
    assert password not in generated.stderr
    assert password.encode() not in site.path.read_bytes()
    assert (await site.client.get("/api/thing")).status == 401
    assert (await login(site.client, password)).status == 200


def test_the_command_line_refuses_bad_passwords_and_argv_passwords(tmp_path: Path) -> None:
    data = str(tmp_path)
    as_argument = web_password("--data", data, "a password on the command line", stdin="")
    assert as_argument.returncode == 2
    assert "unrecognized arguments" in as_argument.stderr
    short = web_password("--data", data, stdin="short\n")
    assert short.returncode == 2
    assert "password: at least 12 characters" in short.stderr
    empty = web_password("--data", data, stdin="")
    assert empty.returncode == 2
    assert "found nothing" in empty.stderr
    assert not (tmp_path / CREDENTIAL_NAME).exists()
    named = web_password("--data", data, "--user", "owner", stdin="windows line end\r\n")
    assert named.returncode == 0, named.stderr
    assert Credentials.load(tmp_path / CREDENTIAL_NAME).verify("owner", "windows line end")


def run_on_terminal(data: Path, lines: list[str]) -> tuple[int, str]:
    """Run ``web-password`` with a pseudo-terminal as stdin, typing a line at each prompt.

    The child has no controlling terminal (new session), so getpass prompts on
    stderr and reads the pseudo-terminal with echo off.
    """
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [*COMMAND, "--data", str(data)],
        env=COMMAND_ENV,
        stdin=slave,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    os.close(slave)
    assert process.stderr is not None
    err = process.stderr.fileno()
    seen = b""
    try:
        for prompt, line in zip(("New web password: ", "Type it again: "), lines, strict=False):
            while prompt.encode() not in seen:
                ready, _, _ = select.select([err], [], [], 60)
                assert ready, f"no prompt {prompt!r}; stderr so far: {seen!r}"
                chunk = os.read(err, 4096)
                assert chunk, f"the command ended before {prompt!r}: {seen!r}"
                seen += chunk
            os.write(master, line.encode() + b"\n")
        seen += process.stderr.read()
        return process.wait(timeout=60), seen.decode()
    finally:
        process.kill()
        process.wait()
        process.stderr.close()
        os.close(master)


def test_the_command_line_asks_twice_on_a_terminal(tmp_path: Path) -> None:
    status, stderr = run_on_terminal(tmp_path, ["typed on the terminal", "typed differently"])
    assert status == 2
    assert "the two entries differ" in stderr
    assert not (tmp_path / CREDENTIAL_NAME).exists()
    status, stderr = run_on_terminal(tmp_path, ["typed on the terminal"] * 2)
    assert status == 0, stderr
    assert "typed on the terminal" not in stderr
    assert Credentials.load(tmp_path / CREDENTIAL_NAME).verify("admin", "typed on the terminal")


async def test_sessions_do_not_survive_a_restart_with_a_new_credential(tmp_path: Path) -> None:
    path = tmp_path / CREDENTIAL_NAME
    _, password = Credentials.ensure(path, n=TEST_N)
    assert password is not None
    clock = ManualClock()
    async with TestClient(TestServer(make_app(path, clock, {"count": 0}), host="127.0.0.1")) as c:
        assert (await login(c, password)).status == 200
        jar = c.session.cookie_jar.filter_cookies(c.make_url("/"))
        old = {"Cookie": f"s8000_session={jar['s8000_session'].value}"}
        assert (await c.get("/api/thing", headers=old)).status == 200
    # The same credential: sessions live in memory only.
    async with TestClient(TestServer(make_app(path, clock, {"count": 0}), host="127.0.0.1")) as c:
        assert (await c.get("/api/thing", headers=old)).status == 401
    path.unlink()
    _, new_password = Credentials.ensure(path, n=TEST_N)
    assert new_password is not None
    assert new_password != password
    async with TestClient(TestServer(make_app(path, clock, {"count": 0}), host="127.0.0.1")) as c:
        assert (await c.get("/api/thing", headers=old)).status == 401
        page = await c.get("/", headers=old, allow_redirects=False)
        assert page.status == 303
        assert (await login(c, password)).status == 401
        assert (await login(c, new_password)).status == 200


async def test_idle_and_absolute_expiry(site: Site) -> None:
    await logged_in(site)
    site.clock.advance(29 * 60)
    assert (await site.client.get("/api/thing")).status == 200
    site.clock.advance(29 * 60)  # 29 min after the last request: still fine
    assert (await site.client.get("/api/thing")).status == 200
    site.clock.advance(30 * 60)
    assert (await site.client.get("/api/thing")).status == 401

    await logged_in(site)
    for _ in range(35):  # busy for 11 h 40 min
        site.clock.advance(20 * 60)
        assert (await site.client.get("/api/thing")).status == 200
    expires = (await (await site.client.get("/api/session")).json())["expires"]
    assert expires == site.clock.now + 20 * 60  # the 12 h lifetime comes before the idle timeout
    site.clock.advance(20 * 60)
    assert (await site.client.get("/api/thing")).status == 401


async def test_without_a_session_pages_redirect_and_the_api_refuses(site: Site) -> None:
    page = await site.client.get("/?point=3", allow_redirects=False)
    assert page.status == 303
    assert page.headers["Location"] == "/login?next=/%3Fpoint%3D3"
    assert (await site.client.get("/nowhere", allow_redirects=False)).status == 303
    api = await site.client.get("/api/thing")
    assert api.status == 401
    assert "sign in" in (await api.json())["error"]
    post = await site.client.post("/api/thing", data={"csrf": "x"})
    assert post.status == 401
    assert site.state["count"] == 0
    assert (await site.client.get("/login")).status == 200
    assert (await site.client.head("/login")).status == 200
    assert (await site.client.get("/health", allow_redirects=False)).status == 303
    forged = await with_cookie(site, "forged")
    assert forged.status == 401
    assert "s8000_session=" in forged.headers["Set-Cookie"]
    script = await site.client.get("/static/app.js")
    assert script.status == 200
    assert await script.text() == "// the page's script\n"


async def raw_get(port: int, target: str) -> bytes:
    """Send a request line exactly as written (clients would normalise the dots away)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.mark.parametrize(
    "target", ["/static/../api/thing", "/static/%2e%2e/api/thing", "/static/..%2Fapi/thing"]
)
async def test_dot_segments_do_not_ride_on_a_public_prefix(site: Site, target: str) -> None:
    port = site.client.port
    assert port is not None
    answer = await raw_get(port, target)
    assert answer.startswith(b"HTTP/1.1 303 ")  # treated as a protected page, not as public
    assert b"count" not in answer


async def test_the_public_set_is_a_parameter(tmp_path: Path) -> None:
    path = tmp_path / CREDENTIAL_NAME
    Credentials.ensure(path, n=TEST_N)
    public = DEFAULT_PUBLIC | {"GET /health"}
    app = make_app(path, ManualClock(), {"count": 0}, public=public)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.get("/health")).status == 200
        assert (await client.get("/api/thing")).status == 401
    with pytest.raises(ValueError, match="public"):
        make_app(path, ManualClock(), {"count": 0}, public={"/health"})


async def test_security_headers_on_every_response(site: Site) -> None:
    responses = {
        "login page": await site.client.get("/login"),
        "redirect": await site.client.get("/", allow_redirects=False),
        "refused api": await site.client.get("/api/thing"),
        "failed login": await login(site.client, "wrong password"),
    }
    await logged_in(site)
    responses["api"] = await site.client.get("/api/thing")
    responses["page"] = await site.client.get("/")
    for name, response in responses.items():
        headers = response.headers
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, name
        assert headers["X-Content-Type-Options"] == "nosniff", name
        assert headers["X-Frame-Options"] == "DENY", name
        assert headers["Referrer-Policy"] == "same-origin", name
    assert CONTENT_SECURITY_POLICY == (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    for name in ("refused api", "failed login", "api"):
        assert responses[name].headers["Cache-Control"] == "no-store", name
    assert "no-store" not in responses["page"].headers.get("Cache-Control", "")


async def test_the_log_names_failures_but_never_a_secret(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await login(site.client, "a wrong guess of it")
    csrf = await logged_in(site)
    token = cookie_of(site)
    await site.client.post("/api/thing", headers={"X-CSRF-Token": csrf})
    await site.client.post("/api/thing", headers={"X-CSRF-Token": "a forged token value"})
    await site.client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    Credentials.set_password(site.path, NEW_PASSWORD, n=TEST_N)
    await with_cookie(site, token)
    text = caplog.text
    assert "failed web login of 'admin' from 127.0.0.1" in text
    assert "web login of 'admin' from 127.0.0.1" in text
    for secret in (site.password, "a wrong guess of it", NEW_PASSWORD, csrf, token):
        assert secret not in text
    assert site.app[AUTH_KEY].sessions is not None


async def test_a_missing_credential_file_refuses_everything(site: Site) -> None:
    await logged_in(site)
    site.path.unlink()
    gone = await site.client.get("/api/thing")
    assert gone.status == 503
    assert (await login(site.client, site.password)).status == 503
    _, password = Credentials.ensure(site.path, n=TEST_N)
    assert password is not None
    assert (await site.client.get("/api/thing")).status == 401
    assert (await login(site.client, password)).status == 200


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/charts?point=2&day=1", "/charts?point=2&day=1"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("charts", "/"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
    ],
)
def test_next_accepts_only_same_site_paths(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


async def _login_from(
    site: Site, address: str, password: str, jar: CookieJar | None = None
) -> tuple[int, CookieJar]:
    """Log in as admin from another loopback address, in a browser of its own
    (``jar``: its cookies, kept between calls)."""
    jar = jar if jar is not None else CookieJar(unsafe=True)
    connector = TCPConnector(local_addr=(address, 0))
    async with ClientSession(connector=connector, cookie_jar=jar) as browser:
        response = await browser.post(
            site.client.make_url("/api/login"), json={"username": "admin", "password": password}
        )
        await response.read()
        return response.status, jar


async def test_a_guesser_cannot_keep_a_known_browser_out(site: Site) -> None:
    """Someone on the LAN keeps guessing the admin's password:
    a browser that has logged in before (its device cookie) still gets in
    with the right password, while unknown browsers wait; a new password
    ends the guesser's hold."""
    status, known = await _login_from(site, "127.0.0.1", site.password)
    assert status == 200
    guesser = None
    for n in range(12):
        site.clock.advance(60.0)  # a guess a minute: the user name stays locked
        status, guesser = await _login_from(site, "127.0.0.2", f"guess {n}", guesser)
        assert status in (401, 429)
    assert (await _login_from(site, "127.0.0.3", site.password))[0] == 429  # unknown browser
    assert (await _login_from(site, "127.0.0.1", site.password, known))[0] == 200
    # The device cookie is no key for a guesser: one wrong password on it
    # counts against that device, and the right one still gets in after.
    assert (await _login_from(site, "127.0.0.4", "a guess", known))[0] == 401
    assert (await _login_from(site, "127.0.0.1", site.password, known))[0] == 200

    Credentials.set_password(site.path, NEW_PASSWORD, n=TEST_N)
    assert (await _login_from(site, "127.0.0.3", NEW_PASSWORD))[0] == 200
