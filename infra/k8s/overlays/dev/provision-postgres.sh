#!/bin/sh
# One login role and one schema per service, each role allowed only into its own schema, with
# the password from that service's Secret and its share of the connection budget as its limit
# (base/kustomization.yaml). Idempotent: run again after rotating a password.
set -eu

until pg_isready -q; do
    echo "waiting for postgres at $PGHOST"
    sleep 2
done

psql -v ON_ERROR_STOP=1 -q <<'SQL'
REVOKE ALL ON DATABASE swiftchat FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL

# provision SCHEMA ROLE CONNECTION_LIMIT; the password comes in SERVICE_PASSWORD, never on a
# command line.
provision() {
    psql -v ON_ERROR_STOP=1 -q -v schema="$1" -v role="$2" -v limit="$3" <<'SQL'
SET client_min_messages TO warning;
\getenv password SERVICE_PASSWORD
SELECT format('CREATE ROLE %I', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION
    CONNECTION LIMIT :limit PASSWORD :'password';
GRANT CONNECT ON DATABASE swiftchat TO :"role";
CREATE SCHEMA IF NOT EXISTS :"schema" AUTHORIZATION :"role";
ALTER SCHEMA :"schema" OWNER TO :"role";
SQL
    echo "provisioned schema $1 for role $2 (connection limit $3)"
}

SERVICE_PASSWORD="$AUTH_DATABASE_PASSWORD" provision auth "$AUTH_DATABASE_USER" 50
SERVICE_PASSWORD="$USERS_DATABASE_PASSWORD" provision users "$USERS_DATABASE_USER" 50
SERVICE_PASSWORD="$MESSAGES_DATABASE_PASSWORD" provision messages "$MESSAGES_DATABASE_USER" 100
SERVICE_PASSWORD="$NOTIFICATIONS_DATABASE_PASSWORD" provision notifications "$NOTIFICATIONS_DATABASE_USER" 50
