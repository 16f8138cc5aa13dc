"""Finding the meters that announce themselves with zeroconf (mDNS/DNS-SD).

A local meter run with ``--announce IP`` announces its Modbus TCP service
(:mod:`s8000_engine.local.announce`): service type ``_s8000-modbus._tcp.local.``,
instance ``S8000 <serial>``, TXT records ``serial``, ``model``, ``unit_id``,
``firmware`` and ``mac``.  :func:`browse` lists them, as
``s8000-engine discover --zeroconf IP`` does; Home Assistant finds them with
its own zeroconf discovery.  Multicast goes only to the interfaces named:
nothing is browsed on an interface nobody chose.

Browsing needs zeroconf, which only the ``[local]`` extra installs, so it is
imported when :func:`browse` runs: the client alone (what Home Assistant
installs) never loads it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

#: The service the local meter announces and :func:`browse` looks for.
SERVICE_TYPE: Final = "_s8000-modbus._tcp.local."


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


async def browse(interfaces: list[str], seconds: float = 3.0) -> list[Announced]:
    """The meters announced on ``interfaces`` (IPv4 addresses) within ``seconds``.

    Raises ImportError naming the ``[local]`` extra when zeroconf is not installed."""
    try:
        # zeroconf is the [local] extra's: the one kind of import deferred.
        from zeroconf import IPVersion, ServiceStateChange, Zeroconf  # noqa: PLC0415
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf  # noqa: PLC0415
    except ImportError as err:
        raise ImportError(
            'browsing for announced meters needs zeroconf: pip install "s8000-engine[local]"',
            name=err.name,
        ) from err

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
            text = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
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
