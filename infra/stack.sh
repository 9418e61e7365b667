#!/usr/bin/env bash
# The local stack: PostgreSQL, Redis, RabbitMQ and nginx on 127.0.0.1, on SwiftChat's own ports,
# with every byte of data under a project-local folder (.stack/ by default).
#
#   infra/stack.sh install                 apt-get what is missing
#   infra/stack.sh up [--record FILE]      install + start everything not already up; with
#                                          --record, append the names of what this call started
#   infra/stack.sh down [--only FILE]      stop everything (or only what FILE lists), by pid
#   infra/stack.sh start|stop|kill NAME    one component (postgres, redis, rabbitmq, nginx);
#                                          kill is SIGKILL, for fault-injection tests
#   infra/stack.sh status                  what is up
#   infra/stack.sh env                     the environment variables that point at this stack
#   infra/stack.sh vhost NAME              (re)create an empty RabbitMQ virtual host (isolated exchanges)
#   infra/stack.sh purge NAME              empty every queue of a virtual host
#   infra/stack.sh drop-schemas NAME…      drop Postgres schemas with all they hold (the benchmark's)
#   infra/stack.sh reload-nginx            regenerate the gateway config (replicas) and reload it
#
# Safe to run twice: a component whose pid file names a live process is reused, not restarted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=infra/ports.env
source "$ROOT/infra/ports.env"
# shellcheck source=infra/lib.sh
source "$ROOT/infra/lib.sh"
STACK_DIR="${SWIFTCHAT_STACK_DIR:-$ROOT/.stack}"
RUN_DIR="$STACK_DIR/run"
LOG_DIR="$STACK_DIR/log"
COMPONENTS=(postgres redis rabbitmq nginx)

# Daemons started below must not inherit the caller's descriptors (a test harness's pipes, make's
# jobserver): a caller waiting for those to close would wait for the daemon's whole life.
for fd_path in /proc/$$/fd/*; do
    fd=${fd_path##*/}
    if [[ $fd -gt 2 && $fd -ne 255 ]]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done
unset fd fd_path

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

is_root() { [[ $(id -u) -eq 0 ]]; }
as_root() { if is_root; then "$@"; else sudo "$@"; fi; }

# ---------------------------------------------------------------------------------------------
# install

APT_PACKAGES=(postgresql redis-server rabbitmq-server nginx-light librabbitmq-dev libhiredis-dev
              libjemalloc-dev pkg-config libssl-dev zlib1g-dev curl openssl procps acl python3)

missing_packages() {
    local missing=()
    for package in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    echo "${missing[@]:-}"
}

cmd_install() {
    local missing
    missing="$(missing_packages)"
    [[ -z "$missing" ]] && return 0
    mkdir -p "$LOG_DIR"
    local install_log="$LOG_DIR/install.log"
    log "installing: $missing (apt output: $install_log)"
    as_root apt-get update -qq >>"$install_log" 2>&1 || die "apt-get update failed; see $install_log"
    # policy-rc.d keeps Debian's postinst scripts from starting system-wide copies of the servers.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
        created_policy=1
    fi
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >>"$install_log" 2>&1 \
        || { [[ $created_policy -eq 1 ]] && as_root rm -f "$policy"; tail -n 20 "$install_log" >&2; die "apt-get install failed; see $install_log"; }
    [[ $created_policy -eq 1 ]] && as_root rm -f "$policy"
    return 0
}

# ---------------------------------------------------------------------------------------------
# helpers

pidfile() { echo "$RUN_DIR/$1.pid"; }


