"""The ``s8000-engine`` command as a user runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import s8000_engine


def test_installed_command_reports_its_version() -> None:
    command = shutil.which("s8000-engine", path=str(Path(sys.executable).parent))
    assert command is not None, "the s8000-engine entry point is not installed"
    done = subprocess.run([command, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"s8000-engine {s8000_engine.__version__}"


def test_module_without_a_command_prints_help_and_fails() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "s8000_engine"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "usage: s8000-engine" in done.stderr
