# Shared by infra/stack.sh and infra/run.sh.

# Alive and not a zombie: a daemon whose parent exited is reparented to PID 1, which in a container
# may never reap it, and `kill -0` succeeds on a zombie.
is_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    local state
    state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [[ $state != Z* ]]
}

# wait_gone PID SECONDS: waits until PID has exited; fails if it is still alive after SECONDS.
wait_gone() {
    local pid=$1 deadline=$((SECONDS + $2))
    while is_alive "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# build_quietly LOG [swift build arguments…]: the build with its output in LOG, a progress line
# every few seconds instead of pages of compiler output, and the end of the log if it fails.
build_quietly() {
    local build_log=$1
    shift
    printf '[build] swift build %s (a first build takes 10 to 30 minutes; full log: %s)\n' "$*" "$build_log" >&2
    swift build "$@" >"$build_log" 2>&1 &
    local pid=$! last="" step
    while kill -0 "$pid" 2>/dev/null; do
        sleep 10
        step="$(grep -o '^\[[0-9]*/[0-9]*\]' "$build_log" | tail -n1 || true)"
        if [[ -n $step && $step != "$last" ]]; then
            printf '[build] %s\n' "$step" >&2
            last=$step
        fi
    done
    if ! wait "$pid"; then
        tail -n 40 "$build_log" >&2
        printf '[build] failed; full log: %s\n' "$build_log" >&2
        return 1
    fi
    printf '[build] done\n' >&2
}
