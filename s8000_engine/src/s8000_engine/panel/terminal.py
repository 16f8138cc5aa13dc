"""The front panel in a terminal: the logic of ``s8000-engine panel``.

It drives a running local meter's front panel (:mod:`s8000_engine.panel`)
through the meter's web interface, with the standard library only:

* ``POST /api/login`` with ``{"username": ..., "password": ...}`` answers
  ``{"csrf": ...}`` and sets the ``s8000_session`` cookie (401: wrong user name
  or password, 429: too many attempts, with ``Retry-After``);
* ``GET /api/panel`` answers the panel's state (``PanelState.as_dict()``);
* ``POST /api/panel/button`` with ``{"button": "display|left|right", "action":
  "press|release"}`` and the ``X-CSRF-Token`` header answers the new state.

:class:`PanelLink` is that conversation (it logs in again once when the
session has expired).  Three ways to use it:

:func:`interactive` (a terminal)
    Draws the LCD as a box of 2x16 characters with the mode and contrast
    below, refreshed every second.  Keys: ``d`` or Enter press and release
    Display, ``D`` holds Display for 5.5 s (the guide's 5 to 7 seconds: into
    or out of diagnostics mode), the left/right arrow keys or ``h``/``l`` are
    the arrows, ``+``/``-`` change the contrast (Display held while an arrow
    is pressed) and ``q`` quits.  The terminal is restored on exit, Ctrl-C
    included.  POSIX terminals only (termios).
:func:`run_steps` (``--keys d,right,hold,left,wait:2,...``)
    Performs the steps in order (``d``, ``hold``, ``left``, ``right``,
    ``plus``, ``minus``, ``wait:SECONDS``) and prints the LCD's two lines
    after each one, for scripts and tests.
:func:`print_lines` (``--once``)
    Prints the LCD's two lines.

The command's options, the password and the exit status are
:mod:`s8000_engine.cli.panel`'s.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any, Final, TextIO

from s8000_engine.exceptions import (
    PanelAuthError,
    PanelConnectError,
    PanelError,
    PanelRateLimitedError,
    PanelUsageError,
)

# The interactive panel puts the terminal in cbreak mode: POSIX only.  The
# rest (the link, --keys, --once) works everywhere.
if sys.platform != "win32":
    import termios
    import tty

DEFAULT_URL: Final = "http://127.0.0.1:8080"
DEFAULT_USER: Final = "admin"
HOLD_SECONDS: Final = 5.5
"""How long ``hold`` keeps Display down: past the panel's 5 s, inside the
guide's "5 to 7 seconds"."""
REFRESH_SECONDS: Final = 1.0
LCD_WIDTH: Final = 16
KEY_TOKENS: Final = ("d", "hold", "left", "right", "plus", "minus")
"""The ``--keys`` tokens besides ``wait:SECONDS``."""
MAX_WAIT_SECONDS: Final = 3600.0


@dataclass(slots=True)
class _Answer:
    status: int
    headers: Any
    body: bytes


