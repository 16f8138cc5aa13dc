"""The published register map: JSON, CSV and Markdown."""

from __future__ import annotations

import csv
import io
import json

from s8000_engine.protocol.regmap import RegisterMap

# -- publishing ---------------------------------------------------------------------------


def as_json(regmap: RegisterMap) -> str:
    """The published map as JSON: a list of register objects."""
    return json.dumps([f.as_dict() for f in regmap.fields], indent=1)


def as_csv(regmap: RegisterMap) -> str:
    """The published map as CSV."""
    buffer = io.StringIO()
    columns = [
        "name",
        "address",
        "table",
        "type",
        "registers",
        "unit",
        "scale",
        "access",
        "model",
        "value",
        "point",
        "description",
    ]
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(f.as_dict() for f in regmap.fields)
    return buffer.getvalue()


def as_markdown(regmap: RegisterMap, title: str = "") -> str:
    """The published map as a Markdown table."""
    lines = [title, ""] if title else []
    lines += [
        "| address | name | type | regs | unit | scale | access | value | description |",
        "|---:|---|---|---:|---|---|---|---|---|",
    ]
    for f in regmap.fields:
        scale = (
            ""
            if f.scale is None
            else f"`{f.scale}`"
            if isinstance(f.scale, str)
            else f"10^{f.scale}"
        )
        rng = (
            f" ({f.minimum:g}–{f.maximum:g})"
            if f.minimum is not None and f.maximum is not None
            else ""
        )
        lines.append(
            f"| {f.address} | `{f.name}` | {f.type.value} | {f.size} | {f.unit} | {scale} | "
            f"{'RW' if f.access == 'RW' else 'R'} | {f'`{f.role}`' if f.role else ''} | "
            f"{f.description}{rng} |"
        )
    return "\n".join(lines) + "\n"


__all__ = [
    "as_csv",
    "as_json",
    "as_markdown",
]
