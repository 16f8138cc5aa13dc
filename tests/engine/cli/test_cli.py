"""The ``s8000-engine`` command as a user runs it."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import s8000_engine
from tests.engine.meterproc import engine, free_port, uncovered_environ


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


# -- a demo configuration for every model; the shipped examples -------------------------------

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"


def test_every_model_has_a_valid_demo_configuration_with_every_point() -> None:
    from s8000_engine.config.meter import meter_config
    from s8000_engine.demo import DEFAULT_MODEL, demo_config
    from s8000_engine.local.meter import DEMO_CONFIG
    from s8000_engine.models import MODELS

    for model in MODELS.values():
        config = meter_config(demo_config(model))
        assert len(config.points) == model.points, model.code
        assert all(len(p.phases) == model.elements for p in config.points), model.code
        assert config.nominal_voltage == model.voltage, model.code
    # run --simulate without a configuration meters the simulated panel's own
    # demo: a 120/208 V wye S8UTS-083, whose points 1 to 8 carry the loads the
    # simulator gives them, with sliding demand and two pulse inputs.
    demo = meter_config(DEMO_CONFIG)
    assert demo.model.code == DEFAULT_MODEL == "S8UTS-083"
    assert demo.service.value == "3p4w"
    assert [p.name for p in demo.points][:3] == ["Lighting", "HVAC", "EV charger"]
    assert [p.ct_primary_a for p in demo.points] == [50, 100, 100, 100, 50, 50, 50, 50]
    assert demo.demand.subintervals == 3
    assert [p.name for p in demo.pulse_inputs] == ["Water", "Gas"]


def test_models_prints_a_configuration_to_start_from(tmp_path: Path) -> None:
    done = run("models", "s8uts-241", "--format", "config")
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    assert config["model"] == "S8UTS-241"
    assert len(config["points"]) == 24
    saved = tmp_path / "meter.json"
    saved.write_text(done.stdout)
    wave = tmp_path / "w.wav"
    made = run("synth", str(wave), "--config", str(saved), "--seconds", "1")
    assert made.returncode == 0, made.stderr
    alone = run("models", "--format", "config")
    assert alone.returncode == 2
    assert alone.stderr == (
        "s8000-engine models: error: --format config: name the model, e.g. models S8UTS-083\n"
    )


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_the_shipped_example_configurations_are_valid(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from s8000_engine.cli import main

    assert main(["registers", "--config", str(example), "--format", "json"]) == 0
    regmap = json.loads(capsys.readouterr().out)
    data = json.loads(example.read_text())
    # One SunSpec meter model per point, as the point is wired (204: delta).
    meters = {(p["name"].split(".")[0], p["model"]) for p in regmap if 201 <= p["model"] <= 204}
    wired = {1: 201, 2: 202, 3: 203}
    assert meters == {
        (f"point{n}", 204 if data["service"] == "3p3w" else wired[len(point["phases"])])
        for n, point in enumerate(data["points"], start=1)
    }
    assert example.name in (EXAMPLES / "README.md").read_text(), "list it in the README"


def test_there_are_shipped_examples() -> None:
    # The parametrized test above would pass vacuously on an empty directory.
    assert len(list(EXAMPLES.glob("*.json"))) >= 5


def test_synth_makes_a_demo_panel_of_a_model_without_a_configuration(tmp_path: Path) -> None:
    wave = tmp_path / "load.wav"
    made = run("synth", str(wave), "--model", "S8UTS-241", "--seconds", "2", "--current", "50")
    assert made.returncode == 0, made.stderr
    summary = json.loads(run("meter", str(wave), "--format", "json").stdout)
    assert summary["model"] == "S8UTS-241"
    assert len(summary["points"]) == 24
    # 50 % of 20 A (the demo's general circuits) at 120 V, one CT each.
    assert summary["points"][10]["power_w"] == pytest.approx(1200, rel=0.002)
    default = run("synth", str(tmp_path / "default.wav"), "--seconds", "1")
    assert default.returncode == 0, default.stderr
    assert "S8UTS-083 (8 points)" in default.stdout
    both = run("synth", str(wave), "--model", "S8UTS-241", "--config", "x.json")
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    unknown = run("synth", str(wave), "--model", "S9")
    assert unknown.returncode == 2
    assert "--model: unknown S8000 model 'S9'" in unknown.stderr


def test_run_simulates_a_model_and_refuses_a_model_for_a_replay(tmp_path: Path) -> None:
    from s8000_engine.storage.store import Store

    data = tmp_path / "data"
    done = run("run", "--simulate", "--model", "S8120-062", "--data", str(data),
               "--seconds", "1", "--speed", "100", "--sample-rate", "4000")  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Store.open(data) as store:
        assert store.get_meta("config")["model"] == "S8120-062"
    replay = run("run", "--replay", "x.wav", "--model", "S8120-062", "--data", str(data))
    assert replay.returncode == 2
    assert replay.stderr == (
        "s8000-engine run: error: --model: only with --simulate (a waveform file carries its own)\n"
    )


# -- errors name the option ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["discover", "--network", "banana"], "--network"),
        (["discover", "--network", "10.0.0.0/8"], "--network"),
        (["discover", "--network", "2001:db8::/120"], "--network"),
        (["run", "--simulate", "--web", "0", "--discover-network", "banana"],
         "--discover-network"),
        (["run", "--simulate", "--web", "127.0.0.1:http"], "--web"),
        (["run", "--simulate", "--web", "0", "--web-idle-timeout", "1"], "--web-idle-timeout"),
        (["run", "--simulate", "--web", "0", "--web-host-name", "a b"], "--web-host-name"),
        (["run", "--simulate", "--web", "0", "--web-trusted-proxy", "proxy"],
         "--web-trusted-proxy"),
        (["run", "--simulate", "--web", "0", "--web-idle-timeout", "nan"], "--web-idle-timeout"),
        (["run", "--simulate", "--modbus-tcp", "5020"], "--modbus-tcp"),
        (["read", "127.0.0.1:99999"], "address"),
        (["export", "--from", "yesterday"], "--from"),
        (["discover", "--serial", "/dev/null", "--units", "1-300"], "--units"),
    ],
)  # fmt: skip
def test_a_wrong_option_is_one_line_naming_it(args: list[str], option: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [shutil.which("s8000-engine", path=str(Path(sys.executable).parent)) or "", *args],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    prefix = f"s8000-engine {args[0]}: error: {option}: "
    assert done.stderr.startswith(prefix), done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.count(option) == 1, "the option is named once"
    assert not (tmp_path / "s8000-data").exists(), "nothing was started"


# -- a client-only install -------------------------------------------------------------------

#: Runs ``s8000_engine.cli.main`` where the [local] extra's libraries cannot
#: be imported, as after ``pip install s8000-engine``: an import finder that
#: says they are not installed.  Prints what got loaded on stderr's last line.
WITHOUT_EXTRAS = """
import importlib.abc, json, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"numpy", "voluptuous", "aiohttp", "zeroconf"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from s8000_engine.cli import main
try:
    status = main(sys.argv[1:])
