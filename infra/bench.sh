#!/usr/bin/env bash
# `make bench`: the release build of every service (two socket-handler instances), isolated from
# `make run`'s (own RabbitMQ vhost, schemas, queue/key namespace and ports), driven by chat-bench:
#   - rate:    1:1 chat at each offered rate (USERS users, DURATION seconds): delivered/s, loss,
#              p50/p99/p999 sender → recipient and ack latency (open loop, from the scheduled send)
#   - idle:    resident memory per idle authenticated socket, at IDLE_SOCKETS sockets
#   - catchup: 5,000 stored messages of one conversation fetched in pages of 1,000, one page
#              after another and all at once by seq range
#   - fanout:  one message to a 1,024-member group, all online: the last copy
# Each prints the CPU (share of a core, and µs per delivered message), RSS and wait for a core of
# every process: the services, Postgres (all backends), RabbitMQ, Redis and the load generator.
# Queues are purged before each phase so one phase's backlog cannot spoil the next. The rate phases
# end in one table (offered rate, delivered/s, lost, latencies, CPU µs/msg, the machine's busy and
# steal shares) and the highest offered rate at which every message was delivered and acked with
# p99 ≤ 50 ms. Stops what it started.
#   USERS=1000 RATES="1000 5000" DURATION=20 PHASES="rate idle catchup fanout" make bench
#   SERVICES_BIN=/path/to/other/release/bin make bench   # the same load against other binaries
#   AMQP_BATCH_INTERVAL_MS=0 make bench                  # the services inherit the environment
#   BENCH_LOG_LEVEL=info make bench                      # the services log more than warnings
#   BROKER_PROBE_MS=0 make bench                         # no broker probe (10 ms by default)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source infra/ports.env
source infra/lib.sh
USERS="${USERS:-1000}"
RATES="${RATES:-1000 2500 5000 7500 10000}"
DURATION="${DURATION:-20}"
PHASES="${PHASES:-rate idle catchup fanout}"
IDLE_SOCKETS="${IDLE_SOCKETS:-10000}"
BROKER_PROBE_MS="${BROKER_PROBE_MS:-10}"
STACK_DIR="${SWIFTCHAT_STACK_DIR:-$ROOT/.stack}"
RUN_DIR="$STACK_DIR/run/bench"
LOG_DIR="$STACK_DIR/log"
mkdir -p "$RUN_DIR" "$LOG_DIR"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

bash infra/stack.sh up
# A fresh vhost and fresh schemas each run: nothing left over from an earlier run (a backlog in a
# durable queue, say) can stand in front of this run's messages.
bash infra/stack.sh vhost bench
eval "$(bash infra/stack.sh env)"
bash infra/stack.sh drop-schemas bench_auth bench_users bench_messages bench_notifications
echo "[bench] building (release; log: $LOG_DIR/bench-build.log)"
swift build -c release >"$LOG_DIR/bench-build.log" 2>&1 || { tail -n 30 "$LOG_DIR/bench-build.log"; exit 1; }
BENCH_BIN="$(swift build -c release --show-bin-path)"
BIN="${SERVICES_BIN:-$BENCH_BIN}"
echo "[bench] services from $BIN"

pids=()
ports=()
stop_all() {
    for pid in "${pids[@]:-}"; do [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]:-}"; do [[ -n $pid ]] && { wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true; }; done
}
trap stop_all EXIT

start() {  # start NAME PORT [VAR=VALUE…]
    local name=$1 port=$2; shift 2
    # The admin role owns the bench schemas. Signing up the users (bcrypt) happens before the clock.
    # A session, so a scheduling group, of its own, as `make run` starts it (see infra/run.sh).
    env AMQP_VHOST=bench HTTP_PORT="$port" LOG_LEVEL=${BENCH_LOG_LEVEL:-warning} BCRYPT_COST=10 \
        DATABASE_USER="$DATABASE_ADMIN_USER" DATABASE_PASSWORD="$DATABASE_ADMIN_PASSWORD" \
        ALLOWED_ORIGINS="http://127.0.0.1:8080,ws://127.0.0.1" "$@" \
        nohup setsid "$BIN/$name" >>"$LOG_DIR/bench-$name-$port.log" 2>&1 </dev/null &
    local pid=$!
    pids+=("$pid")
    ports+=("$port")
    echo "$pid" >"$RUN_DIR/$name-$port.pid"
    local deadline=$((SECONDS + 60))
    until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "$name did not start; see $LOG_DIR/bench-$name-$port.log" >&2; exit 1; }
        sleep 0.2
    done
    eval "PID_${name//-/_}_$port=$pid"
}

