# shellcheck shell=bash
# The project's toolchain: a Python >= 3.14.2 environment with the pinned
# Home Assistant release, its test harness and the engine, built once and
# reused.  Sourced by scripts/test, scripts/develop and scripts/bench.
#
# Where a python3.14 (>= 3.14.2) is on PATH (a laptop, the HA devcontainer,
# GitHub Actions) it is used directly.  Where none is (Debian 12 ships 3.11),
# a Debian sid root with python3.14 is made with debootstrap under the cache
# directory, and every command of the HA side runs inside it: a private mount
# namespace (unshare -m) bind-mounts this checkout at the same path and
# chroots there, so no mount outlives the command.
#
# Everything built is cached under $S8000_CACHE_DIR (default
# ~/.cache/s8000-dev) and keyed by the hash of the files that define it, so a
# second run, or a fresh clone on the same machine, reuses it.

set -euo pipefail

S8000_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
S8000_CACHE_DIR=${S8000_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/s8000-dev}
S8000_SID_ROOT="$S8000_CACHE_DIR/sid-root"
S8000_SID_MIRROR=${S8000_SID_MIRROR:-http://deb.debian.org/debian}
# Packages of the sid root: Python 3.14 with headers and a compiler for the
# few wheels that build from source.
# g++: Home Assistant's assist_pipeline pins C++ extensions (pymicro-vad,
# pyspeex-noise) with no Python 3.14 wheels, and the frontend needs them.
S8000_SID_PACKAGES="python3.14,python3.14-venv,python3.14-dev,ca-certificates,gcc,g++,libc6-dev"
# Installed with apt inside the root once it is made (debootstrap cannot
# configure chromium's desktop dependencies itself): the headless browser of
# the web interface's tests, and a font for its screenshots.
S8000_SID_APT="chromium fonts-dejavu-core"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Prints the first python >= 3.14.2 on PATH, or nothing.
host_python314() {
    local candidate
    for candidate in python3.14 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 14, 2))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 0
}

# "host" or "chroot": where the HA side runs.  S8000_FORCE_CHROOT=1 picks the
# chroot even where a python3.14 exists (used to test this script).
toolchain_mode() {
    if [[ "${S8000_FORCE_CHROOT:-0}" != 1 && -n "$(host_python314)" ]]; then
        echo host
    else
        echo chroot
    fi
}

# Hash of everything that defines the environment's contents.
toolchain_hash() {
    cat "$S8000_REPO/requirements_test.txt" \
        "$S8000_REPO/s8000_engine/pyproject.toml" \
        "$S8000_REPO/scripts/lib/toolchain.sh" \
        "$S8000_REPO/scripts/lib/provision_venv.sh" |
        sha256sum | cut -c1-16
}

# Makes the Debian sid root once (about 35-75 s and 640 MB).
ensure_sid_root() {
    # The marker holds the package list the root was built with: a root
    # built with another list is built again.
    [[ -f "$S8000_SID_ROOT/.s8000-ready" &&
        "$(cat "$S8000_SID_ROOT/.s8000-ready")" == "$S8000_SID_PACKAGES" ]] && return 0
    [[ $(id -u) == 0 ]] || die "no Python >= 3.14.2 on PATH, and building the Debian sid root needs root.
Install python3.14 (>= 3.14.2) or run this script as root."
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap"
        command -v apt-get >/dev/null 2>&1 || die "debootstrap is missing and there is no apt-get to install it"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    local tmp="$S8000_SID_ROOT.partial"
    rm -rf "$tmp"
    mkdir -p "$S8000_CACHE_DIR"
    log "building a Debian sid root with Python 3.14 in $S8000_SID_ROOT (once)"
    debootstrap --variant=minbase --include="$S8000_SID_PACKAGES" sid "$tmp" "$S8000_SID_MIRROR" \
        >"$S8000_CACHE_DIR/debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $S8000_CACHE_DIR/debootstrap.log"
    printf '%s' "$S8000_SID_PACKAGES" >"$tmp/.s8000-ready"
    rm -rf "$S8000_SID_ROOT"
    mv "$tmp" "$S8000_SID_ROOT"
}

# Installs $S8000_SID_APT in the sid root once (about 20 s).
ensure_sid_apt() {
    [[ -f "$S8000_SID_ROOT/.s8000-apt" &&
        "$(cat "$S8000_SID_ROOT/.s8000-apt")" == "$S8000_SID_APT" ]] && return 0
    log "installing $S8000_SID_APT in the Debian sid root (once)"
    cp -L /etc/resolv.conf "$S8000_SID_ROOT/etc/resolv.conf"
    # The mirror's sid Release file may be past its Valid-Until date: the
    # packages are what debootstrap took, so the date is not checked.
    # shellcheck disable=SC2016
    unshare -m --propagation private -- bash -c '
        set -e
        root=$1; shift
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
            bash -c "apt-get -o Acquire::Check-Valid-Until=false update -qq &&
                apt-get install -y -qq --no-install-recommends $*"
    ' _ "$S8000_SID_ROOT" "$S8000_SID_APT" >"$S8000_CACHE_DIR/apt.log" 2>&1 ||
        die "installing $S8000_SID_APT in the sid root failed; see $S8000_CACHE_DIR/apt.log"
    printf '%s' "$S8000_SID_APT" >"$S8000_SID_ROOT/.s8000-apt"
}

