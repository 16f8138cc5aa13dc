"""The front panel: a 2x16 character LCD and three buttons (Display, left, right).

:class:`FrontPanel` is a pure, thread-safe state machine (no I/O): the web
interface and the terminal client feed it button presses and releases and
show what :meth:`FrontPanel.render` returns.  Time comes from an injected
clock (``time.monotonic`` by default), so tests drive it by hand.  It follows
the user guide's sections 7 ("Start-up sequence"), 7.1 ("Manually testing
communications") and 9 ("Display navigation"):

Start-up
    For :data:`STARTUP_SECONDS` (3 s) after creation the LCD shows ``LEVITON``
    centred on line 1 and ``Series 8000`` on line 2; buttons are ignored.
    Then it is in normal mode showing point 1, kWh D.

Normal mode
    A short Display press (released before 5 s, no arrow pressed while it
    was held) shows the next value of the point: kWh D, kWh R, W, KVarhD,
    KVarhR, Var, then kWh D again.  The left and right arrows (acting when
    pressed) select the previous or next point, wrapping over 1..N, the
    points of the live view.  Line 1 is the point's number and name, line 2
    the value right-aligned with its unit label (``kWh D``, ``kWh R``, ``W``,
    ``KVarhD``, ``KVarhR``, ``Var``); a large value loses decimals (then
    switches to an exponent) so that it always fits.

Diagnostics mode
    Entered when Display has been held for :data:`HOLD_SECONDS` (5 s) with no
    arrow pressed meanwhile: the change shows as soon as the 5 s have
    elapsed (:meth:`~FrontPanel.tick`, or any other call), and the release
    that follows does not advance anything.  Holding Display 5 s again
    returns to normal mode, as does :data:`IDLE_SECONDS` (5 minutes) without
    a button press.  Display cycles through:

    ``send``
        "Send Data": the right arrow calls :meth:`PanelActions.send` and shows
        ``Sending...`` (a report started), ``No host set`` or ``Send failed``
        for :data:`MESSAGE_SECONDS`.
    ``ct_w``
        The CT primary and the real power of each phase of a point; the
        arrows select the point (wrapping over 1..N).  Line 2 lists each
        phase as its letter and watts, as compactly as needed to fit.
    ``voltage``
        The RMS voltage of each phase (``AB``/``CB`` on a delta service).
    ``local_ip``
        The local IP address; the arrows scroll (wrapping) through its
        sub-list: remote host server, time server, default IP, default
        netmask, default gateway, PPP user name, phone number, AT command
        string, alternate phone number, serial number, firmware build,
        Ethernet MAC address, firmware revision and PT ratio (the rendered
        state's ``detail`` names the entry, a :class:`PanelInfo` field).
    ``reset_ip``
        "Reset Default IP": the right arrow asks for confirmation (``Right to
        confirm``); a second right press within :data:`CONFIRM_SECONDS` calls
        :meth:`PanelActions.reset_default_ip` and shows ``Default IP reset``.
        The left arrow, Display or the timeout cancel.
    ``date_time``
        The meter's date and time (UTC).

    The arrows do nothing on the voltage and date/time items.

Stuck buttons
    A button down for :data:`STUCK_SECONDS` (60 s) counts as released,
    without effect: a web page that closed while a button was down must not
    leave the panel adjusting the contrast for ever.

Contrast
    While Display is held, each left/right press decreases/increases the
    contrast (0..15, default 8).  Such a hold never counts as a Display
    press nor as a 5-second hold.

Missing values (no reading yet, no live view) show as dashes.  Every line is
exactly 16 characters of printable ASCII that an HD44780 shows as such
(names are transliterated; ``\\`` and ``~``, which its ROM draws as a yen
sign and an arrow, are replaced).  Actions are called outside the panel's
lock, so they may use the panel themselves.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from s8000_engine.local.live import LiveView, PointLive

_LOGGER = logging.getLogger(__name__)

WIDTH: Final = 16
"""Characters per LCD line."""
STARTUP_SECONDS: Final = 3.0
"""How long the start-up message shows."""
HOLD_SECONDS: Final = 5.0
"""Holding Display this long toggles diagnostics mode."""
IDLE_SECONDS: Final = 300.0
"""Diagnostics mode returns to normal mode after this long without a press."""
MESSAGE_SECONDS: Final = 3.0
"""How long an action's outcome (``Sending...``) shows."""
CONFIRM_SECONDS: Final = 5.0
"""The time to confirm a reset of the default IP with a second right press."""
STUCK_SECONDS: Final = 60.0
"""A button down this long counts as released, without effect."""
CONTRAST_MIN: Final = 0
CONTRAST_MAX: Final = 15
CONTRAST_DEFAULT: Final = 8