alive_pid() {  # prints the pid of component $1 if its recorded process is alive
    local file
    file="$(pidfile "$1")"
    [[ -s $file ]] || return 1
    local pid
    pid="$(head -n1 "$file")"
    [[ -n $pid ]] && is_alive "$pid" && { echo "$pid"; return 0; }
    return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The sockets a live process holds on local TCP port $1 of 127.0.0.1 or any address, as
# /proc/net/tcp rows (and /proc/net/tcp6's, where there is one). Sockets no process owns (inode
# 0: a killed server's closing connections, TIME_WAIT) do not stop the next bind.
port_holders() {
    local hex tables=(/proc/net/tcp)
    hex="$(printf '%04X' "$1")"
    [[ -r /proc/net/tcp6 ]] && tables+=(/proc/net/tcp6)
    awk -v port=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == port && $10 != "0" &&
        (FILENAME ~ /tcp6$/ || $2 ~ /^(0100007F|00000000):/)' "${tables[@]}" 2>/dev/null || true
}

# A server that cannot bind its port exits at once: wait a little for a holder to let go, then say
# who holds it instead of starting a server that cannot listen.
wait_port_free() {  # wait_port_free NAME PORT SECONDS
    local deadline=$((SECONDS + $3)) holders
    while holders="$(port_holders "$2")" && [[ -n $holders ]]; do
        ((SECONDS < deadline)) || die "$1 cannot start: port $2 is held by another process's socket (/proc/net/tcp: $(echo "$holders" | head -n1 | tr -s ' '))"
        sleep 0.2
    done
}

# The last lines of a log, for an error message that should explain itself.
log_tail() { [[ -s $1 ]] && { printf '[stack] last lines of %s:\n' "$1" >&2; tail -n "${2:-15}" "$1" | sed 's/^/    /' >&2; }; true; }

wait_for() {  # wait_for NAME SECONDS COMMAND...
    local name=$1 seconds=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$name did not become ready within ${seconds}s (logs: $LOG_DIR)"
        sleep 0.2
    done
}


# The unprivileged user that owns Postgres' data (Postgres refuses to run as root).
pg_user() { if is_root; then echo postgres; else id -un; fi; }
as_pg_user() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }

# ---------------------------------------------------------------------------------------------
# postgres

postgres_ready() { PGPASSWORD="$SWIFTCHAT_PG_ADMIN_PASSWORD" "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$SWIFTCHAT_PG_PORT"; }

# Notices ("schema … already exists, skipping" on every start) are not news: warnings and errors only.
psql_admin() {
    PGPASSWORD="$SWIFTCHAT_PG_ADMIN_PASSWORD" PGOPTIONS="${PGOPTIONS:+$PGOPTIONS }-c client_min_messages=warning" "$(pg_bin)/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 \
        -p "$SWIFTCHAT_PG_PORT" -U "$SWIFTCHAT_PG_ADMIN_USER" "$@"
}

# Run as root, Postgres runs as the postgres user, which must be able to walk down to its data
# and log folders. A clone under a private home (mode 700, like /root) does not let it: give that
# user passage (execute, nothing else) on exactly the folders in the way, or say what to do.
postgres_reach() {
    is_root || return 0
    local target dir
    for target in "$STACK_DIR" "$LOG_DIR"; do
        dir=""
        local IFS=/
        for part in ${target#/}; do
            dir="$dir/$part"
            [[ -d $dir ]] || break
            runuser -u postgres -- test -x "$dir" 2>/dev/null && continue
            setfacl -m u:postgres:x "$dir" 2>/dev/null \
                || die "the postgres user cannot enter $dir (mode $(stat -c %a "$dir")), and it could not be given access with setfacl. Run: chmod o+x $dir  (or clone the project under a folder other users can enter)"
            log "gave the postgres user passage through $dir (setfacl u:postgres:x)"
        done
    done
}

postgres_init() {
    local data=$STACK_DIR/postgres
    postgres_reach
    [[ -s $data/PG_VERSION ]] && return 0
    log "postgres: initdb in $data"
    mkdir -p "$data"
    chown "$(pg_user)" "$data"
    chmod 700 "$data"
    local pwfile
    pwfile="$(mktemp)"
    echo "$SWIFTCHAT_PG_ADMIN_PASSWORD" >"$pwfile"
    chown "$(pg_user)" "$pwfile"
    as_pg_user "$(pg_bin)/initdb" -D "$data" -U "$SWIFTCHAT_PG_ADMIN_USER" --pwfile="$pwfile" \
        --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
        >"$LOG_DIR/postgres-initdb.log" 2>&1 || { rm -f "$pwfile"; die "initdb failed: $LOG_DIR/postgres-initdb.log"; }
    rm -f "$pwfile"
}

# One database, one schema and one login role per service: a service can only touch its own schema.
postgres_provision() {
    psql_admin -d postgres -tc "SELECT 1 FROM pg_database WHERE datname = '$SWIFTCHAT_PG_DATABASE'" | grep -q 1 \
        || psql_admin -d postgres -c "CREATE DATABASE $SWIFTCHAT_PG_DATABASE"
    for service in $SWIFTCHAT_PG_SERVICE_SCHEMAS; do
        psql_admin -d "$SWIFTCHAT_PG_DATABASE" <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'swiftchat_$service') THEN
    CREATE ROLE swiftchat_$service LOGIN PASSWORD 'swiftchat_$service';
  END IF;
END \$\$;
CREATE SCHEMA IF NOT EXISTS $service AUTHORIZATION swiftchat_$service;
REVOKE ALL ON SCHEMA public FROM swiftchat_$service;
SQL
    done
}

