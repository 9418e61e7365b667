#!/usr/bin/env bash
# `make test`: install and start what is missing, run every test against the real servers, and
# stop exactly what this run started (a stack already up from `make run` is reused and left up).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

command -v swift >/dev/null || { echo "swift is not on PATH: install the Swift 6 toolchain (swift.org) first" >&2; exit 1; }

started="$(mktemp)"
cleanup() {
    local status=$?
    bash infra/stack.sh down --only "$started" || true
    rm -f "$started"
    exit $status
}
trap cleanup EXIT INT TERM

bash infra/stack.sh up --record "$started"
eval "$(bash infra/stack.sh env)"

swift build --build-tests
# Suites run one at a time: some stop, kill and restart the shared servers on purpose.
swift test --skip-build --no-parallel "$@"
