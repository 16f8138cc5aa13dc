"""Non-volatile interval memory (SQLite), its recorder, export and reporting uploads."""
