"""Shared helpers of the web interface's tests: the local meter with its web
interface in a process of its own, and a real headless Chromium.

The browser is the system's Chromium (Debian's ``chromium`` package: the
project's toolchain installs it in its Python 3.14 root), found in
``S8000_CHROMIUM`` or on PATH and driven by Playwright.  Without one the
browser tests are skipped, unless ``S8000_REQUIRE_BROWSER=1`` (set by
``scripts/test``) makes that a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.engine.meterproc import SERVING_TCP, StderrLines, engine

#: Chromium's flags for a sandbox-less root in a closed network (no
#: background connections to Google's hosts, no first-run pages).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
]


def chromium() -> str:
    """The system's Chromium, or skip (fail where a browser is required)."""
    given = os.environ.get("S8000_CHROMIUM")
    candidates = [given] if given else []
    candidates += ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    message = "no Chromium: install Debian's chromium or set S8000_CHROMIUM"
    if os.environ.get("S8000_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


class WebMeter:
    """``s8000-engine run --simulate --web`` in a process of its own."""

    PASSWORD_LINE = re.compile(r"password '([^']+)'")
    URL_LINE = re.compile(r"web interface on (http://\S+)/")

    def __init__(self, data: Path, *options: str, modbus: bool = True) -> None:
        self.data = data
        self.options = list(options)
        # Port 0: the system picks a free one at the first start (no race with
        # another test for it); a restart keeps the port it got.
        self.modbus_port = 0 if modbus else None
        self.port = 0
        self.url = ""
        self.password: str | None = None
        self.process: subprocess.Popen[str] | None = None
        self.stderr: StderrLines | None = None

    def start(self, wait_s: float = 60.0) -> WebMeter:
        """Start it and wait until the web interface (and Modbus) serve."""
        command = [engine(), "run", "--simulate", "--data", str(self.data),
                   "--web", f"127.0.0.1:{self.port}", *self.options]  # fmt: skip
        if self.modbus_port is not None:
            command += ["--modbus-tcp", f"127.0.0.1:{self.modbus_port}"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.stderr = stderr = StderrLines(self.process)
        deadline = time.monotonic() + wait_s
        ready = [self.URL_LINE] + ([SERVING_TCP] if self.modbus_port is not None else [])
        for pattern in ready:
            if stderr.wait_for(pattern, deadline - time.monotonic()) is None:
                self.stop()
                raise RuntimeError("the local meter did not start:\n" + stderr.text())
        for line in stderr.text().splitlines():
            if found := self.PASSWORD_LINE.search(line):
                self.password = found.group(1)
            if found := self.URL_LINE.search(line):
                self.url = found.group(1)
                self.port = int(self.url.rpartition(":")[2])
            if self.modbus_port is not None and (found := SERVING_TCP.search(line)):
                self.modbus_port = int(found.group(1))
        return self

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.stderr is not None:
            self.stderr.close()

    def log(self) -> str:
        """Everything it wrote on stderr so far."""
        return self.stderr.text() if self.stderr is not None else ""
