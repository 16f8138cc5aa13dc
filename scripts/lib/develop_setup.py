"""Provisions the Home Assistant of scripts/develop, then (with --check) checks it.

Run by scripts/lib/develop.sh with the toolchain's Python, in two parts.

``develop_setup.py http``, before Home Assistant starts, binds its HTTP server
to 127.0.0.1 and the port asked for.  Home Assistant 2026.10 keeps these
settings in ``.storage/http``, not in ``configuration.yaml``: an ``http:``
block there is moved into the store once, as a trial that has to be confirmed
in the UI within five minutes or is reverted (to every interface on 8123) with
a restart, and is ignored from then on, so a port changed later would never
apply.  This part writes the confirmed ("stable") slot of that store instead,
validated by Home Assistant's own schema, whenever it differs, and drops any
unconfirmed trial.

``develop_setup.py provision``, while Home Assistant starts: once it answers,
and idempotently on every start:

1. onboarding: where Home Assistant is not onboarded yet, the development
   user is made through the onboarding REST API (``/api/onboarding/users``,
   then the auth code is traded for tokens at ``/auth/token``), and the other
   steps (``core_config``, ``analytics``, ``integration``) are finished, as
   the frontend's onboarding would.  Finishing ``core_config`` adds the
   integrations the frontend's onboarding adds (Shopping list, Google
   Translate text-to-speech, Radio Browser, and Met where a home location is
   set, which it is not here); Radio Browser is removed again, as it reaches
   out to the internet from its set-up on;
2. the meter: where there is no ``s8000`` config entry, the local meter is
   added through the REST config-flow API (the ``tcp`` step of the user menu,
   with 127.0.0.1, the local meter's port and unit 1).

A configuration whose onboarding was done by hand, with another user, is left
alone: without the development user's password nothing is changed.

With ``--check`` it then verifies that Home Assistant can describe its
services (without which its frontend never loads), that the ``s8000`` entry
is loaded and that a point's energy sensor has a numeric state, and exits
non-zero otherwise; without, a frontend that cannot load is warned about.

Provisioning uses only the standard library, and reaches only loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

LOOPBACK: Final = "127.0.0.1"
DEV_NAME: Final = "S8000 developer"
DEV_USERNAME: Final = "dev"
DEFAULT_PASSWORD: Final = "s8000-dev"
DOMAIN: Final = "s8000"
UNIT_ID: Final = 1
# The first start installs the frontend and the requirements of the
# integrations it loads.
START_TIMEOUT_S: Final = 900.0
ENTRY_TIMEOUT_S: Final = 120.0
# The development token kept between runs (a refresh token of the
# development user), so a restart does not pile up logins.
TOKEN_FILE: Final = ".s8000-develop-token"
RADIO_BROWSER: Final = "radio_browser"
RADIO_TIMEOUT_S: Final = 30.0
ENERGY_SENSOR: Final = re.compile(r"sensor\..*point_1_energy_delivered")


class SetupError(Exception):
    """Provisioning or the check failed; the message says why."""


class HomeAssistant:
    """The development Home Assistant's REST API, on loopback."""

    def __init__(self, port: int) -> None:
        """Home Assistant at 127.0.0.1:``port``."""
        self.base = f"http://127.0.0.1:{port}"
        # The frontend's own client id: tokens made here work in a browser.
        self.client_id = f"{self.base}/"
        self.redirect_uri = f"{self.base}/?auth_callback=1"
        self.token: str | None = None

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        form: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        """One request; the status and the decoded JSON (or text) of the reply."""
        headers = {}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.base + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                status, raw = reply.status, reply.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """A request that must succeed; its decoded reply."""
        status, reply = self.request(method, path, body)
        if status != 200:
            raise SetupError(f"{method} {path}: HTTP {status}: {reply}")
        return reply

    def tokens(self, **form: str) -> dict[str, Any]:
        """Tokens from ``/auth/token`` (an auth code or a refresh token)."""
        status, reply = self.request(
            "POST", "/auth/token", form={**form, "client_id": self.client_id}
        )
        if status != 200 or not isinstance(reply, dict) or "access_token" not in reply:
            raise SetupError(f"/auth/token: HTTP {status}: {reply}")
        self.token = str(reply["access_token"])
        return reply

    def login(self, username: str, password: str) -> dict[str, Any] | None:
        """Tokens of a user who logs in with a password; None where the login fails."""
        self.token = None
        flow = self.call(
            "POST",
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.redirect_uri,
            },
        )
        status, reply = self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": username, "password": password},
        )
        if status != 200 or not isinstance(reply, dict) or reply.get("type") != "create_entry":
            return None
        return self.tokens(grant_type="authorization_code", code=str(reply["result"]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_until_up(ha: HomeAssistant, args: argparse.Namespace) -> None:
    """Wait until Home Assistant serves its frontend and the local meter answers."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _alive(args.pid):
            raise SetupError(f"Home Assistant exited early; see {args.log}")
        try:
            status, _ = ha.request("GET", "/manifest.json", timeout=5)
        except OSError:
            status = 0
        if status == 200 and _listening(args.modbus_port):
            return
        time.sleep(2)
    raise SetupError(f"Home Assistant or the local meter did not come up in time; see {args.log}")


def onboard(ha: HomeAssistant, password: str, token_file: Path) -> bool:
    """Onboard Home Assistant where needed, and log in as the development user.

    True where this finished the core_config step."""
    status, steps = ha.request("GET", "/api/onboarding")
    # The onboarding views exist only until every step is done.
    pending = (
        {step["step"] for step in steps if not step["done"]}
        if status == 200 and isinstance(steps, list)
        else set()
    )
    if "user" in pending:
        reply = ha.call(
            "POST",
            "/api/onboarding/users",
            {
                "name": DEV_NAME,
                "username": DEV_USERNAME,
                "password": password,
                "client_id": ha.client_id,
                "language": "en",
            },
        )
        tokens = ha.tokens(grant_type="authorization_code", code=str(reply["auth_code"]))
        _save_token(token_file, tokens)
        print(f"onboarded Home Assistant with the user {DEV_USERNAME!r}")
    else:
        _log_in(ha, password, token_file)
    if "core_config" in pending:
        ha.call("POST", "/api/onboarding/core_config", {})
    if "analytics" in pending:
        ha.call("POST", "/api/onboarding/analytics", {})
    if "integration" in pending:
        ha.call(
            "POST",
            "/api/onboarding/integration",
            {"client_id": ha.client_id, "redirect_uri": ha.redirect_uri},
        )
    if pending - {"user"}:
        print(f"finished onboarding ({', '.join(sorted(pending - {'user'}))})")
    return "core_config" in pending


def remove_onboarding_radio(ha: HomeAssistant) -> None:
    """Remove the Radio Browser entry that finishing onboarding adds.

    Onboarding starts its flow in the background; its entry appears once the
    integration's requirements are installed."""
    deadline = time.monotonic() + RADIO_TIMEOUT_S
    while time.monotonic() < deadline:
        entries = ha.call("GET", f"/api/config/config_entries/entry?domain={RADIO_BROWSER}")
        for entry in entries:
            if entry["source"] == "onboarding":
                ha.call("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
                print("removed Radio Browser, which onboarding adds (it reaches the internet)")
                return
        time.sleep(1)


def _save_token(token_file: Path, tokens: dict[str, Any]) -> None:
    token_file.touch(mode=0o600)
    token_file.write_text(str(tokens["refresh_token"]))


def _log_in(ha: HomeAssistant, password: str, token_file: Path) -> None:
    """Get an access token: from the kept refresh token, else by logging in."""
    if token_file.exists():
        try:
            ha.tokens(grant_type="refresh_token", refresh_token=token_file.read_text().strip())
        except SetupError:
            pass
        else:
            return
    tokens = ha.login(DEV_USERNAME, password)
    if tokens is None:
        raise SetupError(
            f"cannot log in as {DEV_USERNAME!r} with the password given: this configuration "
            "was onboarded by hand, or S8000_DEV_PASSWORD differs from the one it was made with"
        )
    _save_token(token_file, tokens)


def ensure_meter(ha: HomeAssistant, modbus_port: int) -> None:
    """Add the local meter where there is no s8000 entry yet."""
    if ha.call("GET", f"/api/config/config_entries/entry?domain={DOMAIN}"):
        return
    user_input = {"host": "127.0.0.1", "port": modbus_port, "unit_id": UNIT_ID}
    result = ha.call("POST", "/api/config/config_entries/flow", {"handler": DOMAIN})
    for _ in range(5):
        flow = f"/api/config/config_entries/flow/{result['flow_id']}"
        if result["type"] == "menu":
            if "tcp" not in result["menu_options"]:
                raise SetupError(f"the config flow's menu has no tcp step: {result}")
            result = ha.call("POST", flow, {"next_step_id": "tcp"})
        elif result["type"] == "form":
            schema = result.get("data_schema", [])
            fields = {field["name"] for field in schema}
            # Fields of its own with defaults are left to them; one it must
            # be told, that is not known here, ends it.
            unknown = {
                field["name"]
                for field in schema
                if field.get("required") and "default" not in field
            } - set(user_input)
            if result.get("errors") or unknown:
                ha.request("DELETE", flow)
                raise SetupError(f"the config flow's {result['step_id']} step: {result}")
            result = ha.call("POST", flow, {k: v for k, v in user_input.items() if k in fields})
        else:
            break
    if result["type"] != "create_entry":
        raise SetupError(f"adding the local meter ended with {result}")
    print(f"added the local meter 127.0.0.1:{modbus_port} as {result['title']!r}")


def wait_for_entry(ha: HomeAssistant) -> dict[str, Any]:
    """The s8000 entry, once it has stopped setting up."""
    deadline = time.monotonic() + ENTRY_TIMEOUT_S
    entries: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        entries = ha.call("GET", f"/api/config/config_entries/entry?domain={DOMAIN}")
        if entries and entries[0]["state"] not in ("not_loaded", "setup_in_progress"):
            return entries[0]
        time.sleep(1)
    raise SetupError(f"the s8000 entry did not finish setting up: {entries}")


def check_frontend(ha: HomeAssistant) -> None:
    """Whether Home Assistant can describe its services, which the frontend loads first.

    Describing them imports every base integration, assist_pipeline among
    them, whose requirements (pymicro-vad, pyspeex-noise) build from source
    on Python 3.14: where they could not be built (no C++ compiler), every
    page of the frontend stays at "Loading..." although the API works.
    Asked once Home Assistant has started (every requirement installed or
    given up on)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while ha.call("GET", "/api/config").get("state") != "RUNNING":
        if time.monotonic() > deadline:
            raise SetupError("Home Assistant did not finish starting")
        time.sleep(2)
    status, _ = ha.request("GET", "/api/services", timeout=60)
    if status != 200:
        raise SetupError(
            f"Home Assistant cannot describe its services (HTTP {status}), so its frontend "
            "never gets past 'Loading...'; most likely assist_pipeline's requirements "
            "(pymicro-vad, pyspeex-noise) failed to build for want of a C++ compiler (g++): "
            "see 'Unable to install package' in the log"
        )


def check(ha: HomeAssistant, args: argparse.Namespace) -> None:
    """The smoke test: the frontend can load, the entry is loaded, a point's energy
    has a numeric state."""
    check_frontend(ha)
    print("Home Assistant describes its services (the frontend can load)")
    entry = wait_for_entry(ha)
    if entry["state"] != "loaded":
        raise SetupError(f"the s8000 entry is {entry['state']}: {entry.get('reason')}")
    print(f"the s8000 entry {entry['title']!r} is loaded")
    deadline = time.monotonic() + ENTRY_TIMEOUT_S
    found: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = ha.call("GET", "/api/states")
        found = {
            state["entity_id"]: state["state"]
            for state in states
            if ENERGY_SENSOR.fullmatch(state["entity_id"])
        }
        for entity_id, value in found.items():
            try:
                float(value)
            except ValueError:
                continue
            print(f"{entity_id} = {value}")
            return
        time.sleep(1)
    raise SetupError(f"no numeric state of a point's energy sensor: {found or 'none found'}")


def write_http_config(config: Path, port: int) -> None:
    """Bind Home Assistant's HTTP server to 127.0.0.1:``port`` (see the module's doc)."""
    # Home Assistant is imported only here: provisioning needs none of it.
    from homeassistant.components.http import config as http_config  # noqa: PLC0415

    path = config / ".storage" / http_config.STORAGE_KEY
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        current = None
    data = current.get("data", {}) if isinstance(current, dict) else {}
    stable = data.get(http_config.KEY_STABLE) or {}
    meta = {
        http_config.HTTP_CONFIG_CREATED_AT,
        http_config.HTTP_CONFIG_ERROR,
        http_config.HTTP_CONFIG_ERROR_MESSAGE,
    }
    wanted = http_config.HTTP_STORAGE_SCHEMA(
        {
            **{key: value for key, value in stable.items() if key not in meta},
            "server_host": [LOOPBACK],
            "server_port": port,
        }
    )
    if (
        current is not None
        and current.get("version") == http_config.STORAGE_VERSION
        and current.get("minor_version") == http_config.STORAGE_MINOR_VERSION
        and {key: value for key, value in stable.items() if key not in meta} == wanted
        and data.get(http_config.KEY_PENDING) is None
        and data.get(http_config.KEY_YAML_MIGRATION_DONE) is True
    ):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "version": http_config.STORAGE_VERSION,
        "minor_version": http_config.STORAGE_MINOR_VERSION,
        "key": http_config.STORAGE_KEY,
        "data": {
            http_config.KEY_STABLE: {
                **wanted,
                http_config.HTTP_CONFIG_CREATED_AT: datetime.now(UTC).isoformat(),
                http_config.HTTP_CONFIG_ERROR: None,
                http_config.HTTP_CONFIG_ERROR_MESSAGE: None,
            },
            http_config.KEY_PENDING: None,
            http_config.KEY_YAML_MIGRATION_DONE: True,
        },
    }
    temporary = path.with_suffix(".s8000-tmp")
    temporary.write_text(json.dumps(document, indent=2))
    temporary.chmod(0o600)  # Home Assistant keeps this store private
    temporary.replace(path)


def main() -> int:
    """Run the part asked for; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = parser.add_subparsers(dest="part", required=True)
    http = parts.add_parser("http", help="bind Home Assistant to 127.0.0.1 (before it starts)")
    provision = parts.add_parser("provision", help="onboard, add the meter (while it starts)")
    for part in (http, provision):
        part.add_argument("--port", type=int, required=True, help="Home Assistant's HTTP port")
        part.add_argument("--config", type=Path, required=True, help="the configuration dir")
    provision.add_argument("--modbus-port", type=int, required=True, help="the meter's port")
    provision.add_argument("--pid", type=int, required=True, help="Home Assistant's process id")
    provision.add_argument("--log", default="its log", help="where Home Assistant logs")
    provision.add_argument("--check", action="store_true", help="verify the meter's sensors")
    args = parser.parse_args()
    if args.part == "http":
        write_http_config(args.config, args.port)
        return 0
    password = os.environ.get("S8000_DEV_PASSWORD") or DEFAULT_PASSWORD
    ha = HomeAssistant(args.port)
    try:
        wait_until_up(ha, args)
        print(f"Home Assistant answers on port {args.port}; the local meter on {args.modbus_port}")
        onboarded_now = onboard(ha, password, args.config / TOKEN_FILE)
        ensure_meter(ha, args.modbus_port)
        if onboarded_now:
            remove_onboarding_radio(ha)
        if args.check:
            check(ha, args)
        else:
            entry = wait_for_entry(ha)
            print(f"the s8000 entry {entry['title']!r} is {entry['state']}")
            try:
                check_frontend(ha)
            except SetupError as err:
                print(f"warning: {err}", file=sys.stderr)
    except SetupError as err:
        print(f"develop: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"develop: Home Assistant stopped answering: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if not args.check:
        print(
            f"\n  Open http://localhost:{args.port} and log in as "
            f"{DEV_USERNAME!r} with the password {password!r}.\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
