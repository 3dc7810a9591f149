#!/usr/bin/env bash
# Runs every fuzz target for a while (default 60s each). Crashers land in
# the package's testdata/fuzz/<Target>/ and become regression seeds that
# 'go test ./...' runs from then on: fix the bug, keep the file.
#
#   scripts/fuzz.sh [time-per-target]
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-60s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $target ($t)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$t" "$pkg" 2>&1 | tail -2
  done
done
