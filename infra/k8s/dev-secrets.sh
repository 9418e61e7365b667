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

# RabbitMQ users and permissions (least privilege, topic permissions on the routing keys each
# service publishes): the same rules as the local stack's, from one place.
[[ -s $OUT/definitions.json ]] || python3 "$(dirname "${BASH_SOURCE[0]}")/../rabbitmq-definitions.py" --env-dir "$OUT" >"$OUT/definitions.json"
echo "dev secrets in $OUT"
