#!/usr/bin/env bash
# Makes sure the local PostgreSQL server is running and has the role the tests use
# (shop/shop with CREATEDB; see TEST_DATABASE_URL in docs/development.md). Idempotent; run as root or as a
# user who may sudo to postgres. Works whether the server was running with trust auth or
# installed but stopped with scram-sha-256 on TCP and peer auth on the socket.
set -euo pipefail

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "PostgreSQL is not installed: apt-get install postgresql" >&2
  exit 1
fi

# Start every cluster that is down (Debian's tools; no systemd needed).
pg_lsclusters --no-header | while read -r ver cluster _port status _rest; do
  if [ "$status" != "online" ]; then
    echo "starting PostgreSQL $ver/$cluster"
    pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start
  fi
done

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; elif [ "$(id -u)" = 0 ]; then su postgres -c "$(printf '%q ' "$@")"; else sudo -u postgres "$@"; fi
}

for _ in $(seq 1 30); do
  as_postgres psql -XAtqc 'SELECT 1' >/dev/null 2>&1 && break
  sleep 1
done

as_postgres psql -XAtq -v ON_ERROR_STOP=1 <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop') THEN
    CREATE ROLE shop LOGIN PASSWORD 'shop' CREATEDB;
  ELSE
    ALTER ROLE shop LOGIN PASSWORD 'shop' CREATEDB;
  END IF;
END
$$;
SQL

# Prove the role works over TCP with its password, as the tests will use it.
PGPASSWORD=shop psql -XAtq -h 127.0.0.1 -U shop -d postgres -c 'SELECT 1' >/dev/null
echo "PostgreSQL is up; role shop can log in on 127.0.0.1:5432"
