"""Waveform files: sampled voltages and CT currents, meterable by the engine.

A waveform file is a standard RIFF/WAVE file, so any audio or signal tool
(sox, numpy, scipy, MATLAB) can read or make one, plus one extra chunk with
what a meter needs to know.  The full description is in
``docs/waveform-format.md``; in short:

* ``fmt `` — PCM 16-bit (format 1) or IEEE float 32-bit (format 3),
  little-endian, at the sample rate of the recording (4 kHz or more);
* ``data`` — interleaved frames; channel order: ``VA``, ``VB``, ``VC``
  (the meter's voltage terminals; ``VA`` is V_AB and ``VC`` is V_CB in a
  delta service), then every CT channel of the model in cable order
  (``P1-1``, ``P1-2``, …);
* ``s8md`` — UTF-8 JSON metadata::

      {"format": "s8000-waveform", "version": 1, "model": "S8UTS-083",
       "sample_rate": 8000,
       "channels": [{"name": "VA", "quantity": "voltage", "unit": "V",
                     "full_scale": 450.0}, ...,
                    {"name": "P1-1", "quantity": "current", "unit": "A",
                     "full_scale": 0.4}, ...],
       "start": "2026-11-25T00:00:00Z",          (optional, UTC)
       "config": {...}}                           (optional meter configuration)

Units: a sample's physical value is ``s × full_scale``, where ``s`` is the
PCM code divided by 32768 (so in [−1, 1)) or the float sample itself.
Voltages are volts at the meter's terminals (secondary of any PTs); currents
are amperes of CT secondary (100 mA at the CT's rating).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Final, Self

import numpy as np
import numpy.typing as npt

from s8000_engine.exceptions import WaveformError
from s8000_engine.metering.arrays import FloatArray
from s8000_engine.metering.synth import CURRENT_FULL_SCALE, VOLTAGE_FULL_SCALE
from s8000_engine.models import MeterModel, get_model

FORMAT_NAME: Final = "s8000-waveform"
FORMAT_VERSION: Final = 1
METADATA_CHUNK: Final = b"s8md"
PCM16: Final = "pcm16"
FLOAT32: Final = "float32"
_FORMAT_TAGS: Final = {PCM16: 1, FLOAT32: 3}
_MIN_SAMPLE_RATE: Final = 4000


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """One channel of a waveform file."""

    name: str
    quantity: str  # "voltage" or "current"
    unit: str
    full_scale: float


@dataclass(frozen=True, slots=True)
class WaveformInfo:
    """What a waveform file's header says."""

    model: MeterModel
    sample_rate: int
    channels: tuple[ChannelInfo, ...]
    encoding: str
    frames: int
    start: str | None
    config: Mapping[str, Any] | None

    @property
    def duration(self) -> float:
        """Length of the recording in seconds."""
        return self.frames / self.sample_rate


def channel_layout(
    model: MeterModel,
    voltage_full_scale: float = VOLTAGE_FULL_SCALE,
    current_full_scale: float = CURRENT_FULL_SCALE,
) -> tuple[ChannelInfo, ...]:
    """The channels of a waveform file for this model, in file order."""
    voltages = tuple(
        ChannelInfo(name, "voltage", "V", voltage_full_scale) for name in ("VA", "VB", "VC")
    )
    currents = tuple(
        ChannelInfo(c.name, "current", "A", current_full_scale) for c in model.channels
    )
    return voltages + currents


