#!/usr/bin/env bash
# check-breaking.sh [BASE...]: fails when the contract in the work tree is not compatible with
# what it was at each git commit (or tag) BASE: buf's FILE rules on the protos (a removed or
# renamed field, message, RPC, a changed type or number, a changed JSON name), and oasdiff's
# breaking-change rules on both OpenAPI documents (a removed route, a new required request
# field, a narrowed type), with the removal of a response field or header raised to an error
# (tools/oasdiff/severity-levels.txt; oasdiff rates both "info") and any oasdiff warning failing.
#
# Without BASE it checks against two commits:
#   - the release: the newest tag v* that HEAD contains or, before the first one, the commit in
#     protos/BASELINE. What has been released stays compatible however many commits land at once.
#   - the previous commit on main: where this branch forked from main (git merge-base HEAD main)
#     or, on main itself, HEAD's first parent (main before its last commit or merge). What was
#     added since the release is on main too, and clients of main may use it.
# Every BASE must be an ancestor of HEAD. A shallow clone lacks them: the script fetches the
# missing history from origin, or says how to.
#
# It then proves the checkers bite: copies of the contract with a route removed, with only a
# response field removed, and with a proto field renamed must each fail.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BIN:-$PWD/bin}"
levels=tools/oasdiff/severity-levels.txt
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "check-breaking: $*" >&2
  exit 1
}

if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
  echo "check-breaking: a shallow clone; fetching its history from origin to find the baselines"
  git fetch --quiet --unshallow --tags origin ||
    fail "this shallow clone has no history to compare with and fetching it failed: run 'git fetch --unshallow --tags' (or clone without --depth)"
fi

# commit NAME: the commit NAME names, or nothing.
commit() { git rev-parse -q --verify "$1^{commit}" 2>/dev/null || true; }

bases=("$@")
if [ "${#bases[@]}" -eq 0 ]; then
  release="$(git describe --tags --abbrev=0 --match 'v*' HEAD 2>/dev/null || true)"
  [ -n "$release" ] || release="$(cat protos/BASELINE)"
  bases+=("$release")
  head="$(git rev-parse HEAD)"
  main=""
  for ref in main origin/main; do
    [ -n "$(commit "$ref")" ] && { main="$ref"; break; }
  done
  previous=""
  if [ -n "$main" ]; then
    previous="$(git merge-base HEAD "$main")"
  fi
  if [ -z "$previous" ] || [ "$previous" = "$head" ]; then
    previous="$(commit HEAD^1)"
  fi
  if [ -z "$previous" ]; then
    echo "check-breaking: HEAD has no previous commit; checking against the release only"
  elif [ "$previous" != "$(commit "$release")" ]; then
    bases+=("$previous")
  fi
fi

for base in "${bases[@]}"; do
  sha="$(commit "$base")"
  [ -n "$sha" ] || fail "$base is not a commit of this clone (git fetch --tags origin?)"
  git merge-base --is-ancestor "$sha" HEAD ||
    fail "$base is not an ancestor of HEAD: comparing with it would not check what HEAD changed"
  echo "check-breaking: against $base ($(git log -1 --format='%h %s' "$sha"))"
  rm -rf "$tmp/base" && mkdir "$tmp/base"
  git archive "$sha" buf.yaml protos third_party | tar -x -C "$tmp/base"
  "$bin/buf" breaking --against "$tmp/base"
  for doc in customers cart; do
    "$bin/oasdiff" breaking "$tmp/base/protos/openapi/$doc.openapi.json" "protos/openapi/$doc.openapi.json" \
      --fail-on WARN --severity-levels "$levels" ||
      fail "protos/openapi/$doc.openapi.json breaks what it promised at $base"
  done
done

# The OpenAPI checker must catch a removed route, and a removed response field on its own.
python3 - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
def broken(name, edit):
    doc = json.load(open("protos/openapi/cart.openapi.json"))
    edit(doc)
    json.dump(doc, open(f"{tmp}/cart.{name}.json", "w"))
broken("route", lambda d: d["paths"]["/api/v1/carts/{user_id}"].pop("get"))
broken("field", lambda d: d["components"]["schemas"]["cart.v1.Cart"]["properties"].pop("total_price"))
PY
for canary in route field; do
  if "$bin/oasdiff" breaking protos/openapi/cart.openapi.json "$tmp/cart.$canary.json" \
    --fail-on WARN --severity-levels "$levels" >/dev/null; then
    fail "oasdiff did not catch a removed $canary"
  fi
done
mkdir -p "$tmp/ws"
cp -r buf.yaml protos third_party "$tmp/ws/"
sed -i 's/^\(\s*\)string total_price = \([0-9]*\)/\1string total_cost = \2/' "$tmp/ws/protos/cart/v1/cart.proto"
if cmp -s protos/cart/v1/cart.proto "$tmp/ws/protos/cart/v1/cart.proto"; then
  fail "the canary edit of cart.proto found nothing to rename"
fi
if (cd "$tmp/ws" && "$bin/buf" breaking --against "$OLDPWD" >/dev/null 2>&1); then
  fail "buf breaking did not catch a renamed field"
fi
echo "check-breaking: compatible with ${bases[*]} (and both checkers catch a break)"