start_postgres() {
    wait_port_free postgres "$SWIFTCHAT_PG_PORT" 10
    postgres_init
    local data=$STACK_DIR/postgres
    touch "$LOG_DIR/postgres.log"
    chown "$(pg_user)" "$LOG_DIR/postgres.log"
    # Sockets off: everything talks TCP on loopback, so nothing is written outside the data folder.
    as_pg_user "$(pg_bin)/pg_ctl" -D "$data" -l "$LOG_DIR/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $SWIFTCHAT_PG_PORT -c unix_socket_directories='' -c max_connections=300 -c shared_buffers=256MB" \
        start >/dev/null || { log_tail "$LOG_DIR/postgres.log"; die "postgres did not start: $LOG_DIR/postgres.log"; }
    head -n1 "$data/postmaster.pid" >"$(pidfile postgres)"
    wait_for postgres 30 postgres_ready
    postgres_provision
}

stop_postgres() {
    local pid
    pid="$(alive_pid postgres)" || return 0
    as_pg_user "$(pg_bin)/pg_ctl" -D "$STACK_DIR/postgres" -m fast -w -t 60 stop >/dev/null 2>&1 \
        || kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# redis (a cache and the presence registry: nothing in it needs to survive a restart)

redis_ready() { [[ "$(redis-cli -h 127.0.0.1 -p "$SWIFTCHAT_REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

start_redis() {
    wait_port_free redis "$SWIFTCHAT_REDIS_PORT" 10
    mkdir -p "$STACK_DIR/redis"
    # Every server in a session, so a scheduling group, of its own, as pg_ctl starts Postgres
    # (README, "Each process its own scheduling group"); setsid does not fork here, so `$!` is its pid.
    nohup setsid redis-server --bind 127.0.0.1 --port "$SWIFTCHAT_REDIS_PORT" --dir "$STACK_DIR/redis" \
        --save "" --appendonly no --daemonize no --maxclients 4000 \
        >"$LOG_DIR/redis.log" 2>&1 </dev/null &
    echo $! >"$(pidfile redis)"
    wait_for redis 20 redis_ready
}

# ---------------------------------------------------------------------------------------------
# rabbitmq

rabbitmq_env() {
    local base=$STACK_DIR/rabbitmq
    export RABBITMQ_NODENAME="swiftchat@localhost"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$SWIFTCHAT_AMQP_PORT"
    export RABBITMQ_DIST_PORT="$SWIFTCHAT_AMQP_DIST_PORT"
    # rabbitmqctl's own node listens on one of these (Debian's default, 35672-35682, is inside the
    # ephemeral range: see infra/ports.env).
    export RABBITMQ_CTL_DIST_PORT_MIN=$((SWIFTCHAT_AMQP_DIST_PORT + 1))
    export RABBITMQ_CTL_DIST_PORT_MAX=$((SWIFTCHAT_AMQP_DIST_PORT + 9))
    export ERL_EPMD_PORT="$SWIFTCHAT_EPMD_PORT"
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_MNESIA_BASE="$base/mnesia"
    export RABBITMQ_LOG_BASE="$base/log"
    export RABBITMQ_CONFIG_FILE="$base/rabbitmq.conf"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins"
    export RABBITMQ_CONF_ENV_FILE="$base/rabbitmq-env.conf"
    export RABBITMQ_PID_FILE="$RUN_DIR/rabbitmq-node.pid"
    export HOME="$base/home"   # the Erlang cookie lives here
    # The broker shares the machine with the services, Postgres and Redis: no busy-waiting
    # schedulers (spinning takes CPU the services need), and half the cores' worth of schedulers,
    # at least one (on 2 cores a second scheduler cost RabbitMQ 15–30% more CPU per message in
    # `make bench` and took about 1.3 ms off its confirms, not off a message's latency; see the
    # README's Benchmark).
    local schedulers=$(( $(nproc) / 2 ))
    (( schedulers >= 1 )) || schedulers=1
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none +S $schedulers:$schedulers"
}

rabbitmq_ready() { port_open "$SWIFTCHAT_AMQP_PORT"; }

start_rabbitmq() {
    local base=$STACK_DIR/rabbitmq
    mkdir -p "$base/mnesia" "$base/log" "$base/home"
    # Users and permissions come from a definitions file (one user per service, least privilege;
    # no guest): see infra/rabbitmq-definitions.py.
    python3 "$ROOT/infra/rabbitmq-definitions.py" "$SWIFTCHAT_AMQP_USER" "$SWIFTCHAT_AMQP_PASSWORD" >"$base/definitions.json"
    cat >"$base/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$SWIFTCHAT_AMQP_PORT
load_definitions = $base/definitions.json
loopback_users = none
disk_free_limit.absolute = 50MB
log.file.level = warning
log.console = false
CONF
    echo "[]." >"$base/enabled_plugins"
    : >"$base/rabbitmq-env.conf"
    local attempt deadline
    for attempt in 1 2 3; do
        wait_port_free rabbitmq "$SWIFTCHAT_AMQP_PORT" 10
        wait_port_free "rabbitmq (distribution)" "$SWIFTCHAT_AMQP_DIST_PORT" 10
        launch_rabbitmq
        deadline=$((SECONDS + 90))
        until rabbitmq_ready || ! alive_pid rabbitmq >/dev/null; do
            ((SECONDS < deadline)) || die "rabbitmq did not become ready within 90s (logs: $LOG_DIR)"
            sleep 0.2
        done
        rabbitmq_ready && return 0
        # A broker SIGKILLed a moment ago can leave its port in use for a little while
        # (eaddrinuse): the new node exits at once, so wait and try again.
        log "rabbitmq exited while starting (attempt $attempt of 3); retrying"
        sleep 3
    done
    log_tail "$LOG_DIR/rabbitmq.log" 25
    die "rabbitmq could not start (logs: $LOG_DIR/rabbitmq.log)"
}

launch_rabbitmq() {
    (
        rabbitmq_env
        rm -f "$RABBITMQ_PID_FILE"
        # Our own epmd on our own port, so that stopping it stops only what we started.
        if [[ ! -s "$RUN_DIR/epmd.pid" ]] || ! is_alive "$(cat "$RUN_DIR/epmd.pid")"; then
            nohup setsid epmd -address 127.0.0.1 -port "$SWIFTCHAT_EPMD_PORT" >"$LOG_DIR/epmd.log" 2>&1 </dev/null &
            echo $! >"$RUN_DIR/epmd.pid"
        fi
        # Run the broker as the current user (root included) instead of Debian's wrapper, which
        # drops to the rabbitmq user and resets the open-file limit.
        ulimit -n 65536 2>/dev/null || true
        nohup setsid /usr/lib/rabbitmq/bin/rabbitmq-server >"$LOG_DIR/rabbitmq.log" 2>&1 </dev/null &
        echo $! >"$(pidfile rabbitmq)"
    )
}

# The broker's own pid (the Erlang VM); the wrapper script's pid is in rabbitmq.pid.
rabbitmq_node_pid() {
    local file=$RUN_DIR/rabbitmq-node.pid
    [[ -s $file ]] && is_alive "$(cat "$file")" && cat "$file"
}

stop_rabbitmq() {
    local wrapper node
    wrapper="$(alive_pid rabbitmq)" || wrapper=""
    node="$(rabbitmq_node_pid)" || node=""
    [[ -n $wrapper ]] && kill -TERM "$wrapper" 2>/dev/null || true
    [[ -n $node ]] && kill -TERM "$node" 2>/dev/null || true
    for pid in $node $wrapper; do wait_gone "$pid" 60 || kill -KILL "$pid" 2>/dev/null || true; done
    rm -f "$RUN_DIR/rabbitmq-node.pid"
}

kill_rabbitmq() {
    local wrapper node
    wrapper="$(alive_pid rabbitmq)" || wrapper=""
    node="$(rabbitmq_node_pid)" || node=""
    for pid in $node $wrapper; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in $node $wrapper; do wait_gone "$pid" 10 || true; done
    rm -f "$RUN_DIR/rabbitmq-node.pid"
}

stop_epmd() {
    local file=$RUN_DIR/epmd.pid
    [[ -s $file ]] || return 0
    local pid
    pid="$(cat "$file")"
    # epmd ignores SIGTERM; it has no state worth a graceful stop.
    ERL_EPMD_PORT="$SWIFTCHAT_EPMD_PORT" epmd -kill >/dev/null 2>&1 || true
    wait_gone "$pid" 2 || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$file"
}

# ---------------------------------------------------------------------------------------------
# nginx: the one local gateway in front of every service

# The upstream servers of one service: each of its SWIFTCHAT_REPLICAS instances, and each again as
# a backup (see "upstream" in infra/nginx.conf.template).
upstream_servers() {
    local port=$1 k servers="" backups=""
    for ((k = 0; k < SWIFTCHAT_REPLICAS; k++)); do
        servers+="server 127.0.0.1:$((port + k * SWIFTCHAT_REPLICA_PORT_STEP)) max_fails=1 fail_timeout=2s; "
        backups+="server 127.0.0.1:$((port + k * SWIFTCHAT_REPLICA_PORT_STEP)) backup max_fails=0; "
    done
    echo "$servers$backups"
}

nginx_config() {
    local base=$STACK_DIR/nginx
    mkdir -p "$base/tmp" "$base/logs"
    chmod 777 "$base/tmp"
    sed -e "s|@GATEWAY_PORT@|$SWIFTCHAT_GATEWAY_PORT|g" \
        -e "s|@AUTH_SERVERS@|$(upstream_servers "$SWIFTCHAT_AUTH_PORT")|g" \
        -e "s|@USERS_SERVERS@|$(upstream_servers "$SWIFTCHAT_USERS_PORT")|g" \
        -e "s|@MESSAGES_SERVERS@|$(upstream_servers "$SWIFTCHAT_MESSAGES_PORT")|g" \
        -e "s|@SOCKET_SERVERS@|$(upstream_servers "$SWIFTCHAT_SOCKET_PORT")|g" \
        -e "s|@NOTIFICATIONS_SERVERS@|$(upstream_servers "$SWIFTCHAT_NOTIFICATIONS_PORT")|g" \
        -e "s|@STACK_DIR@|$STACK_DIR|g" \
        -e "s|@ROOT@|$ROOT|g" \
        "$ROOT/infra/nginx.conf.template" >"$base/nginx.conf"
}

start_nginx() {
    local base=$STACK_DIR/nginx
    nginx_config
    local user_directive=""
    is_root && user_directive="user root;"
    nohup setsid nginx -p "$base" -c "$base/nginx.conf" -g "daemon off; pid $RUN_DIR/nginx-master.pid; $user_directive" \
        >"$LOG_DIR/nginx.log" 2>&1 </dev/null &
    echo $! >"$(pidfile nginx)"
    wait_for nginx 20 port_open "$SWIFTCHAT_GATEWAY_PORT"
}

# ---------------------------------------------------------------------------------------------
# generic per-component verbs

stop_generic() {  # TERM, then KILL after a grace period
    local pid
    pid="$(alive_pid "$1")" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 20 || kill -KILL "$pid" 2>/dev/null || true
}

component_start() {
    local name=$1
    if alive_pid "$name" >/dev/null; then return 1; fi   # already up: reuse, report "not started"
    case $name in
        postgres) start_postgres ;;
        redis) start_redis ;;
        rabbitmq) start_rabbitmq ;;
        nginx) start_nginx ;;
        *) die "unknown component: $name" ;;
    esac
    log "$name up"
    return 0
}

