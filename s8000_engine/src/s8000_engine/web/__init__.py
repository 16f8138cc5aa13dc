"""The local meter's web configuration interface (aiohttp)."""
