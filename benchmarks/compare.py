"""The benchmarks of a reference revision and of this tree, side by side, in one run.

    python -m benchmarks.compare REV            full runs; prints the merged tables
    python -m benchmarks.compare REV --quick    short runs (a smoke test, noisy)
    python -m benchmarks.compare --reference-tree DIR [--quick]

The reference is checked out with ``git archive`` into a temporary directory
(or given, already checked out, as ``--reference-tree``: scripts/bench does
that on the host, where git is) and run as it was: its own ``benchmarks``
and ``s8000_engine`` first on ``PYTHONPATH``, so the processes it starts run
its code too.  Then this tree runs the same way.  Both run on this machine
one right after the other, so a
difference beyond the spread of the rows is the code's, not the machine's.
Every table row both reports share is printed once, each number as
``reference → now``.  scripts/bench --against REV runs this.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
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


def _checkout(revision: str, where: Path) -> None:
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")


def _rows(report: str) -> dict[tuple[str, str], list[str]]:
    """Table rows by (section title, first cell)."""
    rows: dict[tuple[str, str], list[str]] = {}
    section = ""
    for line in report.splitlines():
        if line.startswith("### "):
            section = line[4:].strip()
        elif line.startswith("|") and not line.startswith("|-") and not line.startswith("|:"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            key = (section, cells[0])
            # A table's header and its rows may share a first cell's text only
            # in the header row; the header wins (it is read first).
            rows.setdefault(key, cells)
    return rows


def merge(reference: str, current: str) -> str:
    """The current report's tables with each number shown as ``reference → now``."""
    before = _rows(reference)
    out: list[str] = []
    section = ""
    for line in current.splitlines():
        if line.startswith("### "):
            section = line[4:].strip()
        if not line.startswith("|") or line.startswith(("|-", "|:")):
            out.append(line)
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        old = before.get((section, cells[0]))
        if old is None or len(old) != len(cells):
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
    parser.add_argument("revision", nargs="?", help="the reference: a commit, tag or branch")
    parser.add_argument("--reference-tree", type=Path, help="the reference, checked out")
    parser.add_argument("--name", help="what to call the reference in the report")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if (args.revision is None) == (args.reference_tree is None):
        parser.error("give a revision or --reference-tree")
    if args.reference_tree is not None:
        reference = _run(args.reference_tree, args.quick)
    else:
        with tempfile.TemporaryDirectory(prefix="s8000-bench-ref-") as tmp:
            _checkout(args.revision, Path(tmp))
            reference = _run(Path(tmp), args.quick)
    # This tree as it is on disk, uncommitted changes included; never written to.
    current = _run(ROOT, args.quick, write=False)
    name = args.name or args.revision or str(args.reference_tree)
    print(f"Reference: {name}; each number is reference → this tree.\n")
    print(merge(reference, current))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