component_stop() {
    case $1 in
        postgres) stop_postgres ;;
        rabbitmq) stop_rabbitmq ;;
        redis | nginx) stop_generic "$1" ;;
        *) die "unknown component: $1" ;;
    esac
    rm -f "$(pidfile "$1")"
}

component_kill() {
    case $1 in
        rabbitmq) kill_rabbitmq ;;
        postgres)
            # The whole server at once, postmaster and backends, as a crash of its machine would:
            # a backend left behind keeps the port, and the next start could not bind it.
            local pid children
            pid="$(alive_pid postgres)" || pid=""
            if [[ -n $pid ]]; then
                children="$(pgrep -P "$pid" || true)"
                kill -KILL "$pid" $children 2>/dev/null || true
                for child in $pid $children; do wait_gone "$child" 10 || true; done
                # Its lock file names a pid that may linger as a zombie nobody reaps, which the
                # next start would take for a live server: the server is gone, so is the lock.
                rm -f "$STACK_DIR/postgres/postmaster.pid"
            fi ;;
        *)
            local pid
            pid="$(alive_pid "$1")" && { kill -KILL "$pid" 2>/dev/null; wait_gone "$pid" 10; } ;;
    esac
    rm -f "$(pidfile "$1")"
}

# ---------------------------------------------------------------------------------------------
# commands

