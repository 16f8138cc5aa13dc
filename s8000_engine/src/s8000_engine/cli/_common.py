"""What the commands share: their parser, usage errors, addresses, point lists
and stopping on a signal.

Light on purpose (the standard library and nothing of the software meter):
``read`` and ``discover`` import it from a client-only install.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Final, NoReturn

from s8000_engine.exceptions import S8000ProfileError
from s8000_engine.protocol.profile import Profile, builtin_profile, get_profile

#: The signals that stop a long-running command: Ctrl-C, and what service
#: managers (systemd, Docker, ``kill``) send.
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


class UsageError(Exception):
    """A wrong option or argument: one line on standard error, exit status 2."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises :class:`KeyboardInterrupt`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose usage errors raise :class:`UsageError`.

    ``main`` prints them as one line naming the command, the way every other
    error of a command is printed, instead of argparse's usage dump and exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parse_address(
    text: str,
    option: str,
    *,
    default_host: str | None = None,
    default_port: int | None = None,
    lowest_port: int = 0,
) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``PORT``, ``[V6]``, ``[V6]:PORT`` or a bare IPv6
    address; the host and port not given are the defaults.

    Raises :class:`UsageError` naming ``option`` when a part is missing or
    wrong.  ``lowest_port`` is 0 where a server may take any free port."""
    host, port = text, ""
    if text.isdigit() and default_host is not None:
        host, port = "", text
    elif text.startswith("["):
        close = text.find("]")
        rest = text[close + 1 :] if close >= 0 else ""
        if close < 0 or (rest and not rest.startswith(":")):
            host, port = "", "x"  # refused below
        else:
            host, port = text[1:close], rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if default_port is not None:
        forms = "HOST[:PORT]" if default_host is None else "[HOST][:PORT]"
    else:
        forms = "HOST:PORT" if default_host is None else "[HOST:]PORT"
    chosen_host = host or default_host
    chosen_port = port or (str(default_port) if default_port is not None else "")
    if not chosen_host or not chosen_port.isdigit() or not lowest_port <= int(chosen_port) <= 65535:
        raise UsageError(f"{option}: expected {forms}, not {text!r}")
    return chosen_host, int(chosen_port)


def parse_numbers(text: str, option: str, *, lowest: int = 1) -> list[int]:
    """``1,3-5`` → ``[1, 3, 4, 5]``: numbers and ranges, sorted, each once."""
    chosen: set[int] = set()
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            chosen.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise UsageError(f"{option}: not a list of numbers such as 1,3-5: {text!r}") from None
    if not chosen:
        raise UsageError(f"{option}: not a list of numbers such as 1,3-5: {text!r}")
    if min(chosen) < lowest:
        raise UsageError(f"{option}: numbers start at {lowest}")
    return sorted(chosen)


def profile_argument(text: str) -> Profile:
    """``--profile``: a built-in profile's name or a profile file, checked (a
    bad one is a usage error naming the field)."""
    try:
        return get_profile(text)
    except S8000ProfileError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_profile_option(parser: argparse.ArgumentParser, what: str) -> None:
    """The ``--profile`` option of the commands that serve or print a map."""
    parser.add_argument(
        "--profile",
        type=profile_argument,
        default=builtin_profile(),
        metavar="NAME|FILE",
        help=f"the register map's profile {what}: 'sunspec' (built in, the default) or a "
        "profile file (JSON; docs/profiles.md)",
    )


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While inside, SIGTERM interrupts as Ctrl-C does (:class:`Interrupted`, a
    :class:`KeyboardInterrupt`): ``finally`` blocks run (a terminal is
    restored, connections close) where the default action would kill the
    process on the spot.  Only the main thread can set handlers; elsewhere
    (a test calling ``main`` from a thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class StopRequest:
    """SIGINT and SIGTERM ask a long-running loop to stop at its next safe point.

    The local meter checks :meth:`is_set` between two metered seconds, so it
    stops with its last second committed to the store.  A second signal while
    it stops ends the process at once: nothing is lost that a power cut would
    not lose (the store commits each second in one transaction)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None

    def is_set(self) -> bool:
        """Whether a stop was asked for."""
        return self._event.is_set()

    def request(self, signum: int) -> None:
        """A stop signal arrived (a signal handler: main thread, between bytecodes)."""
        if self._event.is_set():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        # Nothing printed here: a handler may run while the main thread is
        # inside a write to the same stream.
        self.signum = signum
        self._event.set()

    def handler(self, signum: int, _frame: FrameType | None) -> None:
        """:meth:`request` as a :func:`signal.signal` handler."""
        self.request(signum)

    @contextlib.contextmanager
    def handling(self) -> Iterator[StopRequest]:
        """Handle :data:`STOP_SIGNALS` while inside (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.signal(signum, self.handler) for signum in STOP_SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


__all__ = [
    "STOP_SIGNALS",
    "CommandParser",
    "Interrupted",
    "StopRequest",
    "UsageError",
    "parse_address",
    "parse_numbers",
    "sigterm_interrupts",
]
