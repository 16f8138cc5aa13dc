"""The web interface in a real headless Chromium, against the real local meter.

``s8000-engine run --simulate --web`` runs in a process of its own (the
simulated clock at 30 times real time, one-minute intervals, starting on a
June weekday at 13:00 UTC, so the office circuit of point 8 draws its
business-hours load and a chart fills within seconds); Playwright drives
Debian's Chromium.  With ``S8000_SCREENSHOTS=DIR`` the tests also save the
screenshots of the documentation there (``scripts/screenshot`` does).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.engine.meterproc import free_port
from tests.engine.webproc import WebMeter

START = "2026-06-10T13:00:00Z"
LOGIN = re.compile(r"/login(\?|$)")


@pytest.fixture(scope="module")
def meters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebMeter, WebMeter]]:
    """The meter under test, and a second one on 127.0.0.2 for the discovery page."""
    root = tmp_path_factory.mktemp("web")
    port = free_port("127.0.0.1", "127.0.0.2")  # one port, the discovery page probes both
    other = WebMeter(root / "other", "--speed", "30", modbus=False)
    other.options += ["--modbus-tcp", f"127.0.0.2:{port}"]
    main = WebMeter(
        root / "meter",
        "--speed", "30", "--interval", "1", "--start", START,
        "--discover-network", "127.0.0.0/30", "--discover-port", str(port),
        modbus=False,
    )  # fmt: skip
    main.options += ["--modbus-tcp", f"127.0.0.1:{port}"]
    other.start()
    main.start()
    try:
        yield main, other
    finally:
        main.stop()
        other.stop()


@pytest.fixture
def meter(meters: tuple[WebMeter, WebMeter]) -> WebMeter:
    return meters[0]


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("S8000_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=False)


def _login(browser: Any, meter: WebMeter, tab: str = "") -> Any:
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.goto(meter.url)
    page.wait_for_url(LOGIN)
    assert meter.password is not None
    page.fill("#password", meter.password)
    page.click("#login-button")
    page.wait_for_selector("#live-table tbody tr")
    if tab:
        page.click(f'#tabs button[data-tab="{tab}"]')
    return page


def _until(page: Any, script: str, timeout_s: float = 60.0) -> None:
    """Evaluate ``script`` (a function returning a promise) until it gives true."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"never true: {script}"
        page.wait_for_timeout(250)


def _live(page: Any) -> dict[str, Any]:
    data: dict[str, Any] = page.evaluate("fetch('/api/live').then(r => r.json())")
    return data


def test_a_wrong_password_is_refused_then_live_values_update(browser: Any, meter: WebMeter) -> None:
    page = browser.new_page()
    page.goto(meter.url)
    page.wait_for_url(LOGIN)
    page.fill("#password", "not-the-password")
    page.click("#login-button")
    error = page.locator("#login-error")
    error.wait_for(state="visible")
    assert "wrong" in error.inner_text().lower() or "invalid" in error.inner_text().lower()
    assert "/login" in page.url

    page = _login(browser, meter)
    rows = page.locator("#live-table tbody tr")
    assert rows.count() == 8
    assert rows.nth(7).locator('[data-field="name"]').inner_text() == "Office"
    clock = page.locator("#meter-time")
    first = clock.inner_text()
    energy = float(
        rows.nth(7).locator('[data-field="kwh_delivered"]').inner_text().replace(",", "")
    )
    # The page updates by itself (server-sent events): no reload.
    page.wait_for_function(
        "(first) => document.getElementById('meter-time').textContent !== first", arg=first
    )
    page.wait_for_function(
        """(energy) => parseFloat(document.querySelector('#live-table tbody tr:nth-child(8) '
            + '[data-field="kwh_delivered"]').textContent.replace(/,/g, '')) > energy""",
        arg=energy,
    )
    phases = rows.nth(7).locator('[data-field="phases"]').inner_text()
    assert phases.startswith("A ")
    assert " B " in phases
    assert " C " in phases
    assert "V" in page.locator("#live-voltages").inner_text()
    _shot(page, "web-live.png")


