#!/usr/bin/env bash
# Starts the real servers the S3 + MariaDB tests use, on loopback, each its
# own: a MariaDB instance (Debian's mariadbd, its own data directory, socket
# and port) and versitygw (an S3 server, built from its Go module) with its
# POSIX backend, both in a temporary directory. Source it; it exports
# CPANTLOG_TEST_MYSQL_DSN, CPANTLOG_TEST_S3_ENDPOINT and the AWS credentials
# for the services it started and checked answer, and nothing for one that
# did not start: tests then skip (or, in CI, fail) rather than use a server
# something else left running.
#
#   . scripts/test-services.sh      # prints what it started, with PIDs
#   cpantlog_services_stop          # stops them and removes their files
set -u
_tsdir=$(mktemp -d /tmp/cpantlog-services.XXXXXX)
chmod 0755 "$_tsdir" # mariadbd runs as mysql
_tspids=()

# _ts_free_port P: the first port from P up that nothing listens on.
_ts_free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

# cpantlog_services_stop never fails (it runs from traps under set -e).
cpantlog_services_stop() {
  local pid
  for pid in "${_tspids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${_tspids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  _tspids=()
  rm -rf "$_tsdir" || true
  unset CPANTLOG_TEST_MYSQL_DSN CPANTLOG_TEST_S3_ENDPOINT CPANTLOG_TEST_SERVICES_PIDS
  return 0
}

_ts_report=()

# MariaDB: an instance of its own, and a user allowed to create one
# database per test.
unset CPANTLOG_TEST_MYSQL_DSN
if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null; then
  _ts_report+=("MariaDB unavailable (mariadb-server is not installed)")
else
  _tsmy=$(_ts_free_port 3306)
  mkdir -p "$_tsdir/mysql"
  chown mysql:mysql "$_tsdir/mysql" 2>/dev/null
  _tssock="$_tsdir/mysql/mysql.sock"
  if mariadb-install-db --no-defaults --user=mysql --datadir="$_tsdir/mysql/data" --auth-root-authentication-method=normal \
      --skip-test-db >"$_tsdir/mariadb-install.log" 2>&1; then
    mariadbd --no-defaults --user=mysql --datadir="$_tsdir/mysql/data" --socket="$_tssock" \
      --pid-file="$_tsdir/mysql/mysql.pid" --bind-address=127.0.0.1 --port="$_tsmy" --skip-name-resolve \
      >"$_tsdir/mariadb.log" 2>&1 &
    _tsmypid=$!
    _tspids+=("$_tsmypid")
    for _ in $(seq 1 60); do
      mariadb --no-defaults -uroot --socket="$_tssock" -e 'select 1' >/dev/null 2>&1 && break
      kill -0 "$_tsmypid" 2>/dev/null || break
      sleep 0.5
    done
    if mariadb --no-defaults -uroot --socket="$_tssock" -e "CREATE USER 'cpantlog'@'127.0.0.1' IDENTIFIED BY 'cpantlog'; GRANT ALL ON *.* TO 'cpantlog'@'127.0.0.1'; FLUSH PRIVILEGES;" 2>"$_tsdir/mariadb-user.log" &&
      mariadb --no-defaults -ucpantlog -pcpantlog -h127.0.0.1 -P"$_tsmy" -e 'select 1' >/dev/null 2>&1; then
      export CPANTLOG_TEST_MYSQL_DSN="cpantlog:cpantlog@tcp(127.0.0.1:$_tsmy)/"
      _ts_report+=("MariaDB pid $_tsmypid on 127.0.0.1:$_tsmy")
    else
      _ts_report+=("MariaDB did not start (see $_tsdir/mariadb.log)")
    fi
  else
    _ts_report+=("MariaDB could not initialise a data directory (see $_tsdir/mariadb-install.log)")
  fi
fi

# versitygw: S3 on a free port.
unset CPANTLOG_TEST_S3_ENDPOINT
gw=$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")
if [ ! -x "$gw" ]; then
  go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 && gw="$(go env GOPATH)/bin/versitygw"
fi
if [ -x "$gw" ]; then
  _ts3=$(_ts_free_port 7070)
  mkdir -p "$_tsdir/s3"
  export AWS_ACCESS_KEY_ID=cpantlogtest AWS_SECRET_ACCESS_KEY=cpantlogtestsecret AWS_REGION=us-east-1
  "$gw" --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" --port "127.0.0.1:$_ts3" posix "$_tsdir/s3" >"$_tsdir/versitygw.log" 2>&1 &
  _ts3pid=$!
  _tspids+=("$_ts3pid")
  for _ in $(seq 1 40); do
    curl -s -o /dev/null "http://127.0.0.1:$_ts3/" && break
    kill -0 "$_ts3pid" 2>/dev/null || break
    sleep 0.25
  done
  # Ours, and answering: not another process on that port.
  if kill -0 "$_ts3pid" 2>/dev/null && curl -s -o /dev/null "http://127.0.0.1:$_ts3/"; then
    export CPANTLOG_TEST_S3_ENDPOINT="http://127.0.0.1:$_ts3"
    _ts_report+=("versitygw pid $_ts3pid on 127.0.0.1:$_ts3")
  else
    _ts_report+=("versitygw did not start (see $_tsdir/versitygw.log)")
  fi
else
  _ts_report+=("versitygw unavailable (go install failed)")
fi
# For the benchmarks' CPU accounting (scripts/bench-lib.sh): these
# servers, not another test's of the same name.
export CPANTLOG_TEST_SERVICES_PIDS="${_tspids[*]}"
printf 'test-services: %s\n' "${_ts_report[@]}"
echo "test-services: MySQL ${CPANTLOG_TEST_MYSQL_DSN:-unavailable}, S3 ${CPANTLOG_TEST_S3_ENDPOINT:-unavailable}; stop them with cpantlog_services_stop"
