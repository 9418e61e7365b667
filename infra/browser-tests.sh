#!/usr/bin/env bash
# The browser and gateway tests (Tests/Browser): Debian's headless Chromium driven by selenium,
# and plain HTTP / websocket checks of the gateway. They run against a gateway with all five
# services behind it (infra/test.sh starts them; or `make run`).
#
#   infra/browser-tests.sh install           apt-get chromium + chromium-driver (+ python3-venv),
#                                            and a project-local venv with the pinned packages
#   infra/browser-tests.sh run [PYTEST ARGS] install, then run the suite against the gateway
#
# Ports come from infra/ports.env (SWIFTCHAT_* variables override them), so the suite runs against
# any stack. Installer output goes to $LOG_DIR/browser-setup.log.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source infra/ports.env
STACK_DIR="${SWIFTCHAT_STACK_DIR:-$ROOT/.stack}"
LOG_DIR="$STACK_DIR/log"
VENV="$STACK_DIR/venv"
SETUP_LOG="$LOG_DIR/browser-setup.log"
REQUIREMENTS="$ROOT/Tests/Browser/requirements.txt"

log() { printf '[browser] %s\n' "$*" >&2; }
die() { printf '[browser] error: %s\n' "$*" >&2; exit 1; }
is_root() { [[ $(id -u) -eq 0 ]]; }
as_root() { if is_root; then "$@"; else sudo "$@"; fi; }

APT_PACKAGES=(chromium chromium-driver python3 python3-venv fonts-dejavu-core)

missing_packages() {
    local missing=()
    for package in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    echo "${missing[@]:-}"
}

install_packages() {
    local missing
    missing="$(missing_packages)"
    [[ -z "$missing" ]] && return 0
    log "installing $missing (apt-get; output in $SETUP_LOG)"
    as_root apt-get update -qq >>"$SETUP_LOG" 2>&1 || die "apt-get update failed: $SETUP_LOG"
    # policy-rc.d keeps Debian's postinst scripts from starting system-wide services.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
        created_policy=1
    fi
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
        >>"$SETUP_LOG" 2>&1 \
        || { [[ $created_policy -eq 1 ]] && as_root rm -f "$policy"; die "apt-get install failed: $SETUP_LOG"; }
    [[ $created_policy -eq 1 ]] && as_root rm -f "$policy"
    return 0
}

# A venv under the stack folder (git-ignored), rebuilt only when requirements.txt changes.
install_venv() {
    local stamp="$VENV/.requirements.sha256" wanted
    wanted="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
    [[ -x $VENV/bin/python && -s $stamp && "$(cat "$stamp")" == "$wanted" ]] && return 0
    log "creating the test venv in $VENV (pip; output in $SETUP_LOG)"
    rm -rf "$VENV"
    # Debian's own interpreter, the one python3-venv belongs to.
    /usr/bin/python3 -m venv "$VENV" >>"$SETUP_LOG" 2>&1 || die "python3 -m venv failed: $SETUP_LOG"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS" >>"$SETUP_LOG" 2>&1 \
        || die "pip install failed: $SETUP_LOG"
    echo "$wanted" >"$stamp"
}

cmd_install() {
    mkdir -p "$LOG_DIR"
    install_packages
    install_venv
}

cmd_run() {
    cmd_install
    export SWIFTCHAT_GATEWAY_URL="${SWIFTCHAT_GATEWAY_URL:-http://127.0.0.1:$SWIFTCHAT_GATEWAY_PORT}"
    export SWIFTCHAT_STACK_DIR="$STACK_DIR"
    # The services' ports, for a test that stands in for a service (Tests/Browser/stack.py).
    export SWIFTCHAT_AUTH_PORT SWIFTCHAT_USERS_PORT SWIFTCHAT_MESSAGES_PORT SWIFTCHAT_SOCKET_PORT SWIFTCHAT_NOTIFICATIONS_PORT
    curl -sf "$SWIFTCHAT_GATEWAY_URL/gateway/healthz" >/dev/null \
        || die "no gateway at $SWIFTCHAT_GATEWAY_URL (start it: make run, or infra/test.sh)"
    # A gateway started before infra/nginx.conf.template changed keeps its old configuration.
    curl -sI "$SWIFTCHAT_GATEWAY_URL/" | grep -qi '^content-security-policy:' \
        || die "the gateway at $SWIFTCHAT_GATEWAY_URL runs an older configuration (no web client headers at /); restart it: infra/stack.sh stop nginx && infra/stack.sh start nginx"
    export PYTHONDONTWRITEBYTECODE=1
    log "running Tests/Browser against $SWIFTCHAT_GATEWAY_URL"
    cd "$ROOT/Tests/Browser"
    "$VENV/bin/python" -m pytest "$@"
}

case "${1:-run}" in
    install) cmd_install ;;
    run) shift || true; cmd_run "$@" ;;
    *) die "usage: infra/browser-tests.sh [install|run [pytest args]]" ;;
esac