@pytest.mark.parametrize(
    "target", ["/%5C127.0.0.2:59999/x", "/%09/127.0.0.2:59999/x", "//127.0.0.2:59999/"]
)
def test_the_login_never_sends_the_browser_off_the_site(
    browser: Any, meter: WebMeter, target: str
) -> None:
    """``?next=`` that a browser resolves to another host (a backslash, a tab,
    two slashes) lands on the meter's own page instead.  The other host is a
    loopback address with nothing on it, should the test fail."""
    page = browser.new_page()
    page.goto(f"{meter.url}/login?next={target}")
    assert meter.password is not None
    page.fill("#password", meter.password)
    page.click("#login-button")
    page.wait_for_url(lambda url: "/login" not in url, wait_until="commit")
    # The meter's own page (which may then add its tab to the URL's fragment).
    landed = urlsplit(page.url)
    assert (landed.scheme, landed.netloc, landed.path) == ("http", urlsplit(meter.url).netloc, "/")


def test_changing_a_ct_primary_scales_the_readings(browser: Any, meter: WebMeter) -> None:
    page = _login(browser, meter, "settings")
    page.wait_for_selector("#points-table")

    def amps() -> float:
        samples = []
        for _ in range(4):
            point = _live(page)["points"][7]
            samples += [p["amps"] for p in point["phases"]]
            page.wait_for_timeout(250)
        return statistics.fmean(samples)

    before = amps()
    assert before > 1.0, "the office circuit draws its business-hours load"
    field = page.locator('[data-path="points.7.ct_primary"]')
    assert field.input_value() == "50"
    page.locator("#settings-points").scroll_into_view_if_needed()
    _shot(page, "web-settings.png")
    field.fill("100")
    page.click("#save-points")
    page.wait_for_selector("#toast:not([hidden])")
    assert "100" in page.locator("#toast").inner_text()
    _until(
        page,
        "() => fetch('/api/live').then(r => r.json()).then(v => v.points[7].ct_primary_a === 100)",
    )
    after = amps()
    # The same secondary current through a CT of twice the rating: twice the amps.
    assert 1.7 < after / before < 2.3
    page.click('#tabs button[data-tab="live"]')
    cell = page.locator('#live-table tbody tr:nth-child(8) [data-field="ct_primary"]')
    assert cell.inner_text() == "100.0 A"
    page.click('#tabs button[data-tab="changes"]')
    page.wait_for_selector("#changes-table tbody tr")
    newest = page.locator("#changes-table tbody tr").first.locator("td")
    assert "100" in newest.nth(3).inner_text()
    assert newest.nth(2).inner_text() == "web"


def test_a_wrong_setting_is_refused_with_its_field_and_nothing_changes(
    browser: Any, meter: WebMeter
) -> None:
    page = _login(browser, meter, "settings")
    page.wait_for_selector("#settings-unit")
    page.uncheck('[data-path="unit.dhcp"]')
    page.fill('[data-path="unit.gateway"]', "10.9.9.1")
    page.click("#save-unit")
    error = page.locator('[data-error-for="unit.gateway"]')
    error.wait_for(state="visible")
    page.wait_for_function(
        "() => document.querySelector('[data-error-for=\"unit.gateway\"]').textContent.length > 0"
    )
    assert "network" in error.inner_text().lower()
    settings = page.evaluate("fetch('/api/settings').then(r => r.json())")
    assert settings["unit"]["gateway"] == "192.168.0.1"
    assert settings["unit"]["dhcp"] is True


