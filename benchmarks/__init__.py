"""Speed measurements of the engine and the integration (see README.md here)."""