start auth 18081 DATABASE_SCHEMA=bench_auth SERVICE_NAMESPACE=bench_auth
start users 18082 DATABASE_SCHEMA=bench_users SERVICE_NAMESPACE=bench_users
start messages 18083 DATABASE_SCHEMA=bench_messages SERVICE_NAMESPACE=bench_messages
start notifications 18086 DATABASE_SCHEMA=bench_notifications SERVICE_NAMESPACE=bench_notifications INSTANCE_ID=bench-n1
# SOCKET_NAMESPACE: what socket-handler read before it had SERVICE_NAMESPACE (older binaries).
start socket-handler 18084 SERVICE_NAMESPACE=bench_socket SOCKET_NAMESPACE=bench_socket INSTANCE_ID=bench-1
start socket-handler 18085 SERVICE_NAMESPACE=bench_socket SOCKET_NAMESPACE=bench_socket INSTANCE_ID=bench-2

run_pid() { cat "$STACK_DIR/run/$1.pid"; }
services="socket-handler-1=$PID_socket_handler_18084,socket-handler-2=$PID_socket_handler_18085,messages=$PID_messages_18083"
services+=",notifications=$PID_notifications_18086,users=$PID_users_18082,auth=$PID_auth_18081"
servers="postgres=$(run_pid postgres)+,rabbitmq=$(run_pid rabbitmq-node),redis=$(run_pid redis)"
# Whose stage timers (handler time per queue, outbox relay rounds) are printed after each phase.
stages="messages=18083,notifications=18086,socket-handler-1=18084,socket-handler-2=18085,users=18082,auth=18081"

# A phase the services cannot do (an older build's smaller limits, say) is reported, not fatal.
bench() {
    AMQP_VHOST=bench "$BENCH_BIN/chat-bench" --auth http://127.0.0.1:18081 --messages-url http://127.0.0.1:18083 --socket-ports 18084,18085 \
        --stages "$stages" "$@" \
        || echo "[bench] this phase failed (exit $?)"
}
purge() { bash infra/stack.sh purge bench; }
# Each rate phase appends its headline here; the run ends with them as one table.
RESULTS="$RUN_DIR/rate-results.txt"
: >"$RESULTS"
offered=0  # rate phases run: PHASES may name `rate` more than once

for phase in $PHASES; do
    case $phase in
        rate)
            for rate in $RATES; do
                offered=$((offered + 1))
                purge
                echo
                echo "== rate: $USERS users, $rate msg/s offered for ${DURATION}s =="
                bench --phase rate --users "$USERS" --rate "$rate" --duration "$DURATION" --probe-every "$BROKER_PROBE_MS" \
                    --watch "$services,$servers" --results "$RESULTS"
            done ;;
        idle)
            purge
            echo
            echo "== idle: $IDLE_SOCKETS authenticated sockets on one socket-handler instance =="
            bench --phase idle --sockets "$IDLE_SOCKETS" --watch "socket-handler-1=$PID_socket_handler_18084" ;;
        catchup)
            purge
            echo
            echo "== catch-up: 5,000 messages of one conversation =="
            bench --phase catchup --messages 5000 --watch "messages=$PID_messages_18083,postgres=$(run_pid postgres)+" ;;
        fanout)
            purge
            echo
            echo "== fan-out: one message to a 1,024-member group, all online =="
            bench --phase fanout --group-size 1024 --watch "$services,$servers" ;;
        *) echo "unknown phase $phase (rate idle catchup fanout)" >&2; exit 2 ;;
    esac
done

if [[ " $PHASES " == *" rate "* ]]; then
    echo
    echo "== summary: every offered rate, sender → recipient latency from the scheduled send =="
    # A rate phase that failed left no row: say so, rather than a table that looks whole.
    missing=$((offered - $(wc -l <"$RESULTS")))
    ((missing <= 0)) || echo "[bench] no row for $missing of the offered rates: their phase failed (see above)"
    if [[ -s $RESULTS ]]; then bench --phase summary --results "$RESULTS"; fi
fi

# The services' own metrics at the end (handler times per queue, batch sizes, outbox, send → ack),
# for reading where a phase's time went.
for port in "${ports[@]}"; do
    curl -sf "http://127.0.0.1:$port/metrics" >"$LOG_DIR/bench-metrics-$port.txt" 2>/dev/null || true
done
echo "[bench] the services' metrics: $LOG_DIR/bench-metrics-<port>.txt"
