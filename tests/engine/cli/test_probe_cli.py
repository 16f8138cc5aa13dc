"""``s8000-engine probe`` as an owner runs it: the installed command against
the local meter's process, nothing at all, a device that never answers, and
wrong input."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from s8000_engine.cli._common import UsageError
from s8000_engine.cli.probe import default_output, parse_ranges
from tests.engine.meterproc import engine, free_port, serving_meter


def probe(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [engine(), "probe", *args],
        capture_output=True, text=True, check=False, timeout=300, cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def running_meter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with serving_meter(tmp_path_factory.mktemp("meter")) as port:
        yield port


def test_probe_of_the_local_meter_prints_the_verdict_and_writes_a_redacted_dump(
    running_meter: int, tmp_path: Path
) -> None:
    done = probe(f"127.0.0.1:{running_meter}", "--http-port", str(free_port()), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "verdict: s8000-sunspec" in done.stdout
    assert "Traceback" not in done.stderr
    dump_file = tmp_path / "s8000-probe-127.0.0.1.json"  # the default name
    dump = json.loads(dump_file.read_text())
    assert dump["verdict"] == "s8000-sunspec"
    assert dump["redacted"] is True
    serial = dump["units"][0]["sunspec"][0]["common"]["SN"]
    assert serial == "[serial]"
    assert dump["units"][0]["sunspec"][0]["vendor"]["MAC"] == "[MAC]"
    assert "dump written to" in done.stderr

    kept = tmp_path / "kept.json"
    done = probe(
        f"127.0.0.1:{running_meter}", "--http-port", "0", "--quick", "--no-redact",
        "-o", str(kept),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    real = json.loads(kept.read_text())
    real_serial = real["units"][0]["sunspec"][0]["common"]["SN"]
    assert real_serial.isdigit()
    assert real_serial in done.stdout  # not redacted in the summary either
    assert real["http"] is None  # --http-port 0: no web pages
    assert real["units"][0]["ranges"] == []  # --quick: no sweep
    assert real_serial not in dump_file.read_text()


EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "profiles" / "example-fixed.json"


def test_a_meter_serving_another_profile_is_found_through_that_profile(tmp_path: Path) -> None:
    """``run --profile FILE`` and ``probe --profile FILE``: an S8000 read through
    the profile; a plain probe sees a Leviton device by function 43, no SunSpec."""
    with serving_meter(tmp_path / "meter", "--profile", str(EXAMPLE)) as port:
        out = tmp_path / "profile.json"
        found = probe(
            f"127.0.0.1:{port}", "--http-port", "0", "--profile", str(EXAMPLE), "-o", str(out)
        )
        plain = probe(f"127.0.0.1:{port}", "--http-port", "0", "-o", str(tmp_path / "plain.json"))
    assert found.returncode == 0, found.stderr
    verdict = found.stdout.strip().splitlines()[-1]
    assert verdict.startswith("verdict: s8000-profile — ")
    assert verdict.endswith(": example-fixed (example-fixed.json)")
    assert "profile example-fixed (example-fixed.json): identified S8UTS-083 serial [serial]" in (
        found.stdout
    )
    dump = json.loads(out.read_text())
    assert dump["verdict"] == "s8000-profile"
    assert dump["verdict_profile"] == "example-fixed"
    (check,) = dump["units"][0]["profiles"]
    assert check["identified"] is True
    assert check["values"][0]["kwh_delivered"] is not None
    assert plain.returncode == 0, plain.stderr
    assert "verdict: leviton-modbus" in plain.stdout
    assert "function 43 (device identification): Leviton / S8UTS-083" in plain.stdout
    assert "s8000-sunspec" not in plain.stdout
    assert "profile sunspec (built-in): not identified: no SunSpec marker at 40000" in (
        plain.stdout
    )


def test_a_bad_profile_is_a_usage_error_naming_the_field(tmp_path: Path) -> None:
    document = json.loads(EXAMPLE.read_text())
    document["points"]["fields"][3]["type"] = "uint128"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    done = probe("127.0.0.1", "--profile", str(bad), "-o", str(tmp_path / "x.json"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("s8000-engine probe: error: ")
    assert "points.fields[3].type" in lines[0]
    assert "uint128" in lines[0]
    assert not (tmp_path / "x.json").exists()


def test_progress_is_shown_when_asked(running_meter: int, tmp_path: Path) -> None:
    done = probe(
        f"127.0.0.1:{running_meter}", "--http-port", "0", "--quick", "--progress",
        "-o", str(tmp_path / "p.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "probe [" in done.stderr
    assert "unit 1: function 43" in done.stderr
    quiet = probe(
        f"127.0.0.1:{running_meter}", "--http-port", "0", "--quick",
        "-o", str(tmp_path / "q.json"),
    )  # fmt: skip
    assert "probe [" not in quiet.stderr  # not a terminal, not asked


def test_nothing_answering_is_exit_status_1_with_a_dump_saying_so(tmp_path: Path) -> None:
    closed = free_port()
    out = tmp_path / "nothing.json"
    done = probe(f"127.0.0.1:{closed}", "--http-port", str(free_port()), "-o", str(out))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"s8000-engine probe: nothing answered: Modbus TCP 127.0.0.1:{closed}: connection refused"
    )
    dump = json.loads(out.read_text())
    assert dump["verdict"] == "nothing"
    assert dump["complete"] is True


@contextlib.contextmanager
def never_answering() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for s in held:
            s.close()
        listener.close()


def test_the_time_bound_stops_the_probe_and_the_dump_says_it_was_cut_short(
    tmp_path: Path,
) -> None:
    out = tmp_path / "slow.json"
    with never_answering() as port:
        done = probe(
            f"127.0.0.1:{port}", "--http-port", "0", "--timeout", "1", "--timeout-total", "1.5",
            "-o", str(out),
        )  # fmt: skip
    assert done.returncode == 1  # nothing answered in the time given
    assert "Traceback" not in done.stderr
    assert "cut short: the time bound of 1.5 s was reached" in done.stdout
    dump = json.loads(out.read_text())
    assert dump["complete"] is False
    assert dump["cut_short"] == "the time bound of 1.5 s was reached"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-host.invalid"], "no-such-host.invalid: unknown host"),
        (["127.0.0.1", "--units", "1-x"], "--units: not a list of numbers such as 1,3-5: '1-x'"),
        (["127.0.0.1", "--units", "300"], "--units: unit ids are 0 to 255"),
        (["--serial", "/dev/null", "--units", "0"], "--units: numbers start at 1"),
        ([], "name a HOST[:PORT] or a --serial DEVICE (one of them)"),
        (["127.0.0.1", "--serial", "/dev/ttyUSB0"], "name a HOST[:PORT] or a --serial DEVICE"),
        (["127.0.0.1:99999"], "address: expected HOST[:PORT], not '127.0.0.1:99999'"),
        (["127.0.0.1", "--ranges", "5-2"], "--ranges: 5-2 is not a range within 0–65535"),
        (["127.0.0.1", "--block", "200"], "block: 200 is not 1–125 registers"),
        (["127.0.0.1", "--timeout-total", "0"], "timeout_total: must be positive"),
        (["--serial", "/nonexistent/ttyUSB9"], "could not open serial port /nonexistent/ttyUSB9"),
    ],
)
def test_bad_input_is_one_line_and_no_traceback(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = probe(*args, "-o", str(tmp_path / "x.json"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("s8000-engine probe: error: ")
    assert message in lines[0]
    assert not (tmp_path / "x.json").exists()


def test_ranges_and_output_names_are_parsed() -> None:
    assert parse_ranges("0-999, 40000-40199,7001") == ((0, 1000), (40000, 40200), (7001, 7002))
    with pytest.raises(UsageError, match="not ranges such as"):
        parse_ranges("a-b")
    assert default_output("192.0.2.10") == Path("s8000-probe-192.0.2.10.json")
    assert default_output("fe80::1%eth0") == Path("s8000-probe-fe80_1_eth0.json")


def test_probe_needs_no_extra(tmp_path: Path) -> None:
    """The probe is the client's: it runs where only ``pip install s8000-engine`` is."""
    from tests.engine.cli.test_cli import without_extras

    out = tmp_path / "light.json"
    status, stdout, _, loaded = without_extras(
        "probe", f"127.0.0.1:{free_port()}", "--http-port", "0", "-o", str(out)
    )
    assert status == 1  # nothing answers there
    assert "verdict: nothing" in stdout
    assert json.loads(out.read_text())["verdict"] == "nothing"
    assert loaded == []
