#!/usr/bin/env bash
# `make test` step: the stack starts from a clone under a private folder (mode 700, like /root's
# home when run as root). Postgres, run as the postgres user, must still reach its data: the stack
# script gives that user passage, or stops with a message saying what to do. Its own Postgres on a
# spare port, in a throwaway folder; stops and removes what it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ $(id -u) -ne 0 ]]; then
    echo "[private-home] skipped: only root runs Postgres as another user (postgres)"
    exit 0
fi
home="$(mktemp -d /tmp/swiftchat-private.XXXXXX)"
chmod 700 "$home"
clone="$home/clone"
mkdir -p "$clone"
cp -R "$ROOT/infra" "$clone/infra"
export SWIFTCHAT_STACK_DIR="$clone/.stack" SWIFTCHAT_PG_PORT=54339
cleanup() {
    bash "$clone/infra/stack.sh" stop postgres >/dev/null 2>&1 || true
    rm -rf "$home"
}
trap cleanup EXIT
bash "$clone/infra/stack.sh" start postgres
PGPASSWORD=swiftchat psql -q -h 127.0.0.1 -p "$SWIFTCHAT_PG_PORT" -U swiftchat -d swiftchat -c "SELECT 1" >/dev/null
echo "[private-home] Postgres started and answered from a clone under a mode-700 folder ($home)"