class _Foreign(BaseHTTPRequestHandler):
    """A page of another origin that tries to change the meter's settings."""

    target = ""

    def do_GET(self) -> None:
        body = f"""<!doctype html><script>
        fetch("{self.target}/api/settings", {{method: "POST", mode: "no-cors",
            credentials: "include", headers: {{"Content-Type": "text/plain"}},
            body: JSON.stringify({{points: {{"0": {{ct_primary: 999}}}}}})}})
          .finally(() => document.title = "sent");
        </script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_state_changes_without_the_csrf_token_are_refused(browser: Any, meter: WebMeter) -> None:
    page = _login(browser, meter)
    # From the page itself, without the token or with a wrong one.
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        status = page.evaluate(
            """headers => fetch('/api/settings', {method: 'POST', body: JSON.stringify(
                 {points: {"0": {ct_primary: 999}}}),
                 headers: {'Content-Type': 'application/json', ...headers}})
               .then(r => r.status)""",
            headers,
        )
        assert status == 403
    # From another site's page, with the session cookie the browser holds.
    _Foreign.target = meter.url
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Foreign)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        evil = page.context.new_page()
        evil.goto(f"http://localhost:{server.server_address[1]}/")
        evil.wait_for_function("() => document.title === 'sent'")
    finally:
        server.shutdown()
        server.server_close()
    settings = page.evaluate("fetch('/api/settings').then(r => r.json())")
    assert settings["points"]["items"][0]["ct_primary"] == 50
    changes = page.evaluate("fetch('/api/changes').then(r => r.json())")
    assert not any("999" in " ".join(c["changes"]) for c in changes["changes"])


def _item(page: Any) -> str:
    return str(page.locator("#lcd").get_attribute("data-item"))


def _hold_display(page: Any, until_mode: str) -> dict[str, Any]:
    """Hold Display until the page shows ``until_mode``, then let go; the
    panel's answer to the release.  The meter switches after 5 s held, while
    the button is still down, and the page polls it: no guessed hold time, so
    a slow machine cannot let go too early."""
    page.hover("#btn-display")
    page.mouse.down()
    page.wait_for_function(
        "(mode) => document.getElementById('lcd').dataset.mode === mode",
        arg=until_mode,
        timeout=30_000,  # the meter lets go by itself of a button held 60 s
    )
    with page.expect_response(lambda r: r.url.endswith("/api/panel/button")) as released:
        page.mouse.up()
    answer: dict[str, Any] = released.value.json()
    return answer


def test_the_front_panel_walks_through_both_modes(browser: Any, meter: WebMeter) -> None:
    page = _login(browser, meter, "panel")
    page.wait_for_function("() => document.getElementById('lcd').dataset.mode === 'normal'")
    lcd = page.locator("#lcd")

    def lines() -> str:
        return page.locator("#lcd-1").inner_text() + "\n" + page.locator("#lcd-2").inner_text()

    assert _item(page) == "kwh_d"
    assert "kWh D" in lines()
    seen = []
    for _ in range(6):
        page.click("#btn-display")
        page.wait_for_function(
            "(before) => document.getElementById('lcd').dataset.item !== before",
            arg=seen[-1] if seen else "kwh_d",
        )
        seen.append(_item(page))
    assert seen == ["kwh_r", "w", "kvarh_d", "kvarh_r", "var", "kwh_d"]
    page.click("#btn-right")
    page.wait_for_function("() => document.getElementById('lcd-1').textContent.includes('2')")
    assert "HVAC" in lines()
    page.click("#btn-left")
    page.click("#btn-left")
    page.wait_for_function("() => document.getElementById('lcd-1').textContent.includes('Office')")
    _shot(page, "web-panel.png")

    # Contrast: Display held, an arrow pressed.
    contrast = int(page.locator("#panel-contrast").inner_text())
    page.hover("#btn-display")
    page.mouse.down()
    page.dispatch_event("#btn-right", "pointerdown")
    page.dispatch_event("#btn-right", "pointerup")
    page.mouse.up()
    page.wait_for_function(
        "(c) => Number(document.getElementById('panel-contrast').textContent) === c + 1",
        arg=contrast,
    )
    assert _item(page) == "kwh_d"
    assert lcd.get_attribute("data-mode") == "normal"

    # Diagnostics: Display held for 5 s; letting go then is no Display press.
    assert _hold_display(page, "diagnostics")["mode"] == "diagnostics"
    assert _item(page) == "send"
    walked = ["send"]
    for _ in range(5):
        page.click("#btn-display")
        page.wait_for_function(
            "(before) => document.getElementById('lcd').dataset.item !== before", arg=walked[-1]
        )
        walked.append(_item(page))
    assert walked == ["send", "ct_w", "voltage", "local_ip", "reset_ip", "date_time"]
    assert "UTC" in lines() or "2026" in lines()
    # The local IP's sub-list, with the arrows.
    page.click("#btn-display")  # back to send
    for _ in range(3):
        page.click("#btn-display")
    page.wait_for_function("() => document.getElementById('lcd').dataset.item === 'local_ip'")
    assert "127.0.0.1" in lines()
    page.click("#btn-right")
    page.wait_for_function(
        "() => !document.getElementById('lcd-2').textContent.includes('127.0.0.1')"
    )
    page.click("#btn-right")
    page.click("#btn-right")
    page.wait_for_function(
        "() => document.getElementById('lcd-2').textContent.includes('192.168.0.9')"
    )
    _shot(page, "web-panel-diagnostics.png")
    # Back to normal mode: Display held 5 s again.
    assert _hold_display(page, "normal")["mode"] == "normal"


def test_the_history_chart_and_its_csv(browser: Any, meter: WebMeter, tmp_path: Path) -> None:
    page = _login(browser, meter, "history")
    # One-minute intervals at 30 times real time: one every two seconds.
    _until(
        page, "() => fetch('/api/intervals?point=8').then(r => r.json()).then(d => d.intervals > 1)"
    )
    page.wait_for_selector('#history-point option[value="8"]', state="attached")
    page.select_option("#history-point", "8")
    page.wait_for_function(
        "() => document.getElementById('history-summary').textContent.startsWith('Office')"
    )
    summary = page.locator("#history-summary").inner_text()
    assert "Office" in summary
    assert "(0 intervals)" not in summary
    bars = page.locator("#history-chart rect.bar-delivered")
    assert bars.count() == 24
    heights = [float(bars.nth(k).get_attribute("height") or 0) for k in range(24)]
    assert max(heights) > 0
    _shot(page, "web-history.png")
    with page.expect_download() as download:
        page.click("#history-csv")
    saved = tmp_path / "history.csv"
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0].startswith("interval_start,interval_end,point,point_name")
    assert len(lines) > 1
    assert all(",8,Office," in line for line in lines[1:])
    page.select_option("#history-span", "week")
    page.wait_for_function(
        "() => document.querySelector('#history-chart svg').dataset.buckets === '7'"
    )


def test_the_discovery_page_lists_the_units_on_the_network(
    browser: Any, meters: tuple[WebMeter, WebMeter]
) -> None:
    meter = meters[0]
    page = _login(browser, meter, "discovery")
    page.wait_for_function(
        "() => document.getElementById('discovery-scope').textContent.includes('127.0.0.0/30')"
    )
    page.click("#discovery-scan")
    page.wait_for_function(
        "() => document.querySelectorAll('#discovery-table tbody tr').length === 2"
    )
    text = page.locator("#discovery-table").inner_text()
    assert "127.0.0.1" in text
    assert "127.0.0.2" in text
    serials = {
        page.locator("#discovery-table tbody tr").nth(k).get_attribute("data-serial")
        for k in range(2)
    }
    assert len(serials) == 2
    assert all(s and s.isdigit() for s in serials)
    _shot(page, "web-discovery.png")


def test_json_is_what_the_live_stream_sends(browser: Any, meter: WebMeter) -> None:
    page = _login(browser, meter)
    event = page.evaluate(
        """() => new Promise(resolve => {
             const source = new EventSource('/api/live/stream');
             source.onmessage = e => { source.close(); resolve(e.data); };
           })"""
    )
    data = json.loads(event)
    assert data["model"] == "S8UTS-083"
    assert len(data["points"]) == 8


def test_an_open_page_is_signed_out_after_the_idle_timeout(browser: Any, tmp_path: Path) -> None:
    """The live page's event stream checks its session every second without
    using it: a page left open is signed out once the idle timeout (here 8 s)
    has passed since the last request, and lands on the login page."""
    idle = WebMeter(tmp_path / "meter", "--speed", "10", "--web-idle-timeout", "8", modbus=False)
    idle.start()
    try:
        page = _login(browser, idle)
        first = page.locator("#meter-time").inner_text()
        page.wait_for_function(  # the stream runs
            "(first) => document.getElementById('meter-time').textContent !== first", arg=first
        )
        page.wait_for_url(LOGIN, timeout=30_000)
    finally:
        idle.stop()


@pytest.mark.parametrize("fragment", ["\\", '"]', "%", "x'),a[href", "history"])
def test_any_fragment_opens_a_tab(browser: Any, meter: WebMeter, fragment: str) -> None:
    """The URL's fragment picks the tab to open; one that is no tab's name
    (even one that is not a valid CSS selector) opens the live tab."""
    page = _login(browser, meter)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(f"{meter.url}/#{fragment}")
    page.reload()
    page.wait_for_selector("#live-table tbody tr", state="attached")
    wanted = "history" if fragment == "history" else "live"
    page.wait_for_selector(f'#tabs button[data-tab="{wanted}"].active')
    assert errors == []
