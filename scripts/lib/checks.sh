# shellcheck shell=bash
# The checks of scripts/test, run on the HA side (host or sid root) from the
# checkout:  checks.sh VENV [pytest arguments...]
set -uo pipefail
venv=$1
shift
lint_only=0
if [[ "${1:-}" == --lint-only ]]; then
    lint_only=1
    shift
fi
latest="$venv-latest"
# The web interface's browser tests fail, not skip, where no Chromium is found;
# the full-disk test fails, not skips, where it cannot mount its small tmpfs
# (as root, or through sudo -n).
export S8000_REQUIRE_BROWSER=1 S8000_REQUIRE_FULL_DISK=1
reports=$(mktemp -d)
failed=()

step() {
    local name=$1
    shift
    printf '\n\033[1m==> %s\033[0m\n' "$name"
    local start=$SECONDS
    if "$@"; then
        printf '\033[1m--> %s: ok (%ss)\033[0m\n' "$name" $((SECONDS - start))
    else
        printf '\033[1;31m--> %s: FAILED (%ss)\033[0m\n' "$name" $((SECONDS - start))
        failed+=("$name")
    fi
}

pytest_run() {
    local python=$1 report=$2
    shift 2
    "$python" -m pytest -p no:cacheprovider --junitxml="$reports/$report.xml" "$@"
}

step "ruff check" "$venv/bin/ruff" check .
step "ruff format --check" "$venv/bin/ruff" format --check .
step "mypy --strict" "$venv/bin/mypy"
# The layers (pyproject.toml's [tool.importlinter]): the client layer needs
# none of the software meter, the integration imports only the client layer,
# the engine never imports Home Assistant.
step "layer contract (import-linter)" "$venv/bin/lint-imports" --no-cache
if ((lint_only)); then
    if ((${#failed[@]})); then
        printf '\033[1;31mfailed: %s\033[0m\n' "${failed[*]}"
        exit 1
    fi
    exit 0
fi
# Test files run in parallel (pytest-xdist, one worker per core, a file per
# worker at a time: the files are independent, the tests inside a file may
# share a module's meter).
parallel=(-n "${S8000_TEST_WORKERS:-auto}" --dist loadfile)
# The engine's coverage gate (lines and branches, local meters started as
# processes included; see [tool.coverage] in pyproject.toml).
# A run narrowed by pytest arguments (scripts/test -k ...) skips the gates.
engine_tests() {
    if (($#)); then
        pytest_run "$venv/bin/python" engine-pinned -p no:homeassistant "${parallel[@]}" \
            tests/engine tests/repo "$@"
        return
    fi
    COVERAGE_FILE="$reports/engine-coverage" pytest_run "$venv/bin/python" engine-pinned \
        -p no:homeassistant "${parallel[@]}" tests/engine tests/repo \
        --cov=s8000_engine --cov-branch --cov-report=term:skip-covered \
        --cov-fail-under="${S8000_ENGINE_COVERAGE:-90}"
}
step "engine and repository tests (Home Assistant's pinned dependencies)" engine_tests "$@"
# Against the newest releases, only the tests that drive the third-party
# libraries' APIs directly (pymodbus and modbus-connection change theirs
# between minor releases; aiohttp, zeroconf, voluptuous, numpy): the rest of
# the engine sees those libraries only through the modules these exercise.
newest=(
    tests/engine/client/test_client.py tests/engine/client/test_intervals.py tests/engine/modbus/test_modbus.py
    tests/engine/web/test_web_auth.py tests/engine/web/test_web.py tests/engine/local/test_local.py
    tests/engine/config/test_config.py tests/engine/metering/test_metering.py
)
step "engine tests (newest dependencies)" \
    pytest_run "$latest/bin/python" engine-latest -p no:homeassistant "${parallel[@]}" \
    "${newest[@]}" "$@"
# The integration in a real Home Assistant, with its coverage gates: the whole
# integration at least 95 % (lines and branches), the config flow 100 %.
# A run narrowed by pytest arguments (scripts/test -k ...) skips the gates.
integration_tests() {
    if (($#)); then
        pytest_run "$venv/bin/python" integration "${parallel[@]}" tests/integration "$@"
        return
    fi
    export COVERAGE_FILE="$reports/coverage"
    pytest_run "$venv/bin/python" integration "${parallel[@]}" tests/integration \
        --cov=custom_components.s8000 --cov-branch \
        --cov-report=term-missing:skip-covered --cov-fail-under=95 &&
        "$venv/bin/python" -m coverage report --include='*/config_flow.py' --fail-under=100
}
step "integration tests (Home Assistant $("$venv/bin/python" -c 'from homeassistant.const import __version__; print(__version__)'))" \
    integration_tests "$@"

# The benchmarks, briefly, so they cannot rot (figures are not checked:
# speed is reported by scripts/bench, never asserted).
step "benchmarks smoke run (python -m benchmarks.run --quick)" \
    "$venv/bin/python" -m benchmarks.run --quick

# The README's main-job command, started and stopped on a free port with a
# throw-away configuration.
smoke_develop() {
    local config port modbus web
    config=$(mktemp -d)
    port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    modbus=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    web=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    S8000_CONFIG_DIR=$config S8000_DEVELOP_PORT=$port S8000_MODBUS_PORT=$modbus S8000_WEB_PORT=$web \
        bash scripts/lib/develop.sh "$venv" --check ||
        { tail -n 40 "$config/develop-check.log"; rm -rf "$config"; return 1; }
    rm -rf "$config"
}
step "main job smoke test (scripts/develop --check)" smoke_develop

# One closing line over every pytest run.
"$venv/bin/python" - "$reports" "${#failed[@]}" <<'PY'
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

total = failures = skipped = 0
for report in sorted(Path(sys.argv[1]).glob("*.xml")):
    for suite in ET.parse(report).getroot().iter("testsuite"):
        total += int(suite.get("tests", 0))
        failures += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
passed = total - failures - skipped
print(f"\nchecks failed: {sys.argv[2]}")
print(f"tests: {passed} passed, {failures} failed, {skipped} skipped")
PY
rm -rf "$reports"
if ((${#failed[@]})); then
    printf '\033[1;31mfailed: %s\033[0m\n' "${failed[*]}"
    exit 1
fi
