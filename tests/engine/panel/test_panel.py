"""The front panel: its state machine (with a manual clock) and its terminal client."""

from __future__ import annotations

import io
import json
import logging
import math
import os
import pty
import select
import signal
import socket
import subprocess
import termios
import threading
from collections.abc import Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from s8000_engine.cli.panel import panel_command
from s8000_engine.config.meter import meter_config
from s8000_engine.exceptions import PanelUsageError
from s8000_engine.local.live import LiveView, PhaseLive, PointLive
from s8000_engine.local.meter import DEMO_CONFIG, LocalMeter, SimulatedClock
from s8000_engine.local.simulate import PanelSimulator
from s8000_engine.panel.state import (
    CONTRAST_DEFAULT,
    DIAGNOSTICS_ITEMS,
    IDLE_SECONDS,
    LOCAL_IP_LIST,
    NORMAL_ITEMS,
    Button,
    FrontPanel,
    PanelInfo,
    PanelState,
    compact_number,
    fit_number,
    lcd_text,
)
from s8000_engine.panel.terminal import (
    PanelLink,
    Step,
    decode_keys,
    lcd_box,
    lcd_lines,
    parse_keys,
    perform,
)
from s8000_engine.storage.store import Store
from tests.engine.meterproc import engine

# -- helpers -------------------------------------------------------------------------------


