"""Screenshots of the main job, for docs/screenshots/ (run by scripts/screenshot).

Waits until ``scripts/develop``, started by scripts/screenshot, has provisioned
its Home Assistant, logs in as the development user through the REST login
flow, and drives a headless Chromium over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: messages of JSON ended by a NUL byte on file
descriptors 3 and 4), so nothing but the standard library is needed and no
port is opened.  The tokens are put in the frontend's ``hassTokens`` entry of
local storage before its scripts run, as the frontend's own login would
leave them.  Each page is captured once the text it should show is there.

Runs on the host's Python (3.11 or newer); Home Assistant may run in the
Debian sid root, which shares the host's network.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

DEV_USERNAME: Final = "dev"
DEFAULT_PASSWORD: Final = "s8000-dev"
READY_MARK: Final = "Open http://localhost:"
FAILED_MARK: Final = "develop: "
# Its warning that the frontend cannot load (see develop_setup.py).
FRONTEND_BROKEN_MARK: Final = "warning: Home Assistant cannot describe its services"
START_TIMEOUT_S: Final = 900.0
PAGE_TIMEOUT_S: Final = 90.0
CDP_TIMEOUT_S: Final = 60.0
WIDTH: Final = 1280
HEIGHT: Final = 900
# The meter's page is taller, so that all eight points of its list show.
METER_HEIGHT: Final = 1140

# All text of the page, through every shadow root (the frontend is made of
# web components).
DEEP_TEXT_JS: Final = """(() => {
  const SKIP = new Set(["SCRIPT", "STYLE", "TEMPLATE"]);
  const walk = (node) => {
    let text = "";
    if (node.shadowRoot) text += walk(node.shadowRoot);
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) text += child.textContent + " ";
      else if (child.nodeType === Node.ELEMENT_NODE && !SKIP.has(child.tagName)) {
        text += walk(child);
      }
    }
    return text;
  };
  return walk(document.documentElement).replace(/\\s+/g, " ");
})()"""

# What a sensor the meter does not answer for shows.
SENSORS_PLACEHOLDER: Final = "Unavailable"


class ScreenshotError(Exception):
    """Something the screenshots need failed; the message says what."""


# -- Home Assistant -----------------------------------------------------------------------


class HomeAssistant:
    """The development Home Assistant's REST API, on loopback."""

    def __init__(self, port: int) -> None:
        """Home Assistant at 127.0.0.1:``port``; its frontend's client id."""
        self.base = f"http://127.0.0.1:{port}"
        self.client_id = f"{self.base}/"
        self.token = ""

    def request(
        self, path: str, body: dict[str, Any] | None = None, form: dict[str, str] | None = None
    ) -> Any:
        """POST ``body`` (JSON) or ``form``, or GET; the decoded JSON reply."""
        headers = {}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as err:
            raise ScreenshotError(f"{path}: HTTP {err.code}: {err.read()[:300]!r}") from err

    def log_in(self, username: str, password: str) -> dict[str, Any]:
        """Log in through the login flow, as the frontend does; the tokens."""
        flow = self.request(
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{self.base}/?auth_callback=1",
            },
        )
        result = self.request(
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": username, "password": password},
        )
        if result.get("type") != "create_entry":
            raise ScreenshotError(f"cannot log in as {username!r}: {result.get('errors')}")
        tokens: dict[str, Any] = self.request(
            "/auth/token",
            form={
                "grant_type": "authorization_code",
                "code": result["result"],
                "client_id": self.client_id,
            },
        )
        self.token = tokens["access_token"]
        return tokens

    def template(self, template: str) -> Any:
        """A template rendered by Home Assistant, as JSON."""
        request = urllib.request.Request(
            f"{self.base}/api/template",
            data=json.dumps({"template": template}).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read())

    def local_storage_tokens(self, tokens: dict[str, Any]) -> dict[str, Any]:
        """The frontend's ``hassTokens`` entry for these tokens."""
        return {
            "hassUrl": self.base,
            "clientId": self.client_id,
            "expires": int(time.time() * 1000) + int(tokens["expires_in"]) * 1000,
            "refresh_token": tokens["refresh_token"],
            "access_token": tokens["access_token"],
            "expires_in": tokens["expires_in"],
            "token_type": tokens["token_type"],
        }