DASHES: Final = "---"
"""A value that is missing."""


class Button(StrEnum):
    """The three buttons of the front panel."""

    DISPLAY = "display"
    LEFT = "left"
    RIGHT = "right"


class Mode(StrEnum):
    """What the panel is showing."""

    STARTUP = "startup"
    NORMAL = "normal"
    DIAGNOSTICS = "diagnostics"


#: Normal mode's values: (item key, unit label, LiveView point attribute, decimals).
NORMAL_ITEMS: Final[tuple[tuple[str, str, str, int], ...]] = (
    ("kwh_d", "kWh D", "kwh_delivered", 3),
    ("kwh_r", "kWh R", "kwh_received", 3),
    ("w", "W", "watts", 1),
    ("kvarh_d", "KVarhD", "kvarh_delivered", 3),
    ("kvarh_r", "KVarhR", "kvarh_received", 3),
    ("var", "Var", "var", 1),
)

#: Diagnostics mode's items, in the order Display shows them.
DIAGNOSTICS_ITEMS: Final = ("send", "ct_w", "voltage", "local_ip", "reset_ip", "date_time")


@dataclass(frozen=True, slots=True, kw_only=True)
class PanelInfo:
    """What the diagnostics mode's "Local IP address" sub-list shows.

    Plain values the lead fills from the meter (an empty string shows as
    ``(not set)``)."""

    local_ip: str = ""
    remote_host: str = ""
    """The host server intervals are reported to."""
    time_server: str = ""
    """The NTP host."""
    default_ip: str = ""
    default_netmask: str = ""
    default_gateway: str = ""
    ppp_user: str = ""
    phone_number: str = ""
    at_command: str = ""
    alt_phone_number: str = ""
    serial_number: str = ""
    firmware_build: int | str = ""
    mac_address: str = ""
    firmware_revision: str = ""
    pt_ratio: float | None = None


#: The sub-list of the ``local_ip`` item: (PanelInfo field, LCD label).
LOCAL_IP_LIST: Final[tuple[tuple[str, str], ...]] = (
    ("local_ip", "Local IP Address"),
    ("remote_host", "Remote Host IP"),
    ("time_server", "Time Server IP"),
    ("default_ip", "Default IP"),
    ("default_netmask", "Default NetMask"),
    ("default_gateway", "Default Gateway"),
    ("ppp_user", "PPP User Name"),
    ("phone_number", "Phone Number"),
    ("at_command", "AT Command"),
    ("alt_phone_number", "Alt Phone Number"),
    ("serial_number", "Serial Number"),
    ("firmware_build", "Firmware Build"),
    ("mac_address", "MAC Address"),
    ("firmware_revision", "Firmware Rev"),
    ("pt_ratio", "PT Ratio"),
)


class PanelActions(Protocol):
    """What the diagnostics mode's commands do; the meter provides it."""

    def send(self) -> bool:
        """Report the unreported intervals now; True if a report started
        (False: no host server is configured)."""
        ...

    def reset_default_ip(self) -> None:
        """Restore the factory default IP configuration."""
        ...


@dataclass(frozen=True, slots=True)
class PanelState:
    """What the front panel shows."""

    lines: tuple[str, str]
    """The LCD's two lines, each exactly 16 ASCII characters."""
    mode: str
    """``startup``, ``normal`` or ``diagnostics``."""
    contrast: int
    """0..15."""
    point: int
    """The selected meter point, 1-based."""
    item: str
    """What is shown: ``startup``, a normal-mode value (``kwh_d``, ``kwh_r``,
    ``w``, ``kvarh_d``, ``kvarh_r``, ``var``) or a diagnostics item (``send``,
    ``ct_w``, ``voltage``, ``local_ip``, ``reset_ip``, ``date_time``)."""
    detail: str | None = None
    """On ``local_ip``: the sub-list entry shown (a :class:`PanelInfo` field)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for JSON."""
        return {
            "lines": list(self.lines),
            "mode": self.mode,
            "contrast": self.contrast,
            "point": self.point,
            "item": self.item,
            "detail": self.detail,
        }


