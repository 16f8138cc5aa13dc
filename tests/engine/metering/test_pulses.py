"""The pulse inputs: debouncing, the width and rate rules, chunking, persistence."""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from s8000_engine.config.pulses import (
    PULSE_INPUT_SCHEMA,
    PULSE_INPUTS,
    PulseInputConfig,
    pulse_input_config,
)
from s8000_engine.exceptions import ConfigError
from s8000_engine.metering.pulses import PulseInput

RATE = 1000.0

type Closures = Sequence[tuple[float, float]]


# --------------------------------------------------------------------------- helpers


def signal(closures: Closures, duration_s: float, rate: float = RATE) -> NDArray[np.bool_]:
    """Sampled contact levels: closed during each ``[start, end)`` of ``closures``."""
    levels = np.zeros(round(duration_s * rate), dtype=np.bool_)
    for start, end in closures:
        levels[round(start * rate) : round(end * rate)] = True
    return levels


def pulse_train(count: int, period_s: float, width_s: float, first_s: float = 0.05) -> Closures:
    return [(first_s + k * period_s, first_s + k * period_s + width_s) for k in range(count)]


def bouncy(start: float, end: float) -> Closures:
    """One closure from ``start`` to ``end`` with 4 ms of 1 ms chatter at both edges."""
    ms = 0.001
    return [
        (start, start + 1 * ms),
        (start + 2 * ms, start + 3 * ms),
        (start + 4 * ms, end),
        (end + 1 * ms, end + 2 * ms),
        (end + 3 * ms, end + 4 * ms),
    ]