def _printable(text: str) -> str:
    """Only printable ASCII reaches the terminal (no escape sequences)."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _error_text(body: bytes) -> str:
    """The message of an error answer: its JSON ``error``, or its text."""
    text = body.decode("utf-8", "replace").strip()
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        if isinstance(data, dict):
            for key in ("error", "message", "detail"):
                if isinstance(data.get(key), str):
                    return _printable(data[key])[:200]
    return _printable(" ".join(text.split()))[:200]


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class PanelLink:
    """A logged-in conversation with a meter's front panel over its web API."""

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float = 5.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise PanelUsageError(f"--url: expected http://HOST:PORT, not {url!r}")
        try:
            parsed.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            raise PanelUsageError(f"--url: bad port in {url!r}") from None
        if not timeout > 0:
            raise PanelUsageError("--timeout: must be positive")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.csrf: str | None = None
        self._cookies: dict[str, str] = {}
        self._credentials: tuple[str, str] | None = None
        self._opener = urllib.request.build_opener()

    # -- HTTP -----------------------------------------------------------------------------

    def _request(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> _Answer:
        headers = {"Accept": "application/json"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        if self._cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._cookies.items())
        if self.csrf is not None and method != "GET":
            headers["X-CSRF-Token"] = self.csrf
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                answer = _Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            try:
                body = error.read()
            except OSError:
                body = b""
            finally:
                error.close()
            answer = _Answer(error.code, error.headers, body)
        except urllib.error.URLError as error:
            raise PanelConnectError(f"cannot connect to {self.url}: {error.reason}") from None
        except (OSError, TimeoutError) as error:
            raise PanelConnectError(f"cannot connect to {self.url}: {error}") from None
        for header in answer.headers.get_all("Set-Cookie") or ():
            cookie: SimpleCookie = SimpleCookie()
            with contextlib.suppress(Exception):
                cookie.load(header)
            for name, morsel in cookie.items():
                self._cookies[name] = morsel.value
        return answer

    def _json(self, answer: _Answer, path: str) -> Any:
        try:
            return json.loads(answer.body)
        except ValueError:
            raise PanelError(f"{self.url}{path}: the answer is not JSON") from None

    def _state(self, answer: _Answer, path: str) -> dict[str, Any]:
        if answer.status != 200:
            raise PanelError(f"{self.url}{path}: HTTP {answer.status}: {_error_text(answer.body)}")
        data = self._json(answer, path)
        lines = data.get("lines") if isinstance(data, dict) else None
        if (
            not isinstance(data, dict)
            or not isinstance(lines, list)
            or len(lines) != 2
            or not all(isinstance(line, str) for line in lines)
        ):
            raise PanelError(f"{self.url}{path}: the answer is not a panel state")
        return data

    def _call(
        self, method: str, path: str, payload: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """A panel request; logs in again once if the session has expired."""
        answer = self._request(method, path, payload)
        if answer.status in (401, 403) and self._credentials is not None:
            self.login(*self._credentials)
            answer = self._request(method, path, payload)
        if answer.status in (401, 403):
            raise PanelAuthError(
                f"{self.url}{path}: not allowed (HTTP {answer.status}); log in first"
            )
        return self._state(answer, path)

    # -- the API --------------------------------------------------------------------------

    def login(self, username: str, password: str) -> None:
        """Log in; keeps the session cookie and the CSRF token."""
        answer = self._request("POST", "/api/login", {"username": username, "password": password})
        if answer.status == 401:
            raise PanelAuthError(f"login to {self.url} refused: wrong user name or password")
        if answer.status == 429:
            retry = _retry_after(answer.headers.get("Retry-After"))
            wait = f"try again in {math.ceil(retry)} s" if retry is not None else "try later"
            raise PanelRateLimitedError(f"login to {self.url}: too many attempts; {wait}", retry)
        if answer.status != 200:
            raise PanelError(
                f"login to {self.url}: HTTP {answer.status}: {_error_text(answer.body)}"
            )
        data = self._json(answer, "/api/login")
        csrf = data.get("csrf") if isinstance(data, dict) else None
        if not isinstance(csrf, str) or not csrf:
            raise PanelError(f"login to {self.url}: the answer has no CSRF token")
        self.csrf = csrf
        self._credentials = (username, password)

    def state(self) -> dict[str, Any]:
        """The panel's state (``PanelState.as_dict()``)."""
        return self._call("GET", "/api/panel")

    def button(self, button: str, action: str) -> dict[str, Any]:
        """Press or release a button (``display``, ``left``, ``right``); the new state."""
        return self._call("POST", "/api/panel/button", {"button": button, "action": action})

    def press(self, button: str) -> dict[str, Any]:
        """``button(button, "press")``."""
        return self.button(button, "press")

    def release(self, button: str) -> dict[str, Any]:
        """``button(button, "release")``."""
        return self.button(button, "release")


# -- steps ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One ``--keys`` step: a key token, or ``wait`` for ``seconds``."""

    key: str
    seconds: float = 0.0


def parse_keys(text: str) -> list[Step]:
    """The steps of a ``--keys`` list such as ``d,right,hold,wait:1.5``."""
    steps: list[Step] = []
    expected = ", ".join(KEY_TOKENS) + " or wait:SECONDS"
    for raw in text.split(","):
        token = raw.strip()
        if not token:
            raise PanelUsageError(f"--keys: empty step in {text!r} (expected {expected})")
        if token in KEY_TOKENS:
            steps.append(Step(token))
            continue
        name, colon, value = token.partition(":")
        if name != "wait" or not colon:
            raise PanelUsageError(f"--keys: unknown step {token!r} (expected {expected})")
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not 0 <= seconds <= MAX_WAIT_SECONDS:
            raise PanelUsageError(
                f"--keys: {token!r}: the wait must be 0 to {MAX_WAIT_SECONDS:g} seconds"
            )
        steps.append(Step("wait", seconds))
    return steps


def perform(
    link: PanelLink,
    step: Step,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_hold: Callable[[dict[str, Any], float], None] | None = None,
) -> dict[str, Any]:
    """Do one step on the panel; returns its state afterwards.

    ``on_hold`` is called with the state about once a second while
    ``hold`` keeps Display down (and the seconds held)."""
    if step.key == "d":
        link.press("display")
        return link.release("display")
    if step.key in ("left", "right"):
        link.press(step.key)
        return link.release(step.key)
    if step.key in ("plus", "minus"):
        arrow = "right" if step.key == "plus" else "left"
        link.press("display")
        link.press(arrow)
        link.release(arrow)
        return link.release("display")
    if step.key == "hold":
        state = link.press("display")
        held = 0.0
        try:
            while held < HOLD_SECONDS:
                pause = min(REFRESH_SECONDS, HOLD_SECONDS - held)
                sleep(pause)
                held += pause
                if on_hold is not None and held < HOLD_SECONDS:
                    state = link.state()
                    on_hold(state, held)
        except BaseException:  # Ctrl-C: do not leave Display down
            with contextlib.suppress(PanelError):
                link.release("display")
            raise
        return link.release("display")
    if step.key == "wait":
        sleep(step.seconds)
        return link.state()
    raise PanelUsageError(f"--keys: unknown step {step.key!r}")


# -- drawing -------------------------------------------------------------------------------


def lcd_lines(state: Mapping[str, Any]) -> tuple[str, str]:
    """The state's two LCD lines, each exactly 16 printable ASCII characters."""
    raw = state.get("lines")
    lines = list(raw) if isinstance(raw, list | tuple) else []
    lines = [*lines, "", ""][:2]
    first, second = (_printable(str(line))[:LCD_WIDTH].ljust(LCD_WIDTH) for line in lines)
    return first, second


def lcd_box(state: Mapping[str, Any]) -> str:
    """The LCD drawn as a box of 2x16 characters, with the mode, contrast and
    point below (no trailing newline)."""
    first, second = lcd_lines(state)
    border = "+" + "-" * LCD_WIDTH + "+"
    mode = _printable(str(state.get("mode", "?")))
    contrast = state.get("contrast")
    point = state.get("point")
    status = f" {mode}  contrast {contrast}/15  point {point}"
    detail = state.get("detail")
    item = state.get("item")
    if item:
        status += f"  {_printable(str(item))}"
        if detail:
            status += f"/{_printable(str(detail))}"
    return "\n".join((border, f"|{first}|", f"|{second}|", border, status))


HELP: Final = " d/Enter Display   D hold Display 5 s   <- -> or h/l arrows\n +/- contrast   q quit"


def decode_keys(data: bytes) -> tuple[list[str], bytes]:
    """Terminal input as actions (``display``, ``hold``, ``left``, ``right``,
    ``plus``, ``minus``, ``quit``) and the rest: the start of an escape
    sequence to complete with the next read."""
    actions: list[str] = []
    keys = {
        b"d": "display",
        b"\r": "display",
        b"\n": "display",
        b"D": "hold",
        b"h": "left",
        b"l": "right",
        b"+": "plus",
        b"=": "plus",
        b"-": "minus",
        b"_": "minus",
        b"q": "quit",
        b"Q": "quit",
        b"\x03": "quit",
        b"\x04": "quit",
    }
    arrows = {b"C": "right", b"D": "left"}
    index = 0
    while index < len(data):
        byte = data[index : index + 1]
        if byte != b"\x1b":
            if byte in keys:
                actions.append(keys[byte])
            index += 1
            continue
        # ESC [ C / ESC O C (application cursor keys), ESC [ 1 ; 5 C ...
        if index + 1 >= len(data):
            return actions, data[index:]
        if data[index + 1 : index + 2] not in (b"[", b"O"):
            index += 1  # a lone Escape
            continue
        end = index + 2
        while end < len(data) and not 0x40 <= data[end] <= 0x7E:
            end += 1
        if end >= len(data):
            return actions, data[index:]
        final = data[end : end + 1]
        if final in arrows:
            actions.append(arrows[final])
        index = end + 1
    return actions, b""


def _draw(out: TextIO, state: Mapping[str, Any], note: str = "") -> None:
    """Clear the screen and draw the panel (cbreak mode keeps the newline translation)."""
    out.write("\x1b[H\x1b[2J" + lcd_box(state) + "\n\n" + HELP + "\n")
    if note:
        out.write("\n " + _printable(note) + "\n")
    out.flush()


def interactive(link: PanelLink, stdin: TextIO, stdout: TextIO) -> int:
    """The panel in a terminal until ``q`` (or Ctrl-C); returns 0."""
    if sys.platform == "win32":
        raise PanelUsageError("the interactive panel needs a POSIX terminal: use --keys or --once")
    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    pending = b""
    try:
        tty.setcbreak(fd)
        stdout.write("\x1b[?25l")
        state = link.state()
        _draw(stdout, state)
        while True:
            ready, _, _ = select.select([fd], [], [], REFRESH_SECONDS)
            if not ready:
                pending = b""
                state = link.state()
                _draw(stdout, state)
                continue
            data = os.read(fd, 64)
            if not data:
                return 0
            actions, pending = decode_keys(pending + data)
            for action in actions:
                if action == "quit":
                    return 0
                key = "d" if action == "display" else action
                state = perform(
                    link,
                    Step(key),
                    on_hold=lambda s, held: _draw(stdout, s, f"holding Display... {held:.0f} s"),
                )
                _draw(stdout, state)
    except KeyboardInterrupt:
        return 0
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        stdout.write("\x1b[?25h\n")
        stdout.flush()


def print_lines(state: Mapping[str, Any], out: TextIO) -> None:
    """Write the state's two LCD lines."""
    first, second = lcd_lines(state)
    out.write(f"{first}\n{second}\n")
    out.flush()


def run_steps(
    link: PanelLink,
    steps: Sequence[Step],
    out: TextIO,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Perform the steps in order, writing the LCD's two lines after each one."""
    for step in steps:
        print_lines(perform(link, step, sleep=sleep), out)


__all__ = [
    "DEFAULT_URL",
    "DEFAULT_USER",
    "HOLD_SECONDS",
    "KEY_TOKENS",
    "PanelLink",
    "Step",
    "decode_keys",
    "interactive",
    "lcd_box",
    "lcd_lines",
    "parse_keys",
    "perform",
    "print_lines",
    "run_steps",
]