class WaveformWriter:
    """Write a waveform file block by block (sizes are patched on close)."""

    def __init__(
        self,
        path: str | Path,
        model: MeterModel | str,
        sample_rate: int,
        *,
        encoding: str = PCM16,
        voltage_full_scale: float = VOLTAGE_FULL_SCALE,
        current_full_scale: float = CURRENT_FULL_SCALE,
        start: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.model = get_model(model) if isinstance(model, str) else model
        if encoding not in _FORMAT_TAGS:
            raise ValueError(f"encoding must be {PCM16!r} or {FLOAT32!r}, not {encoding!r}")
        if int(sample_rate) != sample_rate or sample_rate < _MIN_SAMPLE_RATE:
            raise ValueError(f"sample rate must be a whole number of Hz ≥ {_MIN_SAMPLE_RATE}")
        self.sample_rate = int(sample_rate)
        self.encoding = encoding
        self.channels = channel_layout(self.model, voltage_full_scale, current_full_scale)
        self._scale = np.array([c.full_scale for c in self.channels])[:, None]
        self.frames = 0
        metadata: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "model": self.model.code,
            "sample_rate": self.sample_rate,
            "channels": [
                {"name": c.name, "quantity": c.quantity, "unit": c.unit, "full_scale": c.full_scale}
                for c in self.channels
            ],
        }
        if start is not None:
            metadata["start"] = start
        if config is not None:
            metadata["config"] = dict(config)
        payload = json.dumps(metadata, separators=(",", ":")).encode()
        if len(payload) % 2:
            payload += b" "
        count = len(self.channels)
        width = 2 if encoding == PCM16 else 4
        fmt = struct.pack(
            "<HHIIHH",
            _FORMAT_TAGS[encoding],
            count,
            self.sample_rate,
            self.sample_rate * count * width,
            count * width,
            width * 8,
        )
        if encoding == FLOAT32:
            fmt += struct.pack("<H", 0)
        self._file: BinaryIO = self.path.open("wb")
        header = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        header += METADATA_CHUNK + struct.pack("<I", len(payload)) + payload
        self._file.write(b"RIFF" + struct.pack("<I", 0) + header + b"data" + struct.pack("<I", 0))
        self._data_size_at = 4 + 4 + len(header) + 4

    def write(self, voltages: npt.ArrayLike, currents: npt.ArrayLike) -> None:
        """Append samples: voltages (3, n) in V, currents (channels, n) in A."""
        v = np.asarray(voltages, dtype=np.float64)
        i = np.asarray(currents, dtype=np.float64)
        if v.ndim != 2 or v.shape[0] != 3 or i.shape != (self.model.channel_count, v.shape[1]):
            raise ValueError(
                f"expected voltages (3, n) and currents ({self.model.channel_count}, n), "
                f"got {v.shape} and {i.shape}"
            )
        normalised = np.concatenate([v, i]) / self._scale
        if self.encoding == PCM16:
            codes = np.clip(np.round(normalised * 32768.0), -32768, 32767).astype("<i2")
            self._file.write(codes.T.tobytes())
        else:
            self._file.write(normalised.astype("<f4").T.tobytes())
        self.frames += v.shape[1]

    def close(self) -> None:
        """Finish the file: patch the RIFF and data sizes."""
        if self._file.closed:
            return
        width = 2 if self.encoding == PCM16 else 4
        data_size = self.frames * len(self.channels) * width
        if data_size % 2:
            self._file.write(b"\0")
        end = self._file.tell()
        self._file.seek(4)
        self._file.write(struct.pack("<I", end - 8))
        self._file.seek(self._data_size_at)
        self._file.write(struct.pack("<I", data_size))
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def write_waveform(
    path: str | Path,
    model: MeterModel | str,
    sample_rate: int,
    voltages: npt.ArrayLike,
    currents: npt.ArrayLike,
    **options: Any,
) -> None:
    """Write a whole waveform file at once (see :class:`WaveformWriter`)."""
    with WaveformWriter(path, model, sample_rate, **options) as writer:
        writer.write(voltages, currents)


