"""Every error the engine raises, in one place."""

from __future__ import annotations

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
    """Another meter (serial number or model) answers than the one identified."""


class S8000BadData(S8000Error):  # noqa: N818 (the documented names)
    """The meter returned values that cannot be right (a scale factor, a register)."""


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field."""


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