# -- text for an HD44780 ----------------------------------------------------------------

_SPECIAL: Final = {
    "ß": "ss",
    "Æ": "AE",
    "æ": "ae",
    "Ø": "O",
    "ø": "o",
    "Œ": "OE",
    "œ": "oe",
    "Ł": "L",
    "ł": "l",
    "Đ": "D",
    "đ": "d",
    "Ð": "D",
    "ð": "d",
    "Þ": "Th",
    "þ": "th",
    "ı": "i",
    "‐": "-",
    "‑": "-",
    "–": "-",
    "—": "-",
    "−": "-",
    "‘": "'",
    "’": "'",
    "‚": ",",
    "“": '"',
    "”": '"',
    "„": '"',
    "«": '"',
    "»": '"',
    "…": "...",
    "°": "o",
    "µ": "u",
    "×": "x",
    "÷": "/",
    "€": "EUR",
    "£": "GBP",
    "\\": "/",
    "~": "-",
}


def lcd_text(text: str) -> str:
    """``text`` in the characters an HD44780 (ROM A00) shows as ASCII.

    Accents are dropped (``Küche`` → ``Kuche``), a few letters and signs are
    spelled out (``ß`` → ``ss``), white space becomes a space and anything
    else a ``?``."""
    out: list[str] = []
    for char in text:
        if char in _SPECIAL:
            out.append(_SPECIAL[char])
            continue
        if " " <= char <= "}":
            out.append(char)
            continue
        if char.isspace():
            out.append(" ")
            continue
        decomposed = unicodedata.normalize("NFKD", char)
        kept = "".join(c for c in decomposed if " " <= c <= "}" and c not in "\\~")
        out.append(kept or "?")
    return "".join(out)


def _line(text: str) -> str:
    """Exactly one LCD line: ASCII, cut or padded to 16."""
    return lcd_text(text)[:WIDTH].ljust(WIDTH)


def _left_right(left: str, right: str) -> str:
    """``left`` and ``right`` on one line, ``right`` dropped if both do not fit."""
    left, right = lcd_text(left), lcd_text(right)
    if len(left) + 1 + len(right) <= WIDTH:
        return left + right.rjust(WIDTH - len(left))
    return _line(left)


def _centre(text: str) -> str:
    return lcd_text(text)[:WIDTH].center(WIDTH)


def _cut(text: str) -> str:
    """A value for line 2: cut with a ``>`` when it is longer than 16."""
    text = lcd_text(text)
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + ">"


# -- numbers -----------------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _unsigned_zero(text: str) -> str:
    """``-0.00`` → ``0.00``."""
    if text.startswith("-") and not text.strip("-0.").rstrip("kMGT"):
        return text[1:]
    return text


def _exponent(value: float, width: int) -> str | None:
    for digits in range(max(width - 4, 0), -1, -1):
        mantissa, _, exponent = f"{value:.{digits}e}".partition("e")
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        text = f"{mantissa}e{int(exponent)}"
        if len(text) <= width:
            return text
    return None


def _fixed(number: float, width: int, decimals: int) -> str | None:
    """``number`` with ``decimals`` decimals, or fewer down to none, in at most
    ``width`` characters; None if it is wider even without decimals."""
    for digits in range(decimals, -1, -1):
        text = _unsigned_zero(f"{number:.{digits}f}")
        if len(text) <= width:
            return text
    return None


def fit_number(value: float | None, width: int, decimals: int) -> str:
    """``value`` in at most ``width`` characters: ``decimals`` decimals, fewer
    (down to none) if it is too wide, then an exponent (``1.2e12``), then
    ``#`` signs; dashes when it is missing (None, NaN or infinite)."""
    number = _finite(value)
    if number is None:
        return DASHES[:width]
    return _fixed(number, width, decimals) or _exponent(number, width) or "#" * width


