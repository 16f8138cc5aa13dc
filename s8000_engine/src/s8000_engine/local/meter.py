"""The local meter: a software S8000 that meters, records and remembers.

:class:`LocalMeter` takes one second of samples at a time from a source (the
simulated panel of :mod:`s8000_engine.simulate`, or a waveform file), meters
it, records intervals and commits a checkpoint to the store after every
metered second, so a power cut or ``kill -9`` loses at most the second being
metered.  On start it restores the last checkpoint, flags the gap in the
interval memory (POWER_OFF) and goes on.

Time is UTC.  The clock is the wall clock (:class:`SystemClock`) or, for tests
and demos, a :class:`SimulatedClock` running ``speed`` times faster whose
origin is kept in the store, so simulated time goes on across restarts (the
time the process was dead is an outage, as for a real meter).  A clock step
— :meth:`SimulatedClock.step`, a manual set, an NTP correction larger than
2 s — is told apart from an outage and flagged CLOCK_SET.

Every change of the configuration — the web page's settings form, the front
panel, a Modbus write of a configuration register, the command line — goes
through :meth:`LocalMeter.apply_change` in the meter's thread (see
:mod:`s8000_engine.local.changes`): validated by the configuration's
validators, stored with its change-log entry and origin in one transaction,
then applied between two seconds, every register kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import queue
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np

from s8000_engine.config.meter import MeterConfig, meter_config
from s8000_engine.config.pulses import PULSE_INPUTS
from s8000_engine.config.settings import differences, public_settings, raw_config
from s8000_engine.config.unit import FACTORY_DEFAULT_IP
from s8000_engine.const import FIRMWARE, FIRMWARE_BUILD
from s8000_engine.demo import DEFAULT_MODEL, demo_config
from s8000_engine.exceptions import ConfigError, StorageError
from s8000_engine.local.changes import (
    Change,
    ChangeResult,
    Origin,
    layout,
    needs_new_metering,
    register_change,
    resolve,
)
from s8000_engine.local.image import MeterSnapshot, build_map, render
from s8000_engine.local.live import LiveView, live_view
from s8000_engine.metering.arrays import FloatArray
from s8000_engine.metering.demand import DemandCalculator
from s8000_engine.metering.meter import Meter
from s8000_engine.metering.pulses import PulseInput
from s8000_engine.metering.waveform import WaveformReader
from s8000_engine.modbus.backend import MeterBackend, Write
from s8000_engine.models import MODELS
from s8000_engine.protocol.profile import Profile, builtin_profile
from s8000_engine.protocol.sunspec import Command, Status
from s8000_engine.storage.recorder import IntervalRecorder
from s8000_engine.storage.reporting import Reporter, SendResult
from s8000_engine.storage.store import Checkpoint, ConfigChange, Flag, IntervalRecord, Store

#: The firmware version and build the local meter reports.


_LOGGER = logging.getLogger(__name__)

#: A clock difference larger than this is a step, not jitter.
STEP_THRESHOLD_S = 2.0


#: The configuration ``s8000-engine run --simulate`` uses without one: a
#: 120/208 V wye panel on an S8UTS-083, eight circuits of three CTs.
DEMO_CONFIG: Final[dict[str, Any]] = demo_config(MODELS[DEFAULT_MODEL])


class ReplaySource:
    """Samples from a waveform file, one block after another (time is ignored)."""

    def __init__(self, reader: WaveformReader) -> None:
        self.reader = reader
        self._blocks = reader.blocks(reader.info.sample_rate)

    def samples(self, start: float, seconds: float) -> tuple[FloatArray, FloatArray]:
        """The next block of the file; EOFError at its end."""
        try:
            return next(self._blocks)
        except StopIteration:
            raise EOFError(f"{self.reader.path}: end of the recording") from None


class SampleSource(Protocol):
    """Gives the meter's samples for a span of UTC time."""

    def samples(self, start: float, seconds: float) -> tuple[FloatArray, FloatArray]:
        """Voltages (3, n) and currents (channels, n) for [start, start + seconds)."""
        ...


