#!/usr/bin/env bash
# `make run`: the stack, then every SwiftChat service that exists, behind the local gateway.
# `make stop` (infra/run.sh stop) stops the services and the stack, by their recorded pids.
#
#   infra/run.sh [run]                              build, start the stack and every service
#                                                   (REPLICAS=2: two instances of each)
#   infra/run.sh stop                               stop the services and the stack
#   infra/run.sh services [--record FILE] [NAME…]   (re)start services from the built binaries
#                                                   without building; --record appends the names
#                                                   of those that were not running before
#   infra/run.sh stop-services [--only FILE] [NAME…] stop services (all, those named, or those FILE lists)
#
# The binaries come from `swift build -c $CONFIGURATION --show-bin-path`, or from
# SWIFTCHAT_BIN_DIR when set (infra/test.sh passes the debug build's folder it already has).
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

# The services allow the gateway's own origins (whatever port it is on).
export ALLOWED_ORIGINS="${ALLOWED_ORIGINS:-http://127.0.0.1:$SWIFTCHAT_GATEWAY_PORT,http://localhost:$SWIFTCHAT_GATEWAY_PORT}"

bin_dir() { echo "${SWIFTCHAT_BIN_DIR:-$(swift build -c "$CONFIGURATION" --show-bin-path)}"; }

# selected NAME…: the SERVICES entries named (all of them when no name is given).
selected() {
    local entry name wanted
    for entry in "${SERVICES[@]}"; do
        read -r name _ _ <<<"$entry"
        if [[ $# -eq 0 ]]; then echo "$entry"; continue; fi
        for wanted in "$@"; do [[ $wanted == "$name" ]] && echo "$entry"; done
    done
}

# Instance k (from 1) of a service: its pid file and port.
pid_file() { if [[ ${2:-1} -eq 1 ]]; then echo "$RUN_DIR/service-$1.pid"; else echo "$RUN_DIR/service-$1-$2.pid"; fi; }
instance_port() { echo $(($1 + ($2 - 1) * SWIFTCHAT_REPLICA_PORT_STEP)); }

service_pid() {  # service_pid NAME [INSTANCE]
    local file
    file="$(pid_file "$1" "${2:-1}")"
    [[ -s $file ]] && is_alive "$(cat "$file")" && cat "$file"
}

# The instances of NAME that have a pid file (running or not).
instances_of() {
    local file k
    for file in "$RUN_DIR/service-$1.pid" "$RUN_DIR/service-$1"-*.pid; do
        [[ -e $file ]] || continue
        k="${file##*/service-$1}"; k="${k#-}"; k="${k%.pid}"
        echo "${k:-1}"
    done
}

start_services() {  # start_services [--record FILE] [NAME…]
    local record="" bin entry name port_var schema pid entries
    if [[ ${1:-} == --record ]]; then record=$2; shift 2; fi
    bin="$(bin_dir)"
    mapfile -t entries < <(selected "$@")
    for entry in "${entries[@]}"; do
        read -r name port_var schema <<<"$entry"
        [[ -x "$bin/$name" ]] || continue
        local running="" k
        for k in $(instances_of "$name"); do
            if pid="$(service_pid "$name" "$k")"; then running+=" $pid"; fi
        done
        if [[ -n $running ]]; then
            log "$name already running (pid$running), restarting it with the new build"
            stop_service "$name"
        elif [[ -n $record ]]; then
            echo "$name" >>"$record"
        fi
        local k
        for ((k = 1; k <= SWIFTCHAT_REPLICAS; k++)); do
            start_instance "$bin" "$name" "$(instance_port "${!port_var}" "$k")" "$schema" "$k"
        done
    done
}

start_instance() {  # start_instance BIN NAME PORT SCHEMA INSTANCE
    local bin=$1 name=$2 port=$3 schema=$4 k=$5 log_file
    log_file="$LOG_DIR/$name.log"
    [[ $k -gt 1 ]] && log_file="$LOG_DIR/$name-$k.log"
    (
        eval "$(bash infra/stack.sh env)"
        # Each service its own bus user (least privilege; infra/rabbitmq-definitions.py).
        export HTTP_PORT="$port" SERVICE_NAME="$name" AMQP_USER="$name" AMQP_PASSWORD="swiftchat_$name"
        [[ $schema != - ]] && export DATABASE_SCHEMA="$schema"
        # A session, so a scheduling group, of its own (README, "Each process its own scheduling
        # group"); setsid does not fork here, so `$!` is the service's pid.
        nohup setsid "$bin/$name" >>"$log_file" 2>&1 </dev/null &
        echo $! >"$(pid_file "$name" "$k")"
    )
    local deadline=$((SECONDS + 60))
    # /healthz answers at once; /readyz once migrations ran and the work started.
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
        if ! service_pid "$name" "$k" >/dev/null; then log "$name exited; see $log_file"; exit 1; fi
        ((SECONDS < deadline)) || { log "$name was not ready within 60s; see $log_file"; exit 1; }
        sleep 0.2
    done
    local label=$name
    [[ $k -gt 1 ]] && label="$name (instance $k)"
    log "$label up on 127.0.0.1:$port"
}

stop_service() {  # every instance of NAME
    local pid k
    for k in $(instances_of "$1"); do
        if pid="$(service_pid "$1" "$k")"; then
            kill -TERM "$pid" 2>/dev/null || true   # graceful: drains in-flight work
            wait_gone "$pid" 25 || kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$(pid_file "$1" "$k")"
    done
}

stop_services() {  # stop_services [--only FILE] [NAME…]
    local names=() entry name
    if [[ ${1:-} == --only ]]; then
        [[ -s $2 ]] || return 0
        mapfile -t names <"$2"
        shift 2
    else
        names=("$@")
    fi
    while read -r entry; do
        [[ -n $entry ]] || continue
        read -r name _ _ <<<"$entry"
        stop_service "$name"
    done < <(selected "${names[@]}")
}

mkdir -p "$RUN_DIR" "$LOG_DIR"
case "${1:-run}" in
    run)
        bash infra/stack.sh up
        bash infra/stack.sh reload-nginx   # the gateway lists every instance (REPLICAS)
        build_quietly "$LOG_DIR/build.log" -c "$CONFIGURATION"
        start_services
        cat <<MSG

SwiftChat is running.
  Gateway (point a client here):  http://127.0.0.1:$SWIFTCHAT_GATEWAY_PORT
  Postgres:  127.0.0.1:$SWIFTCHAT_PG_PORT (database $SWIFTCHAT_PG_DATABASE)
  Redis:     127.0.0.1:$SWIFTCHAT_REDIS_PORT
  RabbitMQ:  127.0.0.1:$SWIFTCHAT_AMQP_PORT
  Instances: $SWIFTCHAT_REPLICAS of each service
  Data and logs: $STACK_DIR (logs in $LOG_DIR)
  Stop everything: make stop
MSG
        ;;
    stop)
        stop_services
        bash infra/stack.sh down
        ;;
    services) shift; start_services "$@" ;;
    stop-services) shift; stop_services "$@" ;;
    *) echo "usage: infra/run.sh [run|stop|services [--record FILE] [NAME…]|stop-services [--only FILE] [NAME…]]" >&2; exit 2 ;;
esac