prepare_dirs() { mkdir -p "$RUN_DIR" "$LOG_DIR"; chmod 755 "$STACK_DIR"; }

# The access-token signing key pair (ES256), generated once. Only auth reads the private key.
ensure_keys() {
    local keys=$STACK_DIR/keys
    [[ -s $keys/jwt-private.pem && -s $keys/jwt-public.pem ]] && return 0
    mkdir -p "$keys"
    chmod 700 "$keys"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/jwt-private.pem" 2>/dev/null
    openssl pkey -in "$keys/jwt-private.pem" -pubout -out "$keys/jwt-public.pem" 2>/dev/null
    chmod 600 "$keys/jwt-private.pem"
    log "generated the access-token key pair in $keys"
}

cmd_up() {
    local record=""
    if [[ ${1:-} == --record ]]; then record=$2; fi
    cmd_install
    prepare_dirs
    ensure_keys
    for name in "${COMPONENTS[@]}"; do
        if component_start "$name"; then
            [[ -n $record ]] && echo "$name" >>"$record"
        else
            log "$name already up (pid $(alive_pid "$name")), reusing it"
        fi
    done
    return 0
}

cmd_down() {
    local names=()
    if [[ ${1:-} == --only ]]; then
        [[ -s $2 ]] && mapfile -t names <"$2"
    else
        names=(nginx rabbitmq redis postgres)
    fi
    # stop in reverse dependency order
    for name in nginx rabbitmq redis postgres; do
        for wanted in "${names[@]:-}"; do
            if [[ $wanted == "$name" ]]; then component_stop "$name"; log "$name stopped"; fi
        done
    done
    # epmd goes with the broker it served
    if [[ " ${names[*]:-} " == *" rabbitmq "* ]]; then stop_epmd; fi
    return 0
}

