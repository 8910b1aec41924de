#!/usr/bin/env bash
# Fails when git tracks a binary file or a file over 1 MiB: nothing built is committed, and
# large artefacts do not belong in the history. Git's own detection decides what is binary
# (`git ls-files --eol` reports "i/-text" for content with NUL bytes or no line structure).
set -euo pipefail
cd "$(dirname "$0")/.."

limit=$((1024 * 1024))
bad=0
while IFS= read -r line; do
  echo "binary file tracked: ${line##*	}" >&2
  bad=1
done < <(git ls-files --eol | awk -F'\t' '$1 ~ /^i\/-text/')
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  size=$(stat -c %s -- "$f")
  if [ "$size" -gt "$limit" ]; then
    echo "file over 1 MiB tracked: $f ($size bytes)" >&2
    bad=1
  fi
done < <(git ls-files -z)
if [ "$bad" -ne 0 ]; then
  echo "remove them from git (git rm --cached) and ignore them in .gitignore" >&2
  exit 1
fi
echo "no binaries and no file over 1 MiB tracked"
