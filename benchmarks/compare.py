"""The benchmarks of a reference tree and of this tree, side by side, in one run.

    python -m benchmarks.compare --reference-tree DIR [--name NAME] [--quick] [--save DIR]

``scripts/bench --against REV`` checks REV out (``git archive``, on the
host, where git is) and runs this.  The reference runs as it was: its own
``benchmarks`` and ``s8000_engine`` first on ``PYTHONPATH``, so the processes
it starts run its code too.  Then this tree runs the same way.  Both run on
this machine one right after the other, so a difference beyond the spread of
the rows is the code's, not the machine's.  Every table row both reports
share is printed once, each number as ``reference → now``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_NUMBER = re.compile(r"^-?[\d,]*\.?\d+\s*[×%]?$")


def _run(tree: Path, quick: bool, *, write: bool = True) -> str:
    """The markdown report of ``benchmarks.run`` in ``tree``.

    A reference tree is a throw-away copy: its full run may rewrite its own
    docs/benchmarks.md (older runners have no ``--no-write``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tree), str(tree / "s8000_engine" / "src"), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    command = [sys.executable, "-m", "benchmarks.run"]
    if quick:
        command.append("--quick")
    if not write:
        command.append("--no-write")
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the benchmarks of {tree} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def _key(section: str, cells: list[str], seen: dict[tuple[str, ...], int]) -> tuple[str, ...]:
    """A row's identity: its section, its cells that are not numbers (the
    label columns) and how many rows with those labels came before it."""
    labels = (section, *(cell for cell in cells if not _NUMBER.match(cell)))
    seen[labels] = seen.get(labels, -1) + 1
    return (*labels, str(seen[labels]))


def _table_rows(report: str) -> list[tuple[tuple[str, ...], list[str] | None, str]]:
    """Every line: (key, cells, line); key and cells are empty/None off the tables."""
    out: list[tuple[tuple[str, ...], list[str] | None, str]] = []
    section = ""
    seen: dict[tuple[str, ...], int] = {}
    for line in report.splitlines():
        if line.startswith("### "):
            section = line[4:].strip()
            seen = {}
        if line.startswith("|") and not line.startswith(("|-", "|:")):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            out.append((_key(section, cells, seen), cells, line))
        else:
            out.append(((), None, line))
    return out


def merge(reference: str, current: str) -> str:
    """The current report's tables with each number shown as ``reference → now``."""
    before = {key: cells for key, cells, _ in _table_rows(reference) if cells is not None}
    out: list[str] = []
    for key, cells, line in _table_rows(current):
        old = before.get(key) if cells is not None else None
        if cells is None or old is None or len(old) != len(cells):
            out.append(line)
            continue
        merged = [
            f"{a} → {b}" if _NUMBER.match(b) and _NUMBER.match(a) and a != b else b
            for a, b in zip(old, cells, strict=True)
        ]
        out.append("| " + " | ".join(merged) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run both, print the merged report."""
    parser = argparse.ArgumentParser(prog="benchmarks.compare")
    parser.add_argument(
        "--reference-tree", type=Path, required=True, help="the reference, checked out"
    )
    parser.add_argument("--name", help="what to call the reference in the report")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save", type=Path, help="also write both reports and the merge here")
    args = parser.parse_args(argv)
    reference = _run(args.reference_tree, args.quick)
    # This tree as it is on disk, uncommitted changes included; never written to.
    current = _run(ROOT, args.quick, write=False)
    name = args.name or str(args.reference_tree)
    header = f"Reference: {name}; each number is reference → this tree."
    merged = f"{header}\n\n{merge(reference, current)}"
    print(merged)
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
        (args.save / "reference.md").write_text(reference)
        (args.save / "current.md").write_text(current)
        (args.save / "side-by-side.md").write_text(merged + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
