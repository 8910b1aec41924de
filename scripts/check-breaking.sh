#!/usr/bin/env bash
# check-breaking.sh BASE: fails when the contract is not compatible with what it was at the git
# commit (or tag) BASE: buf's FILE rules on the protos (a removed or renamed field, message,
# RPC, a changed type or number, a changed JSON name), and oasdiff's breaking-change rules on
# both OpenAPI documents (a removed route, response field or enum value, a new required request
# field). It then proves the two checkers bite: a copy of the contract with one RPC route and
# one field removed must fail both.
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:?usage: check-breaking.sh BASE (a git commit or tag)}"
bin="${BIN:-$PWD/bin}"

if ! git cat-file -e "$base^{commit}" 2>/dev/null; then
  echo "check-breaking: commit $base is not in this clone (a shallow clone? git fetch --unshallow)" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "buf breaking against $base"
"$bin/buf" breaking --against ".git#ref=$(git rev-parse "$base")"
for doc in customers cart; do
  echo "oasdiff breaking: protos/openapi/$doc.openapi.json against $base"
  git show "$base:protos/openapi/$doc.openapi.json" >"$tmp/$doc.base.json"
  "$bin/oasdiff" breaking "$tmp/$doc.base.json" "protos/openapi/$doc.openapi.json" --fail-on ERR
done

# The checkers must catch a break: drop the cart's GET route and a field of Cart.
python3 - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
doc = json.load(open("protos/openapi/cart.openapi.json"))
del doc["paths"]["/api/v1/carts/{user_id}"]["get"]
del doc["components"]["schemas"]["cart.v1.Cart"]["properties"]["total_price"]
json.dump(doc, open(f"{tmp}/cart.broken.json", "w"))
PY
if "$bin/oasdiff" breaking protos/openapi/cart.openapi.json "$tmp/cart.broken.json" --fail-on ERR >/dev/null; then
  echo "check-breaking: oasdiff did not catch a removed route" >&2
  exit 1
fi
mkdir -p "$tmp/ws"
cp -r buf.yaml protos third_party "$tmp/ws/"
sed -i 's/^\(\s*\)string total_price = \([0-9]*\)/\1string total_cost = \2/' "$tmp/ws/protos/cart/v1/cart.proto"
if cmp -s protos/cart/v1/cart.proto "$tmp/ws/protos/cart/v1/cart.proto"; then
  echo "check-breaking: the canary edit of cart.proto found nothing to rename" >&2
  exit 1
fi
if (cd "$tmp/ws" && "$bin/buf" breaking --against "$OLDPWD" >/dev/null 2>&1); then
  echo "check-breaking: buf breaking did not catch a renamed field" >&2
  exit 1
fi
echo "check-breaking: compatible with $base (and both checkers catch a break)"
