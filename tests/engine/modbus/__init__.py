"""Tests of ``s8000_engine.modbus``."""
