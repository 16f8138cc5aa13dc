"""Tests of ``s8000_engine.cli``."""
