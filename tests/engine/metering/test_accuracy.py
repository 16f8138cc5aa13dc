"""The IEC 62053-22 class 0.2S / IEC 62053-24 class 0.5S accuracy suite.

Prints the table of errors per test point (also: ``s8000-engine accuracy``).
"""

from __future__ import annotations

import dataclasses

import pytest

from s8000_engine.metering import accuracy


def test_every_service_meets_class_0_2s_active_and_0_5s_reactive(
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = list(accuracy.run_accuracy())
    # 8 services × 3 frequencies × (19 active + 15 reactive points).
    assert len(results) == len(accuracy.SERVICES) * 3 * 34
    frequencies = sorted({r.frequency for r in results if r.service == "1P2W 120 V"})
    assert frequencies == pytest.approx([57.0, 60.0, 63.0])
    with capsys.disabled():
        print("\n\nAccuracy per test point (IEC 62053-22 class 0.2S, IEC 62053-24 class 0.5S):\n")
        print(accuracy.format_table(results))
    failures = [r for r in results if not r.passed]
    assert not failures, failures[:5]


def test_starting_current_and_no_load(capsys: pytest.CaptureFixture[str]) -> None:
    results = list(accuracy.run_threshold_tests())
    assert len(results) == 2 * len(accuracy.SERVICES)
    with capsys.disabled():
        print("\n\nStarting current and no load:\n")
        print(accuracy.format_threshold_table(results))
    assert all(r.passed for r in results), [r for r in results if not r.passed]


def test_the_suite_catches_an_uncalibrated_ct(monkeypatch: pytest.MonkeyPatch) -> None:
    """A negative control: without the calibration that removes the CTs'
    0.2 % gain and 0.35° phase errors, the suite must see both."""
    real_bench = accuracy._Bench

    class Uncalibrated(real_bench):  # type: ignore[misc, valid-type]
        def __init__(self, service: accuracy.Service, seed: int) -> None:
            super().__init__(service, seed)
            self.config = dataclasses.replace(self.config, calibration={})

    monkeypatch.setattr(accuracy, "_Bench", Uncalibrated)
    results = list(accuracy.run_accuracy(accuracy.SERVICES[:1]))
    failed = {(r.quantity, r.factor, r.kind) for r in results if not r.passed}
    assert ("active", 0.5, "ind") in failed
    assert ("reactive", 0.5, "ind") in failed
    unity = [r.error_pct for r in results if r.quantity == "active" and r.factor == 1.0]
    assert min(unity) == pytest.approx(0.2, abs=0.03)  # the gain error, PF 1 is phase-blind
    lagging = [r.error_pct for r in results if r.quantity == "active" and r.kind == "ind"]
    # A CT that leads by 0.35° shrinks a 60° lag: +√3·0.35° ≈ +1.06 %, plus the gain.
    assert max(lagging) == pytest.approx(0.2 + 1.06, abs=0.05)
