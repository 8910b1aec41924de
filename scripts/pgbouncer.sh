#!/usr/bin/env bash
# Runs Debian's PgBouncer in transaction pooling mode in front of the local PostgreSQL, as a
# production deployment would put it in front of each database (deploy/components/pgbouncer).
#
#   scripts/pgbouncer.sh start [PORT]   start it on 127.0.0.1:PORT (default 6432), in the background
#   scripts/pgbouncer.sh stop [PORT]    stop it
#
# Every database of the server is reachable through it under its own name, as role shop/shop.
# Clients must not rely on session state: pgx needs default_query_exec_mode=exec (or
# simple_protocol) in the DSN, since PgBouncer 1.18 does not carry prepared statements across
# the server connections a transaction pooler hands out:
#   postgres://shop:shop@127.0.0.1:6432/postgres?sslmode=disable&default_query_exec_mode=exec
set -euo pipefail

cmd=${1:-start}
port=${2:-6432}
bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
# The configuration, log and pid file live in a directory of their own that mktemp creates
# (mode 0700, a name nobody can guess, never an existing directory or symlink someone else
# placed there). Its name is kept in the git-ignored tmp/ of the repository, for stop.
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/tmp/pgbouncer-$port.dir"
dir=""
if [ -f "$state" ]; then
  dir=$(cat "$state")
  case "$dir" in
  */shop-pgbouncer-"$port".*) ;;
  *) dir="" ;;
  esac
fi

case "$cmd" in
start)
  [ -x "$bin" ] || { echo "pgbouncer is not installed: apt-get install pgbouncer" >&2; exit 1; }
  if [ -n "$dir" ] && [ -f "$dir/pgbouncer.pid" ] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null; then
    echo "PgBouncer already runs on 127.0.0.1:$port"
    exit 0
  fi
  if [ -n "$dir" ]; then
    rm -rf "$dir"
  fi
  # One this checkout did not start (another checkout's, left running) serves as well: the
  # same server behind it, the same role.
  if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    echo "something already listens on 127.0.0.1:$port: using it as PgBouncer"
    exit 0
  fi
  dir=$(mktemp -d "${TMPDIR:-/tmp}/shop-pgbouncer-$port.XXXXXXXX")
  mkdir -p "$root/tmp"
  printf '%s\n' "$dir" >"$state"
  cat >"$dir/userlist.txt" <<'USERS'
"shop" "shop"
USERS
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = md5
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 5
server_idle_timeout = 10
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  # PgBouncer refuses to run as root.
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres "$dir"
    su postgres -s /bin/sh -c "$bin -d $dir/pgbouncer.ini"
  else
    "$bin" -d "$dir/pgbouncer.ini"
  fi
  for _ in $(seq 1 50); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
      echo "PgBouncer (transaction pooling) on 127.0.0.1:$port"
      exit 0
    fi
    sleep 0.1
  done
  echo "PgBouncer did not start; its log:" >&2
  cat "$dir/pgbouncer.log" >&2 || true
  exit 1
  ;;
stop)
  if [ -n "$dir" ] && [ -f "$dir/pgbouncer.pid" ]; then
    kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
  fi
  rm -f "$state"
  ;;
*)
  echo "usage: $0 start|stop [PORT]" >&2
  exit 2
  ;;
esac
