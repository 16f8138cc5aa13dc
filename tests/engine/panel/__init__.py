"""Tests of ``s8000_engine.panel``."""
