"""``s8000-engine web-password``: set the web interface's admin password.

The password is read from standard input (one line), typed twice on a
terminal (never echoed), or ``--generate``d and printed once; it is never an
argument, which other users could read in the process list.  Signed-in
browsers must log in again (:mod:`s8000_engine.web.auth`)."""

from __future__ import annotations

import argparse
import getpass
import hmac
import sys
from pathlib import Path
from typing import TextIO

from s8000_engine.exceptions import CredentialError
from s8000_engine.web import auth


def read_new_password(stream: TextIO) -> str:
    """A new password: one line from ``stream``, or typed twice if it is a terminal.

    Raises :class:`CredentialError` when it is unacceptable, missing, or the
    two entries differ."""
    if stream.isatty():
        first = getpass.getpass("New web password: ")
        auth.check_password(first)
        second = getpass.getpass("Type it again: ")
        if not hmac.compare_digest(first.encode(), second.encode()):
            raise CredentialError("password: the two entries differ; nothing was changed")
        return first
    line = stream.readline()
    if not line:
        raise CredentialError("password: expected one line on standard input, found nothing")
    password = line.removesuffix("\n").removesuffix("\r")
    auth.check_password(password)
    return password


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--data", type=Path, default=Path("s8000-data"), help="data directory")
    parser.add_argument("--user", help="admin user name (default: keep it, or admin)")
    parser.add_argument(
        "--generate", action="store_true", help="generate a password and print it once"
    )
    parser.epilog = "Without --generate the password is one line on stdin, or typed twice."


def run(args: argparse.Namespace) -> int:
    """Set the password."""
    password = auth.generate_password() if args.generate else read_new_password(sys.stdin)
    path = args.data / auth.CREDENTIAL_NAME
    credentials = auth.Credentials.set_password(path, password, username=args.user)
    if args.generate:
        print(password)
    print(
        f"web password of {credentials.username!r} set in {path}; "
        "signed-in browsers must log in again",
        file=sys.stderr,
    )
    return 0
