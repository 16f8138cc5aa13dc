# shellcheck shell=bash
# scripts/develop, on the HA side (host or sid root):  develop.sh VENV [--check]
set -euo pipefail
venv=$1
shift
check=0
[[ "${1:-}" == --check ]] && check=1
repo=$(pwd)
config=${S8000_CONFIG_DIR:-$repo/config}
port=${S8000_DEVELOP_PORT:-8123}
modbus_port=${S8000_MODBUS_PORT:-5020}
web_port=${S8000_WEB_PORT:-8080}
# The local meter's web interface has no default password; the development
# one is set from the command line (as a user would) when none is stored.
web_password=${S8000_WEB_PASSWORD:-s8000-dev-web}
export S8000_DEVELOP_PORT=$port

mkdir -p "$config/custom_components"
# The integration is linked, not copied: edits show up on a restart.
ln -sfn "$repo/custom_components/s8000" "$config/custom_components/s8000"
[[ -f "$config/configuration.yaml" ]] || cp "$repo/scripts/lib/configuration.yaml" "$config/configuration.yaml"

# The simulated local meter: a software S8000 serving Modbus TCP on
# loopback, its data (interval memory, registers) kept in the config dir.
meter_log="$config/local-meter.log"
mkdir -p "$config/s8000-data"
[[ -f "$config/s8000-data/web-credential.json" ]] ||
    printf '%s\n' "$web_password" | "$venv/bin/s8000-engine" web-password --data "$config/s8000-data"
"$venv/bin/s8000-engine" run --simulate --data "$config/s8000-data" \
    --modbus-tcp "127.0.0.1:$modbus_port" --web "127.0.0.1:$web_port" \
    --discover-network 127.0.0.1/32 --discover-port "$modbus_port" >"$meter_log" 2>&1 &
meter_pid=$!
pids=("$meter_pid")
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
echo "Local S8000 meter: Modbus TCP 127.0.0.1:$modbus_port, unit 1 (log: $meter_log)"
echo "Its web interface: http://127.0.0.1:$web_port (user admin, password $web_password)"

# Home Assistant's HTTP server on 127.0.0.1:$port only (kept in its store,
# not in configuration.yaml; see develop_setup.py).
"$venv/bin/python" scripts/lib/develop_setup.py http --port "$port" --config "$config"
echo "Home Assistant: http://localhost:$port (configuration in $config)"
# Onboarding (the development user) and the local meter's config entry are
# provisioned by develop_setup.py once Home Assistant answers; see there.
setup=("$venv/bin/python" -u scripts/lib/develop_setup.py provision --port "$port"
    --modbus-port "$modbus_port" --config "$config")
if ((check == 0)); then
    "$venv/bin/hass" --config "$config" &
    pids+=("$!")
    "${setup[@]}" --pid "${pids[1]}" ||
        echo "develop: the set-up above failed; Home Assistant keeps running" >&2
    wait "${pids[1]}"
    exit $?
fi

# --check: start, provision, check that the frontend can load, that the
# meter's entry is loaded and that its sensors have values, stop.
log="$config/develop-check.log"
"$venv/bin/hass" --config "$config" --log-file "$log" >/dev/null 2>&1 &
pids+=("$!")
"${setup[@]}" --pid "${pids[1]}" --log "$log" --check
# The local meter's web interface answers its password, and its front panel
# shows the meter (logged in and read through the web API).
S8000_PASSWORD=$web_password "$venv/bin/s8000-engine" panel --url "http://127.0.0.1:$web_port" --once
