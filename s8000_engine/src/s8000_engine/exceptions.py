"""Every error the engine raises, in one place."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Self

type FieldPath = tuple[str | int, ...]
"""Where a value sits in a configuration: the keys and list indexes from its
root, as voluptuous's ``Invalid.path`` gives them (``("points", 2, "ct_primary")``);
``()`` is the configuration as a whole."""

# -- errors ------------------------------------------------------------------------------


class S8000Error(Exception):
    """Anything the client raises."""


class S8000ConnectionError(S8000Error):
    """The link failed: refused, lost, timed out, or a Modbus exception response."""

    def __init__(self, message: str, *, exception_code: int | None = None) -> None:
        super().__init__(message)
        self.exception_code = exception_code
        """The Modbus exception code the device answered with, if it did."""


class S8000NotAnS8000(S8000Error):  # noqa: N818 (the documented names)
    """The device is not an S8000 (no SunSpec map, another maker or model)."""


class S8000MapChanged(S8000Error):  # noqa: N818 (the documented names)
    """The register layout is no longer the identified one: identify again."""


class S8000WrongMeter(S8000Error):  # noqa: N818 (the documented names)
    """Another meter (serial number or model) answers than the one the client
    is for: ``expected`` is that meter's serial number, ``found`` says which
    meter answers instead (``MODEL serial SERIAL``)."""

    def __init__(self, expected: str, found: str) -> None:
        """Say which meter was expected and which answered."""
        super().__init__(f"expected serial {expected}, found {found}")
        self.expected = expected
        self.found = found

    def __reduce__(self) -> tuple[type[S8000WrongMeter], tuple[str, str]]:
        """Pickle (and copy) with both serials, not the message alone."""
        return type(self), (self.expected, self.found)


class S8000BadData(S8000Error):  # noqa: N818 (the documented names)
    """The meter returned values that cannot be right (a scale factor, a register)."""


class S8000ProfileError(S8000Error, ValueError):
    """A register profile is not valid: ``path`` names the field (keys and list
    indexes from the document's root), ``reason`` what is wrong with it, and
    ``source`` the file, when it came from one."""

    def __init__(self, path: FieldPath, reason: str, *, source: str | None = None) -> None:
        """Say where in the profile, and what."""
        self.path = path
        self.reason = reason
        self.source = source
        message = f"{self.field}: {reason}" if path else reason
        super().__init__(f"{source}: {message}" if source else message)

    @property
    def field(self) -> str:
        """The field's path as text (``points.fields[3].type``), or ``""`` for the whole."""
        return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path).lstrip(".")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle (and copy) with its parts, not the message alone."""
        return _profile_error, (self.path, self.reason, self.source)


def _profile_error(path: FieldPath, reason: str, source: str | None) -> S8000ProfileError:
    return S8000ProfileError(path, reason, source=source)


class ConfigError(ValueError):
    """A configuration is wrong: ``errors`` holds every wrong value found, each
    as ``(field path, message)``.

    The text names each field and says what is wrong, several joined by
    ``; ``: ``points[2].ct_primary: must be from 0.1 to 10000 A``.  Built from
    a plain message (``ConfigError("--speed: must be positive")``), the error
    has one entry with the empty path.  Never a secret's value in a message.
    """

    def __init__(self, errors: str | Iterable[tuple[FieldPath, str]]) -> None:
        found = (
            (((), errors),)
            if isinstance(errors, str)
            else tuple((tuple(path), str(message)) for path, message in errors)
        )
        if not found:
            raise ValueError("a configuration error needs at least one (path, message)")
        self.errors: tuple[tuple[FieldPath, str], ...] = found
        super().__init__("; ".join(self._line(path, message) for path, message in found))

    @classmethod
    def at(cls, path: FieldPath, message: str) -> Self:
        """One wrong value: ``message`` about the field at ``path``."""
        return cls([(path, message)])

    def within(self, *prefix: str | int) -> Self:
        """The same errors, seen from ``prefix`` up (a section validated on its
        own, then placed in the configuration: ``within("pulse_inputs", 1)``)."""
        return type(self)(((*prefix, *path), message) for path, message in self.errors)

    @property
    def path(self) -> FieldPath:
        """The first wrong field's path."""
        return self.errors[0][0]

    @property
    def message(self) -> str:
        """What is wrong with the first wrong field."""
        return self.errors[0][1]

    @classmethod
    def describe(cls, path: FieldPath) -> str:
        """A path as the text names it: ``points[2].ct_primary``."""
        text = ""
        for key in path:
            text += f"[{key}]" if isinstance(key, int) else f".{key}" if text else str(key)
        return text

    @classmethod
    def _line(cls, path: FieldPath, message: str) -> str:
        return f"{cls.describe(path)}: {message}" if path else message


class ReportError(Exception):
    """An upload failed; the message names the host and what failed (never a secret)."""


class StorageError(Exception):
    """The store cannot be used or written; the message names the file."""


class WaveformError(ValueError):
    """A waveform file is malformed or does not fit; the message names the file."""


class CredentialError(ValueError):
    """The web credential cannot be created, read or set; the message says why."""


class PanelError(Exception):
    """The meter's panel could not be used; ``exit_status`` is the command's."""

    exit_status = 1


class PanelUsageError(PanelError):
    """A bad option or argument."""

    exit_status = 2


class PanelConnectError(PanelError):
    """The web interface could not be reached."""


class PanelAuthError(PanelError):
    """The login was refused (wrong user name or password)."""


class PanelRateLimitedError(PanelError):
    """Too many login attempts; ``retry_after`` is the seconds to wait, if known."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