class WaveformReader:
    """Read a waveform file: :attr:`info`, then :meth:`blocks`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file: BinaryIO = self.path.open("rb")
        except OSError as error:
            raise WaveformError(f"{self.path}: cannot open: {error.strerror}") from None
        try:
            self.info = self._parse()
        except BaseException:
            self._file.close()
            raise

    def _fail(self, message: str) -> WaveformError:
        return WaveformError(f"{self.path}: {message}")

    def _parse(self) -> WaveformInfo:
        head = self._file.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise self._fail("not a RIFF/WAVE file")
        fmt: bytes | None = None
        metadata: dict[str, Any] | None = None
        while True:
            chunk = self._file.read(8)
            if len(chunk) < 8:
                raise self._fail("no data chunk")
            kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if kind == b"data":
                self._data_start = self._file.tell()
                self._data_size = size
                break
            body = self._file.read(size + (size % 2))
            if len(body) < size:
                raise self._fail(f"chunk {kind!r} is truncated")
            if kind == b"fmt ":
                fmt = body[:size]
            elif kind == METADATA_CHUNK:
                try:
                    metadata = json.loads(body[:size].decode())
                except (UnicodeDecodeError, json.JSONDecodeError) as error:
                    raise self._fail(f"the s8md metadata is not valid JSON: {error}") from None
        if fmt is None or len(fmt) < 16:
            raise self._fail("no valid fmt chunk before the data")
        if metadata is None:
            raise self._fail("no s8md metadata chunk: not an S8000 waveform file")
        tag, count, rate, _, align, bits = struct.unpack("<HHIIHH", fmt[:16])
        encoding = {(1, 16): PCM16, (3, 32): FLOAT32}.get((tag, bits))
        if encoding is None:
            raise self._fail(
                f"unsupported sample format (tag {tag}, {bits} bits); use PCM16 or float32"
            )
        if metadata.get("format") != FORMAT_NAME or metadata.get("version") != FORMAT_VERSION:
            raise self._fail(f"metadata is not {FORMAT_NAME} version {FORMAT_VERSION}")
        try:
            model = get_model(str(metadata["model"]))
        except (KeyError, ValueError) as error:
            raise self._fail(f"metadata model: {error}") from None
        if metadata.get("sample_rate") != rate:
            raise self._fail(
                f"metadata sample_rate {metadata.get('sample_rate')} differs from fmt {rate}"
            )
        if rate < _MIN_SAMPLE_RATE:
            raise self._fail(f"sample rate {rate} Hz is below {_MIN_SAMPLE_RATE} Hz")
        try:
            channels = tuple(
                ChannelInfo(
                    str(c["name"]), str(c["quantity"]), str(c["unit"]), float(c["full_scale"])
                )
                for c in metadata["channels"]
            )
        except (KeyError, TypeError, ValueError) as error:
            raise self._fail(f"metadata channels are malformed: {error}") from None
        expected = [c.name for c in channel_layout(model)]
        if [c.name for c in channels] != expected or count != len(expected):
            raise self._fail(
                f"channels must be {', '.join(expected)} for {model.code} "
                f"({len(expected)} channels); the file has {count}"
            )
        if any(not c.full_scale > 0 for c in channels):
            raise self._fail("every channel needs a positive full_scale")
        frame = align
        available = self.path.stat().st_size - self._data_start
        size = min(self._data_size, available)
        self._truncated = size < self._data_size
        self._scale = np.array([c.full_scale for c in channels])
        self._dtype = np.dtype("<i2") if encoding == PCM16 else np.dtype("<f4")
        self._frame = frame
        return WaveformInfo(
            model=model,
            sample_rate=rate,
            channels=channels,
            encoding=encoding,
            frames=size // frame,
            start=metadata.get("start"),
            config=metadata.get("config"),
        )

    def blocks(self, frames: int = 8000) -> Iterator[tuple[FloatArray, FloatArray]]:
        """Yield (voltages (3, n), currents (channels, n)) in physical units."""
        self._file.seek(self._data_start)
        remaining = self.info.frames
        count = len(self.info.channels)
        while remaining > 0:
            n = min(frames, remaining)
            raw = self._file.read(n * self._frame)
            if len(raw) < n * self._frame:
                raise self._fail("data ends early")
            samples = np.frombuffer(raw, dtype=self._dtype).reshape(n, count).T.astype(np.float64)
            if self._dtype.kind == "i":
                samples /= 32768.0
            samples *= self._scale[:, None]
            if not np.isfinite(samples).all():
                raise self._fail("data holds non-finite samples")
            remaining -= n
            yield samples[:3], samples[3:]
        if self._truncated:
            raise self._fail(
                f"data chunk is truncated: the header promises {self._data_size} bytes; "
                f"the {self.info.frames} whole frames present were read"
            )

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
