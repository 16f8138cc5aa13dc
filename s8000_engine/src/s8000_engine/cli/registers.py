"""``s8000-engine registers``: the Modbus register map (SunSpec profile) as
JSON, CSV or Markdown."""

from __future__ import annotations

import argparse
import sys

from s8000_engine.cli._config import add_config_options, chosen_config
from s8000_engine.local.image import build_map
from s8000_engine.protocol import publish


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--format", choices=("json", "csv", "markdown"), default="markdown")
    add_config_options(parser, "meter configuration (JSON) whose map to print")


def run(args: argparse.Namespace) -> int:
    """Print the map."""
    config, _ = chosen_config(args)
    regmap = build_map(config)
    if args.format == "json":
        print(publish.as_json(regmap))
    elif args.format == "csv":
        sys.stdout.write(publish.as_csv(regmap))
    else:
        sys.stdout.write(publish.as_markdown(regmap))
    return 0
