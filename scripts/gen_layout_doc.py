"""Write the engine's module tree into docs/development.md, one line per module.

    python scripts/gen_layout_doc.py          rewrite the tree in docs/development.md
    python scripts/gen_layout_doc.py --check  fail if it is out of date

Each line is the first sentence of the module's docstring, so a module without
one, or a tree that lost a module, shows here; tests/repo checks the committed
tree is current.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "s8000_engine" / "src" / "s8000_engine"
DOC = ROOT / "docs" / "development.md"
BEGIN = "<!-- engine-tree:begin -->"
END = "<!-- engine-tree:end -->"
#: The layers, bottom first, as the layer contract in the root pyproject.toml
#: orders them (one list for both): a module in no layer stops this script.
_LAYERS = next(
    contract["layers"]
    for contract in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    if contract["type"] == "layers"
)
ORDER = (
    "__init__.py",
    "__main__.py",
    *(
        name + ("" if (PACKAGE / name).is_dir() else ".py")
        for layer in reversed(_LAYERS)
        for name in (part.strip() for part in layer.split("|"))
    ),
)
WIDTH = 22
#: What a directory of data files (no modules) holds, by its name.
DATA_DIRS = {
    "profiles": "the built-in register profiles and their schema (JSON)",
    "static": "the page's files (HTML, JS, CSS)",
}


def _summary(path: Path) -> str:
    """The first sentence of a module's docstring."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    end = first.find(". ")
    return first if end < 0 else first[: end + 1]


def _line(indent: int, name: str, text: str) -> str:
    return f"{' ' * indent}{name:<{WIDTH - indent}}{text}".rstrip()


def tree() -> str:
    """The module tree, one line per module."""
    lines = ["s8000_engine/src/s8000_engine/"]
    entries = [p for p in PACKAGE.iterdir() if p.name in ORDER]
    missing = {p.name for p in PACKAGE.iterdir()} - set(ORDER) - {"py.typed", "__pycache__"}
    if missing:
        raise SystemExit(f"in no layer of the contract in pyproject.toml: {sorted(missing)}")
    for entry in sorted(entries, key=lambda p: ORDER.index(p.name)):
        if entry.is_file():
            lines.append(_line(2, entry.name, _summary(entry)))
            continue
        lines.append(_line(2, f"{entry.name}/", _summary(entry / "__init__.py")))
        for child in sorted(entry.iterdir()):
            if child.suffix == ".py" and child.name != "__init__.py":
                lines.append(_line(4, child.name, _summary(child)))
            elif child.is_dir() and child.name != "__pycache__":
                lines.append(_line(4, f"{child.name}/", DATA_DIRS.get(child.name, "data files")))
    return "```\n" + "\n".join(lines) + "\n```"


def main(argv: list[str]) -> int:
    """Rewrite (or --check) the tree in docs/development.md."""
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{tree()}\n{END}{tail}"
    if "--check" in argv:
        if new != text:
            print(f"{DOC} is out of date: run python scripts/gen_layout_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
