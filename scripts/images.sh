#!/usr/bin/env bash
# Builds the service images (both unless named) into the local Docker daemon without pulling anything:
# ${IMAGE_REPO}/shop-customers:${VERSION} and ${IMAGE_REPO}/shop-cart:${VERSION}. The image is
# docker/Dockerfile's runtime stage (FROM scratch), given the root file system that
# scripts/rootfs.sh writes here instead of in a golang container. The classic builder is used
# because it needs no BuildKit frontend image and no buildx.
#   scripts/images.sh [SERVICE...]     (default: customers-svc cart-svc)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE_REPO="${IMAGE_REPO:-ghcr.io/acme}"
VERSION="${VERSION:-$(git describe --tags --always --dirty)}"
REVISION="${REVISION:-$(git rev-parse HEAD)}"
SOURCE="${IMAGE_SOURCE:-https://github.com/acme/shop}"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
# The runtime stage, from its FROM line to the end, copying the prepared root instead of the
# build stage's.
sed -n '/^FROM scratch AS runtime/,$p' docker/Dockerfile |
  sed 's|^COPY --from=build /rootfs/ /$|COPY rootfs/ /|' >"$ctx/Dockerfile"
grep -q '^COPY rootfs/ /$' "$ctx/Dockerfile" || { echo "images: runtime stage not found in docker/Dockerfile" >&2; exit 1; }

[ "$#" -gt 0 ] || set -- customers-svc cart-svc
for svc in "$@"; do
  name="shop-${svc%-svc}"
  rm -rf "$ctx/rootfs"
  ./scripts/rootfs.sh "$svc" "$ctx/rootfs"
  DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE_REPO/$name:$VERSION" \
    --label "org.opencontainers.image.source=$SOURCE" \
    --label "org.opencontainers.image.revision=$REVISION" \
    --label "org.opencontainers.image.version=$VERSION" \
    --label "org.opencontainers.image.title=$name" \
    "$ctx" >/dev/null
  echo "$IMAGE_REPO/$name:$VERSION"
done