cmd_status() {
    for name in "${COMPONENTS[@]}"; do
        if pid="$(alive_pid "$name")"; then echo "$name: up (pid $pid)"; else echo "$name: down"; fi
    done
}

cmd_env() {
    cat <<ENV
export SWIFTCHAT_STACK_DIR=$STACK_DIR
export DATABASE_HOST=127.0.0.1
export DATABASE_PORT=$SWIFTCHAT_PG_PORT
export DATABASE_NAME=$SWIFTCHAT_PG_DATABASE
export DATABASE_ADMIN_USER=$SWIFTCHAT_PG_ADMIN_USER
export DATABASE_ADMIN_PASSWORD=$SWIFTCHAT_PG_ADMIN_PASSWORD
export REDIS_HOST=127.0.0.1
export REDIS_PORT=$SWIFTCHAT_REDIS_PORT
export AMQP_HOST=127.0.0.1
export AMQP_PORT=$SWIFTCHAT_AMQP_PORT
export AMQP_USER=$SWIFTCHAT_AMQP_USER
export AMQP_PASSWORD=$SWIFTCHAT_AMQP_PASSWORD
export JWT_PUBLIC_KEY_PATH=$STACK_DIR/keys/jwt-public.pem
export JWT_PRIVATE_KEY_PATH=$STACK_DIR/keys/jwt-private.pem
# Plain-http loopback only: browsers drop Secure cookies on http://127.0.0.1.
export COOKIE_SECURE=false
ENV
}

