#!/usr/bin/env bash
# Regenerates every figure in BENCHMARKS.md, each beside its anchor, in one
# run on this machine. Takes about ten minutes plus the load test's
# duration (second argument, default 10m; 0 skips it).
#
#   scripts/bench-all.sh [ingest-duration] [load-duration]
set -euo pipefail
cd "$(dirname "$0")/.."
ingest=${1:-15s}
load=${2:-10m}
run() { echo; echo "### $*"; "$@" 2>&1 | grep -E '^(Benchmark|tessera|cpantlog|ratio|mixed|server)' ; }
run go test -run '^$' -bench AddHTTP -benchtime 20000x ./log/
run scripts/bench-ingest.sh "$ingest" 512
run go test -run '^$' -bench Import -benchtime 1x -timeout 30m ./log/ingest/
run go test -run '^$' -bench Audit -benchtime 1x -timeout 30m ./monitor/
run go test -run '^$' -bench 'Verify$' -benchtime 2000x ./cmd/cpantlog/
run go test -run '^$' -bench ProxyOverhead -benchtime 200x ./cmd/cpantlog/
run go test -run '^$' -bench AddCheckpoint -benchtime 2000x ./witness/
run go test -run '^$' -bench DistPage -benchtime 200x ./log/web/
if [ "$load" != 0 ]; then run scripts/load-test.sh "$load" 128; fi