# Environment passed into the chroot: a clean set, so the host's pip
# settings (local wheel folders, constraint files) do not leak in.
_chroot_env() {
    local -a vars=(
        "HOME=/root" "LANG=C.UTF-8" "LC_ALL=C.UTF-8" "TERM=${TERM:-dumb}"
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        "PIP_CERT=/etc/s8000-host-ca.crt" "SSL_CERT_FILE=/etc/s8000-host-ca.crt"
        "REQUESTS_CA_BUNDLE=/etc/s8000-host-ca.crt" "PIP_DISABLE_PIP_VERSION_CHECK=1"
        "PIP_DEFAULT_TIMEOUT=${PIP_DEFAULT_TIMEOUT:-120}" "PYTHONDONTWRITEBYTECODE=1"
        "S8000_CACHE_DIR=/var/cache/s8000-dev" "S8000_IN_CHROOT=1"
    )
    local name
    for name in CI S8000_TEST_ARGS S8000_DEVELOP_PORT S8000_MODBUS_PORT S8000_CONFIG_DIR \
        S8000_CRASHES PYTEST_ADDOPTS S8000_DEV_PASSWORD S8000_CHROMIUM S8000_REQUIRE_BROWSER \
        S8000_REQUIRE_FULL_DISK S8000_TEST_WORKERS S8000_ENGINE_COVERAGE \
        S8000_WEB_PORT S8000_WEB_PASSWORD S8000_SCREENSHOTS; do
        [[ -n "${!name:-}" ]] && vars+=("$name=${!name}")
    done
    printf '%s\n' "${vars[@]}"
}

# Runs a command inside the sid root, in this checkout, with nothing mounted
# once it returns.
run_in_chroot() {
    local root="$S8000_SID_ROOT"
    # Name resolution and the host's CA bundle (the registries may sit behind
    # a proxy whose CA only the host trusts).
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    local bundle
    for bundle in "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
        if [[ -n "$bundle" && -f "$bundle" ]]; then
            cp -L "$bundle" "$root/etc/s8000-host-ca.crt"
            break
        fi
    done
    mkdir -p "$root/var/cache/s8000-dev"
    local -a envs
    mapfile -t envs < <(_chroot_env)
    # shellcheck disable=SC2016
    unshare -m --propagation private -- bash -c '
        set -e
        root=$1; repo=$2; shift 2
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mount --rbind /sys "$root/sys" 2>/dev/null || true
        mount -t tmpfs tmpfs "$root/tmp"
        # After /tmp: a checkout under /tmp needs its mount point on the tmpfs.
        mkdir -p "$root$repo"
        mount --bind "$repo" "$root$repo"
        exec chroot "$root" "$@"
    ' _ "$root" "$S8000_REPO" env -i "${envs[@]}" bash -c 'cd "$1" && shift && exec "$@"' _ "$S8000_REPO" "$@"
}

# The venv directory as the HA side sees it.
venv_dir() {
    if [[ $(toolchain_mode) == host ]]; then
        echo "$S8000_CACHE_DIR/venv-$(toolchain_hash)"
    else
        echo "/var/cache/s8000-dev/venv-$(toolchain_hash)"
    fi
}

# Runs a command on the HA side (host or chroot), from the checkout.
run_ha_side() {
    if [[ $(toolchain_mode) == host ]]; then
        (cd "$S8000_REPO" && S8000_CACHE_DIR="$S8000_CACHE_DIR" "$@")
    else
        run_in_chroot "$@"
    fi
}

# Builds (once) and refreshes the environment; afterwards `run_ha_side
# "$(venv_dir)/bin/python" ...` runs in it.
ensure_toolchain() {
    mkdir -p "$S8000_CACHE_DIR"
    local python
    exec 9>"$S8000_CACHE_DIR/.lock"
    flock 9
    if [[ $(toolchain_mode) == host ]]; then
        python=$(host_python314)
        log "using $python ($("$python" --version))"
    else
        ensure_sid_root || return 1
        ensure_sid_apt || return 1
        python=/usr/bin/python3.14
        log "using $python in the Debian sid root $S8000_SID_ROOT"
    fi
    # Explicit: errexit does not apply where a caller tests this function.
    run_ha_side bash scripts/lib/provision_venv.sh "$python" "$(venv_dir)" || {
        flock -u 9
        return 1
    }
    flock -u 9
}
