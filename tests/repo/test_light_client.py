"""The client installs alone: what Home Assistant gets with ``s8000-engine``.

``pip install s8000-engine`` is the client layer (modbus-connection and
nothing of the software meter); the local meter is the ``[local]`` extra.
These tests install the engine without extras into a fresh virtual
environment, as a user or Home Assistant would, and use it against a local
meter started from this (full) environment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.engine.meterproc import serving_meter, uncovered_environ

ROOT = Path(__file__).resolve().parents[2]

#: What the client must not load: the software meter's libraries and layers.
HEAVY = (
    "numpy",
    "sqlite3",
    "aiohttp",
    "zeroconf",
    "ftplib",
    "voluptuous",
    "s8000_engine.config",
    "s8000_engine.local",
    "s8000_engine.metering",
    "s8000_engine.storage",
    "s8000_engine.web",
    # The web-page link needs aiohttp: a module of its own, never loaded by the façade.
    "s8000_engine.client.webpages",
)


def _loaded(python: str, module: str) -> list[str]:
    """The modules of :data:`HEAVY` that importing ``module`` loads, in a fresh interpreter."""
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True, env=uncovered_environ()
    )
    return list(json.loads(done.stdout))


@pytest.mark.parametrize("module", ["s8000_engine", "s8000_engine.client"])
def test_importing_the_client_loads_nothing_of_the_meter(module: str) -> None:
    assert _loaded(sys.executable, module) == []


def test_the_check_sees_a_heavy_import() -> None:
    # The check above would pass vacuously if it could not see an import.
    assert "numpy" in _loaded(sys.executable, "s8000_engine.metering.meter")


def test_the_web_page_link_loads_aiohttp_only_when_imported_itself() -> None:
    assert _loaded(sys.executable, "s8000_engine.client.webpages") == [
        "aiohttp",
        "s8000_engine.client.webpages",
    ]


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with ``pip install ./s8000_engine`` (no extras)."""
    where = tmp_path_factory.mktemp("light") / "venv"
    venv.create(where, with_pip=True)
    done = subprocess.run(
        [str(where / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", str(ROOT / "s8000_engine")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return where


def test_the_base_install_has_no_meter_libraries(light_venv: Path) -> None:
    done = subprocess.run(
        [str(light_venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    installed = {row["name"].lower() for row in json.loads(done.stdout)}
    assert {"s8000-engine", "modbus-connection", "tmodbus"} <= installed
    assert not installed & {"numpy", "aiohttp", "zeroconf", "voluptuous"}
    assert _loaded(str(light_venv / "bin" / "python"), "s8000_engine.client") == []


def test_read_and_discover_work_from_the_base_install(light_venv: Path, tmp_path: Path) -> None:
    command = str(light_venv / "bin" / "s8000-engine")
    with serving_meter(tmp_path / "data") as port:
        read = subprocess.run(
            [command, "read", f"127.0.0.1:{port}", "--format", "json"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert read.returncode == 0, read.stderr
        reading = json.loads(read.stdout)
        assert reading["identity"]["manufacturer"] == "Leviton"
        assert len(reading["data"]["points"]) == 8
        found = subprocess.run(
            [command, "discover", "--network", "127.0.0.1/32", "--port", str(port),
             "--format", "json"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        (meter,) = json.loads(found.stdout)
        assert meter["ip"] == "127.0.0.1"
        assert meter["serial"] == reading["identity"]["serial"]


@pytest.mark.parametrize("args", [["run", "--simulate"], ["synth", "x.wav"], ["accuracy"]])
def test_meter_commands_name_the_missing_extra(light_venv: Path, args: list[str]) -> None:
    done = subprocess.run(
        [str(light_venv / "bin" / "s8000-engine"), *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "s8000-engine[local]" in done.stderr
    assert "Traceback" not in done.stderr
