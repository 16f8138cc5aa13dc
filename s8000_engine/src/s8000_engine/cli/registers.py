"""``s8000-engine registers``: the Modbus register map of a configured meter,
in a profile (the built-in SunSpec one by default), as JSON, CSV or Markdown."""

from __future__ import annotations

import argparse
import sys

from s8000_engine.cli._common import add_profile_option
from s8000_engine.cli._config import add_config_options, chosen_config
from s8000_engine.local.image import build_map
from s8000_engine.protocol import publish


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--format", choices=("json", "csv", "markdown"), default="markdown")
    add_config_options(parser, "meter configuration (JSON) whose map to print")
    add_profile_option(parser, "to print the map in")


def run(args: argparse.Namespace) -> int:
    """Print the map."""
    config, _ = chosen_config(args)
    regmap = build_map(config, profile=args.profile)
    if args.format == "json":
        print(publish.as_json(regmap))
    elif args.format == "csv":
        sys.stdout.write(publish.as_csv(regmap))
    else:
        sys.stdout.write(publish.as_markdown(regmap))
    return 0