class ManualClock:
    """Monotonic seconds that only move when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordedActions:
    """The panel's commands, recording each call."""

    def __init__(self, *, host_set: bool = True, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.host_set = host_set
        self.fail = fail

    def send(self) -> bool:
        self.calls.append("send")
        if self.fail:
            raise OSError("network down")
        return self.host_set

    def reset_default_ip(self) -> None:
        self.calls.append("reset_default_ip")
        if self.fail:
            raise OSError("flash write failed")


INFO = PanelInfo(
    local_ip="192.168.0.9",
    remote_host="203.0.113.7",
    time_server="pool.ntp.org",
    default_ip="192.168.0.9",
    default_netmask="255.255.255.0",
    default_gateway="192.168.0.1",
    ppp_user="",
    phone_number="555-0100",
    at_command="AT&F&C1&D2S0=0E0V1X4Q0",
    alt_phone_number="555-0199",
    serial_number="S8000123456",
    firmware_build=1600,
    mac_address="00:21:B6:12:34:56",
    firmware_revision="1.60",
    pt_ratio=4.0,
)


def _phase(letter: str, watts: float | None) -> PhaseLive:
    return PhaseLive(letter, f"P1-{'ABC'.index(letter) + 1}", watts, None, None)


def _point(number: int, name: str = "", value: float | None = 1.0, **changes: Any) -> PointLive:
    point = PointLive(
        number=number,
        name=name or f"Circuit {number}",
        ct_primary_a=100.0,
        enabled=True,
        kwh_delivered=value,  # type: ignore[arg-type]  # the panel copes with anything
        kwh_received=value,  # type: ignore[arg-type]
        kvarh_delivered=value,  # type: ignore[arg-type]
        kvarh_received=value,  # type: ignore[arg-type]
        watts=value,
        var=value,
        va=value,
        power_factor=None,
        demand_w=None,
        peak_w=None,
        peak_time=None,
        phases=(_phase("A", value), _phase("B", value), _phase("C", value)),
    )
    return replace(point, **changes)


def _view(points: int = 8, **changes: Any) -> LiveView:
    view = LiveView(
        time=1_700_000_000.0,
        model="S8UTS-083",
        serial="S8000123456",
        mac="00:21:B6:12:34:56",
        firmware="1.60",
        firmware_build=1600,
        service="3p4w",
        pt_ratio=1.0,
        frequency=60.0,
        voltage_valid=True,
        voltages={"A": 120.1, "B": 119.8, "C": 121.04},
        recording_minutes=15,
        points=tuple(_point(n) for n in range(1, points + 1)),
        pulses=(),
    )
    return replace(view, **changes)


class Rig:
    """A front panel on a manual clock, past its start-up message."""

    def __init__(
        self,
        view: LiveView | None,
        info: PanelInfo = INFO,
        actions: RecordedActions | None = None,
        *,
        started: bool = True,
    ) -> None:
        self.clock = ManualClock()
        self.view = view
        self.actions = actions or RecordedActions()
        self.panel = FrontPanel(lambda: self.view, lambda: info, self.actions, clock=self.clock)
        if started:
            self.clock.advance(3.0)

    def click(self, button: str = "display") -> PanelState:
        self.panel.press(button)
        return self.panel.release(button)

    def hold(self, seconds: float = 5.0) -> PanelState:
        self.panel.press("display")
        self.clock.advance(seconds)
        self.panel.tick()
        return self.panel.release("display")

    def diagnostics(self, item: str) -> PanelState:
        state = self.hold()
        assert state.mode == "diagnostics"
        while state.item != item:
            state = self.click()
        return state


def _assert_lcd(state: PanelState) -> None:
    assert len(state.lines) == 2
    for line in state.lines:
        assert len(line) == 16, repr(line)
        assert all(" " <= c <= "}" and c != "\\" for c in line), repr(line)


@pytest.fixture(scope="module")
def meter_view(tmp_path_factory: pytest.TempPathFactory) -> LiveView:
    """The live view of a real local meter (the demo panel) after 2 seconds."""
    config = meter_config(DEMO_CONFIG)
    store = Store.open(tmp_path_factory.mktemp("panel") / "meter.db")
    clock = SimulatedClock(1000.0, 1_700_000_000.0)
    meter = LocalMeter(config, store, PanelSimulator(config, sample_rate=4000), clock,
                       sample_rate=4000)  # fmt: skip
    meter.start()
    meter.run(seconds=2)
    view = meter.live
    store.close()
    assert view is not None
    assert view.points[1].watts is not None
    return view


# -- start-up and normal mode --------------------------------------------------------------


def test_the_startup_message_shows_for_3_seconds_then_point_1_kwh_delivered() -> None:
    rig = Rig(_view(), started=False)
    state = rig.panel.render()
    assert state.mode == "startup"
    assert state.lines == ("    LEVITON     ", "  Series 8000   ")
    # buttons do nothing during the start-up message
    rig.clock.advance(1.0)
    rig.panel.press("display")
    rig.clock.advance(1.0)
    rig.panel.release("right")
    state = rig.panel.release("display")
    assert state.mode == "startup"
    rig.clock.advance(0.99)
    assert rig.panel.tick().mode == "startup"
    rig.clock.advance(0.01)
    state = rig.panel.tick()
    assert (state.mode, state.item, state.point) == ("normal", "kwh_d", 1)
    assert state.lines == ("1 Circuit 1     ", "     1.000 kWh D")
    assert state.contrast == CONTRAST_DEFAULT


def test_display_shows_the_six_values_in_order_with_their_units(meter_view: LiveView) -> None:
    rig = Rig(meter_view)
    point = meter_view.points[0]  # Lighting carries a load
    assert point.watts is not None
    assert point.watts > 100
    expected = [
        ("kwh_d", "kWh D", f"{point.kwh_delivered:.3f}"),
        ("kwh_r", "kWh R", f"{point.kwh_received:.3f}"),
        ("w", "W", f"{point.watts:.1f}"),
        ("kvarh_d", "KVarhD", f"{point.kvarh_delivered:.3f}"),
        ("kvarh_r", "KVarhR", f"{point.kvarh_received:.3f}"),
        ("var", "Var", f"{point.var:.1f}"),
    ]
    assert [(key, unit) for key, unit, _, _ in NORMAL_ITEMS] == [(k, u) for k, u, _ in expected]
    state = rig.panel.render()
    for key, unit, number in expected:
        _assert_lcd(state)
        assert state.item == key
        assert state.lines[0] == "1 Lighting      "
        assert state.lines[1] == f"{number} {unit}".rjust(16)
        state = rig.click()
    assert state.item == "kwh_d"
    assert float(state.lines[1].split()[0]) == pytest.approx(point.kwh_delivered, abs=0.0005)


def test_the_arrows_wrap_over_the_points(meter_view: LiveView) -> None:
    rig = Rig(meter_view)
    assert rig.click("left").point == 8
    assert rig.panel.render().lines[0] == "8 Office        "
    assert rig.click("right").point == 1
    for _ in range(3):
        state = rig.click("right")
    assert state.point == 4
    assert state.lines[0] == "4 Solar         "
    assert state.item == "kwh_d"  # an arrow does not change the value shown
    rig.view = _view(points=3)  # a smaller configuration
    assert rig.panel.render().point == 3
    assert rig.click("right").point == 1


def test_a_5_second_hold_enters_diagnostics_exactly_then_and_the_release_does_nothing() -> None:
    rig = Rig(_view())
    rig.click()  # kWh R
    rig.panel.press("display")
    rig.clock.advance(4.9)
    assert rig.panel.tick().mode == "normal"
    rig.clock.advance(0.1)
    state = rig.panel.tick()
    assert (state.mode, state.item) == ("diagnostics", "send")
    rig.clock.advance(1.0)
    state = rig.panel.release("display")
    assert (state.mode, state.item) == ("diagnostics", "send")
    # a hold again returns to normal mode, on the value left there
    state = rig.hold()
    assert (state.mode, state.item) == ("normal", "kwh_r")


def test_a_press_released_before_5_seconds_is_a_short_press() -> None:
    rig = Rig(_view())
    rig.panel.press("display")
    rig.clock.advance(4.9)
    state = rig.panel.release("display")
    assert (state.mode, state.item) == ("normal", "kwh_r")


def test_a_hold_released_after_5_seconds_without_a_tick_still_enters_diagnostics() -> None:
    rig = Rig(_view())
    rig.panel.press("display")
    rig.clock.advance(6.0)
    state = rig.panel.release("display")
    assert (state.mode, state.item) == ("diagnostics", "send")


def test_the_diagnostics_items_in_order(meter_view: LiveView) -> None:
    rig = Rig(meter_view)
    state = rig.hold()
    seen = []
    for _ in range(len(DIAGNOSTICS_ITEMS)):
        _assert_lcd(state)
        seen.append(state.item)
        state = rig.click()
    assert seen == list(DIAGNOSTICS_ITEMS)
    assert seen == ["send", "ct_w", "voltage", "local_ip", "reset_ip", "date_time"]
    assert state.item == "send"
    assert state.lines == ("Send Data       ", "Right to send   ")


def test_the_ct_item_shows_the_ct_primary_and_each_phase_watts(meter_view: LiveView) -> None:
    rig = Rig(meter_view)
    state = rig.diagnostics("ct_w")
    point = meter_view.points[0]
    assert state.lines[0] == "1 CT 50A       W"
    expected = " ".join(f"{p.phase}{p.watts:.0f}" for p in point.phases)
    assert all(100 < (p.watts or 0) < 9999 for p in point.phases)
    assert state.lines[1] == expected.ljust(16)
    state = rig.click("right")
    assert state.point == 2
    assert state.lines[0] == "2 CT 100A      W"
    assert rig.click("left").point == 1
    assert rig.click("left").point == 8
    assert rig.click().item == "voltage"


@pytest.mark.parametrize(
    ("phases", "line"),
    [
        ((("A", 1234.0),), "A1234           "),
        ((("A", 1234.0), ("B", -567.4)), "A1234 B-567     "),
        ((("A", 1234.0), ("B", 567.0), ("C", 89.0)), "A1234 B567 C89  "),
        ((("A", 1234.0), ("B", -5678.0), ("C", 9999.0)), "A1234B-5678C9999"),
        ((("A", -12345.0), ("B", -5678.0), ("C", 9999.0)), "A-12kB-6kC9999  "),
        ((("A", None), ("B", math.nan), ("C", 2.0)), "A--- B--- C2    "),
        ((), "none            "),
    ],
)
def test_the_ct_item_lays_the_phases_out_in_16_characters(
    phases: tuple[tuple[str, float | None], ...], line: str
) -> None:
    point = _point(1, phases=tuple(_phase(letter, watts) for letter, watts in phases))
    rig = Rig(replace(_view(1), points=(point,)))
    state = rig.diagnostics("ct_w")
    assert state.lines[1] == line


def test_the_voltage_item(meter_view: LiveView) -> None:
    rig = Rig(meter_view)
    state = rig.diagnostics("voltage")
    assert state.lines[0] == "Voltage        V"
    fields_ = state.lines[1].split()
    assert [f[0] for f in fields_] == ["A", "B", "C"]
    for field, phase in zip(fields_, "ABC", strict=True):
        assert float(field[1:]) == pytest.approx(meter_view.voltages[phase], abs=0.5)
    # the arrows do nothing here
    assert rig.click("right").lines == state.lines
    assert rig.panel.render().point == 1
    # 1 decimal when it fits; a delta service's line-to-line voltages
    rig.view = _view(service="3p3w", voltages={"A": 480.25, "C": 479.5})
    assert rig.panel.render().lines[1] == "AB480.2 CB479.5 "


def test_the_date_and_time_in_utc(meter_view: LiveView) -> None:
    rig = Rig(meter_view)
    state = rig.diagnostics("date_time")
    moment = datetime.fromtimestamp(meter_view.time, UTC)
    assert state.lines == (f"Date  {moment:%Y-%m-%d}", f"UTC     {moment:%H:%M:%S}")
    rig.view = _view(time=1_700_000_000.0)
    assert rig.panel.render().lines == ("Date  2023-11-14", "UTC     22:13:20")
    rig.view = _view(time=math.inf)
    assert rig.panel.render().lines == ("Date  ----------", "UTC     --:--:--")


def test_the_local_ip_sub_list_scrolls_with_the_arrows() -> None:
    assert {name for name, _ in LOCAL_IP_LIST} == {f.name for f in fields(PanelInfo)}
    rig = Rig(_view())
    state = rig.diagnostics("local_ip")
    assert state.lines == ("Local IP Address", "192.168.0.9     ")
    assert state.detail == "local_ip"
    shown = {}
    for _ in range(len(LOCAL_IP_LIST)):
        shown[state.detail] = state.lines
        state = rig.click("right")
    assert state.detail == "local_ip"  # wrapped
    assert list(shown) == [name for name, _ in LOCAL_IP_LIST]
    assert shown["remote_host"] == ("Remote Host IP  ", "203.0.113.7     ")
    assert shown["time_server"] == ("Time Server IP  ", "pool.ntp.org    ")
    assert shown["default_netmask"] == ("Default NetMask ", "255.255.255.0   ")
    assert shown["ppp_user"] == ("PPP User Name   ", "(not set)       ")
    assert shown["at_command"] == ("AT Command      ", "AT&F&C1&D2S0=0E>")
    assert shown["alt_phone_number"] == ("Alt Phone Number", "555-0199        ")
    assert shown["firmware_build"] == ("Firmware Build  ", "1600            ")
    assert shown["mac_address"] == ("MAC Address     ", "0021B6123456    ")
    assert shown["pt_ratio"] == ("PT Ratio        ", "4:1             ")
    assert rig.click("left").detail == "pt_ratio"
    assert rig.panel.render().point == 1  # the arrows scrolled the list, not the points
    # the next visit starts again at the local IP address
    for _ in DIAGNOSTICS_ITEMS:
        state = rig.click()
    assert (state.item, state.detail) == ("local_ip", "local_ip")


def test_send_calls_the_action_and_shows_the_outcome_briefly() -> None:
    rig = Rig(_view())
    state = rig.diagnostics("send")
    assert rig.click("left").lines == state.lines
    assert rig.actions.calls == []
    state = rig.click("right")
    assert rig.actions.calls == ["send"]
    assert state.lines == ("Send Data       ", "Sending...      ")
    assert state.point == 1  # not a point change
    rig.clock.advance(2.9)
    assert rig.panel.tick().lines[1] == "Sending...      "
    rig.clock.advance(0.1)
    assert rig.panel.tick().lines[1] == "Right to send   "
    rig.actions.host_set = False
    assert rig.click("right").lines[1] == "No host set     "
    assert rig.actions.calls == ["send", "send"]


def test_a_failing_send_shows_it_and_the_panel_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(_view(), actions=RecordedActions(fail=True))
    rig.diagnostics("send")
    with caplog.at_level(logging.ERROR):
        state = rig.click("right")
    assert state.lines[1] == "Send failed     "
    assert "Send command failed" in caplog.text
    assert rig.click().item == "ct_w"


def test_resetting_the_default_ip_asks_for_confirmation() -> None:
    rig = Rig(_view())
    state = rig.diagnostics("reset_ip")
    assert state.lines == ("Reset Default IP", "Right to reset  ")
    state = rig.click("right")
    assert state.lines[1] == "Right to confirm"
    assert rig.actions.calls == []
    # the left arrow cancels
    assert rig.click("left").lines[1] == "Right to reset  "
    rig.click("right")
    rig.clock.advance(5.0)  # too late: it asks again
    assert rig.panel.tick().lines[1] == "Right to reset  "
    assert rig.click("right").lines[1] == "Right to confirm"
    assert rig.actions.calls == []
    rig.clock.advance(4.9)
    state = rig.click("right")
    assert rig.actions.calls == ["reset_default_ip"]
    assert state.lines == ("Reset Default IP", "Default IP reset")
    # Display cancels a pending confirmation too
    rig.clock.advance(3.0)
    rig.click("right")
    for _ in DIAGNOSTICS_ITEMS:
        state = rig.click()
    assert state.item == "reset_ip"
    assert rig.click("right").lines[1] == "Right to confirm"
    assert rig.actions.calls == ["reset_default_ip"]


def test_contrast_with_display_held_and_the_arrows() -> None:
    rig = Rig(_view())
    rig.click()  # kWh R
    rig.click("right")  # point 2
    rig.panel.press("display")
    for _ in range(10):
        rig.panel.press("right")
        state = rig.panel.release("right")
    assert state.contrast == 15
    rig.clock.advance(6.0)  # held past 5 s: still no hold, since an arrow was used
    rig.panel.tick()
    state = rig.panel.release("display")
    assert (state.mode, state.item, state.point, state.contrast) == ("normal", "kwh_r", 2, 15)
    rig.panel.press("display")
    for _ in range(20):
        rig.click("left")
    state = rig.panel.release("display")
    assert (state.mode, state.item, state.point, state.contrast) == ("normal", "kwh_r", 2, 0)
    # in diagnostics mode too
    rig.diagnostics("local_ip")
    rig.panel.press("display")
    state = rig.click("right")
    state = rig.panel.release("display")
    assert (state.mode, state.item, state.detail, state.contrast) == (
        "diagnostics",
        "local_ip",
        "local_ip",
        1,
    )


def test_diagnostics_returns_to_normal_after_5_minutes_without_a_press() -> None:
    rig = Rig(_view())
    rig.diagnostics("voltage")
    rig.clock.advance(299.0)
    rig.click()  # a press restarts the 5 minutes
    rig.clock.advance(299.9)
    assert rig.panel.tick().mode == "diagnostics"
    rig.clock.advance(0.1)
    state = rig.panel.tick()
    assert (state.mode, state.item) == ("normal", "kwh_d")
    rig.clock.advance(1000.0)
    assert rig.panel.tick().mode == "normal"


def test_without_a_live_view_everything_shows_dashes() -> None:
    rig = Rig(None)
    state = rig.panel.render()
    assert state.lines == ("1 ---           ", "       --- kWh D")
    assert rig.click("right").point == 1
    state = rig.hold()
    for _ in DIAGNOSTICS_ITEMS:
        _assert_lcd(state)
        rig.click("right")
        rig.click("left")
        state = rig.click()
    while state.item != "ct_w":
        state = rig.click()
    assert state.lines == ("1 CT ---       W", "---             ")


def test_the_state_as_json() -> None:
    rig = Rig(_view())
    data = json.loads(json.dumps(rig.panel.render().as_dict()))
    assert data == {
        "lines": ["1 Circuit 1     ", "     1.000 kWh D"],
        "mode": "normal",
        "contrast": 8,
        "point": 1,
        "item": "kwh_d",
        "detail": None,
    }


def test_an_unknown_button_is_refused_by_name() -> None:
    rig = Rig(_view())
    with pytest.raises(ValueError, match="button: 'center' is not one of display, left, right"):
        rig.panel.press("center")
    assert rig.panel.press(Button.LEFT).point == 8


class _Counter:
    """Calls the panel from inside its action: it must not deadlock."""

    def __init__(self) -> None:
        self.panel: FrontPanel | None = None
        self.seen: list[str] = []

    def send(self) -> bool:
        assert self.panel is not None
        self.seen.append(self.panel.render().item)
        return True

    def reset_default_ip(self) -> None:
        pass


def test_an_action_may_use_the_panel() -> None:
    clock = ManualClock()
    actions = _Counter()
    panel = FrontPanel(_view, lambda: INFO, actions, clock=clock)
    actions.panel = panel
    clock.advance(3.0)
    panel.press("display")
    clock.advance(5.0)
    panel.release("display")
    panel.press("right")
    assert actions.seen == ["send"]


def test_presses_from_many_threads_keep_the_panel_consistent() -> None:
    rig = Rig(_view())

    def clicks() -> None:
        for _ in range(200):
            rig.click("right")

    threads = [threading.Thread(target=clicks) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = rig.panel.render()
    assert state.point == 1  # 800 steps over 8 points
    _assert_lcd(state)


# -- always 16 ASCII characters ------------------------------------------------------------

NAMES = [
    "",
    "A",
    "Refrigeration and freezers, east wing",
    "Küche – Kühlschrank",
    "Straße № 5 ½",
    "日本語の名前",
    "Tab\there\nnewline\x00\x1b[2J",
    "back\\slash ~tilde~ {brace}",
    "Chauffe-eau électrique ☀️",
]
VALUES = [
    None,
    math.nan,
    math.inf,
    -math.inf,
    0.0,
    -0.0,
    -0.0001,
    1e-9,
    0.005,
    12.345,
    -12.345,
    999_999.999,
    123_456_789.123,
    -99_999_999.99,
    1e12,
    -1e12,
    1e18,
    -1e18,
    1e300,
    -1e300,
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", VALUES)
def test_every_line_is_16_ascii_characters(name: str, value: float | None) -> None:
    points = (
        _point(1, name, value, ct_primary_a=10000.0),
        _point(2, name, value, phases=(_phase("A", value),)),
        _point(3, name, value, phases=(_phase("A", value), _phase("C", value))),
        _point(24, name, value, ct_primary_a=12.5),
    )
    info = PanelInfo(**{f.name: name for f in fields(PanelInfo) if f.name != "pt_ratio"})
    info = replace(info, pt_ratio=value)
    view = replace(_view(0), points=points, voltages={"A": value, "B": value, "C": value})
    rig = Rig(view, info=info)
    for _ in points:
        state = rig.panel.render()
        for _ in NORMAL_ITEMS:
            _assert_lcd(state)
            state = rig.click()
        rig.click("right")
    state = rig.hold()
    for item in DIAGNOSTICS_ITEMS:
        for _ in range(len(LOCAL_IP_LIST) if item == "local_ip" else len(points)):
            _assert_lcd(state)
            state = rig.click("right")
            _assert_lcd(state)
        state = rig.click()
    rig.view = replace(view, service="3p3w", voltages={"A": value, "C": value})
    while state.item != "voltage":
        state = rig.click()
    _assert_lcd(state)


@pytest.mark.parametrize(
    ("value", "width", "decimals", "text"),
    [
        (1234.5678, 9, 2, "1234.57"),
        (123456789.0, 9, 2, "123456789"),
        (1234567890.0, 9, 2, "1.23457e9"),
        (-1234567890.0, 9, 2, "-1.2346e9"),
        (1e18, 9, 2, "1e18"),
        (-0.001, 9, 2, "0.00"),
        (None, 9, 2, "---"),
        (math.nan, 9, 2, "---"),
        (1e300, 4, 0, "####"),
    ],
)
def test_fit_number(value: float | None, width: int, decimals: int, text: str) -> None:
    assert fit_number(value, width, decimals) == text


@pytest.mark.parametrize(
    ("value", "width", "text"),
    [
        (999.0, 4, "999"),
        (12345.0, 4, "12k"),
        (-1234.0, 4, "-1k"),
        (2.5e6, 4, "2.5M"),
        (-0.01, 4, "0"),
    ],
)
def test_compact_number(value: float, width: int, text: str) -> None:
    assert compact_number(value, width, 0) == text


@pytest.mark.parametrize(
    ("text", "lcd"),
    [
        ("Küche", "Kuche"),
        ("Straße", "Strasse"),
        ("m³", "m3"),
        ("Øresund – 5 °C", "Oresund - 5 oC"),
        ("日本", "??"),
        ("a\\b~c", "a/b-c"),
        ("tab\tnew\nline", "tab new line"),
    ],
)
def test_lcd_text(text: str, lcd: str) -> None:
    assert lcd_text(text) == lcd


# -- the terminal client --------------------------------------------------------------------


def test_parse_keys() -> None:
    assert parse_keys("d, right,hold,left,plus,minus,wait:1.5,wait:0") == [
        Step("d"),
        Step("right"),
        Step("hold"),
        Step("left"),
        Step("plus"),
        Step("minus"),
        Step("wait", 1.5),
        Step("wait", 0.0),
    ]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("d,x", "--keys: unknown step 'x'"),
        ("d,,left", "--keys: empty step"),
        ("", "--keys: empty step"),
        ("wait", "--keys: unknown step 'wait'"),
        ("wait:", "--keys: 'wait:': the wait must be 0 to 3600 seconds"),
        ("wait:-1", "--keys: 'wait:-1': the wait"),
        ("wait:nan", "--keys: 'wait:nan': the wait"),
        ("wait:1e9", "--keys: 'wait:1e9': the wait"),
        ("Hold", "--keys: unknown step 'Hold'"),
    ],
)
def test_parse_keys_refuses_bad_steps(keys: str, message: str) -> None:
    with pytest.raises(PanelUsageError, match=message.replace("(", r"\(")):
        parse_keys(keys)


def test_lcd_box() -> None:
    state = {
        "lines": ["    LEVITON     ", "  Series 8000   "],
        "mode": "startup",
        "contrast": 8,
        "point": 1,
        "item": "startup",
        "detail": None,
    }
    assert lcd_box(state) == (
        "+----------------+\n"
        "|    LEVITON     |\n"
        "|  Series 8000   |\n"
        "+----------------+\n"
        " startup  contrast 8/15  point 1  startup"
    )
    other = {
        "lines": ["\x1b[2Jshort", "a line much longer than sixteen"],
        "mode": "diagnostics",
        "contrast": 3,
        "point": 2,
        "item": "local_ip",
        "detail": "mac_address",
    }
    assert lcd_box(other).splitlines()[1:3] == ["|?[2Jshort       |", "|a line much long|"]
    assert lcd_box(other).endswith("point 2  local_ip/mac_address")
    assert lcd_lines({}) == (" " * 16, " " * 16)


def test_decode_keys() -> None:
    actions, rest = decode_keys(b"d\rD\x1b[C\x1b[D\x1bOC\x1bODhl+=-_xq\x03")
    assert actions == [
        "display", "display", "hold", "right", "left", "right", "left", "left", "right",
        "plus", "plus", "minus", "minus", "quit", "quit",
    ]  # fmt: skip
    assert rest == b""
    assert decode_keys(b"l\x1b[") == (["right"], b"\x1b[")
    assert decode_keys(b"\x1b[" + b"C") == (["right"], b"")
    assert decode_keys(b"\x1b[1;5C\x1b[A") == (["right"], b"")  # Ctrl-right; up is nothing


def _lower(headers: Any) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


class _PanelServer:
    """The web API's panel endpoints as the brief describes them, over a real
    FrontPanel on a manual clock (the lead tests the real web server)."""

    def __init__(self, rig: Rig, password: str = "secret") -> None:
        self.rig = rig
        self.password = password
        self.sessions: set[str] = set()
        self.rate_limited = False
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(
                self, status: int, data: Any, headers: dict[str, str] | None = None
            ) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _session(self) -> str | None:
                cookie = self.headers.get("Cookie", "")
                for part in cookie.split(";"):
                    name, _, value = part.strip().partition("=")
                    if name == "s8000_session" and value in server.sessions:
                        return value
                return None

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path, _lower(self.headers)))
                if self._session() is None:
                    self._answer(401, {"error": "log in first"})
                elif self.path == "/api/panel":
                    self._answer(200, server.rig.panel.render().as_dict())
                else:
                    self._answer(404, {"error": "not found"})

            def do_POST(self) -> None:
                server.requests.append(("POST", self.path, _lower(self.headers)))
                length = int(self.headers.get("Content-Length", "0"))
                data = json.loads(self.rfile.read(length) or b"{}")
                if self.path == "/api/login":
                    if server.rate_limited:
                        self._answer(429, {"error": "too many"}, {"Retry-After": "30"})
                    elif data.get("password") != server.password:
                        self._answer(401, {"error": "wrong user name or password"})
                    else:
                        session = f"s{len(server.sessions)}"
                        server.sessions.add(session)
                        self._answer(
                            200,
                            {"csrf": "token-" + session},
                            {"Set-Cookie": f"s8000_session={session}; HttpOnly; Path=/"},
                        )
                    return
                session = self._session()
                if session is None or self.headers.get("X-CSRF-Token") != "token-" + session:
                    self._answer(403, {"error": "bad CSRF token"})
                    return
                panel = server.rig.panel
                act = panel.press if data["action"] == "press" else panel.release
                self._answer(200, act(data["button"]).as_dict())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(meter_view: LiveView) -> Iterator[_PanelServer]:
    served = _PanelServer(Rig(meter_view))
    yield served
    served.close()


