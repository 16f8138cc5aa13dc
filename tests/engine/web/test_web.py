"""The web interface over HTTP, against the real local meter in a process of its own.

The security that the issue asks to be shown end to end (a wrong password
refused, a brute-force burst slowed down, a session that does not survive a
new credential or a restart), the API's answers to wrong requests, and the
terminal front panel (``s8000-engine panel``) driving the meter's panel
through the same API.
"""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

from tests.engine.meterproc import engine
from tests.engine.webproc import WebMeter

PASSWORD = "correct horse battery"


class Client:
    """A browser-less client: a cookie jar, the CSRF token, JSON in and out."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = ""

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        csrf: bool = True,
        raw_body: bytes | None = None,
        **headers: str,
    ) -> tuple[int, Any, dict[str, str]]:
        data = raw_body if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if csrf and self.csrf:
            request.add_header("X-CSRF-Token", self.csrf)
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        try:
            with self.opener.open(request, timeout=15) as response:
                raw = response.read()
                status, answer = response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            with error:  # an error answer holds its connection until closed
                raw = error.read()
                status, answer = error.code, dict(error.headers)
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return status, parsed, answer

    def login(self, password: str, user: str = "admin") -> int:
        status, body, _ = self.call("POST", "/api/login", {"username": user, "password": password})
        if status == 200:
            self.csrf = body["csrf"]
        return status


def _set_password(data: Path, password: str) -> None:
    subprocess.run(
        [engine(), "web-password", "--data", str(data)],
        input=password + "\n", text=True, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


@pytest.fixture
def meter(tmp_path: Path) -> Iterator[WebMeter]:
    data = tmp_path / "meter"
    data.mkdir()
    _set_password(data, PASSWORD)  # set from the command line: nothing is printed
    running = WebMeter(data, "--speed", "30").start()
    yield running
    running.stop()


def test_the_first_start_prints_a_generated_password_once(tmp_path: Path) -> None:
    first = WebMeter(tmp_path / "meter", "--speed", "10", modbus=False).start()
    try:
        assert first.password is not None
        assert len(first.password) >= 12
        assert first.password not in (tmp_path / "meter" / "web-credential.json").read_text()
        client = Client(first.url)
        assert client.login(first.password) == 200
    finally:
        first.stop()
    again = WebMeter(tmp_path / "meter", "--speed", "10", modbus=False).start()
    try:
        assert again.password is None, "the password is shown once, at the first start"
        assert first.password not in again.log()
    finally:
        again.stop()


def test_a_wrong_password_is_refused_and_a_burst_is_slowed_down(meter: WebMeter) -> None:
    client = Client(meter.url)
    assert client.login("wrong password!") == 401
    waits = []
    for _ in range(10):
        status, body, headers = client.call(
            "POST", "/api/login", {"username": "admin", "password": "still wrong"}
        )
        assert status in (401, 429)
        if status == 429:
            waits.append(int(headers["Retry-After"]))
            assert "try again" in body["error"].lower() or "too many" in body["error"].lower()
    assert waits, "a burst of wrong passwords is slowed down"
    # While slowed down, even the right password waits.
    assert client.login(PASSWORD) == 429
    assert PASSWORD not in meter.log()
    assert "still wrong" not in meter.log()


def test_a_session_does_not_survive_a_new_credential_or_a_restart(meter: WebMeter) -> None:
    client = Client(meter.url)
    assert client.login(PASSWORD) == 200
    assert client.call("GET", "/api/live")[0] == 200
    # A new password set from the command line while the meter runs.
    _set_password(meter.data, "another good password")
    status, body, _ = client.call("GET", "/api/live")
    assert status == 401, body
    assert client.login(PASSWORD) == 401
    assert client.login("another good password") == 200
    assert client.call("GET", "/api/live")[0] == 200
    # The process restarts: the cookie is gone with it.
    meter.stop()
    meter.start()
    assert client.call("GET", "/api/live")[0] == 401


def test_the_live_stream_ends_with_its_session(meter: WebMeter) -> None:
    client = Client(meter.url)
    assert client.login(PASSWORD) == 200
    with client.opener.open(meter.url + "/api/live/stream", timeout=15) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        first = stream.readline().decode()
        assert first.startswith("data: {")
        _set_password(meter.data, "another good password")
        stream.read()  # returns only once the server ends the stream
    status, _, _ = client.call("GET", "/api/live/stream")
    assert status == 401


def test_wrong_requests_get_clear_errors_and_change_nothing(meter: WebMeter) -> None:
    client = Client(meter.url)
    assert client.call("GET", "/api/live")[0] == 401
    assert client.login(PASSWORD) == 200
    for query, words in (
        ("span=year", "span"),
        ("point=0", "point"),
        ("point=abc", "point"),
        ("end=yesterday", "end"),
    ):
        status, body, _ = client.call("GET", f"/api/intervals?{query}")
        assert status == 400
        assert words in body["error"]
    status, body, _ = client.call("POST", "/api/panel/button", {"button": "up", "action": "press"})
    assert status == 400
    assert "button" in body["error"]
    status, body, _ = client.call(
        "POST", "/api/settings", {"points": {"0": {"ct_primary": -5}}, "unit": {"ip": "1.2.3"}}
    )
    assert status == 400
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"points.0.ct_primary", "unit.ip"}
    assert client.call("GET", "/api/changes")[1]["changes"] == []
    assert (
        client.call("POST", "/api/settings", {"unit": {"ntp_host": "pool.ntp.org"}}, csrf=False)[0]
        == 403
    )
    status, body, _ = client.call("POST", "/api/settings", {"unit": {"ntp_host": "pool.ntp.org"}})
    assert status == 200
    assert (
        body["changes"] == ["NTP host: (empty) → pool.ntp.org"]
        or "pool.ntp.org" in body["changes"][0]
    )
    (entry,) = client.call("GET", "/api/changes")[1]["changes"]
    assert (entry["user"], entry["origin"]) == ("admin", "web")
    status, body, _ = client.call("POST", "/api/send")
    assert status == 409
    assert "host" in body["error"]


def test_secrets_are_never_sent_back_nor_logged(meter: WebMeter) -> None:
    client = Client(meter.url)
    assert client.login(PASSWORD) == 200
    secret = "ftp-secret-4711"
    status, body, _ = client.call(
        "POST",
        "/api/settings",
        {"report": {"protocol": "ftp", "host": "127.0.0.1", "username": "meter", "password": secret},
         "unit": {"ppp_username": "dialup", "ppp_password": "ppp-secret-0815"}},
    )  # fmt: skip
    assert status == 200, body
    for path in ("/api/settings", "/api/changes", "/api/live"):
        text = json.dumps(client.call("GET", path)[1])
        assert secret not in text
        assert "ppp-secret-0815" not in text
    settings = client.call("GET", "/api/settings")[1]
    assert settings["report"]["password_set"] is True
    assert settings["unit"]["ppp_password_set"] is True
    assert secret not in meter.log()
    assert "ppp-secret-0815" not in meter.log()


def test_the_terminal_panel_drives_the_meters_panel(meter: WebMeter) -> None:
    client = Client(meter.url)
    assert client.login(PASSWORD) == 200
    # The start-up message first ("LEVITON"), then normal mode.
    deadline = time.monotonic() + 30
    while client.call("GET", "/api/panel")[1]["mode"] == "startup":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    env = {**os.environ, "S8000_PASSWORD": PASSWORD}
    result = subprocess.run(
        [engine(), "panel", "--url", meter.url, "--keys", "d,right"],
        env=env, text=True, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "kWh R" in out
    assert "2 HVAC" in out
    state = client.call("GET", "/api/panel")[1]
    assert state["point"] == 2
    assert state["item"] == "kwh_r"
    wrong = subprocess.run(
        [engine(), "panel", "--url", meter.url, "--once"],
        env={**os.environ, "S8000_PASSWORD": "not the password"},
        text=True, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert wrong.returncode == 1
    assert "password" in wrong.stderr.lower()


def test_hostile_input_gets_a_400_and_one_short_log_line(meter: WebMeter) -> None:
    """Nested brackets (a RecursionError in the JSON parser) and times no
    meter has (year 1, year 9999) are bad input: a 400 each, and one short
    log line each, never a traceback or a 500."""
    client = Client(meter.url)
    before = len(meter.log().splitlines())
    nested = ("[" * 100_000).encode()
    request = urllib.request.Request(meter.url + "/api/login", data=nested, method="POST")
    request.add_header("Content-Type", "application/json")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=15)
    refused.value.close()
    assert refused.value.code == 400
    assert client.login(PASSWORD) == 200
    status, body, _ = client.call("POST", "/api/settings", raw_body=nested)
    assert status == 400, body
    for end in ("0001-01-01", "9999-12-31", "0001-01-01T00:00:00+14:00"):
        status, body, _ = client.call("GET", f"/api/intervals?end={end}")
        assert status == 400, (end, body)
        assert "end" in body["error"]
    time.sleep(0.5)
    logged = meter.log().splitlines()[before:]
    assert not [line for line in logged if "Traceback" in line or "Error" in line], logged
    assert len([line for line in logged if " 400 " in line]) >= 4, logged


def test_the_data_directory_and_the_store_are_the_owners_alone(tmp_path: Path) -> None:
    """The store holds the report passwords: the data directory is 0700 and
    the database (and its WAL files) 0600, whether the meter creates them or
    finds them with looser modes."""

    def modes(data: Path) -> dict[str, int]:
        return {
            path.name: stat.S_IMODE(path.stat().st_mode) for path in (data, *data.glob("meter.db*"))
        }

    data = tmp_path / "meter"
    meter = WebMeter(data, "--speed", "10", modbus=False).start()
    try:
        created = modes(data)
    finally:
        meter.stop()
    assert created.pop("meter") == 0o700
    assert created
    assert set(created.values()) == {0o600}, created

    os.chmod(data, 0o755)
    os.chmod(data / "meter.db", 0o644)
    meter = WebMeter(data, "--speed", "10", modbus=False).start()
    try:
        found = modes(data)
    finally:
        meter.stop()
    assert found.pop("meter") == 0o700
    assert set(found.values()) == {0o600}, found


def test_live_streams_are_capped_and_the_meter_still_answers(meter: WebMeter) -> None:
    """Each session may hold 4 live streams and the meter 32 in all; one
    more is a 429 that says why, and /api/live still answers meanwhile."""
    open_streams: list[Any] = []
    refusals: list[tuple[str, str]] = []

    def stream(client: Client) -> int:
        try:
            response = client.opener.open(meter.url + "/api/live/stream", timeout=15)
        except urllib.error.HTTPError as error:
            with error:
                refusals.append((json.loads(error.read())["error"], error.headers["Retry-After"]))
                return error.code
        open_streams.append(response)
        return int(response.status)

    try:
        first = Client(meter.url)
        assert first.login(PASSWORD) == 200
        assert [stream(first) for _ in range(5)] == [200] * 4 + [429]
        others = []
        for _ in range(7):
            other = Client(meter.url)
            assert other.login(PASSWORD) == 200
            others.append(other)
            assert [stream(other) for _ in range(4)] == [200] * 4
        late = Client(meter.url)
        assert late.login(PASSWORD) == 200
        assert stream(late) == 429  # 32 open in all
        status, body, _ = late.call("GET", "/api/live")
        assert status == 200
        assert body["points"]
        # A stream that closes frees its place.
        open_streams.pop().close()
        deadline = time.monotonic() + 10
        while (status := stream(late)) == 429 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200
        assert refusals
        assert all("too many live streams" in why and wait == "10" for why, wait in refusals)
    finally:
        for response in open_streams:
            response.close()


def test_a_rebound_host_name_is_refused(tmp_path: Path) -> None:
    """DNS rebinding: a page of the attacker's name, pointed at the meter's
    address, sends its own name as Host (and as Origin).  Only the meter's
    addresses, localhost and the names it is given are served."""
    data = tmp_path / "meter"
    data.mkdir()
    _set_password(data, PASSWORD)
    named = WebMeter(data, "--speed", "10", "--web-host-name", "Meter.LAN", modbus=False).start()
    try:

        def login_as(host: str) -> tuple[int, Any]:
            """A login from a page of ``host`` (its Host and Origin)."""
            status, body, _ = Client(named.url).call(
                "POST",
                "/api/login",
                {"username": "admin", "password": PASSWORD},
                Host=f"{host}:{named.port}",
                Origin=f"http://{host}:{named.port}",
            )
            return status, body

        for host in ("evil.example", "evil.example.", "127.0.0.1.evil.example", "meter.lan.x"):
            status, body = login_as(host)
            assert status == 421, host
            assert "host name" in body["error"]
            assert Client(named.url).call("GET", "/", Host=host)[0] == 421
        for host in ("127.0.0.1", "localhost", "meter.lan", "METER.lan."):
            assert login_as(host)[0] == 200, host
    finally:
        named.stop()


def test_a_stored_secret_never_follows_a_new_destination(meter: WebMeter) -> None:
    """Moving the report (another host, port, URL, or a protocol without
    TLS) while a password or token is stored must give it again, or clear
    it: a signed-in user cannot send the stored secret somewhere else."""
    client = Client(meter.url)
    assert client.login(PASSWORD) == 200
    ftp = {"protocol": "ftps", "host": "192.0.2.10", "username": "meter", "password": "s3cret"}
    assert client.call("POST", "/api/settings", {"report": ftp})[0] == 200
    for moved in ({"host": "192.0.2.66"}, {"port": 2121}, {"protocol": "ftp"}):
        status, body, _ = client.call("POST", "/api/settings", {"report": moved})
        assert status == 400, moved
        assert [e["field"] for e in body["errors"]] == ["report.password"]
    status, body, _ = client.call("POST", "/api/settings", {"report": {"username": "other"}})
    assert status == 200, body  # the same server: the password stays
    status, _, _ = client.call(
        "POST", "/api/settings", {"report": {"host": "192.0.2.66", "password": "n3w"}}
    )
    assert status == 200
    status, body, _ = client.call(
        "POST", "/api/settings", {"report": {"host": "192.0.2.67", "password": ""}}
    )
    assert status == 200, body
    assert client.call("GET", "/api/settings")[1]["report"]["password_set"] is False

    https = {"protocol": "https", "url": "https://192.0.2.10/in", "token": "t0ken"}
    assert client.call("POST", "/api/settings", {"report": https})[0] == 200
    for moved in (
        {"url": "https://192.0.2.66/in"},
        {"protocol": "http", "url": "http://192.0.2.10/in"},
    ):
        status, body, _ = client.call("POST", "/api/settings", {"report": moved})
        assert status == 400, moved
        assert [e["field"] for e in body["errors"]] == ["report.token"]
    assert client.call("GET", "/api/settings")[1]["report"]["token_set"] is True


def test_names_with_line_breaks_cannot_forge_log_lines(meter: WebMeter) -> None:
    """A point or pulse-input name with a line break (or another control
    character) would write a line of its own into the log and the change
    log: refused, and nothing changes."""
    client = Client(meter.url)
    assert client.login(PASSWORD) == 200
    for name in ("Kitchen\nERROR forged line", "Oven\r", "Tab\there", "Line\u2028sep"):
        status, body, _ = client.call("POST", "/api/settings", {"points": {"0": {"name": name}}})
        assert status == 400, name
        assert [e["field"] for e in body["errors"]] == ["points.0.name"]
    status, body, _ = client.call(
        "POST", "/api/settings", {"pulses": {"0": {"name": "Water\nmeter", "unit": "L\n"}}}
    )
    assert status == 400
    assert {e["field"] for e in body["errors"]} == {"pulses.0.name", "pulses.0.unit"}
    assert client.call("GET", "/api/changes")[1]["changes"] == []


def _post_login_from(
    url: str, source: str, password: str, user: str = "admin", **headers: str
) -> tuple[int, list[str]]:
    """POST a login from the loopback address ``source``: the status, and
    the Set-Cookie headers."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "", parts.port, timeout=15, source_address=(source, 0)
    )
    try:
        body = json.dumps({"username": user, "password": password})
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        connection.request(
            "POST", "/api/login", body, {"Content-Type": "application/json", **named}
        )
        response = connection.getresponse()
        response.read()
        return response.status, response.headers.get_all("Set-Cookie") or []
    finally:
        connection.close()