finally:
    heavy = ["numpy", "voluptuous", "aiohttp", "zeroconf", "sqlite3", "s8000_engine.metering",
             "s8000_engine.local", "s8000_engine.storage", "s8000_engine.config"]
    print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)
raise SystemExit(status)
"""


def without_extras(*args: str, **environ: str) -> tuple[int, str, str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS, *args],
        capture_output=True, text=True, check=False, timeout=60, env={**uncovered_environ(), **environ},
    )  # fmt: skip
    *lines, loaded = done.stderr.splitlines()
    return done.returncode, done.stdout, "\n".join(lines), json.loads(loaded)


@pytest.mark.parametrize(
    ("args", "library"),
    [
        (["run", "--simulate"], "voluptuous"),
        (["synth", "x.wav"], "numpy"),
        (["accuracy"], "numpy"),
        (["meter", "x.wav"], "voluptuous"),
        (["web-password"], "aiohttp"),
        (["discover", "--zeroconf", "127.0.0.1"], "zeroconf"),
    ],
)
def test_a_meter_command_names_the_missing_extra(args: list[str], library: str) -> None:
    status, _, err, _ = without_extras(*args)
    assert status == 2
    assert err == (
        f"s8000-engine {args[0]}: {library} is not installed; "
        'this command needs pip install "s8000-engine[local]"'
    )


def test_help_and_the_client_commands_need_no_extra(tmp_path: Path) -> None:
    status, out, _, loaded = without_extras("--help")
    assert status == 0
    assert all(f"    {name}" in out for name in ("models", "run", "read", "web-password"))
    assert loaded == []
    status, out, _, loaded = without_extras("models", "S8UTS-083", "--format", "config")
    assert status == 0
    assert json.loads(out)["model"] == "S8UTS-083"
    assert loaded == []
    closed = free_port()
    status, _, err, loaded = without_extras("read", f"127.0.0.1:{closed}", "--timeout", "1")
    assert status == 2
    assert err.startswith("s8000-engine read: error: ")
    assert loaded == []
    status, out, err, loaded = without_extras(
        "discover", "--network", "127.0.0.1/32", "--port", str(closed), "--format", "json"
    )
    assert (status, json.loads(out)) == (0, []), err
    assert loaded == []
    status, _, err, loaded = without_extras(
        "panel", "--url", f"http://127.0.0.1:{closed}", "--once", S8000_PASSWORD="x"
    )
    assert status == 1
    assert err.startswith(f"s8000-engine panel: error: cannot connect to http://127.0.0.1:{closed}")
    assert loaded == []


# -- stopping on a signal ----------------------------------------------------------------------


class _Meter:
    """``s8000-engine run --simulate --progress`` in a process of its own."""

    def __init__(self, data: Path, *options: str) -> None:
        self.process = subprocess.Popen(
            [engine(), "run", "--simulate", "--data", str(data), "--speed", "30",
             "--sample-rate", "4000", "--interval", "1", "--progress", *options],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.seconds: list[dict[str, Any]] = []
        self.err: list[str] = []
        self._threads = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_out(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.seconds.append(json.loads(line))

    def _read_err(self) -> None:
        assert self.process.stderr is not None
        self.err.extend(self.process.stderr)

    def wait_for(self, seconds: int, text: str = "") -> None:
        deadline = time.monotonic() + 60
        while len(self.seconds) < seconds or text not in "".join(self.err):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail("the meter did not start: " + "".join(self.err))
            time.sleep(0.05)

    def stop(self, signum: signal.Signals) -> int:
        self.process.send_signal(signum)
        try:
            status = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"{signum.name} did not stop the meter: " + "".join(self.err))
        for thread in self._threads:
            thread.join(10)
        return status


@pytest.mark.parametrize(
    ("signum", "serve"),
    [(signal.SIGINT, "web"), (signal.SIGTERM, "web"), (signal.SIGINT, ""),
     (signal.SIGTERM, "")],
)  # fmt: skip
def test_run_stops_on_sigint_and_sigterm_with_its_state_stored(
    tmp_path: Path, signum: signal.Signals, serve: str
) -> None:
    from s8000_engine.storage.store import Store

    data = tmp_path / "data"
    options = ["--web", f"127.0.0.1:{free_port()}", "--modbus-tcp", f"127.0.0.1:{free_port()}"]
    meter = _Meter(data, *(options if serve else []))
    meter.wait_for(90, "web interface on" if serve else "")  # an interval and a half
    status = meter.stop(signum)
    err = "".join(meter.err)
    assert status == 0, err
    assert "Traceback" not in err
    assert f"local meter stopped ({signum.name})" in err
    last = meter.seconds[-1]
    assert last["event"] == "second"
    with Store.open(data, create=False) as store:
        checkpoint = store.load_checkpoint()
        intervals = store.count_intervals()
    # The last second it reported is the one it stored: nothing metered was lost.
    assert checkpoint is not None
    assert (checkpoint.time, checkpoint.registers) == (last["time"], last["registers"])
    assert intervals >= 1
    again = _Meter(data, "--seconds", "1")
    assert again.process.wait(60) == 0, "".join(again.err)
    for thread in again._threads:
        thread.join(10)
    start = again.seconds[0]
    assert start["event"] == "start"
    assert start["restored"] is True
    assert start["registers"] == last["registers"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_scan_stops_at_once_and_says_so(signum: signal.Signals) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        process = subprocess.Popen(
            [engine(), "discover", "--network", "127.0.0.1/32", "--port", str(port),
             "--timeout", "120"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        silent.settimeout(30)
        connection, _ = silent.accept()  # the probe is under way
        with connection:
            process.send_signal(signum)
            out, err = process.communicate(timeout=30)
    assert process.returncode == 128 + signum
    assert err == "s8000-engine discover: interrupted\n"
    assert out == ""


def test_run_help_says_the_web_password_is_generated_not_asked() -> None:
    """The first start generates the web password and shows it once; nothing
    asks for one (the help said it did)."""
    done = run("run", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "asks for the web admin password" not in text
    assert "generates the web admin password at the first start" in text
