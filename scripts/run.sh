#!/usr/bin/env bash
# Runs both services in the foreground (after `make build`), each on its embedded SQLite file
# under data/ unless a DATABASE_URL is configured. Settings come from the environment, and from
# .env when it exists; APP_ENV is development unless set. Ctrl-C (or SIGTERM) stops both; if
# one exits, the other is stopped too.
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

./bin/customers-svc &
pids+=($!)
./bin/cart-svc &
pids+=($!)

# metrics_url is where the metrics of a <SVC>_METRICS_ADDR are; an empty one switches them off.
metrics_url() { if [ -n "$1" ]; then echo "http://localhost$1/metrics"; else echo "off"; fi; }

cat <<MSG

  customers  REST http://localhost${CUSTOMERS_HTTP_ADDR:-:8081}   Swagger UI http://localhost${CUSTOMERS_HTTP_ADDR:-:8081}/api/v1/docs/   gRPC localhost${CUSTOMERS_GRPC_ADDR:-:50051}
  cart       REST http://localhost${CART_HTTP_ADDR:-:8082}   Swagger UI http://localhost${CART_HTTP_ADDR:-:8082}/api/v1/docs/   gRPC localhost${CART_GRPC_ADDR:-:50052}
  Metrics    customers $(metrics_url "${CUSTOMERS_METRICS_ADDR-:9091}")   cart $(metrics_url "${CART_METRICS_ADDR-:9092}")
  Data is kept in ${CUSTOMERS_SQLITE_PATH:-data/customers.db} and ${CART_SQLITE_PATH:-data/cart.db}. Press Ctrl-C to stop both.

MSG

# Return as soon as either service exits; the EXIT trap then stops the other.
wait -n