class Clock(Protocol):
    """A source of UTC time."""

    speed: float

    def now(self) -> float:
        """UTC epoch seconds."""
        ...

    def take_step(self) -> float:
        """Seconds the clock was stepped since the last call (0 if none)."""
        ...

    def step(self, seconds: float) -> None:
        """Set the clock forward (or back) by ``seconds``."""
        ...


class SystemClock:
    """The wall clock plus the meter's own offset (the meter clock can be set
    over Modbus without touching the system's); a jump of the wall clock
    against the monotonic clock is a step too."""

    speed = 1.0

    def __init__(self, offset: float = 0.0) -> None:
        self._offset = time.time() - time.monotonic()
        self.offset = offset
        self._pending = 0.0

    def now(self) -> float:
        """UTC epoch seconds of the meter clock."""
        return time.time() + self.offset

    def step(self, seconds: float) -> None:
        """Set the meter clock forward (or back) by ``seconds``."""
        self.offset += seconds
        self._pending += seconds

    def take_step(self) -> float:
        """Seconds the meter clock was stepped since the last call."""
        offset = time.time() - time.monotonic()
        step = offset - self._offset
        if abs(step) >= STEP_THRESHOLD_S:
            self._offset = offset
        else:
            step = 0.0
        step, self._pending = step + self._pending, 0.0
        return step


class SimulatedClock:
    """UTC time running ``speed`` times faster than the wall clock."""

    def __init__(self, speed: float, origin_utc: float, origin_wall: float | None = None) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self.origin_utc = float(origin_utc)
        self.origin_wall = time.time() if origin_wall is None else float(origin_wall)
        self._pending = 0.0

    def now(self) -> float:
        """Simulated UTC epoch seconds."""
        return self.origin_utc + (time.time() - self.origin_wall) * self.speed

    def step(self, seconds: float) -> None:
        """Set the clock forward (or back, if negative) by ``seconds``."""
        self.origin_utc += seconds
        self._pending += seconds

    def take_step(self) -> float:
        """Seconds stepped since the last call."""
        step, self._pending = self._pending, 0.0
        return step

    def to_dict(self) -> dict[str, float]:
        """The origin, to continue after a restart."""
        return {"speed": self.speed, "origin_utc": self.origin_utc, "origin_wall": self.origin_wall}


