"""Tests of ``s8000_engine.metering``."""
