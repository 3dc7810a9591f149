#!/usr/bin/env bash
# Ingest throughput: cpan-tlog's POST /add on POSIX against Tessera's own
# POSIX conformance personality, both under the same load generator on
# this machine, in one run (three alternating rounds of [duration] each).
# Prints both medians and the ratio; with the test services up
# (scripts/test-services.sh) also cpan-tlog on S3 + MariaDB.
#
#   scripts/bench-ingest.sh [duration] [clients]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-20s}
clients=${2:-512}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/cpantlog-server" ./cmd/cpantlog-server
go build -o "$work/cpantlog-bench" ./cmd/cpantlog-bench
# Tessera's personality, built from the Tessera module cpan-tlog uses.
tver=$(go list -m -f '{{.Version}}' github.com/transparency-dev/tessera)
mkdir "$work/tessera" && (cd "$work/tessera" && go mod init anchor >/dev/null 2>&1 &&
  go get "github.com/transparency-dev/tessera/cmd/conformance/posix@$tver" >/dev/null 2>&1 &&
  go build -o "$work/tessera-posix" github.com/transparency-dev/tessera/cmd/conformance/posix)

key=$("$work/cpantlog-server" keygen --data "$work/anchor-keys" --origin example.com/anchor >/dev/null && cat "$work/anchor-keys/log.key")
LOG_PRIVATE_KEY="$key" "$work/tessera-posix" --storage_dir "$work/anchor" --listen 127.0.0.1:2025 >"$work/anchor.log" 2>&1 &
"$work/cpantlog-server" serve --data "$work/ours" --listen 127.0.0.1:2026 >"$work/ours.log" 2>&1 &
sleep 2

# The machine is shared and noisy: alternate the two, three rounds each,
# and compare medians, so that drift hits both alike.
for round in 1 2 3; do
  "$work/cpantlog-bench" --kind tessera --url http://127.0.0.1:2025 --duration "$dur" --clients "$clients" --prefix "a$round" | tee -a "$work/a.txt"
  "$work/cpantlog-bench" --kind cpantlog --url http://127.0.0.1:2026 --token-file "$work/ours/ingest.token" --duration "$dur" --clients "$clients" --prefix "b$round" | tee -a "$work/b.txt"
done
median() { awk '{print $2}' "$1" | sort -n | sed -n 2p; }
a=$(median "$work/a.txt"); b=$(median "$work/b.txt")
echo "median tessera $a adds/s, cpan-tlog $b adds/s; ratio cpan-tlog/tessera: $(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", b/a}')"

# cpan-tlog on S3 + MariaDB, when the test services are up (scripts/test-services.sh).
if [ -n "${CPANTLOG_TEST_S3_ENDPOINT:-}" ] && [ -n "${CPANTLOG_TEST_MYSQL_DSN:-}" ]; then
  name="bench$(date +%s)"
  mariadb -uroot -e "CREATE DATABASE $name"
  "$work/cpantlog-server" serve --data "$work/ours-s3" --listen 127.0.0.1:2028 --storage s3 \
    --s3-endpoint "$CPANTLOG_TEST_S3_ENDPOINT" --s3-bucket "$name" --s3-create-bucket \
    --mysql-dsn "${CPANTLOG_TEST_MYSQL_DSN%/}/$name" >"$work/ours-s3.log" 2>&1 &
  sleep 3
  "$work/cpantlog-bench" --kind cpantlog --url http://127.0.0.1:2028 --token-file "$work/ours-s3/ingest.token" --duration "$dur" --clients "$clients" | tee "$work/c.txt"
  c=$(awk '{print $2}' "$work/c.txt")
  echo "ratio cpan-tlog(S3+MariaDB)/tessera(POSIX): $(awk -v a="$a" -v c="$c" 'BEGIN{printf "%.2f", c/a}')"
  mariadb -uroot -e "DROP DATABASE $name"
fi
