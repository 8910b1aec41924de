#!/usr/bin/env bash
# Builds the named services (default: both) into bin/ as static binaries. `make build` and
# docker/Dockerfile both run this, so images hold exactly what a workstation builds.
set -euo pipefail
cd "$(dirname "$0")/.."
for svc in "${@:-customers-svc cart-svc}"; do
  for s in $svc; do
    (cd "$s" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o ../bin/ "./cmd/$s")
  done
done
