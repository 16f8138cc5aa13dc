"""Constants that every layer shares."""

from __future__ import annotations

from typing import Final

#: The firmware revision the local meter reports (Common model ``Vr``, the
#: front panel's diagnostics, the web page): the release of Leviton's
#: firmware whose behaviour it follows.
FIRMWARE: Final = "1.60"
#: Its build number (vendor model ``FwBuild``).
FIRMWARE_BUILD: Final = 1600
