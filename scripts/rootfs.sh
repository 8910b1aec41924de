#!/usr/bin/env bash
# Writes the runtime root file system of one service into DIR: the static binary from
# scripts/build.sh as /service, the CA certificates, and /etc/passwd and /etc/group naming the
# numeric non-root user 65532. docker/Dockerfile's build stage and scripts/images.sh both run it,
# so the image built here and the one built elsewhere hold the same files.
#   scripts/rootfs.sh SERVICE DIR
set -euo pipefail
svc="$1" dir="$2"
cd "$(dirname "$0")/.."
./scripts/build.sh "$svc"
mkdir -p "$dir/etc/ssl/certs"
cp "bin/$svc" "$dir/service"
cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
echo 'nonroot:x:65532:65532:nonroot:/:/sbin/nologin' >"$dir/etc/passwd"
echo 'nonroot:x:65532:' >"$dir/etc/group"
