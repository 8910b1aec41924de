#!/usr/bin/env bash
# Runs both services in the foreground (after `make build`), each on its embedded SQLite file
# under data/ unless a DATABASE_URL is configured, with a development NATS server (bin/natsdev,
# JetStream stored in data/nats) for the events between them unless a NATS_URL is configured.
# Settings come from the environment, and from .env when it exists; APP_ENV is development
# unless set. Ctrl-C (or SIGTERM) stops them all; if one exits, the others are stopped too.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f .env ]; then
  set -a
  # shellcheck disable=SC1091
  . ./.env
  set +a
fi

# The binaries default to production, which refuses the development conveniences (demo data,
# the development secrets, plaintext gRPC) that `make run` relies on.
export APP_ENV="${APP_ENV:-development}"

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop INT TERM EXIT

# The development NATS server, unless the services are pointed at one already.
if [ -z "${CUSTOMERS_NATS_URL:-}${CART_NATS_URL:-}" ]; then
  nats_port="${NATS_DEV_PORT:-4223}"
  ./bin/natsdev -port "$nats_port" -store data/nats &
  pids+=($!)
  export CUSTOMERS_NATS_URL="nats://127.0.0.1:$nats_port" CART_NATS_URL="nats://127.0.0.1:$nats_port"
fi

./bin/customers-svc &
pids+=($!)
./bin/cart-svc &
pids+=($!)

# What the banner shows, where .env and the environment leave it unset: the defaults the
# binaries declare (`<binary> settings`), so that they are written in one place.
while IFS='=' read -r name value; do
  case "$name" in '' | '#'*) continue ;; esac
  [ -n "${!name+set}" ] || printf -v "$name" '%s' "$value"
done < <(./bin/customers-svc settings; ./bin/cart-svc settings)

# metrics_url is where the metrics of a <SVC>_METRICS_ADDR are; an empty one switches them off.
metrics_url() { if [ -n "$1" ]; then echo "http://localhost$1/metrics"; else echo "off"; fi; }

cat <<MSG

  customers  REST http://localhost${CUSTOMERS_HTTP_ADDR}   Swagger UI http://localhost${CUSTOMERS_HTTP_ADDR}/api/v1/docs/   gRPC localhost${CUSTOMERS_GRPC_ADDR}
  cart       REST http://localhost${CART_HTTP_ADDR}   Swagger UI http://localhost${CART_HTTP_ADDR}/api/v1/docs/   gRPC localhost${CART_GRPC_ADDR}
  Metrics    customers $(metrics_url "${CUSTOMERS_METRICS_ADDR}")   cart $(metrics_url "${CART_METRICS_ADDR}")
  NATS       customers ${CUSTOMERS_NATS_URL:-off}   cart ${CART_NATS_URL:-off}
  Data is kept in ${CUSTOMERS_SQLITE_PATH} and ${CART_SQLITE_PATH}. Press Ctrl-C to stop both.

MSG

# Return as soon as either service exits; the EXIT trap then stops the other.
wait -n