class SimulatedPulses:
    """Deterministic pulse trains: a water meter on input 1, a gas meter on 2.

    Pulse counts per second are a pure function of (seed, input, second), so
    a restarted meter continues the same trains.  Pulses are 50 ms closed,
    at most 4 per second: well inside the 20 ms / 10 Hz specification.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def count(self, channel: int, second: int) -> int:
        """How many pulses input ``channel`` (0 or 1) gets in this second."""
        digest = hashlib.blake2b(f"{self.seed}:{channel}:{second // 60}".encode(), digest_size=8)
        minute = int.from_bytes(digest.digest(), "little")
        hour = (second // 3600) % 24
        busy = 6 <= hour < 9 or 18 <= hour < 22
        if minute % (3 if busy else 11) != 0:
            return 0  # no flow this minute
        return 1 + (minute >> 8) % (4 if channel == 0 else 2)

    def edges(self, channel: int, second: int) -> tuple[list[float], list[bool]]:
        """Transition times and levels for one second."""
        times: list[float] = []
        levels: list[bool] = []
        for k in range(self.count(channel, second)):
            closing = second + 0.1 + k * 0.2
            times += [closing, closing + 0.05]
            levels += [True, False]
        return times, levels


@dataclass(frozen=True, slots=True)
class Progress:
    """What the local meter reports after each committed second."""

    event: str  # "start" or "second"
    time: float
    registers: list[list[int]]
    restored: bool = False


class LocalMeter:
    """A software S8000: meter, interval memory and non-volatile registers."""

    def __init__(
        self,
        config: MeterConfig,
        store: Store,
        source: SampleSource,
        clock: Clock,
        *,
        sample_rate: int = 8000,
        recording_minutes: int = 15,
        retention_days: float = 120.0,
        pulses: SimulatedPulses | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        report_every_s: float = 60.0,
        profile: Profile | None = None,
    ) -> None:
        self.config = config
        #: The register map's profile the meter serves (the built-in SunSpec
        #: map by default; another lets an owner try a map learnt from a real
        #: unit before it touches a panel).
        self.profile = profile or builtin_profile()
        self.store = store
        self.source = source
        self.clock = clock
        self.sample_rate = sample_rate
        self.retention_s = retention_days * 86400.0
        self.pulse_source = pulses
        self.on_progress = on_progress
        self.meter = Meter(config, sample_rate)
        self.recorder = IntervalRecorder(
            self.meter,
            recording_minutes,
            max_fill=math.ceil(self.retention_s / (recording_minutes * 60)) + 1,
        )
        self.pulses = [PulseInput(c) for c in config.pulse_inputs[:PULSE_INPUTS]]
        self.sequence = 0
        self.t = 0  # UTC second the next block of samples starts at
        self.restored = False
        self.intervals_written = 0
        self._config_key = _config_key(config)
        self._config_key_stored = False
        self._pending: list[IntervalRecord] = []
        self.serial = ""
        self.mac = ""
        self.report_every_s = report_every_s
        self._report_thread: threading.Thread | None = None
        self.backend: MeterBackend | None = None
        self.regmap = build_map(config, profile=self.profile)
        self._last_report_check = -math.inf
        self.last_report: SendResult | None = None
        #: The values of the last metered second, for readers in other threads.
        self.live: LiveView | None = None
        self._listeners: list[Callable[[LiveView], None]] = []
        self._snapshot_listeners: list[Callable[[MeterSnapshot], None]] = []
        self._tasks: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        #: Set when a task is submitted: the meter, waiting for its clock, runs it at once.
        self._wake = threading.Event()

    @property
    def pulse_scales(self) -> list[float]:
        """Each pulse input's units per pulse (its configuration's)."""
        return [p.config.scale for p in self.pulses]

    # -- start-up ------------------------------------------------------------------------

    def start(self) -> None:
        """Restore the last checkpoint (or start fresh) and flag the gap."""
        self.serial, self.mac = _identity(self.store)
        now = self.clock.now()
        self.clock.take_step()
        checkpoint = self.store.load_checkpoint()
        config_changed = self.store.get_meta("config_key") not in (None, self._config_key)
        if checkpoint is None:
            self.t = math.floor(now)
            self.meter.start_time = float(self.t)
            # A first interval the meter joins late is flagged by its coverage.
            self.recorder.begin(self.t, self.meter.energy.whole, self._counts(), Flag(0))
        else:
            self._restore(checkpoint, config_changed)
            self.restored = True
            gap_from = checkpoint.time
            if now < gap_from - STEP_THRESHOLD_S:
                # The clock was set back while the meter was off.
                self._pending += self.recorder.clock_set_back(now, gap_from)
                self.meter.demand.restart_clock()
            else:
                self._pending += self.recorder.gap(
                    now, self.meter.energy.whole, self._counts(), Flag.POWER_OFF
                )
            self.t = math.floor(now)
            self.meter.start_time = float(self.t)
        if config_changed:
            self.recorder.flag(Flag.CONFIG_CHANGED)
        self.store.set_meta("config_key", self._config_key)
        self._config_key_stored = True
        self._commit()
        self._report("start")
        self._share()

    def _restore(self, checkpoint: Checkpoint, config_changed: bool) -> None:
        state = checkpoint.state
        points = self.meter.points
        whole = np.zeros((points, 8), dtype=np.int64)
        fraction = np.zeros((points, 8))
        stored = np.array(checkpoint.registers, dtype=np.int64).reshape(-1, 8)
        kept = min(points, stored.shape[0])
        whole[:kept] = stored[:kept]
        fraction_stored = np.array(state.get("fraction", []), dtype=np.float64).reshape(-1, 8)
        if fraction_stored.shape[0] >= kept:
            fraction[:kept] = fraction_stored[:kept]
        self.meter.energy.restore(whole, fraction)
        try:
            self.meter.demand = DemandCalculator.from_dict(
                self.config.demand, points, state["demand"]
            )
        except (KeyError, ValueError):
            self.meter.demand = DemandCalculator(self.config.demand, points)
        for number, data in enumerate(state.get("pulses", [])[: len(self.pulses)]):
            try:
                self.pulses[number] = PulseInput.from_dict(self.config.pulse_inputs[number], data)
            except (KeyError, ValueError):
                self.pulses[number] = PulseInput(self.config.pulse_inputs[number])
        self.sequence = checkpoint.sequence
        recorder = state.get("recorder")
        if recorder is not None and not config_changed:
            self.recorder.restore(recorder)
        if self.recorder.start is None or recorder is None or config_changed:
            self.recorder.begin(checkpoint.time, whole, self._counts(), Flag.POWER_OFF)

    # -- running ----------------------------------------------------------------------------

    def serve(self, backend: MeterBackend) -> None:
        """Publish the registers through a Modbus backend after every second;
        its writes of configuration registers are changes from Modbus
        (:meth:`apply_change`), its clock and command writes are applied
        before the next second."""
        self.backend = backend
        backend.configure = self._modbus_change
        self._publish()

    def _modbus_change(self, writes: tuple[Write, ...]) -> Future[ChangeResult]:
        """Configuration writes of one Modbus request, as one change (called in
        the server's thread; applied in the meter's)."""
        change = register_change(writes)
        return self.submit(lambda: self.apply_change(change, origin=Origin.MODBUS, user="modbus"))

    def add_listener(self, listener: Callable[[LiveView], None]) -> Callable[[], None]:
        """Call ``listener`` (in the meter's thread) with every second's
        :class:`LiveView`; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def submit[T](self, task: Callable[[], T]) -> Future[T]:
        """Run ``task`` in the meter's thread before it meters its next second,
        between two seconds (so nothing sees half of a change); the future
        has its result or its exception."""
        future: Future[T] = Future()
        self._tasks.put((task, future))
        self._wake.set()
        return future

    def run_tasks(self) -> None:
        """Run the submitted tasks now (the meter's thread does, every second)."""
        while True:
            try:
                task, future = self._tasks.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = task()
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)
                self._share()

    def _share(self) -> None:
        """Take the live view and hand it to the listeners."""
        view = live_view(self)
        self.live = view
        for listener in list(self._listeners):
            try:
                listener(view)
            except Exception:
                _LOGGER.exception("a live-view listener failed")

    def _apply_writes(self) -> None:
        self.run_tasks()
        backend = self.backend
        if backend is None:
            return
        while not backend.writes.empty():
            self._command(backend.writes.get())

    def _command(self, write: Write) -> None:
        """A Modbus write that is not configuration: the clock or a command."""
        if write.name == "s8000.UTC":
            # Setting the clock is not a configuration change: the interval
            # memory flags it (CLOCK_SET), the change log does not hold it.
            self.clock.step(float(write.value) - self.clock.now())
        elif write.name == "s8000.Cmd" and write.value == Command.RESET_PEAK_DEMAND:
            self.meter.demand.reset_peaks(float(self.t))
        elif write.name == "s8000.Cmd" and write.value == Command.SEND_DATA:
            self.send()

    # -- the configuration tool ---------------------------------------------------------------

    @property
    def recording_minutes(self) -> int:
        """The recording interval (the one taking effect at the next shared end)."""
        return (self.recorder.pending_length or self.recorder.length) // 60

    def raw_config(self) -> dict[str, Any]:
        """The stored raw configuration (made from the running one when none is stored)."""
        raw = self.store.get_meta("config")
        if isinstance(raw, dict):
            return raw
        return raw_config(self.config)

    def settings(self) -> dict[str, Any]:
        """The configuration tool's settings for the web page (no secret: see
        :func:`s8000_engine.settings.public_settings`)."""
        return public_settings(self.raw_config(), self.recording_minutes, self.config.model)

    def reset_default_ip(self, *, user: str) -> ChangeResult:
        """The front panel's "Reset factory default IP": DHCP on, 192.168.0.9
        and the rest of the factory default IP settings; recorded in the change log."""
        return self.apply_change({"unit": dict(FACTORY_DEFAULT_IP)}, origin=Origin.PANEL, user=user)

    def apply_change(self, change: Change, *, origin: Origin, user: str) -> ChangeResult:
        """Change the meter's configuration: the one way, whatever the ``origin``
        (see :mod:`s8000_engine.local.changes`).  Call it in the meter's thread
        (:meth:`submit`), or before :meth:`start`.

        ``change`` is the configuration tool's sections to change (see
        :mod:`s8000_engine.config.settings`) or a whole
        :class:`~s8000_engine.local.changes.Replacement`.  Wrong values raise
        ConfigError (SettingsError for the sections, in the web form's paths)
        and change nothing.  Otherwise the new configuration, the recording
        interval and the change-log entry (``user``, ``origin``) are stored in
        one transaction (StorageError, and nothing applied, if that fails), then
        applied at once: names, pulse inputs, reporting, unit settings, demand
        (restarted: peaks cleared), the recording interval (from the next end
        both lengths share), CT primaries and, for a new service, PT ratio, CT
        phases or points, new metering with every register, fraction and
        demand peak of the points kept, a new register map for the Modbus
        server, and the interval in progress flagged CONFIG_CHANGED.  Nothing
        changed: nothing written.
        """
        stored = self.store.get_meta("config")
        old_raw = stored if isinstance(stored, dict) else raw_config(self.config)
        old_minutes = self.recording_minutes
        new_raw, new_minutes = resolve(change, old_raw, old_minutes)
        try:
            found = differences(old_raw, new_raw, old_minutes, new_minutes)
        except ConfigError:
            # The stored configuration no longer validates; the new one does.
            found = [("configuration", "Configuration replaced (the stored one was not valid)")]
        if not found:
            if stored is None:
                # The meter's first configuration: stored, but nothing changed.
                self.store.save_config(new_raw, new_minutes)
            return ChangeResult()
        old = self.config
        new = meter_config(new_raw)
        if new.model != old.model and self.recorder.start is not None:
            raise ConfigError.at(
                ("model",), "the meter model cannot change while the meter runs; restart it"
            )
        descriptions = [text for _, text in found]
        fields = tuple(field for field, _ in found)
        key = _config_key(new)
        registers_changed = key != self._config_key
        structural = needs_new_metering(old, new)
        # Everything that can fail is built before anything is stored or applied.
        meter = self._rebuilt_meter(new) if structural else None
        recorder = self._rebuilt_recorder(meter) if meter is not None else None
        regmap = build_map(new, profile=self.profile) if structural else self.regmap
        map_changed = layout(regmap) != layout(self.regmap)
        pulses = [
            pulse if pulse.config == config else PulseInput.from_dict(config, pulse.to_dict())
            for pulse, config in zip(self.pulses, new.pulse_inputs, strict=False)
        ]
        entry = self.store.save_config(
            new_raw,
            new_minutes,
            ConfigChange(self.clock.now(), user, descriptions, origin=origin.value),
        )
        # Applied between two seconds: nothing fails from here on.
        if meter is not None and recorder is not None:
            self.meter = meter
            self.recorder = recorder
        else:
            for index, (before, after) in enumerate(zip(old.points, new.points, strict=True)):
                if before.ct_primary_a != after.ct_primary_a:
                    self.meter.set_ct_primary(index, after.ct_primary_a)
            if old.demand != new.demand:
                self.meter.demand = DemandCalculator(new.demand, self.meter.points)
        self.meter.config = new
        self.config = new
        self.pulses = pulses
        if new_minutes != old_minutes:
            self.recorder.set_minutes(new_minutes)
        if registers_changed or structural or old.demand != new.demand:
            self.recorder.flag(Flag.CONFIG_CHANGED)
        self.regmap = regmap
        if registers_changed:
            self._config_key = key
            self._config_key_stored = False
        if self.recorder.start is not None:  # started: the checkpoint follows the change
            try:
                self._commit()
            except StorageError as error:
                _LOGGER.warning("the checkpoint after the change waits: %s", error)
        if self.backend is not None:
            image = render(regmap, self.snapshot())
            if map_changed:
                self.backend.set_map(regmap, image)
            else:
                self.backend.update(image)
        _LOGGER.info(
            "configuration changed by %s (%s): %s", user, origin.value, "; ".join(descriptions)
        )
        return ChangeResult(
            changes=tuple(descriptions),
            fields=fields,
            registers_changed=registers_changed,
            map_changed=map_changed,
            entry=entry,
        )

    def _rebuilt_meter(self, config: MeterConfig) -> Meter:
        """New metering for ``config`` that goes on with the sample stream, the
        registers (whole and fraction) and the demand of the points kept."""
        old = self.meter
        meter = old.reconfigured(config)
        if meter.points > old.points:
            # A point added back has the registers it had (they never go back).
            checkpoint = self.store.load_checkpoint()
            stored = [] if checkpoint is None else checkpoint.registers
            whole = meter.energy.whole.copy()
            for index in range(old.points, min(meter.points, len(stored))):
                whole[index] = stored[index]
            meter.energy.restore(whole, meter.energy.fraction)
        return meter

    def _rebuilt_recorder(self, meter: Meter) -> IntervalRecorder:
        """A recorder for ``meter`` that goes on with the interval in progress."""
        old = self.recorder
        data = old.to_dict()
        points = meter.points
        whole = meter.energy.whole[:, :4].tolist()

        def fit(rows: list[Any], missing: Callable[[int], Any]) -> list[Any]:
            return [rows[k] if k < len(rows) else missing(k) for k in range(points)]

        data["p"] = fit(data["p"], lambda _: [0.0, 0.0, 0.0])
        data["i"] = fit(data["i"], lambda _: [0.0, 0.0, 0.0])
        data["peak"] = fit(data["peak"], lambda _: None)
        data["peak_time"] = fit(data["peak_time"], lambda _: None)
        data["start_registers"] = fit(data["start_registers"], lambda k: whole[k])
        data["registers"] = fit(data["registers"], lambda k: whole[k])
        recorder = IntervalRecorder(meter, old.length // 60, max_fill=old.max_fill)
        recorder.restore(data)
        return recorder

    def snapshot(self) -> MeterSnapshot:
        """What the registers show now."""
        demand = self.meter.demand
        readings = self.meter.readings
        status = Status(0)
        if self.last_report is not None and not self.last_report.ok:
            status |= Status.REPORT_FAILED
        if readings is None or not readings.voltage_valid:
            status |= Status.NO_VOLTAGE
        newest = self.store.last_interval()
        oldest = self.store.intervals(limit=1)
        return MeterSnapshot(
            self.config,
            serial=self.serial,
            firmware=FIRMWARE,
            firmware_build=FIRMWARE_BUILD,
            mac=self.mac,
            utc=self.clock.now(),
            status=status,
            readings=readings,
            registers=self.meter.energy.whole.tolist(),
            demand_w=demand.demand_w.tolist(),
            peak_w=demand.peak_w.tolist(),
            peak_time=demand.peak_time.tolist(),
            pulse_counts=[p.count for p in self.pulses],
            pulse_errors=[p.errors for p in self.pulses],
            pulse_scales=self.pulse_scales,
            recording_minutes=self.recorder.length // 60,
            interval_count=self.store.count_intervals(),
            interval_oldest=oldest[0].start if oldest else None,
            interval_newest=newest.start if newest else None,
        )

    def add_snapshot_listener(self, listener: Callable[[MeterSnapshot], None]) -> None:
        """Hand ``listener`` (in the meter's thread) every snapshot the
        registers are rendered from: what shows the same values another way
        (the PowerHawk-style pages) agrees with the registers to the second."""
        self._snapshot_listeners.append(listener)

    def _publish(self) -> None:
        if self.backend is None and not self._snapshot_listeners:
            return
        snapshot = self.snapshot()
        if self.backend is not None:
            self.backend.update(render(self.regmap, snapshot))
        for listener in list(self._snapshot_listeners):
            try:
                listener(snapshot)
            except Exception:
                _LOGGER.exception("a snapshot listener failed")

    def step(self) -> None:
        """Meter the next second (waiting for the clock if it is ahead)."""
        self._apply_writes()
        step = self.clock.take_step()
        now = self.clock.now()
        if step or now < self.t - STEP_THRESHOLD_S:
            self._clock_stepped(now)
        if now < self.t + 1:
            self._idle_until(self.t + 1)
        voltages, currents = self.source.samples(float(self.t), 1.0)
        self._feed_pulses(self.t)
        for window in self.meter.process(voltages, currents):
            self._pending += self.recorder.add(window, self.meter.demand, self._counts())
        self.t += 1
        self._commit()
        if self.backend is not None:
            self.backend.interval_s = self.recorder.length
        self._publish()
        self._report("second")
        self._share()
        if self.t - self._last_report_check >= self.report_every_s:
            self._last_report_check = self.t
            self.send(scheduled=True)

    def _idle_until(self, moment: float) -> None:
        """Wait as long as the clock needs to reach ``moment``, running the
        tasks submitted meanwhile at once: still between two seconds (the last
        one committed, the next not begun), and a change need not wait for the
        next second."""
        end = time.monotonic() + max(0.0, (moment - self.clock.now()) / self.clock.speed)
        while (left := end - time.monotonic()) > 0:
            if self._wake.wait(left):
                self._wake.clear()
                self.run_tasks()

    def send(self, *, scheduled: bool = False) -> bool:
        """Report unreported intervals in the background (the "Send" command);
        False if no host is configured or a report is still under way."""
        if not self.config.reporting.configured:
            return False
        if self._report_thread is not None and self._report_thread.is_alive():
            return False
        now = float(self.t)
        self._report_thread = threading.Thread(
            target=self._send, args=(now, scheduled), name="s8000-report", daemon=True
        )
        self._report_thread.start()
        return True

    def _send(self, now: float, scheduled: bool) -> None:
        # Its own connection: SQLite transactions do not mix across threads.
        with Store.open(self.store.path, create=False) as store:
            reporter = Reporter(
                store,
                self.config.reporting,
                serial=self.serial,
                names=[p.name for p in self.config.points],
            )
            self.last_report = reporter.maybe_send(now) if scheduled else reporter.send_now(now)

    def run(
        self, seconds: float | None = None, should_stop: Callable[[], bool] | None = None
    ) -> None:
        """Meter until ``seconds`` of meter time have passed or ``should_stop()``."""
        end = None if seconds is None else self.t + seconds
        while (end is None or self.t < end) and not (should_stop and should_stop()):
            self.step()

    def _clock_stepped(self, now: float) -> None:
        new = math.floor(now)
        if new < self.t:
            self._pending += self.recorder.clock_set_back(new, float(self.t))
            self.meter.demand.restart_clock()
        else:
            self._pending += self.recorder.gap(
                new, self.meter.energy.whole, self._counts(), Flag.CLOCK_SET
            )
        self.meter.start_time += new - self.t
        self.t = new
        if isinstance(self.clock, SimulatedClock):
            self.store.set_meta("simulated_clock", self.clock.to_dict())

    def _feed_pulses(self, second: int) -> None:
        """Count the pulses of one second (the simulated pulse trains)."""
        if self.pulse_source is None:
            return
        for channel, pulse in enumerate(self.pulses):
            done = pulse.stream_time
            if done is not None and done >= second + 1:
                continue  # a clock set back: those seconds were counted already
            times, levels = self.pulse_source.edges(channel, second)
            if done is not None:
                kept = [(t, v) for t, v in zip(times, levels, strict=True) if t > done]
                times, levels = [t for t, _ in kept], [v for _, v in kept]
            pulse.feed_edges(times, levels, until=float(second + 1))

    def _counts(self) -> list[int]:
        return [p.count for p in self.pulses]

    def _commit(self) -> None:
        self.sequence += 1
        meter = self.meter
        checkpoint = Checkpoint(
            time=float(self.t),
            registers=meter.energy.whole.tolist(),
            state={
                "fraction": meter.energy.fraction.tolist(),
                "demand": meter.demand.to_dict(),
                "pulses": [p.to_dict() for p in self.pulses],
                "recorder": self.recorder.to_dict(),
            },
            sequence=self.sequence,
        )
        pending = self._pending
        self.store.commit(checkpoint, pending)  # raises StorageError; pending kept
        if not self._config_key_stored:
            # Only now does the checkpoint match the configuration (reconfigure).
            self.store.set_meta("config_key", self._config_key)
            self._config_key_stored = True
        self.intervals_written += len(pending)
        self._pending = []
        if pending:
            self.store.prune(self.t - self.retention_s)

    def _report(self, event: str) -> None:
        if self.on_progress is not None:
            self.on_progress(
                Progress(event, float(self.t), self.meter.energy.whole.tolist(), self.restored)
            )


def _identity(store: Store) -> tuple[str, str]:
    """The meter's serial number and MAC address, made once and kept."""
    serial = store.get_meta("serial")
    mac = store.get_meta("mac")
    if serial is None or mac is None:
        serial = f"{secrets.randbelow(10**10):010d}"
        suffix = secrets.token_bytes(3)
        # 00:21:B6 is Triacta's, the S8000's maker.
        mac = "00:21:B6:" + ":".join(f"{b:02X}" for b in suffix)
        store.set_meta("serial", serial)
        store.set_meta("mac", mac)
    return str(serial), str(mac)


def _config_key(config: MeterConfig) -> str:
    """A fingerprint of what the registers mean: model, service, points."""
    payload = {
        "model": config.model.code,
        "service": config.service.value,
        "pt_ratio": config.pt_ratio,
        "points": [[p.ct_primary_a, [x.value for x in p.phases]] for p in config.points],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def simulated_clock(store: Store, speed: float, start: float | None = None) -> SimulatedClock:
    """The store's simulated clock (made on first use, starting at ``start``)."""
    stored: dict[str, Any] | None = store.get_meta("simulated_clock")
    if stored is not None and stored.get("speed") == speed:
        return SimulatedClock(speed, stored["origin_utc"], stored["origin_wall"])
    origin = time.time() if start is None else start
    if stored is not None:
        # Another speed: continue from the simulated time reached so far.
        origin = SimulatedClock(stored["speed"], stored["origin_utc"], stored["origin_wall"]).now()
    clock = SimulatedClock(speed, origin)
    store.set_meta("simulated_clock", clock.to_dict())
    return clock


__all__ = [
    "Clock",
    "LocalMeter",
    "Progress",
    "SampleSource",
    "SimulatedClock",
    "SimulatedPulses",
    "SystemClock",
    "simulated_clock",
]
