#!/usr/bin/env bash
# Ingest as the log grows: cpan-tlog's POST /add on a log prefilled with N
# entries, against the same server on an empty log and against Tessera's
# POSIX conformance personality prefilled with the same N entries (the same
# tree, the same key), under the same load generator, in alternating rounds
# (scripts/bench-lib.sh). Prints both ratios and the disk per entry.
#
#   scripts/bench-scale.sh [entries] [duration] [clients]   (1000000 15s 512)
#
# The prefilled log is built once and kept in $CPANTLOG_BENCH_SCALE/N
# (default /var/tmp/cpantlog-bench-scale/N): a synthetic tree of real-format
# entries with its key, and the lookup index built from it on the first
# run. Each run works on copies.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
dur=${2:-15s}
clients=${3:-512}
keep=${CPANTLOG_BENCH_SCALE:-/var/tmp/cpantlog-bench-scale}/$n
work=$(mktemp -d)
trap 'kill -CONT $(jobs -p) 2>/dev/null; kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/cpantlog-server" ./cmd/cpantlog-server
go build -o "$work/cpantlog-bench" ./cmd/cpantlog-bench
. scripts/bench-lib.sh
build_tessera posix

if [ ! -s "$keep/log.key" ]; then
  echo "writing a synthetic log of $n entries into $keep (once)..."
  mkdir -p "$keep"
  start=$(date +%s)
  CPANTLOG_SYNTHETIC_LOG="$keep" CPANTLOG_SYNTHETIC_ENTRIES="$n" go test -count=1 -timeout 300m -run TestWriteSyntheticLog ./monitor/ >/dev/null
  echo "  took $(($(date +%s) - start)) s"
fi

# serve NAME DATA PORT: cpantlog-server on DATA, its PID in $served once
# it answers (it opens a log only once its lookup index caught up).
serve() {
  "$work/cpantlog-server" serve --data "$2" --listen "127.0.0.1:$3" --no-explorer >"$work/$1.log" 2>&1 &
  served=$!
  for _ in $(seq 1 18000); do
    curl -sf "http://127.0.0.1:$3/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$served" 2>/dev/null || { echo "$1 did not start:"; tail -5 "$work/$1.log"; exit 1; }
    sleep 0.2
  done
  echo "$1 did not start within an hour"; exit 1
}

mkdir -p "$work/ours-n"
cp -a "$keep/tree" "$keep/log.key" "$keep/log.vkey" "$work/ours-n/"
if [ ! -s "$keep/index.db" ]; then
  echo "building the lookup index of $n entries (once)..."
  start=$(date +%s)
  serve index-build "$work/ours-n" 2040
  kill "$served"; wait "$served" 2>/dev/null || true
  echo "  took $(($(date +%s) - start)) s (start-up catch-up)"
  cp "$work/ours-n/index.db" "$keep/index.db"
else
  cp "$keep/index.db" "$work/ours-n/"
fi
tree_bytes=$(du -sb "$keep/tree" | cut -f1)
index_bytes=$(du -sb "$keep/index.db" | cut -f1)
echo "disk per entry at $n entries: tree $((tree_bytes / n)) B, lookup index $((index_bytes / n)) B"

cp -a "$keep/tree" "$work/tessera-n"
LOG_PRIVATE_KEY="$(cat "$keep/log.key")" "$work/tessera-posix" --storage_dir "$work/tessera-n" --listen 127.0.0.1:2041 >"$work/tessera-n.log" 2>&1 &
pt=$!
start=$(date +%s)
serve ours-n "$work/ours-n" 2042
po=$served
echo "cpan-tlog opened the prefilled log in $(($(date +%s) - start)) s"
serve ours-empty "$work/ours-empty" 2043
pe=$served
kill -STOP "$pe"

echo "== cpan-tlog at $n entries against Tessera's POSIX personality at $n entries"
rounds "tessera-$n" "$pt" "cpantlog-$n" "$po" --kind tessera --url http://127.0.0.1:2041 -- \
  --kind cpantlog --url http://127.0.0.1:2042 --token-file "$work/ours-n/ingest.token"
kill -STOP "$pt"
echo "== cpan-tlog at $n entries against itself on an empty log"
rounds "cpantlog-empty" "$pe" "cpantlog-at-$n" "$po" --kind cpantlog --url http://127.0.0.1:2043 --token-file "$work/ours-empty/ingest.token" -- \
  --kind cpantlog --url http://127.0.0.1:2042 --token-file "$work/ours-n/ingest.token"
kill -CONT "$pt" "$pe" "$po"
