"""Waveform files: the documented format, round trips, and malformed files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from s8000_engine.config.meter import meter_config
from s8000_engine.exceptions import WaveformError
from s8000_engine.metering.meter import Meter
from s8000_engine.metering.synth import ZERO, Signal, sample_meter
from s8000_engine.metering.waveform import FLOAT32, WaveformReader, WaveformWriter, write_waveform

CONFIG = {
    "model": "S8120-032",
    "service": "1p3w",
    "points": [{"name": "Oven", "ct_primary": 50, "phases": ["A", "B"]}],
}


def _signals(seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    currents = [ZERO] * 6
    currents[0] = Signal(0.08, -20.0)
    currents[1] = Signal(0.08, 160.0)
    return sample_meter(
        [Signal(120.0), Signal(120.0, 180.0), ZERO],
        currents,
        frequency=60.0,
        sample_rate=8000,
        samples=int(8000 * seconds),
    )


def test_file_is_a_standard_wave_file_with_documented_metadata(tmp_path: Path) -> None:
    path = tmp_path / "oven.wav"
    v, i = _signals()
    write_waveform(path, "S8120-032", 8000, v, i, config=CONFIG, start="2026-11-25T00:00:00Z")
    data = path.read_bytes()
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    tag, channels, rate = struct.unpack("<HHI", data[20:28])
    assert (tag, channels, rate) == (1, 9, 8000)
    start = data.index(b"s8md") + 8
    size = struct.unpack("<I", data[start - 4 : start])[0]
    metadata = json.loads(data[start : start + size])
    assert metadata["format"] == "s8000-waveform"
    assert [c["name"] for c in metadata["channels"]] == [
        "VA", "VB", "VC", "P1-1", "P1-2", "P2-1", "P2-2", "P3-1", "P3-2",
    ]  # fmt: skip
    assert metadata["channels"][0] == {
        "name": "VA",
        "quantity": "voltage",
        "unit": "V",
        "full_scale": 450.0,
    }


@pytest.mark.parametrize(
    ("encoding", "volts", "amps"),
    [
        # One step of 16 bits of each full scale (450 V, 0.4 A).
        ("pcm16", 450 / 32768, 0.4 / 32768),
        # float32 keeps about 7 significant digits of a 170 V or 0.11 A peak.
        (FLOAT32, 1e-4, 1e-6),
    ],
)
def test_round_trip(tmp_path: Path, encoding: str, volts: float, amps: float) -> None:
    path = tmp_path / "oven.wav"
    v, i = _signals()
    with WaveformWriter(path, "S8120-032", 8000, encoding=encoding, config=CONFIG) as writer:
        writer.write(v[:, :3000], i[:, :3000])
        writer.write(v[:, 3000:], i[:, 3000:])
    with WaveformReader(path) as reader:
        assert reader.info.frames == 8000
        assert reader.info.duration == pytest.approx(1.0)
        assert reader.info.config == CONFIG
        blocks = list(reader.blocks(frames=1234))
    v2 = np.concatenate([b[0] for b in blocks], axis=1)
    i2 = np.concatenate([b[1] for b in blocks], axis=1)
    assert np.abs(v2 - v).max() <= volts
    assert np.abs(i2 - i).max() <= amps


def test_metering_a_file_equals_metering_the_samples(tmp_path: Path) -> None:
    path = tmp_path / "oven.wav"
    v, i = _signals(3.0)
    write_waveform(path, "S8120-032", 8000, v, i, encoding=FLOAT32)
    direct = Meter(meter_config(CONFIG), 8000)
    direct.process(v, i)
    from_file = Meter(meter_config(CONFIG), 8000)
    with WaveformReader(path) as reader:
        for block in reader.blocks():
            from_file.process(*block)
    np.testing.assert_allclose(from_file.energy.value_wh, direct.energy.value_wh, rtol=1e-5)


def _valid(tmp_path: Path) -> bytes:
    path = tmp_path / "ok.wav"
    write_waveform(path, "S8120-032", 8000, *_signals(0.1))
    return path.read_bytes()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: b"RIFX" + d[4:], "not a RIFF/WAVE file"),
        (lambda d: d.replace(b"s8md", b"junk"), "no s8md metadata chunk"),
        (
            lambda d: d.replace(b'"S8120-032"', b'"S8120-099"'),
            "metadata model: unknown S8000 model",
        ),
        (
            lambda d: d.replace(b"s8000-waveform", b"s9000-waveform"),
            "is not s8000-waveform version 1",
        ),
        (lambda d: d[: d.index(b"data")], "no data chunk"),
        (lambda d: d.replace(b'"P3-2"', b'"P3-9"'), "channels must be VA, VB, VC, P1-1"),
        (lambda d: d.replace(b'"s8000-waveform"', b'"s8000-waveform",'), "not valid JSON"),
    ],
)
def test_malformed_files_are_clear_errors_naming_the_file(
    tmp_path: Path, mutate, message: str
) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(mutate(_valid(tmp_path)))
    with pytest.raises(WaveformError, match=message) as raised:
        WaveformReader(bad)
    assert str(bad) in str(raised.value)


def test_truncated_data_yields_what_is_there_then_says_so(tmp_path: Path) -> None:
    data = _valid(tmp_path)
    bad = tmp_path / "cut.wav"
    bad.write_bytes(data[: len(data) - 9 * 2 * 100 - 5])  # 100 frames and a bit missing
    with WaveformReader(bad) as reader:
        assert reader.info.frames == 800 - 101
        blocks = []
        with pytest.raises(WaveformError, match="data chunk is truncated"):
            blocks.extend(reader.blocks(frames=100))
    assert sum(b[0].shape[1] for b in blocks) == 699


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WaveformError, match=r"nothere\.wav: cannot open"):
        WaveformReader(tmp_path / "nothere.wav")
