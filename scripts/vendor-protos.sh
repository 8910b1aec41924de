#!/usr/bin/env bash
# Re-vendors the .proto files the contract imports into third_party/, each set with its LICENSE.
# Sources are the npm registry and the Go module proxy only, at pinned versions, so the result
# is reproducible offline-from-the-internet (see docs/development.md, "Generation").
set -euo pipefail

GOOGLE_PROTO_FILES_VERSION=6.0.1
GRPC_GATEWAY_VERSION=v2.33.0
PROTOVALIDATE_VERSION=v1.2.2

root=$(cd "$(dirname "$0")/.." && pwd)
tp="$root/third_party"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# google/api from the npm package google-proto-files.
(cd "$tmp" && npm pack --silent "google-proto-files@${GOOGLE_PROTO_FILES_VERSION}" >/dev/null && tar xzf "google-proto-files-${GOOGLE_PROTO_FILES_VERSION}.tgz")
rm -rf "$tp/googleapis"
mkdir -p "$tp/googleapis/google/api"
for f in annotations http field_behavior; do
  cp "$tmp/package/google/api/$f.proto" "$tp/googleapis/google/api/"
done
cp "$tmp/package/LICENSE" "$tp/googleapis/LICENSE"

# protoc-gen-openapiv3 options from the grpc-gateway Go module.
gw=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "github.com/grpc-ecosystem/grpc-gateway/v2@${GRPC_GATEWAY_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
rm -rf "$tp/grpc-gateway"
mkdir -p "$tp/grpc-gateway/protoc-gen-openapiv3/options"
cp "$gw"/protoc-gen-openapiv3/options/{annotations,openapiv3}.proto "$tp/grpc-gateway/protoc-gen-openapiv3/options/"
cp "$gw/LICENSE" "$tp/grpc-gateway/LICENSE"

# buf/validate from the protovalidate Go module (matches the buf.build/go/protovalidate runtime).
pv=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "github.com/bufbuild/protovalidate@${PROTOVALIDATE_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
rm -rf "$tp/protovalidate"
mkdir -p "$tp/protovalidate/buf/validate"
cp "$pv/proto/protovalidate/buf/validate/validate.proto" "$tp/protovalidate/buf/validate/"
cp "$pv/LICENSE" "$tp/protovalidate/LICENSE"

chmod -R u+w "$tp"
echo "vendored into $tp"
