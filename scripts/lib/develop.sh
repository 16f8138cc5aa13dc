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
export S8000_DEVELOP_PORT=$port

mkdir -p "$config/custom_components"
# The integration is linked, not copied: edits show up on a restart.
ln -sfn "$repo/custom_components/s8000" "$config/custom_components/s8000"
[[ -f "$config/configuration.yaml" ]] || cp "$repo/scripts/lib/configuration.yaml" "$config/configuration.yaml"

# The simulated local meter: a software S8000 serving Modbus TCP on
# loopback, its data (interval memory, registers) kept in the config dir.
meter_log="$config/local-meter.log"
"$venv/bin/s8000-engine" run --simulate --data "$config/s8000-data" \
    --modbus-tcp "127.0.0.1:$modbus_port" >"$meter_log" 2>&1 &
meter_pid=$!
pids=("$meter_pid")
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
echo "Local S8000 meter: Modbus TCP 127.0.0.1:$modbus_port, unit 1 (log: $meter_log)"

echo "Home Assistant: http://localhost:$port (configuration in $config)"
if ((check == 0)); then
    "$venv/bin/hass" --config "$config" &
    pids+=("$!")
    wait "${pids[1]}"
    exit $?
fi

# --check: start, wait for the HTTP server and the integration, stop.
log="$config/develop-check.log"
"$venv/bin/hass" --config "$config" --log-file "$log" >/dev/null 2>&1 &
pid=$!
pids+=("$pid")
"$venv/bin/python" - "$port" "$log" "$pid" "$modbus_port" "$meter_log" <<'PY'
import os
import socket
import sys
import time
import urllib.request
from pathlib import Path

port, log, pid = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
modbus_port, meter_log = int(sys.argv[4]), Path(sys.argv[5])
deadline = time.monotonic() + 900  # the first start installs the frontend
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"Home Assistant exited early; see {log}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/manifest.json", timeout=5) as reply:
            answered = reply.status == 200
    except OSError:
        answered = False
    text = log.read_text(errors="replace") if log.exists() else ""
    try:
        socket.create_connection(("127.0.0.1", modbus_port), timeout=1).close()
        meter = True
    except OSError:
        meter = False
    if answered and meter and "custom integration s8000" in text:
        print(f"Home Assistant answers on port {port} with the s8000 integration in place")
        print(f"the local meter answers Modbus TCP on 127.0.0.1:{modbus_port}")
        sys.exit(0)
    time.sleep(2)
sys.exit(f"Home Assistant or the local meter did not come up in time; see {log} and {meter_log}")
PY
