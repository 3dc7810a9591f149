#!/usr/bin/env bash
# Sustained mixed load against a real cpan-tlog server on loopback: adds,
# lookups, proofs and checkpoint reads from many clients for a while
# (default 10 minutes), sampling the server's resident memory every 10 s.
# Fails if any answer other than 200 or 503 (intended pushback) came back.
#
#   scripts/load-test.sh [duration] [clients]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10m}
clients=${2:-128}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/cpantlog-server" ./cmd/cpantlog-server
go build -o "$work/cpantlog-bench" ./cmd/cpantlog-bench
"$work/cpantlog-server" serve --data "$work/data" --listen 127.0.0.1:2027 >"$work/server.log" 2>&1 &
pid=$!
sleep 2
( while kill -0 $pid 2>/dev/null; do awk '/VmRSS/{print $2}' /proc/$pid/status; sleep 10; done ) >"$work/rss.txt" &
status=0
"$work/cpantlog-bench" --kind mixed --url http://127.0.0.1:2027 --token-file "$work/data/ingest.token" --duration "$dur" --clients "$clients" || status=$?
awk 'NR==1{first=$1} {if($1>max)max=$1; last=$1} END{printf "server RSS: first %.0f MB, max %.0f MB, last %.0f MB over %d samples\n", first/1024, max/1024, last/1024, NR}' "$work/rss.txt"
grep -c ' level=ERROR' "$work/server.log" | sed 's/^/server errors logged: /' || true
exit $status
