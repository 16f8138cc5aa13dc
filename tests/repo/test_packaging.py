"""The repository as HACS, hassfest, PyPI and CI see it."""

from __future__ import annotations

import json
import re
import struct
import tomllib
from pathlib import Path

import pytest
import yaml
from awesomeversion import AwesomeVersion

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "custom_components" / "s8000"

# hacs/integration's HACS_MANIFEST_JSON_SCHEMA (vol.PREVENT_EXTRA).
HACS_KEYS = {
    "name",
    "content_in_root",
    "country",
    "filename",
    "hacs",
    "hide_default_branch",
    "homeassistant",
    "persistent_directory",
    "render_readme",
    "zip_release",
}

# Every rule of the Integration Quality Scale, bronze to platinum.
QUALITY_RULES = {
    "bronze": """action-setup appropriate-polling brands common-modules config-flow
        config-flow-test-coverage dependency-transparency docs-actions
        docs-high-level-description docs-installation-instructions docs-removal-instructions
        entity-event-setup entity-unique-id has-entity-name runtime-data
        test-before-configure test-before-setup unique-config-entry""",
    "silver": """action-exceptions config-entry-unloading docs-configuration-parameters
        docs-installation-parameters entity-unavailable integration-owner
        log-when-unavailable parallel-updates reauthentication-flow test-coverage""",
    "gold": """devices diagnostics discovery discovery-update-info docs-data-update
        docs-examples docs-known-limitations docs-supported-devices docs-supported-functions
        docs-troubleshooting docs-use-cases dynamic-devices entity-category
        entity-device-class entity-disabled-by-default entity-translations
        exception-translations icon-translations reconfiguration-flow repair-issues
        stale-devices""",
    "platinum": "async-dependency inject-websession strict-typing",
}


def _manifest() -> dict[str, object]:
    return json.loads((INTEGRATION / "manifest.json").read_text())


def test_hacs_json_holds_only_keys_hacs_accepts() -> None:
    hacs = json.loads((ROOT / "hacs.json").read_text())
    assert set(hacs) <= HACS_KEYS, set(hacs) - HACS_KEYS
    assert hacs["name"]
    assert AwesomeVersion(hacs["homeassistant"]).valid


def test_manifest_has_what_hacs_and_hassfest_require() -> None:
    manifest = _manifest()
    for key in (
        "domain",
        "name",
        "version",
        "documentation",
        "issue_tracker",
        "codeowners",
        "iot_class",
        "integration_type",
        "config_flow",
        "requirements",
        "loggers",
        "dhcp",
    ):
        assert key in manifest, key
    assert manifest["domain"] == "s8000"
    assert manifest["iot_class"] == "local_polling"
    assert manifest["config_flow"] is True
    assert AwesomeVersion(str(manifest["version"])).valid
    assert all(str(owner).startswith("@") for owner in manifest["codeowners"])  # type: ignore[attr-defined]
    # hassfest: domain and name first, the rest sorted.
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])


def test_manifest_discovers_both_mac_prefixes_of_s8000_units() -> None:
    matchers = _manifest()["dhcp"]
    macs = {m["macaddress"] for m in matchers if "macaddress" in m}  # type: ignore[attr-defined, index, union-attr]
    assert macs == {"0021B6*", "0090C2*"}
    assert {"registered_devices": True} in matchers  # type: ignore[operator]


def _no_pins(requirements: list[str]) -> None:
    for requirement in requirements:
        assert "==" not in requirement, f"exact pin: {requirement}"
        assert "<" not in requirement, f"upper bound: {requirement}"
        assert ">=" in requirement, f"no lower bound: {requirement}"


def _requirements() -> list[str]:
    return [str(requirement) for requirement in _manifest()["requirements"]]  # type: ignore[attr-defined]


def _engine_version() -> str:
    engine_init = (ROOT / "s8000_engine" / "src" / "s8000_engine" / "__init__.py").read_text()
    found = re.search(r'__version__ = "([^"]+)"', engine_init)
    assert found is not None
    return found[1]


def test_requirements_declare_ranges_only() -> None:
    """The engine's own dependencies are ranges (a library shares an
    environment); the integration's other requirements too."""
    _no_pins([r for r in _requirements() if not r.startswith("s8000-engine")])
    project = tomllib.loads((ROOT / "s8000_engine" / "pyproject.toml").read_text())["project"]
    _no_pins(project["dependencies"])
    assert project["name"] == "s8000-engine"
    assert project["requires-python"] == ">=3.12"


