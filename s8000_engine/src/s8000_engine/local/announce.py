"""Zeroconf (mDNS/DNS-SD): the local meter announces itself; clients browse.

Service type ``_s8000-modbus._tcp.local.``; instance ``S8000 <serial>``;
TXT records ``serial``, ``model``, ``unit_id``, ``firmware``, ``mac``.
Home Assistant's zeroconf discovery and ``s8000-engine discover --zeroconf``
find it.  Multicast goes only to the interfaces named (``--announce IP``):
nothing is announced or browsed on an interface nobody chose.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import Any

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

SERVICE_TYPE = "_s8000-modbus._tcp.local."


@dataclass(frozen=True, slots=True)
class Announced:
    """A meter found by browsing."""

    name: str
    host: str
    port: int
    serial: str
    model: str
    unit_id: int
    firmware: str
    mac: str


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


async def browse(interfaces: list[str], seconds: float = 3.0) -> list[Announced]:
    """The meters announced on ``interfaces`` within ``seconds``."""
    zeroconf = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
    names: list[str] = []

    def changed(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Added and name not in names:
            names.append(name)

    browser = AsyncServiceBrowser(zeroconf.zeroconf, SERVICE_TYPE, handlers=[changed])
    try:
        await asyncio.sleep(seconds)
        found = []
        for name in names:
            info = await zeroconf.async_get_service_info(SERVICE_TYPE, name, 3000)
            if info is None or not info.parsed_addresses():
                continue
            text: dict[str, Any] = {
                k.decode(): (v or b"").decode() for k, v in info.properties.items()
            }
            found.append(
                Announced(
                    name=name.removesuffix("." + SERVICE_TYPE),
                    host=info.parsed_addresses()[0],
                    port=int(info.port or 502),
                    serial=text.get("serial", ""),
                    model=text.get("model", ""),
                    unit_id=int(text.get("unit_id") or 1),
                    firmware=text.get("firmware", ""),
                    mac=text.get("mac", ""),
                )
            )
        return found
    finally:
        await browser.async_cancel()
        await zeroconf.async_close()
