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
# Resident memory includes the lookup index's memory-mapped file, which
# grows with the log; the Go heap is what must stay flat.
( while kill -0 $pid 2>/dev/null; do
    rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
    heap=$(curl -s http://127.0.0.1:2027/metrics | awk '/^go_memstats_heap_inuse_bytes/{print int($2/1024)}')
    echo "$rss ${heap:-0}"; sleep 10
  done ) >"$work/mem.txt" &
status=0
"$work/cpantlog-bench" --kind mixed --url http://127.0.0.1:2027 --token-file "$work/data/ingest.token" --duration "$dur" --clients "$clients" || status=$?
awk 'NR==1{f=$1; fh=$2} {if($1>m)m=$1; if($2>mh)mh=$2; l=$1; lh=$2} END{printf "server RSS: first %.0f MB, max %.0f MB, last %.0f MB; Go heap in use: first %.0f MB, max %.0f MB, last %.0f MB (%d samples)\n", f/1024, m/1024, l/1024, fh/1024, mh/1024, lh/1024, NR}' "$work/mem.txt"
du -sh "$work/data/index.db" "$work/data/tree" | sed 's/^/on disk: /'
grep -c ' level=ERROR' "$work/server.log" | sed 's/^/server errors logged: /' || true
exit $status