def test_manifest_pins_the_engine_it_is_released_with() -> None:
    """As core does with its companion libraries: the integration requires
    exactly the engine released with it, whose version is its own."""
    engine = [r for r in _requirements() if r.startswith("s8000-engine")]
    assert engine == [f"s8000-engine=={_engine_version()}"]
    assert _manifest()["version"] == _engine_version()


def test_engine_ships_py_typed() -> None:
    assert (ROOT / "s8000_engine" / "src" / "s8000_engine" / "py.typed").is_file()


def test_translations_match_strings() -> None:
    strings = json.loads((INTEGRATION / "strings.json").read_text())
    english = json.loads((INTEGRATION / "translations" / "en.json").read_text())
    assert english == strings


def _keys(tree: object, prefix: str = "") -> dict[str, str]:
    """Every translated string of a translations file, by its dotted key."""
    if isinstance(tree, dict):
        found: dict[str, str] = {}
        for key, value in tree.items():
            found.update(_keys(value, f"{prefix}{key}."))
        return found
    return {prefix.rstrip("."): str(tree)}


def test_french_translates_every_string_with_the_same_placeholders() -> None:
    """The meter is sold in Canada: every English string has a French one,
    with the same {placeholders}, and none is left in English."""
    english = _keys(json.loads((INTEGRATION / "strings.json").read_text()))
    french = _keys(json.loads((INTEGRATION / "translations" / "fr.json").read_text()))
    assert set(french) == set(english), set(french) ^ set(english)
    placeholder = re.compile(r"\{[a-z_]+\}")
    for key, text in english.items():
        assert sorted(placeholder.findall(french[key])) == sorted(placeholder.findall(text)), key
    untranslated = [
        key for key, text in english.items() if text == french[key] and len(text.split()) > 2
    ]
    assert not untranslated, untranslated


def test_quality_scale_lists_every_rule_with_a_status() -> None:
    rules = yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text())["rules"]
    expected = {rule for tier in QUALITY_RULES.values() for rule in tier.split()}
    assert set(rules) == expected, set(rules) ^ expected
    for name, rule in rules.items():
        status = rule["status"] if isinstance(rule, dict) else rule
        # Bronze to platinum: every rule is met, or does not apply and says why.
        assert status in {"done", "exempt"}, f"{name} is {status}"
        if status == "exempt":
            assert isinstance(rule, dict), name
            assert rule.get("comment"), f"{name} is exempt without a reason"


@pytest.mark.parametrize(("name", "side"), [("icon.png", 256), ("icon@2x.png", 512)])
def test_brand_images_are_square_pngs(name: str, side: int) -> None:
    data = (INTEGRATION / "brand" / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (side, side)


def test_licence_is_osi_approved_apache() -> None:
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert "Version 2.0" in (ROOT / "LICENSE").read_text()


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "scripts/test" in readme
    assert "scripts/develop" in readme
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_workflows_run_hassfest_hacs_lint_and_tests() -> None:
    workflows = "\n".join(
        path.read_text() for path in (ROOT / ".github" / "workflows").glob("*.y*ml")
    )
    for needle in ("home-assistant/actions/hassfest", "hacs/action", "scripts/test", "ruff"):
        assert needle in workflows, needle
    for path in (ROOT / ".github" / "workflows").glob("*.y*ml"):
        assert yaml.safe_load(path.read_text())["jobs"], path


def test_register_documentation_is_generated_from_the_map() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_registers_doc.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_quality_scale_cites_sections_that_exist() -> None:
    """A rule that points at a section of the integration's documentation
    (``docs/integration.md, "Heading"``) points at a heading it has."""
    rules = yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text())["rules"]
    headings = {
        line.lstrip("#").strip()
        for line in (ROOT / "docs" / "integration.md").read_text().splitlines()
        if line.startswith("## ")
    }
    cited = {
        (rule, section)
        for rule, value in rules.items()
        if isinstance(value, dict)
        for section in re.findall(r'docs/integration\.md, "([^"]+)"', value.get("comment", ""))
    }
    assert cited, "no rule cites a section"
    assert {(rule, section) for rule, section in cited if section not in headings} == set()