def random_levels(seed: int, runs: int = 400) -> NDArray[np.bool_]:
    """Open and closed runs of random length at 1 kHz: bounce, short and long runs."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, size=runs)
    lengths = np.where(
        kind == 0,
        rng.integers(1, 8, size=runs),  # bounce, and runs around bounce_s
        np.where(kind == 1, rng.integers(5, 40, size=runs), rng.integers(40, 200, size=runs)),
    )
    levels = np.arange(runs) % 2 == 1  # starts open
    return np.repeat(levels, lengths)


def feed_in_chunks(
    pulse_input: PulseInput, levels: NDArray[np.bool_], sizes: Iterator[int], rate: float = RATE
) -> None:
    position = 0
    while position < levels.size:
        size = next(sizes)
        pulse_input.feed(levels[position : position + size], rate)
        position += size


def outcome(pulse_input: PulseInput) -> tuple[int, int, float | None, bool | None]:
    return (
        pulse_input.count,
        pulse_input.errors,
        pulse_input.last_pulse_time,
        pulse_input.closed,
    )


def edges_of(levels: NDArray[np.bool_], rate: float = RATE) -> tuple[list[float], list[bool]]:
    """The transitions of a sampled stream that starts open, as times and levels."""
    changes = np.flatnonzero(np.diff(levels, prepend=False))
    return (changes / rate).tolist(), levels[changes].tolist()


def reference(
    levels: NDArray[np.bool_], config: PulseInputConfig, rate: float = RATE
) -> tuple[int, int, float | None]:
    """The rules written out over runs of samples, slowly and independently."""
    bounds = [0, *(np.flatnonzero(np.diff(levels)) + 1).tolist(), levels.size]
    runs = [(bool(levels[a]), a, b - a) for a, b in itertools.pairwise(bounds)]
    settled = runs[0][0]
    transitions: list[tuple[int, bool]] = []
    burst: int | None = None
    for level, start, length in runs[1:]:
        if burst is None:
            burst = start
        if length >= config.bounce_s * rate - 1e-6:
            if level != settled:
                transitions.append((burst, level))
                settled = level
            burst = None
    count = errors = 0
    closed_at: int | None = None
    last: int | None = None
    for at, level in transitions:
        if level:
            closed_at = at
            continue
        if closed_at is None:
            continue
        wide = at - closed_at >= config.min_pulse_width_s * rate - 1 - 1e-6
        spaced = last is None or closed_at - last >= rate / config.max_rate_hz - 1 - 1e-6
        if wide and spaced:
            count += 1
            last = closed_at
        else:
            errors += 1
        closed_at = None
    return count, errors, None if last is None else last / rate


# --------------------------------------------------------------------------- the rules


def test_meter_has_two_pulse_inputs() -> None:
    assert PULSE_INPUTS == 2


@pytest.mark.parametrize("rate", [1000.0, 2000.0, 4096.0, 10_000.0])
def test_exactly_at_spec_pulses_at_10_hz_all_count(rate: float) -> None:
    pulse_input = PulseInput()
    pulse_input.feed(signal(pulse_train(100, 0.1, 0.020), 10.1, rate), rate)
    assert pulse_input.count == 100
    assert pulse_input.errors == 0
    assert pulse_input.last_pulse_time == pytest.approx(0.05 + 99 * 0.1, abs=1 / rate)
    assert pulse_input.closed is False


@pytest.mark.parametrize(
    "config",
    [
        PulseInputConfig(),
        PulseInputConfig(bounce_s=0.0),
        PulseInputConfig(bounce_s=0.002, min_pulse_width_s=0.01, max_rate_hz=20.0),
        PulseInputConfig(bounce_s=0.01, min_pulse_width_s=0.05, max_rate_hz=4.0),
    ],
)
@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_the_rules_written_out(config: PulseInputConfig, seed: int) -> None:
    levels = random_levels(seed + 300)
    pulse_input = PulseInput(config)
    pulse_input.feed(levels, RATE)
    assert (pulse_input.count, pulse_input.errors, pulse_input.last_pulse_time) == reference(
        levels, config
    )


def test_exactly_at_spec_pulses_count_when_chunked() -> None:
    pulse_input = PulseInput()
    levels = signal(pulse_train(100, 0.1, 0.020), 10.1)
    for chunk in np.array_split(levels, 101):
        pulse_input.feed(chunk, RATE)
    assert (pulse_input.count, pulse_input.errors) == (100, 0)


def test_bounce_burst_counts_once() -> None:
    pulse_input = PulseInput()
    pulse_input.feed(signal(bouncy(0.2, 0.5), 1.0), RATE)
    assert (pulse_input.count, pulse_input.errors) == (1, 0)
    # Dated at the first contact, not at the last bounce.
    assert pulse_input.last_pulse_time == pytest.approx(0.2)


def test_bouncing_contacts_at_exactly_10_hz_all_count() -> None:
    closures = [piece for start, end in pulse_train(50, 0.1, 0.020) for piece in bouncy(start, end)]
    pulse_input = PulseInput()
    pulse_input.feed(signal(closures, 5.1), RATE)
    assert (pulse_input.count, pulse_input.errors) == (50, 0)


def test_glitch_shorter_than_bounce_is_ignored_silently() -> None:
    pulse_input = PulseInput()
    pulse_input.feed(signal([(0.1, 0.104), (0.3, 0.301)], 0.5), RATE)
    assert (pulse_input.count, pulse_input.errors) == (0, 0)
    assert pulse_input.closed is False


def test_8_ms_glitch_is_rejected_as_an_error() -> None:
    pulse_input = PulseInput()
    closures = [(0.1, 0.14), (0.17, 0.178), (0.3, 0.34)]  # the 8 ms one is 70 ms after a pulse
    pulse_input.feed(signal(closures, 0.5), RATE)
    assert (pulse_input.count, pulse_input.errors) == (2, 1)
    assert pulse_input.last_pulse_time == pytest.approx(0.3)


def test_19_ms_pulse_passes_within_one_sample_and_18_ms_does_not() -> None:
    pulse_input = PulseInput()
    pulse_input.feed(signal([(0.1, 0.119), (0.3, 0.318)], 0.5), RATE)
    assert (pulse_input.count, pulse_input.errors) == (1, 1)


def test_pulses_at_15_hz_too_soon_are_errors() -> None:
    pulse_input = PulseInput()
    pulse_input.feed(signal(pulse_train(30, 1 / 15, 0.020), 2.2), RATE)
    # Measured from the last *accepted* pulse: every second pulse is far enough.
    assert (pulse_input.count, pulse_input.errors) == (15, 15)
    assert pulse_input.last_pulse_time == pytest.approx(0.05 + 28 / 15, abs=0.001)


def test_rejected_pulse_does_not_restart_the_rate_window() -> None:
    pulse_input = PulseInput()
    closures = [(0.1, 0.13), (0.16, 0.19), (0.2, 0.23)]
    pulse_input.feed(signal(closures, 0.4), RATE)
    assert (pulse_input.count, pulse_input.errors) == (2, 1)


def test_pulse_still_closed_stays_pending() -> None:
    pulse_input = PulseInput()
    pulse_input.feed(signal([(0.1, 0.2)], 0.15), RATE)
    assert (pulse_input.count, pulse_input.errors, pulse_input.closed) == (0, 0, True)
    pulse_input.feed(signal([(0.0, 0.05)], 0.1), RATE)
    assert (pulse_input.count, pulse_input.errors, pulse_input.closed) == (1, 0, False)
    assert pulse_input.last_pulse_time == pytest.approx(0.1)


def test_contact_closed_when_the_stream_starts_is_not_a_pulse() -> None:
    pulse_input = PulseInput()
    pulse_input.feed(signal([(0.0, 0.05), (0.2, 0.25)], 0.5), RATE)
    assert (pulse_input.count, pulse_input.errors) == (1, 0)
    assert pulse_input.last_pulse_time == pytest.approx(0.2)


def test_without_debouncing_every_closure_is_judged() -> None:
    pulse_input = PulseInput(PulseInputConfig(bounce_s=0.0))
    pulse_input.feed(signal(bouncy(0.2, 0.5), 1.0), RATE)
    # Each contact of the chatter is a closure of its own: four are too short,
    # and the long one is accepted (no pulse was accepted before it).
    assert (pulse_input.count, pulse_input.errors) == (1, 4)
    assert pulse_input.last_pulse_time == pytest.approx(0.204)


def test_feed_returns_the_pulses_accepted_by_the_call() -> None:
    pulse_input = PulseInput()
    assert pulse_input.feed(signal(pulse_train(3, 0.1, 0.02), 0.3), RATE) == 3
    assert pulse_input.feed(np.zeros(10, dtype=np.bool_), RATE) == 0
    assert pulse_input.feed([], RATE) == 0


def test_scale_multiplies_into_value() -> None:
    pulse_input = PulseInput(PulseInputConfig(name="Water", unit="m³", scale=0.01))
    pulse_input.feed(signal(pulse_train(7, 0.2, 0.05), 1.5), RATE)
    assert pulse_input.count == 7
    assert pulse_input.value == pytest.approx(0.07)
    assert isinstance(pulse_input.value, float)


def test_fresh_input_reads_zero() -> None:
    pulse_input = PulseInput()
    assert outcome(pulse_input) == (0, 0, None, None)
    assert pulse_input.value == 0.0
    assert pulse_input.stream_time is None
    assert pulse_input.config == PulseInputConfig()


# --------------------------------------------------------------------------- the stream


@pytest.mark.parametrize("size", [1, 2, 3, 7, 50, 333, 1000])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chunk_size_does_not_change_the_result(size: int, seed: int) -> None:
    levels = random_levels(seed)
    whole = PulseInput()
    whole.feed(levels, RATE)
    assert whole.count > 10
    assert whole.errors > 10
    chunked = PulseInput()
    feed_in_chunks(chunked, levels, iter(lambda: size, 0))
    assert outcome(chunked) == outcome(whole)


@pytest.mark.parametrize("seed", range(10))
def test_random_chunk_boundaries_do_not_change_the_result(seed: int) -> None:
    levels = random_levels(seed + 100)
    whole = PulseInput()
    whole.feed(levels, RATE)
    rng = np.random.default_rng(seed)
    chunked = PulseInput()
    feed_in_chunks(chunked, levels, (int(n) for n in iter(lambda: rng.integers(0, 60), -1)))
    assert outcome(chunked) == outcome(whole)


@pytest.mark.parametrize(
    "cut_s", [0.2, 0.201, 0.202, 0.203, 0.205, 0.35, 0.5, 0.501, 0.503, 0.504, 0.6]
)
def test_pulse_and_bounce_straddling_a_boundary(cut_s: float) -> None:
    levels = signal([*bouncy(0.2, 0.5), (0.8, 0.9)], 1.0)
    cut = round(cut_s * RATE)
    pulse_input = PulseInput()
    pulse_input.feed(levels[:cut], RATE)
    pulse_input.feed(levels[cut:], RATE)
    assert (pulse_input.count, pulse_input.errors) == (2, 0)
    assert pulse_input.last_pulse_time == pytest.approx(0.8)


def test_start_time_sets_the_clock() -> None:
    pulse_input = PulseInput()
    pulse_input.feed(signal([(0.1, 0.15)], 0.2), RATE, start_time=1000.0)
    pulse_input.feed(signal([(0.1, 0.15)], 0.2), RATE, start_time=1000.2004)  # within half
    assert pulse_input.count == 2
    assert pulse_input.last_pulse_time == pytest.approx(1000.3)
    assert pulse_input.stream_time == pytest.approx(1000.4)
    assert pulse_input.sample_rate == RATE


def test_a_day_is_not_looped_sample_by_sample() -> None:
    # Ten minutes at 1 kHz in one-second chunks, ten exact-spec pulses a second.
    second = signal(pulse_train(10, 0.1, 0.020, first_s=0.01), 1.0)
    pulse_input = PulseInput(PulseInputConfig(scale=1.0, unit="Wh"))
    for _ in range(600):
        pulse_input.feed(second, RATE)
    assert pulse_input.count == 6000
    assert pulse_input.errors == 0
    assert pulse_input.last_pulse_time == pytest.approx(599.91)
    assert pulse_input.stream_time == pytest.approx(600.0)


@pytest.mark.parametrize("rate", [0.0, -1000.0, math.inf, math.nan])
def test_bad_sample_rate(rate: float) -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        PulseInput().feed(np.zeros(10, dtype=np.bool_), rate)


def test_sample_rate_change_is_rejected() -> None:
    pulse_input = PulseInput()
    pulse_input.feed(np.zeros(10, dtype=np.bool_), 1000.0)
    with pytest.raises(ValueError, match="sample_rate changed"):
        pulse_input.feed(np.zeros(10, dtype=np.bool_), 2000.0)


@pytest.mark.parametrize("start_time", [0.0, 0.0094, 0.0106, 1.0])
def test_non_contiguous_start_time_is_rejected(start_time: float) -> None:
    pulse_input = PulseInput()
    pulse_input.feed(np.zeros(10, dtype=np.bool_), RATE)
    with pytest.raises(ValueError, match="does not continue"):
        pulse_input.feed(np.zeros(10, dtype=np.bool_), RATE, start_time=start_time)
    pulse_input.feed(np.zeros(10, dtype=np.bool_), RATE, start_time=0.0101)
    assert pulse_input.stream_time == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("levels", "match"),
    [
        (np.zeros(10, dtype=np.int8), "boolean"),
        (np.zeros(10), "boolean"),
        ([0, 1, 0], "boolean"),
        (np.zeros((2, 5), dtype=np.bool_), "1-D"),
        (np.bool_(True), "1-D"),
    ],
)
def test_bad_levels(levels: object, match: str) -> None:
    pulse_input = PulseInput()
    with pytest.raises(ValueError, match=match):
        pulse_input.feed(levels, RATE)  # type: ignore[arg-type]
    assert pulse_input.stream_time is None  # nothing was taken


def test_an_input_takes_one_kind_of_stream() -> None:
    sampled = PulseInput()
    sampled.feed(np.zeros(10, dtype=np.bool_), RATE)
    with pytest.raises(ValueError, match="samples"):
        sampled.feed_edges([1.0], [True])
    edges = PulseInput()
    edges.feed_edges([1.0], [True])
    with pytest.raises(ValueError, match="transition times"):
        edges.feed(np.zeros(10, dtype=np.bool_), RATE)


# --------------------------------------------------------------------------- transitions


@pytest.mark.parametrize("seed", range(8))
def test_feed_edges_agrees_with_feed(seed: int) -> None:
    levels = random_levels(seed + 200)
    sampled = PulseInput()
    sampled.feed(levels, RATE)
    times, closed = edges_of(levels)
    events = PulseInput()
    events.feed_edges(times, closed, until=levels.size / RATE, resolution_s=1 / RATE)
    assert events.count == sampled.count
    assert events.errors == sampled.errors
    assert events.closed == sampled.closed
    assert events.last_pulse_time == pytest.approx(sampled.last_pulse_time)


def test_feed_edges_in_pieces_agrees_with_one_call() -> None:
    levels = random_levels(7)
    times, closed = edges_of(levels)
    whole = PulseInput()
    whole.feed_edges(times, closed, until=levels.size / RATE)
    pieces = PulseInput()
    for start in range(0, len(times), 3):
        pieces.feed_edges(times[start : start + 3], closed[start : start + 3])
    pieces.feed_edges([], [], until=levels.size / RATE)
    assert outcome(pieces) == outcome(whole)


def test_feed_edges_exactly_at_spec() -> None:
    times = [t for k in range(100) for t in (k * 0.1, k * 0.1 + 0.02)]
    closed = [k % 2 == 0 for k in range(200)]
    pulse_input = PulseInput()
    assert pulse_input.feed_edges(times, closed) == 99  # the last opening may be bounce
    assert pulse_input.feed_edges([], [], until=10.0) == 1
    assert (pulse_input.count, pulse_input.errors) == (100, 0)
    assert pulse_input.last_pulse_time == pytest.approx(9.9)


def test_feed_edges_drops_bounce_pairs() -> None:
    pulse_input = PulseInput()
    # Chatter at both edges, an isolated 2 ms glitch, then a real 8 ms glitch.
    times = [1.0, 1.001, 1.002, 1.05, 1.051, 1.052, 1.3, 1.302, 1.5, 1.508]
    closed = [True, False, True, False, True, False, True, False, True, False]
    pulse_input.feed_edges(times, closed, until=2.0)
    assert (pulse_input.count, pulse_input.errors) == (1, 1)
    assert pulse_input.last_pulse_time == pytest.approx(1.0)


def test_feed_edges_confirms_the_last_transition_with_until() -> None:
    pulse_input = PulseInput()
    pulse_input.feed_edges([1.0, 1.05], [True, False])
    assert pulse_input.count == 0  # the opening may still be bounce
    pulse_input.feed_edges([], [], until=1.06)
    assert pulse_input.count == 1


def test_feed_edges_ignores_entries_that_do_not_change_the_level() -> None:
    pulse_input = PulseInput()
    pulse_input.feed_edges([1.0, 1.01, 1.05, 1.06], [True, True, False, False], until=2.0)
    assert (pulse_input.count, pulse_input.errors) == (1, 0)


@pytest.mark.parametrize(
    ("times", "closed", "match"),
    [
        ([1.0, 0.5], [True, False], "increasing"),
        ([1.0, 1.0], [True, False], "increasing"),
        ([1.0, math.nan], [True, False], "finite"),
        ([1.0], [True, False], "length"),
        ([1.0], [1], "boolean"),
        (["1.0"], [True], "numbers"),
        ([0.5], [True], "continue"),
        ([1.0], [True], "continue"),
    ],
)
def test_feed_edges_rejects_bad_input(
    times: list[object], closed: list[object], match: str
) -> None:
    pulse_input = PulseInput()
    pulse_input.feed_edges([0.5, 1.0], [True, False])
    with pytest.raises(ValueError, match=match):
        pulse_input.feed_edges(times, closed)  # type: ignore[arg-type]


def test_feed_edges_rejects_until_before_the_last_transition() -> None:
    with pytest.raises(ValueError, match="until"):
        PulseInput().feed_edges([1.0, 2.0], [True, False], until=1.5)


# --------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("cut", [0, 1, 150, 203, 1000, 2345, 5000])
def test_round_trip_mid_stream_gives_the_same_counts(cut: int) -> None:
    config = PulseInputConfig(scale=0.5)
    levels = random_levels(42)
    whole = PulseInput(config)
    whole.feed(levels, RATE, start_time=10.0)

    first = PulseInput(config)
    first.feed(levels[:cut], RATE, start_time=10.0)
    saved = json.loads(json.dumps(first.to_dict()))
    restored = PulseInput.from_dict(config, saved)
    restored.feed(levels[cut:], RATE)
    assert outcome(restored) == outcome(whole)
    assert restored.value == whole.value
    assert restored.to_dict() == whole.to_dict()


def test_round_trip_of_transition_stream() -> None:
    times, closed = edges_of(random_levels(5))
    whole = PulseInput()
    whole.feed_edges(times, closed)
    first = PulseInput()
    first.feed_edges(times[:25], closed[:25])
    restored = PulseInput.from_dict(first.config, json.loads(json.dumps(first.to_dict())))
    restored.feed_edges(times[25:], closed[25:])
    assert outcome(restored) == outcome(whole)


def test_round_trip_of_a_fresh_input() -> None:
    restored = PulseInput.from_dict(PulseInputConfig(), PulseInput().to_dict())
    restored.feed(signal([(0.1, 0.2)], 0.3), RATE)
    assert restored.count == 1


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"version": 99}, "version"),
        ({"mode": "magic"}, "mode"),
        ({"count": -1}, "count"),
        ({"count": 1.5}, "count"),
        ({"raw": "yes"}, "raw"),
        ({"position": None}, "position"),
        ({"sample_rate": None}, "sample_rate"),
    ],
)
def test_from_dict_rejects_a_damaged_state(change: dict[str, object], match: str) -> None:
    pulse_input = PulseInput()
    pulse_input.feed(signal([(0.1, 0.2)], 0.3), RATE)
    with pytest.raises(ValueError, match=match):
        PulseInput.from_dict(pulse_input.config, {**pulse_input.to_dict(), **change})


# --------------------------------------------------------------------------- configuration


def test_config_defaults() -> None:
    config = pulse_input_config({})
    assert config == PulseInputConfig()
    assert config.name == "Pulse 1"
    assert config.unit == ""
    assert config.scale == 1.0
    assert config.min_pulse_width_s == 0.020
    assert config.max_rate_hz == 10.0
    assert config.bounce_s == 0.005


def test_config_from_data() -> None:
    config = pulse_input_config(
        {"name": "Water", "unit": "m³", "scale": 0.01, "max_rate_hz": 5, "bounce_s": 0}
    )
    assert config == PulseInputConfig(
        name="Water", unit="m³", scale=0.01, max_rate_hz=5.0, bounce_s=0.0
    )
    assert isinstance(config.max_rate_hz, float)


def test_schema_fills_defaults() -> None:
    assert PULSE_INPUT_SCHEMA({"scale": 2}) == {
        "name": "Pulse 1",
        "unit": "",
        "scale": 2.0,
        "min_pulse_width_s": 0.020,
        "max_rate_hz": 10.0,
        "bounce_s": 0.005,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("scale", 0),
        ("scale", -1.0),
        ("scale", math.inf),
        ("scale", math.nan),
        ("scale", "1"),
        ("scale", True),
        ("min_pulse_width_s", 0.0005),
        ("min_pulse_width_s", 1.5),
        ("max_rate_hz", 0),
        ("max_rate_hz", 100.5),
        ("bounce_s", -0.001),
        ("bounce_s", 0.05),
        ("bounce_s", 0.02),  # not below the default min_pulse_width_s
        ("name", ""),
        ("name", "   "),
        ("name", "x" * 33),
        ("name", 5),
        ("unit", "x" * 17),
        ("unit", None),
        ("colour", "red"),
    ],
)
def test_each_config_error_names_its_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"^{field}: ") as raised:
        pulse_input_config({field: value})
    assert [path for path, _ in raised.value.errors] == [(field,)]


@pytest.mark.parametrize("scale", [0, 1e-7, 1.5e6])
def test_scale_error_message(scale: float) -> None:
    # The same bounds as the P1Scale/P2Scale registers publish (const.PULSE_SCALE_*).
    message = "value must be from 1e-06 to 1e+06"
    with pytest.raises(ConfigError, match=rf"^scale: {re.escape(message)}$") as raised:
        pulse_input_config({"scale": scale})
    assert raised.value.errors == ((("scale",), message),)


@pytest.mark.parametrize("scale", [1e-6, 1e6])
def test_scale_bounds_are_included(scale: float) -> None:
    assert pulse_input_config({"scale": scale}).scale == scale


def test_bounce_must_be_below_the_minimum_width() -> None:
    assert pulse_input_config({"bounce_s": 0.009, "min_pulse_width_s": 0.01}).bounce_s == 0.009
    with pytest.raises(ConfigError, match=r"^bounce_s: .*min_pulse_width_s"):
        pulse_input_config({"bounce_s": 0.01, "min_pulse_width_s": 0.01})


def test_config_dataclass_is_checked_and_frozen() -> None:
    with pytest.raises(ConfigError, match=r"^max_rate_hz: ") as raised:
        PulseInputConfig(max_rate_hz=0.0)
    assert raised.value.path == ("max_rate_hz",)
    config = PulseInputConfig(scale=2)
    assert isinstance(config.scale, float)
    with pytest.raises(AttributeError):
        config.scale = 3.0  # type: ignore[misc]


def test_config_must_be_a_mapping() -> None:
    with pytest.raises(ValueError, match="mapping"):
        pulse_input_config([("scale", 1.0)])  # type: ignore[arg-type]
