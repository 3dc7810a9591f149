#!/usr/bin/env bash
# The monitor's first audit against Tessera's own integrity checker, on the
# same static-tile log served by nginx over loopback: builds Tessera's
# cmd/fsck from the Tessera version in go.mod, writes a synthetic log of N
# real-format v1 entries, and runs fsck and `cpantlog-monitor --once` (from
# empty state) alternately, three rounds each. Prints both medians, peak
# RSS, the bytes the monitor wrote to its state directory, and the ratios.
#
#   scripts/bench-monitor.sh [entries]      (default 1000000)
#
# CPANTLOG_BENCH_LOG=DIR keeps the synthetic log in DIR and reuses it when
# it is already there (writing 1,000,000 entries takes a few minutes).
#
# fsck runs at each worker count of FSCK_N (default "1 2 4") every round;
# the ratios are against its best median. CPANTLOG_BENCH_ROUND=K then
# appends K entries to the log (a kept log grows by K for good) and times
# one more `--once` on the last round's state: a monitor's round of K new
# entries, with the bytes and requests it fetched (from nginx's access log).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/cpantlog-monitor" ./cmd/cpantlog-monitor
tver=$(go list -m -f '{{.Version}}' github.com/transparency-dev/tessera)
mkdir "$work/tessera" && (cd "$work/tessera" && go mod init anchor >/dev/null 2>&1 &&
  go get "github.com/transparency-dev/tessera/cmd/fsck@$tver" >/dev/null 2>&1 &&
  go build -o "$work/fsck" github.com/transparency-dev/tessera/cmd/fsck)

logdir=${CPANTLOG_BENCH_LOG:-$work/log}
if [ ! -s "$logdir/log.vkey" ]; then
  echo "writing a synthetic log of $n entries..."
  CPANTLOG_SYNTHETIC_LOG="$logdir" CPANTLOG_SYNTHETIC_ENTRIES="$n" go test -count=1 -timeout 60m -run TestWriteSyntheticLog ./monitor/ >/dev/null
fi
chmod 0755 "$work"; chmod -R a+rX "$logdir"
logbytes=$(du -sb "$logdir/tree" | cut -f1)

cat > "$work/nginx.conf" <<NGINX
daemon off;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 1024; }
http {
  log_format bytes '\$bytes_sent';
  access_log $work/access.log bytes;
  server { listen 127.0.0.1:2030; root $logdir/tree; }
}
NGINX
nginx -c "$work/nginx.conf" &
sleep 1
url=http://127.0.0.1:2030
vkey=$(cat "$logdir/log.vkey")
printf 'log %s %s\nquorum none\n' "$vkey" "$url" > "$work/policy"
cp "$logdir/log.vkey" "$work/pubkey"

# run NAME COMMAND...: wall seconds and peak RSS (KiB) into $work/NAME.txt
run() {
  local name=$1; shift
  if ! /usr/bin/time -f "%e %M %O" -o "$work/time" "$@" >"$work/$name.out" 2>&1; then
    echo "$name failed:"; tail -20 "$work/$name.out"; exit 1
  fi
  tail -1 "$work/time" >> "$work/$name.txt"
  case $name in fsck*) tail -3 "$work/$name.out" > "$work/fsck.last" ;; esac
}
fsckn=${FSCK_N:-1 2 4}
for round in 1 2 3; do
  for N in $fsckn; do
    run "fsck-N$N" "$work/fsck" --storage_url "$url/" --public_key "$work/pubkey" --ui=false -N "$N"
  done
  # The last round's state (a gigabyte at 10M) is deleted and the deletion
  # written out before the next round, not during it.
  rm -rf "$work/state"; sync
  run monitor "$work/cpantlog-monitor" --once --policy "$work/policy" --state "$work/state" --no-witness-peers
  kept=$(du -sb "$work/state" | cut -f1)
done
median() { awk -v c="$2" '{print $c}' "$1" | sort -n | sed -n 2p; }
# fsck at its best worker count: the lowest median wall time.
fw=; for N in $fsckn; do
  w=$(median "$work/fsck-N$N.txt" 1); r=$(median "$work/fsck-N$N.txt" 2)
  echo "fsck -N $N: wall ${w}s, peak RSS $((r / 1024)) MiB"
  if [ -z "$fw" ] || awk -v a="$w" -v b="$fw" 'BEGIN { exit !(a < b) }'; then fw=$w fr=$r bestn=$N; fi
done
echo "each round's wall (s): $(for f in $fsckn; do printf 'fsck -N %s: %s; ' "$f" "$(awk '{printf "%s ", $1}' "$work/fsck-N$f.txt")"; done)monitor: $(awk '{printf "%s ", $1}' "$work/monitor.txt")"
mw=$(median "$work/monitor.txt" 1); mr=$(median "$work/monitor.txt" 2)
# File system outputs, in 512-byte blocks: what the monitor wrote in all.
written=$(( $(median "$work/monitor.txt" 3) * 512 ))
echo "fsck said: $(tr "\n" " " < "$work/fsck.last")"
echo "entries $n, log $((logbytes / 1000000)) MB"
echo "fsck:    wall ${fw}s at its best -N $bestn, peak RSS $((fr / 1024)) MiB"
echo "monitor: wall ${mw}s, peak RSS $((mr / 1024)) MiB, wrote $((written / 1000000)) MB (state kept: $((kept / 1000000)) MB)"
awk -v fw="$fw" -v mw="$mw" -v fr="$fr" -v mr="$mr" -v w="$written" -v k="$kept" -v l="$logbytes" \
  'BEGIN { printf "ratios monitor/fsck: wall %.2fx, RSS %.2fx; state written/log %.2fx, kept/log %.2fx\n", mw/fw, mr/fr, w/l, k/l }'

if [ -n "${CPANTLOG_BENCH_ROUND:-}" ]; then
  echo "appending $CPANTLOG_BENCH_ROUND entries to the log..."
  CPANTLOG_SYNTHETIC_LOG="$logdir" CPANTLOG_SYNTHETIC_ENTRIES="$CPANTLOG_BENCH_ROUND" go test -count=1 -timeout 60m -run TestWriteSyntheticLog ./monitor/ >/dev/null
  chmod -R a+rX "$logdir"
  : > "$work/access.log"
  run round "$work/cpantlog-monitor" --once --policy "$work/policy" --state "$work/state" --no-witness-peers
  read -r rw rr _ < <(tail -1 "$work/round.txt")
  awk -v k="$CPANTLOG_BENCH_ROUND" -v w="$rw" -v r="$rr" '{ b += $1; n++ } END {
    printf "a round of %d new entries: wall %.2fs, peak RSS %d MiB, fetched %d KB in %d requests\n", k, w, r / 1024, b / 1000, n }' "$work/access.log"
fi
