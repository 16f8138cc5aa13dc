"""What a caller needs of a meter link, whichever way the meter is reached.

Two links read an S8000: :class:`~s8000_engine.client.S8000Client` over
Modbus (TCP or RTU), and :class:`~s8000_engine.client.webpages.WebPagesClient`
over the meter's built-in web pages.  Both identify the meter and poll it,
giving the same result types (:class:`Identity`, :class:`MeterData`), so
what polls a meter (Home Assistant's coordinator, its counter guards) is
written once against this protocol.  What only Modbus can do (the interval
memory, the clock, the commands) stays on :class:`S8000Client`.
"""

from __future__ import annotations

from typing import Protocol

from s8000_engine.client.data import Identity, MeterData, Selection


class MeterReader(Protocol):
    """A link that identifies a meter and reads it."""

    @property
    def identity(self) -> Identity | None:
        """The identified meter, or None before :meth:`identify`."""
        ...

    @property
    def serial(self) -> str | None:
        """The serial number of the meter the link is for (None: not known,
        or the link cannot read one)."""
        ...

    @property
    def requests(self) -> int:
        """How many requests :meth:`read` has sent so far: what the polls cost."""
        ...

    async def identify(self) -> Identity:
        """Find out who the meter is (raising an ``S8000Error`` when it is not one)."""
        ...

    async def read(self, fields: Selection | None = None, *, frame_cost: int = ...) -> MeterData:
        """One reading: everything, or the values of ``fields`` (the rest None)."""
        ...
