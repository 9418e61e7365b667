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
