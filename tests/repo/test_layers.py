"""The layer contract is live, and deferred imports are only for optional extras.

``scripts/test`` runs import-linter over the contracts in the root
``pyproject.toml``.  These tests show that it would catch a change that breaks
one: they copy the code, break it on purpose and run import-linter on the copy.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "s8000_engine" / "src" / "s8000_engine"
INTEGRATION = ROOT / "custom_components" / "s8000"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

#: The only modules a deferred (function-level) import may load: optional
#: extras, which an install may lack.
OPTIONAL = {"zeroconf", "modbus_connection.tmodbus", "modbus_connection.pymodbus"}


def _copy(tmp_path: Path) -> Path:
    """The engine and the integration, with the contracts, in a scratch tree."""
    shutil.copytree(ENGINE, tmp_path / "src" / "s8000_engine")
    shutil.copytree(INTEGRATION, tmp_path / "custom_components" / "s8000")
    # The root pyproject.toml's contracts, as they are (import-linter reads
    # the [tool.importlinter] table of a TOML file given with --config).
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{tree / 'src'}:{tree}"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_contracts_hold_on_a_copy_of_the_code(tmp_path: Path) -> None:
    done = _lint(_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # The client layer reaches up into the meter.
        ("src/s8000_engine/client/data.py", "import s8000_engine.storage.store",
         "The engine's layers"),
        # The client layer loads a library of the software meter.
        ("src/s8000_engine/protocol/regmap.py", "import numpy", "installs alone"),
        # The integration imports the meter's configuration.
        ("custom_components/s8000/sensor.py", "import s8000_engine.config.meter",
         "The integration imports only"),
        # The engine imports Home Assistant.
        ("src/s8000_engine/models.py", "import homeassistant.const", "never imports Home"),
        # A cycle between two modules of the integration.
        ("custom_components/s8000/models.py", "import custom_components.s8000.sensor",
         "No import cycles"),
    ],
)  # fmt: skip
def test_a_change_that_breaks_a_contract_fails(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    tree = _copy(tmp_path)
    target = tree / module
    text = target.read_text()
    anchor = "from __future__ import annotations\n"
    target.write_text(text.replace(anchor, anchor + line + "\n", 1))
    done = _lint(tree)
    assert done.returncode != 0
    broken = [row for row in done.stdout.splitlines() if " BROKEN" in row]
    assert any(contract in row for row in broken), done.stdout


def test_deferred_imports_are_only_for_optional_extras() -> None:
    found = []
    for path in [*ENGINE.rglob("*.py"), *INTEGRATION.rglob("*.py")]:
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            if "noqa: PLC0415" in text:
                match = re.match(r"\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", text)
                assert match, f"{path}:{number}: {text.strip()}"
                found.append((f"{path.relative_to(ROOT)}:{number}", match[1] or match[2]))
    wrong = [
        (where, module)
        for where, module in found
        if not any(module == extra or module.startswith(f"{extra}.") for extra in OPTIONAL)
    ]
    assert not wrong, f"deferred imports of modules that are not optional extras: {wrong}"
    # The check sees them: the client's backends and zeroconf are deferred.
    assert {module.split(".")[0] for _, module in found} == {"zeroconf", "modbus_connection"}


def test_the_module_tree_in_the_development_docs_is_current() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_layout_doc.py"), "--check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