def _run(argv: list[str], server: _PanelServer | None, **environ: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    sleep = server.rig.clock.advance if server is not None else None
    status = panel_command(
        argv,
        environ=environ,
        stdin=io.StringIO(),
        stdout=out,
        stderr=err,
        **({"sleep": sleep} if sleep else {}),
    )
    return status, out.getvalue(), err.getvalue()


def test_the_command_performs_the_keys_and_prints_the_lcd(
    server: _PanelServer, tmp_path: Path
) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("secret\n")
    status, out, err = _run(
        ["--url", server.url, "--password-file", str(password_file),
         "--keys", "d,right,hold,plus,minus,plus,d,wait:1"],
        server,
    )  # fmt: skip
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 16
    assert all(len(line) == 16 for line in lines)
    assert lines[0:2] == ["1 Lighting      ", lines[1]]
    assert lines[1].endswith("kWh R")
    assert lines[2] == "2 HVAC          "
    assert lines[4:6] == ["Send Data       ", "Right to send   "]
    assert lines[14][:4] == "2 CT"
    assert server.rig.panel.render().contrast == 9
    login = next(r for r in server.requests if r[1] == "/api/login")
    assert "x-csrf-token" not in login[2]
    assert all(
        r[2].get("x-csrf-token") == "token-s0"
        for r in server.requests
        if r[1] == "/api/panel/button"
    )


def test_the_command_prints_the_lcd_once_and_logs_in_again_when_the_session_expired(
    server: _PanelServer,
) -> None:
    link = PanelLink(server.url)
    link.login("admin", "secret")
    server.sessions.clear()  # the server restarted
    assert link.state()["mode"] == "normal"
    assert perform(link, Step("right"))["point"] == 2
    status, out, err = _run(["--url", server.url, "--once"], server, S8000_PASSWORD="secret")
    assert (status, err) == (0, "")
    assert out == "2 HVAC          \n" + out.splitlines()[1] + "\n"


def test_the_command_says_what_went_wrong(server: _PanelServer) -> None:
    status, _, err = _run(["--url", server.url, "--once"], server, S8000_PASSWORD="wrong")
    assert status == 1
    assert (
        err
        == f"s8000-engine panel: error: login to {server.url} refused: wrong user name or password\n"
    )
    server.rate_limited = True
    status, _, err = _run(["--url", server.url, "--once"], server, S8000_PASSWORD="secret")
    assert status == 1
    assert "too many attempts; try again in 30 s" in err


def test_the_command_cannot_connect() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, out, err = _run(
        ["--url", f"http://127.0.0.1:{port}", "--once"], None, S8000_PASSWORD="x"
    )
    assert (status, out) == (1, "")
    assert err.startswith(f"s8000-engine panel: error: cannot connect to http://127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (
            ["--url", "ftp://x", "--once"],
            {"S8000_PASSWORD": "x"},
            "--url: expected http://HOST:PORT",
        ),
        (["--url", "http://127.0.0.1:99999", "--once"], {"S8000_PASSWORD": "x"}, "--url: bad port"),
        (["--once"], {}, "no password: set S8000_PASSWORD, use --password-file"),
        ([], {"S8000_PASSWORD": "x"}, "not a terminal: use --keys or --once"),
        (["--keys", "d,jump"], {"S8000_PASSWORD": "x"}, "--keys: unknown step 'jump'"),
        (["--once", "--keys", "d"], {}, "not allowed with argument"),
        (["--password-file", "/nonexistent/pw", "--once"], {}, "--password-file: cannot read"),
        (["--timeout", "0", "--once"], {"S8000_PASSWORD": "x"}, "--timeout: must be positive"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], environ: dict[str, str], message: str) -> None:
    status, out, err = _run(argv, None, **environ)
    assert (status, out) == (2, "")
    assert err.startswith("s8000-engine panel: error: ")
    assert message in err


