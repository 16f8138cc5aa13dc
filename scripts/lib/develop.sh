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
export S8000_DEVELOP_PORT=$port

mkdir -p "$config/custom_components"
# The integration is linked, not copied: edits show up on a restart.
ln -sfn "$repo/custom_components/s8000" "$config/custom_components/s8000"
[[ -f "$config/configuration.yaml" ]] || cp "$repo/scripts/lib/configuration.yaml" "$config/configuration.yaml"

echo "Home Assistant: http://localhost:$port (configuration in $config)"
if ((check == 0)); then
    exec "$venv/bin/hass" --config "$config"
fi

# --check: start, wait for the HTTP server and the integration, stop.
log="$config/develop-check.log"
"$venv/bin/hass" --config "$config" --log-file "$log" >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
"$venv/bin/python" - "$port" "$log" "$pid" <<'PY'
import os
import sys
import time
import urllib.request
from pathlib import Path

port, log, pid = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
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
    if answered and "custom integration s8000" in text:
        print(f"Home Assistant answers on port {port} with the s8000 integration in place")
        sys.exit(0)
    time.sleep(2)
sys.exit(f"Home Assistant did not come up in time; see {log}")
PY
