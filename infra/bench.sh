#!/usr/bin/env bash
# `make bench`: the release build of auth, messages and two socket-handler instances, isolated
# from `make run`'s services (own RabbitMQ vhost, schemas, queue/key namespace and ports), driven
# by chat-bench at each offered rate. Prints delivered/s, loss, latency percentiles, and each
# service's CPU and memory over the send phase. Stops what it started.
#   USERS=1000 RATES="1000 5000" DURATION=20 make bench
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source infra/ports.env
source infra/lib.sh
USERS="${USERS:-1000}"
RATES="${RATES:-1000 5000}"
DURATION="${DURATION:-20}"
STACK_DIR="${SWIFTCHAT_STACK_DIR:-$ROOT/.stack}"
RUN_DIR="$STACK_DIR/run/bench"
LOG_DIR="$STACK_DIR/log"
mkdir -p "$RUN_DIR" "$LOG_DIR"

bash infra/stack.sh up
# A fresh vhost and fresh schemas each run: nothing left over from an earlier run (a backlog in a
# durable queue, say) can stand in front of this run's messages.
bash infra/stack.sh vhost bench
eval "$(bash infra/stack.sh env)"
PGPASSWORD="$DATABASE_ADMIN_PASSWORD" psql -q -h 127.0.0.1 -p "$DATABASE_PORT" -U "$DATABASE_ADMIN_USER" "$DATABASE_NAME" \
    -c "DROP SCHEMA IF EXISTS bench_auth CASCADE; DROP SCHEMA IF EXISTS bench_messages CASCADE" >/dev/null
swift build -c release
BIN="$(swift build -c release --show-bin-path)"

pids=()
stop_all() {
    for pid in "${pids[@]:-}"; do [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]:-}"; do [[ -n $pid ]] && { wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true; }; done
}
trap stop_all EXIT

start() {  # start NAME PORT [VAR=VALUE…]
    local name=$1 port=$2; shift 2
    env AMQP_VHOST=bench HTTP_PORT="$port" LOG_LEVEL=warning BCRYPT_COST=10 \
        DATABASE_USER="$DATABASE_ADMIN_USER" DATABASE_PASSWORD="$DATABASE_ADMIN_PASSWORD" \
        ALLOWED_ORIGINS="http://127.0.0.1:8080,ws://127.0.0.1" "$@" \
        nohup "$BIN/$name" >>"$LOG_DIR/bench-$name-$port.log" 2>&1 </dev/null &
    local pid=$!
    pids+=("$pid")
    echo "$pid" >"$RUN_DIR/$name-$port.pid"
    local deadline=$((SECONDS + 60))
    until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "$name did not start; see $LOG_DIR/bench-$name-$port.log" >&2; exit 1; }
        sleep 0.2
    done
    eval "PID_${name//-/_}_$port=$pid"
}

start auth 18081 DATABASE_SCHEMA=bench_auth SERVICE_NAMESPACE=bench_auth
start messages 18083 DATABASE_SCHEMA=bench_messages SERVICE_NAMESPACE=bench_messages
start socket-handler 18084 SOCKET_NAMESPACE=bench_socket INSTANCE_ID=bench-1
start socket-handler 18085 SOCKET_NAMESPACE=bench_socket INSTANCE_ID=bench-2
services="auth=$PID_auth_18081,messages=$PID_messages_18083,socket-handler-1=$PID_socket_handler_18084,socket-handler-2=$PID_socket_handler_18085"

for rate in $RATES; do
    echo
    echo "== $USERS users, $rate msg/s, ${DURATION}s =="
    "$BIN/chat-bench" --users "$USERS" --rate "$rate" --duration "$DURATION" \
        --auth http://127.0.0.1:18081 --messages http://127.0.0.1:18083 --socket-ports 18084,18085 --services "$services"
done
