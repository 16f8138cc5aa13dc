"""Zeroconf (mDNS/DNS-SD): the local meter announces itself.

Service type ``_s8000-modbus._tcp.local.``; instance ``S8000 <serial>``;
TXT records ``serial``, ``model``, ``unit_id``, ``firmware``, ``mac``.
Home Assistant's zeroconf discovery and ``s8000-engine discover --zeroconf``
(:func:`s8000_engine.client.browse.browse`, the client's side) find it.
Multicast goes only to the interfaces named (``--announce IP``): nothing is
announced on an interface nobody chose.
"""

from __future__ import annotations

import contextlib
import socket

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from s8000_engine.client.browse import SERVICE_TYPE

__all__ = ["Announcement", "announce"]


class Announcement:
    """A running announcement; :meth:`close` withdraws it."""

    def __init__(self, zeroconf: AsyncZeroconf, info: AsyncServiceInfo) -> None:
        self.zeroconf = zeroconf
        self.info = info

    async def close(self) -> None:
        """Withdraw the service and stop."""
        with contextlib.suppress(Exception):
            await self.zeroconf.async_unregister_service(self.info)
        await self.zeroconf.async_close()


async def announce(
    address: str,
    port: int,
    *,
    interfaces: list[str],
    serial: str,
    model: str,
    unit_id: int,
    firmware: str,
    mac: str,
) -> Announcement:
    """Announce a Modbus TCP meter at ``address:port`` on ``interfaces``."""
    zeroconf = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
    info = AsyncServiceInfo(
        SERVICE_TYPE,
        f"S8000 {serial}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton(address)],
        port=port,
        properties={
            "serial": serial,
            "model": model,
            "unit_id": str(unit_id),
            "firmware": firmware,
            "mac": mac,
        },
        server=f"s8000-{serial}.local.",
    )
    await zeroconf.async_register_service(info)
    return Announcement(zeroconf, info)