def test_the_panel_subcommand_is_wired() -> None:
    from s8000_engine.cli import main

    assert main(["panel", "--url", "gopher://x", "--once"]) == 2
    assert main(["panel", "--keys", "d", "--once"]) == 2


def test_a_button_whose_release_was_lost_counts_as_released_after_a_minute() -> None:
    rig = Rig(_view())
    rig.panel.press("display")
    rig.panel.press("right")  # contrast 9; then the page closed
    rig.clock.advance(59.0)
    state = rig.click("right")
    assert (state.contrast, state.point) == (9, 1)  # still held: the right arrow was ignored
    rig.clock.advance(1.0)
    state = rig.click("right")
    assert (state.contrast, state.point) == (9, 2)
    assert rig.panel.release("display").item == "kwh_d"  # the late release does nothing
    # a Display held past 5 s whose release was lost: diagnostics, then its idle time-out
    rig.panel.press("display")
    rig.clock.advance(100.0)
    assert rig.panel.tick().mode == "diagnostics"
    rig.clock.advance(IDLE_SECONDS - 95.0)
    assert rig.panel.tick().mode == "normal"


def test_an_interrupted_hold_releases_display(server: _PanelServer) -> None:
    link = PanelLink(server.url)
    link.login("admin", "secret")

    def interrupted(seconds: float) -> None:
        server.rig.clock.advance(seconds)
        if server.rig.clock.now > 105.0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        perform(link, Step("hold"), sleep=interrupted)
    assert server.requests[-1][1] == "/api/panel/button"
    # released before 5 s: a short press (kWh R), and Display is up again
    assert link.state()["item"] == "kwh_r"
    assert perform(link, Step("right"))["contrast"] == 8


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_interactive_panel_restores_the_terminal_on_a_signal(
    server: _PanelServer, signum: signal.Signals
) -> None:
    """The panel on a pseudo-terminal in cbreak mode; SIGINT (Ctrl-C) or
    SIGTERM (a closed window, ``kill``) quits it with the terminal as it was."""
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    process = subprocess.Popen(
        [engine(), "panel", "--url", server.url],
        stdin=slave, stdout=slave, stderr=subprocess.PIPE,
        env={**os.environ, "S8000_PASSWORD": "secret"}, start_new_session=True,
    )  # fmt: skip
    try:
        seen = b""
        while b"contrast" not in seen:  # the panel is drawn: the terminal is in cbreak mode
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, f"the panel was not drawn: {seen!r}"
            seen += os.read(master, 4096)
        assert termios.tcgetattr(slave)[3] & termios.ICANON == 0
        process.send_signal(signum)
        assert process.wait(30) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read().decode()
        assert termios.tcgetattr(slave) == before
    finally:
        process.kill()
        process.wait()
        assert process.stderr is not None
        process.stderr.close()
        os.close(master)
        os.close(slave)
