#!/usr/bin/env bash
# `make run`: the stack, then every SwiftChat service that exists, behind the local gateway.
# `make stop` (infra/run.sh stop) stops the services and the stack, by their recorded pids.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source infra/ports.env
source infra/lib.sh
STACK_DIR="${SWIFTCHAT_STACK_DIR:-$ROOT/.stack}"
RUN_DIR="$STACK_DIR/run"
LOG_DIR="$STACK_DIR/log"
CONFIGURATION="${CONFIGURATION:-debug}"

# service name, its HTTP port variable, its schema (or - for none)
SERVICES=(
    "auth SWIFTCHAT_AUTH_PORT auth"
    "users SWIFTCHAT_USERS_PORT users"
    "messages SWIFTCHAT_MESSAGES_PORT messages"
    "socket-handler SWIFTCHAT_SOCKET_PORT -"
    "notifications SWIFTCHAT_NOTIFICATIONS_PORT notifications"
)

log() { printf '[run] %s\n' "$*" >&2; }

service_pid() {
    local file="$RUN_DIR/service-$1.pid"
    [[ -s $file ]] && is_alive "$(cat "$file")" && cat "$file"
}

start_services() {
    local bin
    bin="$(swift build -c "$CONFIGURATION" --show-bin-path)"
    for entry in "${SERVICES[@]}"; do
        read -r name port_var schema <<<"$entry"
        [[ -x "$bin/$name" ]] || continue
        if pid="$(service_pid "$name")"; then
            log "$name already running (pid $pid), restarting it with the new build"
            stop_service "$name"
        fi
        local port=${!port_var}
        (
            eval "$(bash infra/stack.sh env)"
            export HTTP_PORT="$port" SERVICE_NAME="$name"
            [[ $schema != - ]] && export DATABASE_SCHEMA="$schema"
            nohup "$bin/$name" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
            echo $! >"$RUN_DIR/service-$name.pid"
        )
        local deadline=$((SECONDS + 60))
        until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
            if ! service_pid "$name" >/dev/null; then log "$name exited; see $LOG_DIR/$name.log"; exit 1; fi
            ((SECONDS < deadline)) || { log "$name did not answer /healthz within 60s; see $LOG_DIR/$name.log"; exit 1; }
            sleep 0.2
        done
        log "$name up on 127.0.0.1:$port"
    done
}

stop_service() {
    local pid
    pid="$(service_pid "$1")" || return 0
    kill -TERM "$pid" 2>/dev/null || true   # graceful: drains in-flight work
    wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$RUN_DIR/service-$1.pid"
}

case "${1:-run}" in
    run)
        bash infra/stack.sh up
        swift build -c "$CONFIGURATION"
        start_services
        cat <<MSG

SwiftChat is running.
  Gateway (point a client here):  http://127.0.0.1:$SWIFTCHAT_GATEWAY_PORT
  Postgres:  127.0.0.1:$SWIFTCHAT_PG_PORT (database $SWIFTCHAT_PG_DATABASE)
  Redis:     127.0.0.1:$SWIFTCHAT_REDIS_PORT
  RabbitMQ:  127.0.0.1:$SWIFTCHAT_AMQP_PORT
  Data and logs: $STACK_DIR (logs in $LOG_DIR)
  Stop everything: make stop
MSG
        ;;
    stop)
        for entry in "${SERVICES[@]}"; do
            read -r name _ _ <<<"$entry"
            stop_service "$name"
        done
        bash infra/stack.sh down
        ;;
    *) echo "usage: infra/run.sh [run|stop]" >&2; exit 2 ;;
esac