# The meter's devices: the meter, and its points with their power now, so the
# busiest point can be shown.
DEVICES_TEMPLATE: Final = """{%- set ns = namespace(points=[], meter=none) -%}
{%- for device in integration_entities('s8000') | map('device_id') | unique -%}
  {%- set parent = device_attr(device, 'parent_device_id') -%}
  {%- if parent -%}
    {%- set power = device_entities(device)
          | select('match', 'sensor\\..*_power$') | map('states')
          | map('float', 0) | map('abs') | max -%}
    {%- set ns.points = ns.points + [{'id': device, 'name': device_attr(device, 'name'),
                                      'power': power}] -%}
  {%- else -%}
    {%- set ns.meter = {'id': device, 'name': device_attr(device, 'name')} -%}
  {%- endif -%}
{%- endfor -%}
{{ {'meter': ns.meter, 'points': ns.points} | tojson }}"""


# -- Chromium -----------------------------------------------------------------------------


def find_chromium() -> str:
    """The Chromium (or Chrome) on PATH."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    raise ScreenshotError("no chromium on PATH (Debian: apt-get install chromium)")


class Chromium:
    """A headless Chromium driven over the DevTools protocol on a pipe."""

    def __init__(self, binary: str, profile: Path, log: Path) -> None:
        """Start it, with a throw-away profile; its output goes to ``log``."""
        flags = [
            "--headless",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},{HEIGHT}",
            "--force-device-scale-factor=1",
            "--hide-scrollbars",
            "--lang=en-US",
            "--no-first-run",
            "--no-default-browser-check",
            # Nothing but the page's own requests.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
            "--disable-gpu",
        ]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium's sandbox refuses root
        # Chromium reads commands on fd 3 and writes replies on fd 4: the
        # shell moves this process's pipes there.
        self._log_path = log
        self._log = log.open("wb")
        self._process = subprocess.Popen(
            ["sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 </dev/null >&2', binary, *flags, "about:blank"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._next_id = 0
        self._buffer = b""
        self.session = ""
        # Events that arrived while waiting for replies (console messages).
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        """Stop it."""
        if self._process.poll() is None:
            try:
                self.call("Browser.close", session=False)
                self._process.wait(10)
            except (ScreenshotError, OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._log.close()

    def _read_message(self, deadline: float) -> dict[str, Any]:
        stdout = self._process.stdout
        assert stdout is not None
        while b"\0" not in self._buffer:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise ScreenshotError("Chromium did not answer in time")
            ready, _, _ = select.select([stdout], [], [], wait)
            if ready:
                chunk = os.read(stdout.fileno(), 1 << 20)
                if not chunk:
                    raise ScreenshotError(f"Chromium exited; see {self._log.name}")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        result: dict[str, Any] = json.loads(message)
        return result

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True
    ) -> Any:
        """One command (of the page's session, or of the browser); its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(json.dumps(message).encode() + b"\0")
        stdin.flush()
        deadline = time.monotonic() + CDP_TIMEOUT_S
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") != self._next_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise ScreenshotError(f"{method}: {reply['error']}")
            return reply.get("result", {})

    def open_page(self, local_storage: dict[str, str], origin: str) -> None:
        """A page of the viewport's size whose ``origin`` has ``local_storage``."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.call(
            "Target.attachToTarget",
            {"targetId": target["targetId"], "flatten": True},
            session=False,
        )
        self.session = attached["sessionId"]
        # Scripts to evaluate on new documents run only with the Page domain on.
        self.call("Page.enable")
        setters = "".join(
            f"localStorage.setItem({json.dumps(key)}, {json.dumps(value)});"
            for key, value in local_storage.items()
        )
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            {"source": f"if (location.origin === {json.dumps(origin)}) {{ {setters} }}"},
        )

    def text(self) -> str:
        """All text of the page."""
        result = self.call("Runtime.evaluate", {"expression": DEEP_TEXT_JS, "returnByValue": True})
        return str(result.get("result", {}).get("value", ""))

    def capture(self, url: str, ready: Callable[[str], bool], out: Path, height: int) -> str:
        """Open ``url`` WIDTH×``height``, wait until its text is ``ready``, save a PNG; the text."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + PAGE_TIMEOUT_S
        text = ""
        while time.monotonic() < deadline:
            time.sleep(1)
            text = self.text()
            if ready(text):
                break
        else:
            failed = self._log_path.with_name(f"{out.stem}.failed.png")
            self._save(failed)
            raise ScreenshotError(
                f"{url} did not show what it should (see {failed}); its text: {text[:600]}"
            )
        time.sleep(2)  # animations, icons
        self._save(out)
        return text

    def _save(self, out: Path) -> None:
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        out.write_bytes(base64.b64decode(shot["data"]))


def compress(png: Path) -> None:
    """Shrink a PNG with pngquant and optipng where they are installed."""
    if pngquant := shutil.which("pngquant"):
        subprocess.run(
            [pngquant, "--force", "--skip-if-larger", "--quality=70-95", "--output", png, png],
            check=False,
        )
    if optipng := shutil.which("optipng"):
        subprocess.run([optipng, "-quiet", "-o2", png], check=False)


# -- the run ------------------------------------------------------------------------------


def wait_for_develop(log: Path, pid: int) -> None:
    """Wait until scripts/develop says its Home Assistant is ready."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        for line in text.splitlines():
            if line.startswith((FAILED_MARK, FRONTEND_BROKEN_MARK)):
                raise ScreenshotError(f"scripts/develop failed: {line}")
        if READY_MARK in text:
            return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise ScreenshotError(f"scripts/develop exited; see {log}") from None
        time.sleep(2)
    raise ScreenshotError(f"scripts/develop was not ready in time; see {log}")


def _shows_points(text: str) -> bool:
    """The meter's page, once it lists its points."""
    return "Sub-devices" in text and "Point 1" in text


def _shows_values(text: str) -> bool:
    """A point's page, once its sensors have values."""
    return "Energy delivered" in text and "kWh" in text


def run(args: argparse.Namespace) -> None:
    """Wait for develop, log in, take the screenshots."""
    wait_for_develop(args.develop_log, args.develop_pid)
    ha = HomeAssistant(args.port)
    tokens = ha.log_in(DEV_USERNAME, os.environ.get("S8000_DEV_PASSWORD") or DEFAULT_PASSWORD)
    if args.settle:
        print(f"letting the meter run {args.settle:.0f} s, so its counters move")
        time.sleep(args.settle)
    devices = ha.template(DEVICES_TEMPLATE)
    meter, points = devices["meter"], devices["points"]
    if not meter or not points:
        raise ScreenshotError(f"no s8000 meter with points in Home Assistant: {devices}")
    point = max(points, key=lambda row: row["power"])
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="s8000-chromium-") as profile:
        browser = Chromium(find_chromium(), Path(profile), args.chromium_log)
        try:
            storage = {"hassTokens": json.dumps(ha.local_storage_tokens(tokens))}
            browser.open_page(storage, ha.base)
            shots: list[tuple[str, dict[str, Any], Callable[[str], bool], int]] = [
                ("ha-meter.png", meter, _shows_points, METER_HEIGHT),
                ("ha-point.png", point, _shows_values, HEIGHT),
            ]
            for name, device, ready, height in shots:
                out = args.out / name
                url = f"{ha.base}/config/devices/device/{device['id']}"
                text = browser.capture(url, ready, out, height)
                if SENSORS_PLACEHOLDER in text:
                    print(f"warning: {name} shows {SENSORS_PLACEHOLDER!r} values", file=sys.stderr)
                compress(out)
                print(f"{out}: {device['name']} ({out.stat().st_size // 1024} kB)")
        finally:
            browser.close()


def main() -> int:
    """Take the screenshots; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="Home Assistant's HTTP port")
    parser.add_argument("--develop-log", type=Path, required=True, help="scripts/develop's output")
    parser.add_argument("--develop-pid", type=int, required=True, help="scripts/develop's pid")
    parser.add_argument("--out", type=Path, required=True, help="where the PNGs go")
    parser.add_argument("--chromium-log", type=Path, required=True, help="Chromium's output")
    parser.add_argument("--settle", type=float, default=0.0, help="seconds to wait first")
    try:
        run(parser.parse_args())
    except ScreenshotError as err:
        print(f"screenshot: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
