#!/usr/bin/env bash
# Offline checks of everything SwiftChat would run on Kubernetes, one line per check (details in
# $STACK_DIR/log/k8s-check.log). Nothing here needs a cluster, a Docker engine or the network
# beyond PyPI, where it installs its own pinned tools once (check-requirements.txt).
#   render        kubectl kustomize (kustomize v5, built into kubectl) of the dev and prod overlays
#   schema        kubernetes-validate --strict on both renders, Kubernetes 1.30 and 1.37
#   checkov       on both renders and both Dockerfiles; skips only what checkov.yaml lists
#   invariants    check-invariants.py: Postgres connection budget, uids, probes, preStop
#   hadolint      both Dockerfiles (.hadolint.yaml)
#   yamllint      the YAML sources (yamllint.yaml)
#   scripts       ShellCheck on the scripts under infra/k8s
# Neither kube-linter nor kube-score is run: no Debian or PyPI package carries them, and their
# release downloads are out of reach here; checkov covers the same ground.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
STACK_DIR="${SWIFTCHAT_STACK_DIR:-$ROOT/.stack}"
TOOLS="$STACK_DIR/tools/k8s-check"
LOG="$STACK_DIR/log/k8s-check.log"
REQUIREMENTS=infra/k8s/check-requirements.txt
mkdir -p "$STACK_DIR/log"
: >"$LOG"
began=$SECONDS

say() { printf '[k8s-check] %s\n' "$*"; }

# --- tools: a venv of pinned packages, rebuilt when check-requirements.txt changes ------------
wanted="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
if [[ ! -x $TOOLS/bin/checkov || "$(cat "$TOOLS/.requirements" 2>/dev/null)" != "$wanted" ]]; then
    started=$SECONDS
    python3 -c 'import venv, ensurepip' 2>/dev/null \
        || { say "python3 cannot make a venv: apt-get install python3-venv"; exit 1; }
    rm -rf "$TOOLS"
    python3 -m venv "$TOOLS" >>"$LOG" 2>&1
    "$TOOLS/bin/pip" install --disable-pip-version-check -q -r "$REQUIREMENTS" >>"$LOG" 2>&1 \
        || { say "installing the checkers failed (log: $LOG)"; exit 1; }
    echo "$wanted" >"$TOOLS/.requirements"
    say "installed the checkers into ${TOOLS#"$ROOT"/} in $((SECONDS - started)) s"
fi
export PATH="$TOOLS/bin:$PATH"

# --- the checks -------------------------------------------------------------------------------
failed=0
# check NAME COMMAND...: runs COMMAND with its output in the log; one line for the result.
check() {
    local name=$1 started=$SECONDS status=0
    shift
    printf '\n===== %s: %s\n' "$name" "$*" >>"$LOG"
    "$@" >>"$LOG" 2>&1 || status=$?
    if ((status == 0)); then
        say "ok    $name ($((SECONDS - started)) s)${SUMMARY:+: $SUMMARY}"
    else
        say "FAIL  $name ($((SECONDS - started)) s): see $LOG"
        failed=$((failed + 1))
    fi
    SUMMARY=""
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Render from a copy with throwaway dev secrets, so the check neither needs nor reads the
# operator's own (infra/k8s/overlays/dev/secrets/ is git-ignored).
tar -C infra --exclude=k8s/overlays/dev/secrets -cf - k8s rabbitmq-definitions.py | tar -C "$work" -xf -
bash "$work/k8s/dev-secrets.sh" >>"$LOG" 2>&1 || { echo "[k8s-check] making throwaway dev secrets failed:" >&2; tail -n 5 "$LOG" >&2; exit 1; }

render() { kubectl kustomize "$work/k8s/overlays/$1" >"$work/$1.yaml"; }
check "render dev overlay" render dev
check "render prod overlay" render prod

schema() {
    local version
    for version in 1.30.0 1.37.0; do
        kubernetes-validate --strict --quiet --kubernetes-version "$version" "$work/dev.yaml" "$work/prod.yaml" || return 1
    done
}
SUMMARY="$(grep -c '^kind:' "$work/dev.yaml" "$work/prod.yaml" 2>/dev/null | awk -F: '{n += $2} END {print n " objects"}')"
check "kubernetes-validate --strict (1.30, 1.37)" schema

# checkov prints "Passed checks: N, Failed checks: N, Skipped checks: N" per framework.
checkov_run() {
    local framework=$1 out status=0
    shift
    out="$(checkov --config-file infra/k8s/checkov.yaml --framework "$framework" "$@" 2>&1)" || status=$?
    printf '%s\n' "$out"
    local off prefix=CKV_K8S
    [[ $framework == dockerfile ]] && prefix=CKV_DOCKER
    off="$(grep -o "^- ${prefix}_[0-9]*" infra/k8s/checkov.yaml | cut -c3- | paste -sd, -)"
    SUMMARY="$(printf '%s\n' "$out" | grep -o 'Passed checks: [0-9]*, Failed checks: [0-9]*' | head -n1)"
    SUMMARY="$SUMMARY (off in checkov.yaml: ${off:-none})"
    return $status
}
check "checkov kubernetes (dev + prod renders)" checkov_run kubernetes -f "$work/dev.yaml" -f "$work/prod.yaml"
check "checkov dockerfile" checkov_run dockerfile -f infra/Dockerfile -f infra/web-image/Dockerfile

invariants() {
    python infra/k8s/check-invariants.py "$work/dev.yaml" "$work/prod.yaml" infra/k8s/overlays/dev/provision-postgres.sh \
        | tee "$work/invariants.txt"
    SUMMARY="$(tail -n1 "$work/invariants.txt")"
}
check "invariants" invariants
check "hadolint" hadolint --config infra/.hadolint.yaml infra/Dockerfile infra/web-image/Dockerfile
check "yamllint" yamllint --strict -c infra/k8s/yamllint.yaml infra/k8s skaffold.yaml
check "shellcheck" shellcheck infra/k8s/check.sh infra/k8s/dev-secrets.sh infra/k8s/overlays/dev/provision-postgres.sh

if ((failed > 0)); then
    say "$failed check(s) failed in $((SECONDS - began)) s (log: $LOG)"
    exit 1
fi
say "all passed in $((SECONDS - began)) s"
