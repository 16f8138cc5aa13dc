"""Non-volatile interval memory (SQLite), the interval recorder, export and
reporting uploads."""
