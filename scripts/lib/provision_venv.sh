# shellcheck shell=bash
# Builds the virtual environments of the HA side, once, and refreshes the
# editable install of the engine.  Runs where the environments live (the host
# or the sid root); called by ensure_toolchain in toolchain.sh.
#
#   provision_venv.sh PYTHON VENV
#
# Two environments are made:
#   VENV         Home Assistant as pytest-homeassistant-custom-component pins
#                it, the requirements of HA's modbus integration, and the
#                engine, all installed under HA's package_constraints.txt;
#   VENV-latest  the engine alone with the newest release of every
#                dependency (pymodbus changes its API between minor
#                releases, so the engine is tested against both).
set -euo pipefail
python=$1
venv=$2
repo=$(pwd)
cache=$(dirname "$venv")

note() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# (Re)points the editable install of the engine at this checkout; a cached
# venv may have been built from another clone.
refresh_engine() {
    local env=$1
    shift
    local where
    where=$("$env/bin/python" - <<'EOF' 2>/dev/null || true
import json
from importlib.metadata import distribution
print(json.loads(distribution("s8000-engine").read_text("direct_url.json") or "{}").get("url", ""))
EOF
)
    if [[ "$where" != "file://$repo/s8000_engine" ]]; then
        note "installing the engine from $repo/s8000_engine into $env"
        "$env/bin/pip" install -q --no-deps --no-build-isolation "$@" -e "$repo/s8000_engine"
    fi
}

build_ha_venv() {
    note "$("$python" --version) from $python"
    note "building the Home Assistant test environment in $venv (once)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -r requirements_test.txt
    local ha
    ha=$("$venv/bin/python" -c 'import homeassistant, os; print(os.path.dirname(homeassistant.__file__))')
    # The requirements of the core integrations ours depends on (modbus: the
    # shared Modbus connection we borrow; usb: the serial port picker;
    # network: the adapters the search offers), and of assist_pipeline, which
    # the frontend of scripts/develop loads (built from source: g++), exactly
    # as this HA release pins them.
    "$venv/bin/python" -c 'import json, sys; print("\n".join(r for f in sys.argv[1:] for r in json.load(open(f)).get("requirements", [])))' \
        "$ha/components/modbus/manifest.json" "$ha/components/usb/manifest.json" \
        "$ha/components/network/manifest.json" \
        "$ha/components/assist_pipeline/manifest.json" >"$venv/modbus-requirements.txt"
    "$venv/bin/pip" install -q -c "$ha/package_constraints.txt" -r "$venv/modbus-requirements.txt"
    # The engine with its declared ranges, resolved under HA's constraints.
    "$venv/bin/pip" install -q -c "$ha/package_constraints.txt" --no-build-isolation -e "$repo/s8000_engine[test]"
    "$venv/bin/pip" check
    touch "$venv/.s8000-ready"
}

build_latest_venv() {
    local env="$venv-latest"
    note "building the newest-dependencies engine environment in $env (once)"
    rm -rf "$env"
    "$python" -m venv "$env"
    "$env/bin/pip" install -q --upgrade pip hatchling setuptools
    "$env/bin/pip" install -q --no-build-isolation -e "$repo/s8000_engine[test]"
    "$env/bin/pip" check
    touch "$env/.s8000-ready"
}

[[ -f "$venv/.s8000-ready" ]] || build_ha_venv
[[ -f "$venv-latest/.s8000-ready" ]] || build_latest_venv
refresh_engine "$venv"
refresh_engine "$venv-latest"

# Environments of older definitions are dropped.
for old in "$cache"/venv-*; do
    [[ -d "$old" ]] || continue
    case "$old" in
    "$venv" | "$venv-latest") ;;
    *)
        note "removing the stale environment $old"
        rm -rf "$old"
        ;;
    esac
done
