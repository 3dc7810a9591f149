#!/usr/bin/env bash
# Ingest throughput: cpan-tlog's POST /add against Tessera's own
# conformance personalities, built from the Tessera version in go.mod, under
# the same load generator on this machine: on POSIX (cmd/conformance/posix)
# and, with the test services up (. scripts/test-services.sh), on S3 +
# MariaDB (cmd/conformance/aws against cpantlog-server --storage s3), and
# with s3x2 two of each on one bucket and database, the clients spread over
# both (as behind a load balancer). Three alternating rounds of [duration]
# each; prints both medians, the ratio and the non-200 answers.
#
# With --antispam, Tessera's aws personality runs with its persistent
# antispam (--antispam, its own database on the same server): the peer that
# also deduplicates in the database, as cpan-tlog decides each path there.
#
#   scripts/bench-ingest.sh [duration] [clients] [posix|s3|s3x2|all] [--antispam]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-20s}
clients=${2:-512}
which=${3:-all}
antispam=""
if [ "${4:-}" = --antispam ]; then antispam=1; fi
work=$(mktemp -d)
trap 'kill -CONT $(jobs -p) 2>/dev/null; kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# CPANTLOG_BENCH_SERVER: a cpantlog-server built elsewhere (another
# commit's, for a before/after comparison) instead of this tree's.
if [ -n "${CPANTLOG_BENCH_SERVER:-}" ]; then
  cp "$CPANTLOG_BENCH_SERVER" "$work/cpantlog-server"
else
  go build -o "$work/cpantlog-server" ./cmd/cpantlog-server
fi
go build -o "$work/cpantlog-bench" ./cmd/cpantlog-bench
. scripts/bench-lib.sh
build_tessera posix aws
key=$("$work/cpantlog-server" keygen --data "$work/anchor-keys" --origin example.com/anchor >/dev/null && cat "$work/anchor-keys/log.key")

if [ "$which" = all ] || [ "$which" = posix ]; then
  LOG_PRIVATE_KEY="$key" "$work/tessera-posix" --storage_dir "$work/anchor" --listen 127.0.0.1:2025 >"$work/anchor.log" 2>&1 &
  pa=$!
  "$work/cpantlog-server" serve --data "$work/ours" --listen 127.0.0.1:2026 >"$work/ours.log" 2>&1 &
  pb=$!
  sleep 2
  rounds tessera-posix "$pa" cpantlog-posix "$pb" --kind tessera --url http://127.0.0.1:2025 -- \
    --kind cpantlog --url http://127.0.0.1:2026 --token-file "$work/ours/ingest.token"
fi

# On S3 + MariaDB (scripts/test-services.sh starts both): Tessera's own
# cmd/conformance/aws against cpantlog-server --storage s3, each with its
# own bucket and database on the same servers.
if [ "$which" != posix ]; then
  n=1
  if [ "$which" = s3x2 ]; then n=2; fi
  if [ -z "${CPANTLOG_TEST_S3_ENDPOINT:-}" ] || [ -z "${CPANTLOG_TEST_MYSQL_DSN:-}" ]; then
    echo "S3 + MariaDB: skipped (source scripts/test-services.sh first)"
    exit 0
  fi
  id=$(date +%s)
  ta="tessera$id" ours="cpantlog$id" tas="tesseraas$id"
  # The test services' own MariaDB (its port is in the DSN).
  myport=${CPANTLOG_TEST_MYSQL_DSN##*:}; myport=${myport%%)*}
  mariadb --no-defaults -ucpantlog -pcpantlog -h127.0.0.1 -P"$myport" -e "CREATE DATABASE $ta; CREATE DATABASE $ours; CREATE DATABASE $tas"
  asflags=() asname=""
  if [ -n "$antispam" ]; then asflags=(--antispam --antispam_db_name "$tas"); asname="-antispam"; fi
  # Tessera's driver does not create its bucket.
  curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X PUT "$CPANTLOG_TEST_S3_ENDPOINT/$ta"
  dsn=${CPANTLOG_TEST_MYSQL_DSN%/}
  dbuser=${dsn%%:*}; rest=${dsn#*:}; dbpass=${rest%%@*}
  pa="" pb="" urlA="" urlB=""
  for i in $(seq "$n"); do
    "$work/tessera-aws" --listen "127.0.0.1:$((2025 + 2 * i))" --signer "$key" --bucket "$ta" \
      --s3_endpoint "$CPANTLOG_TEST_S3_ENDPOINT" --s3_access_key "$AWS_ACCESS_KEY_ID" --s3_secret "$AWS_SECRET_ACCESS_KEY" \
      --db_host 127.0.0.1 --db_port "$myport" --db_user "$dbuser" --db_password "$dbpass" --db_name "$ta" "${asflags[@]}" >"$work/tessera-aws$i.log" 2>&1 &
    pa="$pa $!" urlA="$urlA${urlA:+,}http://127.0.0.1:$((2025 + 2 * i))"
    # Further writers of one log share its key and token.
    if [ "$i" -gt 1 ]; then
      mkdir -p "$work/ours-s3-$i" && cp "$work/ours-s3-1/"{log.key,log.vkey,ingest.token} "$work/ours-s3-$i/"
    fi
    "$work/cpantlog-server" serve --data "$work/ours-s3-$i" --listen "127.0.0.1:$((2026 + 2 * i))" --storage s3 \
      --s3-endpoint "$CPANTLOG_TEST_S3_ENDPOINT" --s3-bucket "$ours" --s3-create-bucket \
      --mysql-dsn "$dsn/$ours" >"$work/ours-s3-$i.log" 2>&1 &
    pb="$pb $!" urlB="$urlB${urlB:+,}http://127.0.0.1:$((2026 + 2 * i))"
    sleep 4
  done
  rounds "tessera-aws$asname-x$n" "$pa" "cpantlog-s3-x$n" "$pb" --kind tessera --url "$urlA" -- \
    --kind cpantlog --url "$urlB" --token-file "$work/ours-s3-1/ingest.token"
  kill $(jobs -p) 2>/dev/null || true
  sleep 1
  mariadb --no-defaults -ucpantlog -pcpantlog -h127.0.0.1 -P"$myport" -e "DROP DATABASE $ta; DROP DATABASE $ours; DROP DATABASE $tas"
fi
