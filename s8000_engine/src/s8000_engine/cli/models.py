"""``s8000-engine models``: the model catalogue, one model's CT channels and
wire colours, or a starting configuration for a model."""

from __future__ import annotations

import argparse
import json

from s8000_engine.cli._common import UsageError
from s8000_engine.demo import demo_config
from s8000_engine.models import MODELS, get_model


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument(
        "--format",
        choices=("table", "json", "config"),
        default="table",
        help="config: a meter configuration of MODEL with every point in use, "
        "to save and edit for --config",
    )
    parser.add_argument("model", nargs="?", help="show one model's channels and wire colours")


def run(args: argparse.Namespace) -> int:
    """Print the catalogue, a model or a model's configuration."""
    chosen = [get_model(args.model)] if args.model else list(MODELS.values())
    if args.format == "config":
        if not args.model:
            raise UsageError("--format config: name the model, e.g. models S8UTS-083")
        print(json.dumps(demo_config(chosen[0]), indent=2, ensure_ascii=False))
        return 0
    if args.format == "json":
        payload = [
            {
                "model": m.code,
                "voltage": m.voltage,
                "connection": m.connection.value,
                "points": m.points,
                "elements": m.elements,
                "channels": [{"name": c.name, "x1": c.x1, "x2": c.x2} for c in m.channels],
            }
            for m in chosen
        ]
        print(json.dumps(payload, indent=2))
        return 0
    if args.model:
        model = chosen[0]
        print(f"{model.code}: {model.points} points × {model.elements} elements, {model.voltage} V")
        print(f"{'channel':8} {'CT X1':8} {'CT X2':8}")
        for channel in model.channels:
            print(f"{channel.name:8} {channel.x1:8} {channel.x2:8}")
        return 0
    print(f"{'model':10} {'V':>4} {'points':>6} {'elements':>8}  connection")
    for model in chosen:
        print(
            f"{model.code:10} {model.voltage:>4} {model.points:>6} {model.elements:>8}  "
            f"{model.connection.value}"
        )
    return 0
