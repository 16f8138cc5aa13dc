"""``s8000-engine panel``: the front panel of a running local meter, in a terminal.

The work is :mod:`s8000_engine.panel.terminal`'s; this is the command: its
options, the password and the exit status.  The password comes from
``--password-file``, else the ``S8000_PASSWORD`` environment variable, else
a prompt (never the command line).  Exit status: 0 done (``q`` or Ctrl-C in
the interactive panel), 1 the meter could not be used (cannot connect, login
refused or rate-limited, an unexpected answer), 2 a usage error (bad option,
bad ``--keys``, no password).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final, TextIO

from s8000_engine.cli._common import CommandParser, UsageError
from s8000_engine.exceptions import PanelError, PanelUsageError
from s8000_engine.panel.terminal import (
    DEFAULT_URL,
    DEFAULT_USER,
    PanelLink,
    interactive,
    parse_keys,
    print_lines,
    run_steps,
)

PASSWORD_ENV: Final = "S8000_PASSWORD"

DESCRIPTION: Final = (
    "The front panel (2x16 LCD, Display/left/right) of a running local meter, "
    "through its web interface (s8000-engine run --web)."
)
EPILOG: Final = (
    f"The password comes from --password-file, else ${PASSWORD_ENV}, else a prompt. "
    "Exit status: 0 done, 1 the meter could not be used, 2 usage error."
)


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.add_argument("--url", default=DEFAULT_URL, help=f"web interface (default {DEFAULT_URL})")
    parser.add_argument("--user", default=DEFAULT_USER, help=f"user name (default {DEFAULT_USER})")
    parser.add_argument("--password-file", type=Path, help="read the password from this file")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--keys",
        help="perform these steps and print the LCD after each: "
        "d, hold, left, right, plus, minus, wait:SECONDS (comma-separated)",
    )
    mode.add_argument("--once", action="store_true", help="print the LCD's two lines and exit")


def read_password(
    password_file: Path | None,
    user: str,
    environ: Mapping[str, str],
    prompt: Callable[[str], str] | None,
) -> str:
    """The password: ``--password-file``, else ``S8000_PASSWORD``, else
    ``prompt`` (None when there is no terminal to ask on)."""
    if password_file is not None:
        try:
            text = password_file.read_text(encoding="utf-8")
        except OSError as error:
            raise PanelUsageError(
                f"--password-file: cannot read {password_file}: {error.strerror}"
            ) from None
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise PanelUsageError(f"--password-file: {password_file} is empty")
        return lines[0]
    if environ.get(PASSWORD_ENV):
        return environ[PASSWORD_ENV]
    if prompt is None:
        raise PanelUsageError(
            f"no password: set {PASSWORD_ENV}, use --password-file, or run in a terminal"
        )
    return prompt(f"Password for {user}: ")


def run(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Log in, then the interactive panel, ``--keys`` or ``--once``; the exit status.

    The keywords stand in for the process's environment, streams and
    ``time.sleep`` (``hold`` and ``wait:`` steps), for tests."""
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
        prompt = getpass.getpass if stdin.isatty() else None
        link.login(args.user, read_password(args.password_file, args.user, environ, prompt))
        if args.once:
            print_lines(link.state(), stdout)
        elif steps is not None:
            run_steps(link, steps, stdout, sleep=sleep)
        else:
            return interactive(link, stdin, stdout)
    except PanelError as error:
        print(f"s8000-engine panel: error: {error}", file=stderr)
        return error.exit_status
    return 0


def panel_command(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """``s8000-engine panel ARGV...`` with the process's environment and streams
    standing in (see :func:`run`); the exit status."""
    stderr = sys.stderr if stderr is None else stderr
    parser = CommandParser(prog="s8000-engine panel")
    configure(parser)
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        print(f"s8000-engine panel: error: {error}", file=stderr)
        return 2
    return run(args, environ=environ, stdin=stdin, stdout=stdout, stderr=stderr, sleep=sleep)


__all__ = ["PASSWORD_ENV", "configure", "panel_command", "read_password", "run"]