main() {
    local command=${1:-status}
    shift || true
    case $command in
        install) cmd_install ;;
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        status) cmd_status ;;
        env) cmd_env ;;
        start) prepare_dirs; component_start "$1" || log "$1 already up" ;;
        stop) component_stop "$1"; [[ $1 == rabbitmq ]] && stop_epmd; true ;;
        kill) component_kill "$1" ;;
        vhost)  # a separate, empty RabbitMQ virtual host (the benchmark's, isolated from make run)
            ( rabbitmq_env
              /usr/lib/rabbitmq/bin/rabbitmqctl -q delete_vhost "$1" >/dev/null 2>&1 || true
              /usr/lib/rabbitmq/bin/rabbitmqctl -q add_vhost "$1" >/dev/null 2>&1 || true
              /usr/lib/rabbitmq/bin/rabbitmqctl -q set_permissions -p "$1" "$SWIFTCHAT_AMQP_USER" ".*" ".*" ".*" >/dev/null ) ;;
        reload-nginx)  # regenerate the gateway's config (SWIFTCHAT_REPLICAS) and reload it in place
            prepare_dirs
            nginx_config
            if pid="$(cat "$RUN_DIR/nginx-master.pid" 2>/dev/null)" && is_alive "$pid"; then kill -HUP "$pid"; fi ;;
        purge)  # empty every queue of a virtual host (the benchmark's, between phases)
            ( rabbitmq_env
              for queue in $(/usr/lib/rabbitmq/bin/rabbitmqctl -q list_queues -p "$1" --no-table-headers name 2>/dev/null); do
                  /usr/lib/rabbitmq/bin/rabbitmqctl -q purge_queue -p "$1" "$queue" >/dev/null 2>&1 || true
              done ) ;;
        drop-schemas)  # schemas with everything in them (the benchmark's, fresh each run)
            local sql="" schema
            for schema in "$@"; do sql+="DROP SCHEMA IF EXISTS $schema CASCADE; "; done
            psql_admin -d "$SWIFTCHAT_PG_DATABASE" -c "$sql" >/dev/null ;;
        *) die "unknown command: $command (install|up|down|status|env|start|stop|kill|vhost|purge|drop-schemas|reload-nginx)" ;;
    esac
}

main "$@"
