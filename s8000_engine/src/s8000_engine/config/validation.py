"""Voluptuous's errors as :class:`~s8000_engine.exceptions.ConfigError`: every
wrong value with the path voluptuous gives it, and the small validators the
sections share."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from typing import Any

import voluptuous as vol

from s8000_engine.exceptions import ConfigError, FieldPath


def _key(key: object) -> str | int:
    # A path holds data keys, list indexes and, for a missing key, the schema's
    # Required marker: its text is the key's name.
    return key if isinstance(key, int) and not isinstance(key, bool) else str(key)


def errors_of(invalid: vol.Invalid, prefix: FieldPath = ()) -> list[tuple[FieldPath, str]]:
    """Every error of ``invalid`` as ``(path, message)``, the path from ``prefix`` on."""
    found = invalid.errors if isinstance(invalid, vol.MultipleInvalid) else [invalid]
    return [((*prefix, *(_key(key) for key in error.path)), error.msg) for error in found]


def validate(schema: vol.Schema, data: object, prefix: FieldPath = ()) -> Any:
    """``schema(data)``; ConfigError with every wrong field, its path from ``prefix`` on."""
    try:
        return schema(data)
    except vol.Invalid as invalid:
        raise ConfigError(errors_of(invalid, prefix)) from None


def finite(value: Any) -> float:
    """A finite number (an int, float or numeric text), as float."""
    if isinstance(value, bool):
        raise vol.Invalid("must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise vol.Invalid("must be a number") from None
    if not math.isfinite(number):
        raise vol.Invalid("value must be a finite number")
    return number


def flag(value: Any) -> bool:
    """True or false, nothing else (not 0, 1 or "yes")."""
    if not isinstance(value, bool):
        raise vol.Invalid("must be true or false")
    return value


def one_line(text: str) -> str:
    """``text``, refused (vol.Invalid) when it holds a control character or a
    line or paragraph separator: a name is written into the log and the
    change log, where a line break would forge a line of its own."""
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        raise vol.Invalid("must be one line of text, without control characters")
    return text


def name(max_length: int) -> Callable[[Any], str]:
    """Text of 1 to ``max_length`` characters on one line, stripped."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise vol.Invalid("expected a string")
        text = one_line(value).strip()
        if not text:
            raise vol.Invalid("must not be empty")
        if len(text) > max_length:
            raise vol.Invalid(f"must be at most {max_length} characters")
        return text

    return check
