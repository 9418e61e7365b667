#!/usr/bin/env bash
# `make test`: install and start what is missing, run every test against the real servers, and
# stop exactly what this run started (a stack already up from `make run` is reused and left up).
#
# Steps: the stack; the Swift build and suites; then the five services from that debug build
# behind the gateway, and the browser and gateway tests (Tests/Browser, headless Chromium).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source infra/lib.sh

command -v swift >/dev/null || { echo "swift is not on PATH: install the Swift 6 toolchain (swift.org) first" >&2; exit 1; }

step() { printf '[test] %s\n' "$*" >&2; }

started="$(mktemp)"
started_services="$(mktemp)"
cleanup() {
    local status=$?
    if [[ -s $started_services ]]; then
        step "stopping the services this run started: $(tr '\n' ' ' <"$started_services")"
        bash infra/run.sh stop-services --only "$started_services" || true
    fi
    bash infra/stack.sh down --only "$started" || true
    rm -f "$started" "$started_services"
    exit $status
}
trap cleanup EXIT INT TERM

# Kubernetes manifests and Dockerfiles, checked offline with pinned tools (about a minute once
# installed; the first run installs them): independent of the stack and the build, so first.
step "Kubernetes and container checks (infra/k8s/check.sh; log: ${SWIFTCHAT_STACK_DIR:-.stack}/log/k8s-check.log)"
bash infra/k8s/check.sh

step "Swift formatting (swift format lint --strict, configuration in .swift-format)"
swift format lint --strict --recursive Package.swift Services Shared Tests

step "starting the stack (Postgres, Redis, RabbitMQ, nginx)"
bash infra/stack.sh up --record "$started"
eval "$(bash infra/stack.sh env)"

step "a clone under a private folder (mode 700) still starts Postgres (infra/tests/private-home.sh)"
bash infra/tests/private-home.sh

build_quietly "$SWIFTCHAT_STACK_DIR/log/build-tests.log" --build-tests
step "Swift suites (swift test)"
# Suites run one at a time: some stop, kill and restart the shared servers on purpose.
swift test --skip-build --no-parallel "$@"

# The browser suite drives the real services through the gateway, started from the build above.
SWIFTCHAT_BIN_DIR="$(swift build --show-bin-path)"
export SWIFTCHAT_BIN_DIR
# Two instances of each, as `make run REPLICAS=2` runs them: the scale-out test kills one of each.
export SWIFTCHAT_REPLICAS=2
bash infra/stack.sh reload-nginx
step "starting two instances of each of the five services from the debug build behind the gateway (logs: ${SWIFTCHAT_STACK_DIR}/log)"
bash infra/run.sh services --record "$started_services"
step "browser and gateway tests (Tests/Browser; installer output: ${SWIFTCHAT_STACK_DIR}/log/browser-setup.log)"
bash infra/browser-tests.sh run