def compact_number(value: float | None, width: int, decimals: int) -> str:
    """Like :func:`fit_number`, but a large value is scaled with a k, M, G or T
    suffix (``12k``) before it turns to an exponent."""
    number = _finite(value)
    if number is None:
        return DASHES[:width]
    fixed = _fixed(number, width, decimals)
    if fixed is not None:
        return fixed
    for scale, suffix in ((1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T")):
        for digits in (1, 0):
            text = _unsigned_zero(f"{number / scale:.{digits}f}") + suffix
            if len(text) <= width:
                return text
    return _exponent(number, width) or "#" * width


def _value_line(value: float | None, unit: str, decimals: int) -> str:
    """Line 2 of normal mode: the value right-aligned with its unit."""
    text = f"{fit_number(value, WIDTH - len(unit) - 1, decimals)} {unit}"
    return text.rjust(WIDTH)


def _fields(pairs: list[tuple[str, float | None]], decimals: int) -> str:
    """Labelled values on one line (``A1234 B567 C89``), as compact as needed."""
    if not pairs:
        return _line("none")
    pairs = [(lcd_text(label), value) for label, value in pairs]
    for digits in range(decimals, -1, -1):
        for separator in (" ", ""):
            text = separator.join(label + fit_number(v, WIDTH, digits) for label, v in pairs)
            if len(text) <= WIDTH:
                return text.ljust(WIDTH)
    count = len(pairs)
    separator = " "
    share = (WIDTH - (count - 1)) // count
    if share - max(len(label) for label, _ in pairs) < 4:
        separator, share = "", WIDTH // count
    parts = [
        label + compact_number(value, max(share - len(label), 1), decimals)
        for label, value in pairs
    ]
    return _line(separator.join(parts))


def _trimmed(value: float | None, width: int, decimals: int) -> str:
    """:func:`fit_number` without trailing zeros: ``100``, ``12.5``."""
    text = fit_number(value, width, decimals)
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _ratio(value: float | None) -> str:
    number = _finite(value)
    return DASHES if number is None else f"{_trimmed(number, WIDTH - 2, 3)}:1"


def _mac(value: str) -> str:
    """A MAC address that fits: without its separators when it is too long."""
    if len(value) > WIDTH:
        return "".join(c for c in value if c.isalnum())
    return value


def _date_time(epoch: float | None) -> tuple[str, str]:
    number = _finite(epoch)
    moment = None
    if number is not None:
        try:
            moment = datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            moment = None
    if moment is None:
        return _line("Date  ----------"), _line("UTC     --:--:--")
    return _line(f"Date  {moment:%Y-%m-%d}"), _line(f"UTC     {moment:%H:%M:%S}")


# -- the state machine -------------------------------------------------------------------


class FrontPanel:
    """The front panel's state machine (see the module's description).

    ``view`` gives the meter's latest :class:`~s8000_engine.live.LiveView`
    (None before the first second), ``info`` the diagnostics sub-list's
    values, ``actions`` the Send and Reset commands.  All methods may be
    called from any thread."""

    def __init__(
        self,
        view: Callable[[], LiveView | None],
        info: Callable[[], PanelInfo],
        actions: PanelActions,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._view = view
        self._info = info
        self._actions = actions
        self._clock = clock
        self._lock = threading.Lock()
        self._created = clock()
        self._mode = Mode.STARTUP
        self._contrast = CONTRAST_DEFAULT
        self._point = 1
        self._normal_index = 0
        self._diag_index = 0
        self._sub_index = 0
        self._last_press = self._created
        self._display_down_at: float | None = None
        self._display_combo = False
        self._hold_done = False
        self._held: dict[Button, float] = {}
        """The buttons down, with the time each went down."""
        self._message: str | None = None
        self._message_until = -math.inf
        self._confirm_until = -math.inf

    # -- inputs ---------------------------------------------------------------------------

    def press(self, button: Button | str) -> PanelState:
        """A button goes down; returns what the panel shows then."""
        pressed = _button(button)
        view = self._view()
        count = _count(view)
        with self._lock:
            now = self._clock()
            self._update(now)
            pending = self._press(pressed, now, count)
        if pending is not None:
            self._run(pending)
        return self.render()

    def release(self, button: Button | str) -> PanelState:
        """A button comes up; returns what the panel shows then."""
        released = _button(button)
        with self._lock:
            now = self._clock()
            self._update(now)
            self._release(released)
        return self.render()

    def tick(self) -> PanelState:
        """Let time pass (start-up message, holds, time-outs); returns what
        the panel shows.  :meth:`render` does the same."""
        return self.render()

    def render(self) -> PanelState:
        """What the panel shows now."""
        view = self._view()
        info = self._info()
        with self._lock:
            now = self._clock()
            self._update(now)
            return self._render(view, info, now)

    # -- behaviour ------------------------------------------------------------------------

    def _update(self, now: float) -> None:
        """Apply what time alone changes."""
        if self._mode is Mode.STARTUP:
            if now - self._created < STARTUP_SECONDS:
                return
            self._mode = Mode.NORMAL
            self._point = 1
            self._normal_index = 0
            self._held.clear()
        if (
            self._display_down_at is not None
            and not self._display_combo
            and not self._hold_done
            and now - self._display_down_at >= HOLD_SECONDS
        ):
            self._hold_done = True
            self._last_press = self._display_down_at + HOLD_SECONDS
            self._toggle_mode()
        for button, since in list(self._held.items()):
            if now - since >= STUCK_SECONDS:
                # its release was lost (a web page closed): up, without effect
                del self._held[button]
                if button is Button.DISPLAY:
                    self._display_down_at = None
                    self._display_combo = self._hold_done = False
        if (
            self._mode is Mode.DIAGNOSTICS
            and not self._held
            and now - self._last_press >= IDLE_SECONDS
        ):
            self._mode = Mode.NORMAL
        if now >= self._confirm_until:
            self._confirm_until = -math.inf
        if now >= self._message_until:
            self._message = None

    def _toggle_mode(self) -> None:
        self._message = None
        self._confirm_until = -math.inf
        if self._mode is Mode.NORMAL:
            self._mode = Mode.DIAGNOSTICS
            self._diag_index = 0
            self._sub_index = 0
        else:
            self._mode = Mode.NORMAL

    def _press(self, button: Button, now: float, count: int) -> str | None:
        if self._mode is Mode.STARTUP or button in self._held:
            return None
        self._held[button] = now
        self._last_press = now
        if button is Button.DISPLAY:
            self._display_down_at = now
            self._display_combo = False
            self._hold_done = False
            return None
        step = 1 if button is Button.RIGHT else -1
        if self._display_down_at is not None:
            # Display + arrow: contrast, never a Display press nor a hold.
            self._display_combo = True
            self._contrast = min(max(self._contrast + step, CONTRAST_MIN), CONTRAST_MAX)
            return None
        self._message = None
        if self._mode is Mode.NORMAL:
            self._move_point(step, count)
            return None
        item = DIAGNOSTICS_ITEMS[self._diag_index]
        if item == "ct_w":
            self._move_point(step, count)
        elif item == "local_ip":
            self._sub_index = (self._sub_index + step) % len(LOCAL_IP_LIST)
        elif item == "send" and button is Button.RIGHT:
            return "send"
        elif item == "reset_ip":
            if button is Button.LEFT:
                self._confirm_until = -math.inf
            elif now < self._confirm_until:
                self._confirm_until = -math.inf
                return "reset_ip"
            else:
                self._confirm_until = now + CONFIRM_SECONDS
        return None

    def _release(self, button: Button) -> None:
        if button not in self._held:
            return
        del self._held[button]
        if button is not Button.DISPLAY:
            return
        short = not self._display_combo and not self._hold_done
        self._display_down_at = None
        self._display_combo = False
        self._hold_done = False
        if not short:
            return
        self._message = None
        self._confirm_until = -math.inf
        if self._mode is Mode.NORMAL:
            self._normal_index = (self._normal_index + 1) % len(NORMAL_ITEMS)
        elif self._mode is Mode.DIAGNOSTICS:
            self._diag_index = (self._diag_index + 1) % len(DIAGNOSTICS_ITEMS)
            self._sub_index = 0

    def _move_point(self, step: int, count: int) -> None:
        if count > 0:
            self._point = (min(self._point, count) - 1 + step) % count + 1

    def _run(self, pending: str) -> None:
        """Call an action outside the lock, then show its outcome."""
        message: str
        if pending == "send":
            try:
                message = "Sending..." if self._actions.send() else "No host set"
            except Exception:
                _LOGGER.exception("the front panel's Send command failed")
                message = "Send failed"
        else:
            try:
                self._actions.reset_default_ip()
                message = "Default IP reset"
            except Exception:
                _LOGGER.exception("the front panel's Reset default IP command failed")
                message = "Reset failed"
        with self._lock:
            self._message = message
            self._message_until = self._clock() + MESSAGE_SECONDS

    # -- output ---------------------------------------------------------------------------

    def _render(self, view: LiveView | None, info: PanelInfo, now: float) -> PanelState:
        count = _count(view)
        if count:
            self._point = min(self._point, count)
        point = view.points[self._point - 1] if view is not None and count else None
        detail: str | None = None
        if self._mode is Mode.STARTUP:
            item = "startup"
            lines = (_centre("LEVITON"), _centre("Series 8000"))
        elif self._mode is Mode.NORMAL:
            item, unit, attribute, decimals = NORMAL_ITEMS[self._normal_index]
            if point is None:
                lines = (_line(f"{self._point} {DASHES}"), _value_line(None, unit, decimals))
            else:
                value = getattr(point, attribute)
                lines = (_line(f"{point.number} {point.name}"), _value_line(value, unit, decimals))
        else:
            item = DIAGNOSTICS_ITEMS[self._diag_index]
            if item == "local_ip":
                detail = LOCAL_IP_LIST[self._sub_index][0]
            lines = self._diagnostics(item, view, point, info, now)
        if self._message is not None:
            lines = (lines[0], _line(self._message))
        return PanelState(
            lines=lines,
            mode=self._mode.value,
            contrast=self._contrast,
            point=self._point,
            item=item,
            detail=detail,
        )

    def _diagnostics(
        self,
        item: str,
        view: LiveView | None,
        point: PointLive | None,
        info: PanelInfo,
        now: float,
    ) -> tuple[str, str]:
        if item == "send":
            return _line("Send Data"), _line("Right to send")
        if item == "ct_w":
            if point is None:
                return _left_right(f"{self._point} CT {DASHES}", "W"), _line(DASHES)
            ct = _trimmed(point.ct_primary_a, 7, 1)
            pairs = [(phase.phase, phase.watts) for phase in point.phases]
            return _left_right(f"{point.number} CT {ct}A", "W"), _fields(pairs, 0)
        if item == "voltage":
            if view is None:
                return _left_right("Voltage", "V"), _line(DASHES)
            delta = view.service == "3p3w"
            pairs = [
                (f"{phase}B" if delta and phase != "B" else phase, volts)
                for phase, volts in view.voltages.items()
            ]
            return _left_right("Voltage", "V"), _fields(pairs, 1)
        if item == "local_ip":
            name, label = LOCAL_IP_LIST[self._sub_index]
            return _line(label), _line(_cut(_info_value(info, name)))
        if item == "reset_ip":
            prompt = "Right to confirm" if now < self._confirm_until else "Right to reset"
            return _line("Reset Default IP"), _line(prompt)
        return _date_time(None if view is None else view.time)


def _info_value(info: PanelInfo, name: str) -> str:
    value = getattr(info, name)
    if name == "pt_ratio":
        return _ratio(value)
    text = str(value) if value is not None else ""
    if name == "mac_address":
        text = _mac(text)
    return text if text.strip() else "(not set)"


def _button(button: Button | str) -> Button:
    try:
        return Button(button)
    except ValueError:
        choices = ", ".join(b.value for b in Button)
        raise ValueError(f"button: {button!r} is not one of {choices}") from None


def _count(view: LiveView | None) -> int:
    return 0 if view is None else len(view.points)


__all__ = [
    "CONTRAST_DEFAULT",
    "CONTRAST_MAX",
    "CONTRAST_MIN",
    "DIAGNOSTICS_ITEMS",
    "HOLD_SECONDS",
    "IDLE_SECONDS",
    "LOCAL_IP_LIST",
    "NORMAL_ITEMS",
    "STARTUP_SECONDS",
    "STUCK_SECONDS",
    "WIDTH",
    "Button",
    "FrontPanel",
    "Mode",
    "PanelActions",
    "PanelInfo",
    "PanelState",
    "compact_number",
    "fit_number",
    "lcd_text",
]