def test_behind_a_trusted_tls_proxy(tmp_path: Path) -> None:
    """Behind a TLS reverse proxy: the session cookie is Secure and named
    __Host-; the log and the login limit see the client the trusted proxy
    names in X-Forwarded-For, and a client that is no trusted proxy cannot
    name another address."""
    data = tmp_path / "meter"
    data.mkdir()
    _set_password(data, PASSWORD)
    proxied = WebMeter(
        data, "--speed", "10", "--web-secure-cookie", "--web-trusted-proxy", "127.0.0.1",
        modbus=False,
    ).start()  # fmt: skip
    try:
        status, cookies = _post_login_from(
            proxied.url, "127.0.0.1", PASSWORD, X_Forwarded_For="198.51.100.7",
            X_Forwarded_Proto="https",
        )  # fmt: skip
        assert status == 200
        session = next(c for c in cookies if c.startswith("__Host-s8000_session="))
        assert "Secure" in session
        assert "Path=/" in session
        assert any(c.startswith("__Secure-s8000_device=") for c in cookies)
        token = session.split(";")[0].partition("=")[2]
        client = Client(proxied.url)
        assert client.call("GET", "/api/live", Cookie=f"__Host-s8000_session={token}")[0] == 200
        assert client.call("GET", "/api/live", Cookie=f"s8000_session={token}")[0] == 401

        # Through the proxy, each client is limited by its own address: a
        # guesser's address is locked, not the proxy's (every client's).
        for _ in range(6):
            _post_login_from(
                proxied.url, "127.0.0.1", "wrong", "guest", X_Forwarded_For="198.51.100.66"
            )
        guessing = _post_login_from(
            proxied.url, "127.0.0.1", "wrong", "other", X_Forwarded_For="198.51.100.66"
        )
        assert guessing[0] == 429
        assert (
            _post_login_from(proxied.url, "127.0.0.1", PASSWORD, X_Forwarded_For="198.51.100.8")[0]
            == 200
        )
        # From an untrusted peer the header names nobody.
        _post_login_from(proxied.url, "127.0.0.2", "wrong", X_Forwarded_For="203.0.113.9")
        time.sleep(0.3)
        log = proxied.log()
        assert "failed web login of 'guest' from 198.51.100.66" in log
        assert "failed web login of 'admin' from 127.0.0.2" in log
        assert "203.0.113.9" not in log
    finally:
        proxied.stop()
