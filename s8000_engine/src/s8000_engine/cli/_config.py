"""Reading a meter configuration for a command: ``--config FILE`` or ``--model CODE``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Final

from s8000_engine.config.meter import MeterConfig, meter_config
from s8000_engine.demo import DEFAULT_MODEL, demo_config
from s8000_engine.exceptions import ConfigError
from s8000_engine.models import get_model

#: Where the example configurations are (the help texts point there).
EXAMPLES: Final = "docs/examples/ (https://github.com/s8000-project/s8000/tree/main/docs/examples)"


def add_config_options(parser: argparse.ArgumentParser, config_help: str) -> None:
    """``--config FILE`` or ``--model CODE``, one or the other."""
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"{config_help}; examples in {EXAMPLES}, or start from "
        "`s8000-engine models CODE --format config`",
    )
    given.add_argument(
        "--model",
        metavar="CODE",
        help="a demo configuration of this model, every point in use "
        f"(s8000-engine models lists them; default {DEFAULT_MODEL})",
    )


def read_config(path: Path) -> dict[str, Any]:
    """The configuration in a JSON file, validated; as the file has it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the configuration must be a JSON object")
    meter_config(data)  # refused now, with the field it is about
    return data


def model_config(code: str) -> dict[str, Any]:
    """The demo configuration of the model ``code``."""
    try:
        model = get_model(code)
    except ValueError as error:
        raise ConfigError(f"--model: {error}") from None
    return demo_config(model)


def given_config(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--config``'s or ``--model``'s configuration (see :func:`add_config_options`),
    None when neither was given."""
    if args.config is not None:
        return read_config(args.config)
    if args.model is not None:
        return model_config(args.model)
    return None


def chosen_config(args: argparse.Namespace) -> tuple[MeterConfig, dict[str, Any]]:
    """``--config``'s, ``--model``'s or the default model's configuration."""
    raw = given_config(args) or model_config(DEFAULT_MODEL)
    return meter_config(raw), raw


__all__ = [
    "EXAMPLES",
    "add_config_options",
    "chosen_config",
    "given_config",
    "model_config",
    "read_config",
]
