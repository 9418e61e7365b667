#!/usr/bin/env bash
# Makes the development cluster's secrets once, into a git-ignored folder that the dev overlay's
# secretGenerator reads (infra/k8s/overlays/dev/secrets/ unless a folder is given):
#   jwt-private.pem, jwt-public.pem   the access-token signing pair (ES256, P-256)
#   <service>.env                     each service's own Postgres and RabbitMQ user and password
#   redis.env, postgres.env           the Redis password, the Postgres superuser's password
#   definitions.json                  RabbitMQ's vhost, users (salted SHA-256 hashes) and
#                                     permissions, imported by the broker at boot
# Existing files are kept, so rerunning changes nothing; delete a file to make it anew (then
# redeploy: the Secrets' names change and the pods that use them roll).
# Needs openssl and python3. Prints no secret.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$ROOT/overlays/dev/secrets}"
mkdir -p "$OUT"
chmod 700 "$OUT"
umask 077

password() { openssl rand -hex 24; }

if [[ ! -s $OUT/jwt-private.pem ]]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$OUT/jwt-private.pem" 2>/dev/null
    rm -f "$OUT/jwt-public.pem"
fi
[[ -s $OUT/jwt-public.pem ]] || openssl pkey -in "$OUT/jwt-private.pem" -pubout -out "$OUT/jwt-public.pem" 2>/dev/null

# The Postgres role names follow the local stack's (swiftchat_<schema>); RabbitMQ users are the
# service names, which are also their queues' prefix.
for service in auth users messages notifications socket-handler; do
    file=$OUT/$service.env
    [[ -s $file ]] && continue
    {
        if [[ $service != socket-handler ]]; then
            echo "DATABASE_USER=swiftchat_$service"
            echo "DATABASE_PASSWORD=$(password)"
        fi
        echo "AMQP_USER=$service"
        echo "AMQP_PASSWORD=$(password)"
    } >"$file"
done
[[ -s $OUT/redis.env ]] || echo "REDIS_PASSWORD=$(password)" >"$OUT/redis.env"
[[ -s $OUT/postgres.env ]] || echo "POSTGRES_PASSWORD=$(password)" >"$OUT/postgres.env"

# RabbitMQ permissions (configure / write / read regexes) per service, from what the code
# declares, publishes and consumes. Every client declares the four exchanges (idempotently), so
# all may configure them. Declaring a queue with a dead-letter exchange needs write on that
# exchange, binding a queue needs read on its exchange, and consumers dead-letter a poison event
# themselves: hence DeadLetters in everyone's write and read.
python3 - "$OUT" <<'PY'
import base64, hashlib, json, os, sys

out = sys.argv[1]
exchanges = "UserEvents|MessageEvents|InstanceDelivery|DeadLetters"
# service: (exchanges it publishes to, exchanges its queues are bound to)
services = {
    "auth": ("UserEvents", "UserEvents"),
    "users": ("UserEvents", "UserEvents"),
    "messages": ("MessageEvents|InstanceDelivery", "UserEvents|MessageEvents"),
    "socket-handler": ("UserEvents|MessageEvents|InstanceDelivery", "UserEvents|MessageEvents|InstanceDelivery"),
    "notifications": ("UserEvents", "UserEvents|MessageEvents|InstanceDelivery"),
}

def env(path):
    with open(path) as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)

def rabbit_hash(password):
    # rabbit_password_hashing_sha256: base64(salt + sha256(salt + password)), 4-byte salt.
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()

path = os.path.join(out, "definitions.json")
if os.path.exists(path):
    sys.exit(0)
users, permissions = [], []
for service, (writes, reads) in services.items():
    credentials = env(os.path.join(out, f"{service}.env"))
    queues = service + "\\..*"
    users.append({"name": credentials["AMQP_USER"], "password_hash": rabbit_hash(credentials["AMQP_PASSWORD"]),
                  "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []})
    permissions.append({"user": credentials["AMQP_USER"], "vhost": "/",
                        "configure": f"^({exchanges}|{queues})$",
                        "write": f"^({writes}|DeadLetters|{queues})$",
                        "read": f"^({reads}|DeadLetters|{queues})$"})
with open(path, "w") as f:
    json.dump({"vhosts": [{"name": "/"}], "users": users, "permissions": permissions}, f, indent=2)
PY
echo "dev secrets in $OUT"
