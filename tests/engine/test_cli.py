"""The ``s8000-engine`` command as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import s8000_engine


def run(*args: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("s8000-engine", path=str(Path(sys.executable).parent))
    assert command is not None, "the s8000-engine entry point is not installed"
    return subprocess.run([command, *args], capture_output=True, text=True, check=False)


def test_installed_command_reports_its_version() -> None:
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"s8000-engine {s8000_engine.__version__}"


def test_module_without_a_command_prints_help_and_fails() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "s8000_engine"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "usage: s8000-engine" in done.stderr


def test_models_lists_the_catalogue_and_wire_colours() -> None:
    listing = run("models")
    assert listing.returncode == 0
    assert "S8UTS-083" in listing.stdout
    assert "S8120-092" in listing.stdout
    one = json.loads(run("models", "--format", "json", "277wh-241").stdout)
    assert one[0]["channels"][23] == {"name": "P24-1", "x1": "Blue", "x2": "Brown"}
    unknown = run("models", "S9")
    assert unknown.returncode == 2
    assert "unknown S8000 model 'S9'" in unknown.stderr


def test_synth_then_meter_reads_the_registers_back(tmp_path: Path) -> None:
    config = tmp_path / "meter.json"
    config.write_text(
        json.dumps(
            {
                "model": "S8UTS-083",
                "service": "3p4w",
                "points": [
                    {"name": "Chiller", "ct_primary": 100, "phases": ["A", "B", "C"]},
                    {"name": "Lights", "ct_primary": 50, "phases": ["A"]},
                ],
            }
        )
    )
    wave = tmp_path / "load.wav"
    made = run(
        "synth",
        str(wave),
        "--config",
        str(config),
        "--seconds",
        "3",
        "--current",
        "50",
        "--pf",
        "0.8",
    )
    assert made.returncode == 0, made.stderr
    metered = run("meter", str(wave), "--format", "json")
    assert metered.returncode == 0, metered.stderr
    summary = json.loads(metered.stdout)
    chiller, lights = summary["points"]
    assert abs(summary["frequency_hz"] - 60.0) < 0.001
    # 50 % of 100 A at 120 V on three phases, PF 0.8: 14.4 kW, 10.8 kvar.
    assert abs(chiller["power_w"] - 14400) < 14400 * 0.002
    assert abs(chiller["reactive_var"] - 10800) < 10800 * 0.005
    assert abs(lights["power_w"] - 2400) < 2400 * 0.002
    seconds = summary["seconds"]
    assert abs(chiller["kwh_delivered"] - 14.4 * seconds / 3600) < 14.4 * seconds / 3600 * 0.01


def test_bad_config_and_bad_file_are_clear_errors(tmp_path: Path) -> None:
    config = tmp_path / "meter.json"
    config.write_text(
        json.dumps({"model": "S8UTS-083", "service": "3p4w", "points": [{"phases": ["A"]}]})
    )
    wave = tmp_path / "x.wav"
    done = run("synth", str(wave), "--config", str(config))
    assert done.returncode == 2
    assert "points[0].ct_primary: required key not provided" in done.stderr
    wave.write_bytes(b"not a wave file")
    done = run("meter", str(wave))
    assert done.returncode == 2
    assert f"{wave}: not a RIFF/WAVE file" in done.stderr


def _wave_and_config(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "meter.json"
    config.write_text(
        json.dumps(
            {
                "model": "S8UTS-241",
                "service": "1p2w",
                "points": [{"name": "Fridge", "ct_primary": 20, "phases": ["A"]}],
            }
        )
    )
    wave = tmp_path / "fridge.wav"
    made = run("synth", str(wave), "--config", str(config), "--seconds", "150", "--current", "40")
    assert made.returncode == 0, made.stderr
    return wave, config


def test_run_replays_a_file_into_the_store_and_export_reads_it(tmp_path: Path) -> None:
    wave, _ = _wave_and_config(tmp_path)
    data = tmp_path / "data"
    done = run(
        "run", "--replay", str(wave), "--data", str(data), "--interval", "1", "--speed", "1000"
    )
    assert done.returncode == 0, done.stderr
    csv_text = run("export", "--data", str(data)).stdout
    header, *rows = csv_text.strip().splitlines()
    assert header.startswith("interval_start,interval_end,point,point_name,kwh_delivered")
    assert len(rows) >= 2
    fields = dict(zip(header.split(","), rows[1].split(","), strict=True))
    assert fields["point_name"] == "Fridge"
    # 40 % of 20 A at 120 V = 960 W: 16 Wh per full minute.
    assert abs(float(fields["delta_kwh_delivered"]) - 0.016) <= 0.0002
    as_json = json.loads(
        run("export", "--data", str(data), "--format", "json", "--points", "1").stdout
    )
    assert as_json[1]["points"][0]["name"] == "Fridge"
    assert as_json[1]["flags"] == []
    missing = run("export", "--data", str(tmp_path / "nothing"))
    assert missing.returncode == 2
    assert "no such database" in missing.stderr


def test_run_keeps_the_stored_configuration_unless_told_to_replace_it(tmp_path: Path) -> None:
    """--config sets up a new data directory; what the web interface changed
    afterwards survives a restart with the same --config."""
    import json as json_module

    from s8000_engine.storage.store import Store

    first = {"model": "S8UTS-083", "service": "3p4w",
             "points": [{"name": "Pump", "ct_primary": 50, "phases": ["A", "B", "C"]}]}  # fmt: skip
    second = {**first, "points": [{**first["points"][0], "name": "Heat pump"}]}
    config = tmp_path / "meter.json"
    data = tmp_path / "data"

    def start(*extra: str) -> subprocess.CompletedProcess[str]:
        return run("run", "--simulate", "--data", str(data), "--config", str(config),
                   "--seconds", "1", "--speed", "100", "--sample-rate", "4000", *extra)  # fmt: skip

    def stored() -> str:
        with Store.open(data) as store:
            return str(store.get_meta("config")["points"][0]["name"])

    config.write_text(json_module.dumps(first))
    assert start().returncode == 0
    assert stored() == "Pump"
    config.write_text(json_module.dumps(second))
    kept = start()
    assert kept.returncode == 0, kept.stderr
    assert stored() == "Pump"
    assert "keeping the stored configuration" in kept.stderr
    assert start("--replace-config").returncode == 0
    assert stored() == "Heat pump"
    alone = run("run", "--simulate", "--data", str(data), "--replace-config", "--seconds", "1")
    assert alone.returncode == 2
    assert "--replace-config" in alone.stderr


@pytest.mark.parametrize(
    ("host", "lan"),
    [("192.168.1.20", True), ("10.0.0.5", True), ("127.0.0.1", False), ("0.0.0.0", False),
     ("::1", False), ("fe80::1", False), ("meter.local", False)],
)  # fmt: skip
def test_the_discovery_page_scans_the_subnet_of_a_lan_address_only(host: str, lan: bool) -> None:
    from s8000_engine.cli.run import is_lan_address

    assert is_lan_address(host) is lan
