"""``s8000-engine panel``: the front panel in a terminal.

It drives a running local meter's front panel (:mod:`s8000_engine.panel`)
through the meter's web interface, with the standard library only:

* ``POST /api/login`` with ``{"username": ..., "password": ...}`` answers
  ``{"csrf": ...}`` and sets the ``s8000_session`` cookie (401: wrong user name
  or password, 429: too many attempts, with ``Retry-After``);
* ``GET /api/panel`` answers the panel's state (``PanelState.as_dict()``);
* ``POST /api/panel/button`` with ``{"button": "display|left|right", "action":
  "press|release"}`` and the ``X-CSRF-Token`` header answers the new state.

:class:`PanelLink` is that conversation (it logs in again once when the
session has expired).  The command has three ways to run:

interactive (a terminal)
    Draws the LCD as a box of 2x16 characters with the mode and contrast
    below, refreshed every second.  Keys: ``d`` or Enter press and release
    Display, ``D`` holds Display for 5.5 s (the guide's 5 to 7 seconds: into
    or out of diagnostics mode), the left/right arrow keys or ``h``/``l`` are
    the arrows, ``+``/``-`` change the contrast (Display held while an arrow
    is pressed) and ``q`` quits.  The terminal is restored on exit, Ctrl-C
    included.
``--keys d,right,hold,left,wait:2,...``
    Performs the steps in order (``d``, ``hold``, ``left``, ``right``,
    ``plus``, ``minus``, ``wait:SECONDS``) and prints the LCD's two lines
    after each one, for scripts and tests.
``--once``
    Prints the LCD's two lines and exits.

The password comes from ``--password-file``, else the ``S8000_PASSWORD``
environment variable, else a prompt (never the command line).  Exit status:
0 done, 1 the meter could not be used (cannot connect, login refused or
rate-limited, an unexpected answer), 2 a usage error (bad option, bad
``--keys``, no password).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
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
from pathlib import Path
from typing import Any, Final, TextIO

from s8000_engine.exceptions import (
    PanelAuthError,
    PanelConnectError,
    PanelError,
    PanelRateLimitedError,
    PanelUsageError,
)

DEFAULT_URL: Final = "http://127.0.0.1:8080"
DEFAULT_USER: Final = "admin"
PASSWORD_ENV: Final = "S8000_PASSWORD"
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
    import termios  # noqa: PLC0415  (POSIX only)
    import tty  # noqa: PLC0415

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


# -- the command ---------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # a usage error is PanelUsageError
        raise PanelUsageError(message)


DESCRIPTION: Final = (
    "The front panel (2x16 LCD, Display/left/right) of a running local meter, "
    "through its web interface (s8000-engine run --web)."
)
EPILOG: Final = (
    f"The password comes from --password-file, else ${PASSWORD_ENV}, else a prompt. "
    "Exit status: 0 done, 1 the meter could not be used, 2 usage error."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``panel`` command's options to ``parser`` (``s8000-engine``'s
    sub-command parser, or :func:`build_parser`'s)."""
    parser.add_argument("--url", default=DEFAULT_URL, help=f"web interface (default {DEFAULT_URL})")
    parser.add_argument("--user", default=DEFAULT_USER, help=f"user name (default {DEFAULT_USER})")
    parser.add_argument("--password-file", type=Path, help="read the password from this file")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    run = parser.add_mutually_exclusive_group()
    run.add_argument(
        "--keys",
        help="perform these steps and print the LCD after each: "
        "d, hold, left, right, plus, minus, wait:SECONDS (comma-separated)",
    )
    run.add_argument("--once", action="store_true", help="print the LCD's two lines and exit")


def build_parser() -> argparse.ArgumentParser:
    """The ``s8000-engine panel`` argument parser on its own (a usage error
    raises :class:`PanelUsageError` instead of exiting)."""
    parser = _Parser(prog="s8000-engine panel", description=DESCRIPTION, epilog=EPILOG)
    add_arguments(parser)
    return parser


def read_password(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    prompt: Callable[[str], str] | None,
) -> str:
    """The password: ``--password-file``, else ``S8000_PASSWORD``, else
    ``prompt`` (None when there is no terminal to ask on)."""
    path: Path | None = args.password_file
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise PanelUsageError(
                f"--password-file: cannot read {path}: {error.strerror}"
            ) from None
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise PanelUsageError(f"--password-file: {path} is empty")
        return lines[0]
    if environ.get(PASSWORD_ENV):
        return environ[PASSWORD_ENV]
    if prompt is None:
        raise PanelUsageError(
            f"no password: set {PASSWORD_ENV}, use --password-file, or run in a terminal"
        )
    return prompt(f"Password for {args.user}: ")


def _print_lines(state: Mapping[str, Any], out: TextIO) -> None:
    first, second = lcd_lines(state)
    out.write(f"{first}\n{second}\n")
    out.flush()


def panel_command(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """``s8000-engine panel`` from its arguments; returns the exit status (0, 1 or 2).

    The keywords stand in for the process's environment, streams and
    ``time.sleep`` (``hold`` and ``wait:`` steps), for tests."""
    stderr = sys.stderr if stderr is None else stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else 0
    except PanelUsageError as error:
        print(f"s8000-engine panel: error: {error}", file=stderr)
        return error.exit_status
    return run_panel(args, environ=environ, stdin=stdin, stdout=stdout, stderr=stderr, sleep=sleep)


def run_panel(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """``s8000-engine panel`` with parsed options (see :func:`add_arguments`);
    returns the exit status (0, 1 or 2)."""
    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    try:
        steps = parse_keys(args.keys) if args.keys is not None else None
        terminal = stdin.isatty() and stdout.isatty()
        if steps is None and not args.once and not terminal:
            raise PanelUsageError("not a terminal: use --keys or --once")
        link = PanelLink(args.url, timeout=args.timeout)
        password = read_password(args, environ, getpass.getpass if stdin.isatty() else None)
        link.login(args.user, password)
        if args.once:
            _print_lines(link.state(), stdout)
            return 0
        if steps is not None:
            for step in steps:
                _print_lines(perform(link, step, sleep=sleep), stdout)
            return 0
        return interactive(link, stdin, stdout)
    except PanelError as error:
        print(f"s8000-engine panel: error: {error}", file=stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print("s8000-engine panel: interrupted", file=stderr)
        return 1


__all__ = [
    "DEFAULT_URL",
    "HOLD_SECONDS",
    "KEY_TOKENS",
    "PanelLink",
    "Step",
    "add_arguments",
    "build_parser",
    "decode_keys",
    "interactive",
    "lcd_box",
    "lcd_lines",
    "panel_command",
    "parse_keys",
    "perform",
    "read_password",
    "run_panel",
]
