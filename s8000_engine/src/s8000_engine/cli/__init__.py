"""The ``s8000-engine`` command line: one module per command.

:data:`COMMANDS` is the table of commands.  Each one's module (here, e.g.
:mod:`s8000_engine.cli.run`) has ``configure(parser)``, which adds its
options, and ``run(args) -> int``, which does the work.  :func:`main` imports
only the module of the command it runs, so ``--help`` and the client's
commands (``read``, ``discover``, ``probe``, ``models``, ``panel``) work from ``pip install
s8000-engine`` alone; a command of the software meter names the missing
``[local]`` extra instead of failing with a traceback.

Exit status: 0 done; 1 the command ran and found a failure (``accuracy``,
``send``, ``panel``); 2 a usage or input error, one line on standard error;
on SIGINT (Ctrl-C) or SIGTERM, 128 + the signal's number (130, 143) after a
one-line note.  ``run`` is the exception: a local meter has no end of its
own, so a signal is how it ends, and it exits 0 once its last second is
stored.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Final, Protocol, cast

from s8000_engine import __version__
from s8000_engine.cli._common import CommandParser, Interrupted, UsageError, sigterm_interrupts
from s8000_engine.exceptions import S8000Error, StorageError


@dataclass(frozen=True, slots=True)
class Command:
    """One entry of the table of commands."""

    module: str
    """Its module under ``s8000_engine.cli``."""
    help: str
    """One line for ``s8000-engine --help``."""


#: The commands, in the order ``--help`` lists them.
COMMANDS: Final[dict[str, Command]] = {
    "models": Command("models", "list the S8000 models and their CT channels"),
    "meter": Command("meter", "meter a waveform file and print the registers"),
    "synth": Command("synth", "write a waveform file of a known load"),
    "accuracy": Command("accuracy", "run the IEC 62053-22/-24 accuracy suite"),
    "run": Command("run", "run the local meter (simulated panel or replay)"),
    "registers": Command("registers", "print the Modbus register map (JSON, CSV or Markdown)"),
    "read": Command("read", "read a meter's readings over Modbus TCP (table or JSON)"),
    "discover": Command("discover", "find S8000 meters on the given networks (Modbus TCP)"),
    "probe": Command(
        "probe", "find out, read-only, what answers at an address (a dump to attach to an issue)"
    ),
    "send": Command(
        "send", "report unreported intervals to the configured host now (the Send command)"
    ),
    "export": Command("export", "export interval data as CSV or JSON"),
    "panel": Command("panel", "the front panel of a running local meter, in a terminal"),
    "web-password": Command(
        "web_password", "set the web interface's admin password (read from stdin or typed twice)"
    ),
}

#: The optional libraries a command may need, by the extra that installs them.
EXTRAS: Final[dict[str, str]] = {
    "numpy": "local",
    "voluptuous": "local",
    "aiohttp": "local",
    "zeroconf": "local",
    "pymodbus": "pymodbus",
}


class CommandModule(Protocol):
    """What a command's module provides."""

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def build_parser() -> tuple[CommandParser, dict[str, CommandParser]]:
    """The ``s8000-engine`` parser, and each command's parser (still without its options)."""
    parser = CommandParser(
        prog="s8000-engine",
        description=(
            "The Leviton Series 8000 multi-point submeter in software: "
            "models, metering, interval memory, Modbus, and a local meter."
        ),
        epilog='The software meter\'s commands need pip install "s8000-engine[local]".',
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    parsers = {
        name: commands.add_parser(name, help=command.help, description=_sentence(command.help))
        for name, command in COMMANDS.items()
    }
    return parser, parsers


def _missing_extra(error: ImportError) -> tuple[str, str] | None:
    """The optional library an import failed on, and the extra that installs it."""
    library = (error.name or "").partition(".")[0]
    extra = EXTRAS.get(library)
    return None if extra is None else (library, extra)


def _load(name: str) -> CommandModule:
    module: ModuleType = importlib.import_module(f"s8000_engine.cli.{COMMANDS[name].module}")
    return cast("CommandModule", module)


def _guarded(name: str, work: Callable[[], int]) -> int:
    """``work()``, with every error of the command as one line on standard error."""
    try:
        with sigterm_interrupts():
            return work()
    except ImportError as error:
        missing = _missing_extra(error)
        if missing is None:
            raise
        library, extra = missing
        print(
            f"s8000-engine {name}: {library} is not installed; this command needs "
            f'pip install "s8000-engine[{extra}]"',
            file=sys.stderr,
        )
        return 2
    except (UsageError, ValueError, StorageError, S8000Error) as error:
        # ValueError: ConfigError, WaveformError, CredentialError, an unknown model.
        print(f"s8000-engine {name}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        signum = error.signum if isinstance(error, Interrupted) else signal.SIGINT
        print(f"s8000-engine {name}: interrupted", file=sys.stderr)
        return 128 + signum


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, parsers = build_parser()
    # The command is the first word: an option before it (--help, --version)
    # ends the program.  Only the command's module is imported.
    name = argv[0] if argv and argv[0] in COMMANDS else None
    if name is None:
        try:
            parser.parse_args(argv)
        except UsageError as error:  # an unknown command or option
            print(f"s8000-engine: error: {error}", file=sys.stderr)
            return 2
        parser.print_help(sys.stderr)  # no command
        return 2
    chosen = name

    def command() -> int:
        module = _load(chosen)
        module.configure(parsers[chosen])
        return module.run(parser.parse_args(argv))

    return _guarded(name, command)


__all__ = ["COMMANDS", "Command", "build_parser", "main"]
