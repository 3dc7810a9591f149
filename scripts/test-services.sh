#!/usr/bin/env bash
# Starts the real servers the S3 + MariaDB tests use, on loopback: Debian's
# MariaDB and versitygw (an S3 server, built from its Go module) with its
# POSIX backend in a temporary directory. Source it; it exports
# CPANTLOG_TEST_MYSQL_DSN, CPANTLOG_TEST_S3_ENDPOINT and the AWS credentials.
#
#   . scripts/test-services.sh
set -u
_tsdir=$(mktemp -d /tmp/cpantlog-services.XXXXXX)

# MariaDB: a user allowed to create one database per test.
if ! command -v mariadbd >/dev/null; then
  echo "test-services: mariadb-server is not installed" >&2
else
  if ! mariadb -uroot -e 'select 1' >/dev/null 2>&1; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null
    (mariadbd --user=mysql --bind-address=127.0.0.1 --port=3306 --skip-name-resolve >"$_tsdir/mariadb.log" 2>&1 &)
    for _ in $(seq 1 60); do mariadb -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  mariadb -uroot -e "CREATE USER IF NOT EXISTS 'cpantlog'@'127.0.0.1' IDENTIFIED BY 'cpantlog'; GRANT ALL ON *.* TO 'cpantlog'@'127.0.0.1'; FLUSH PRIVILEGES;" &&
    export CPANTLOG_TEST_MYSQL_DSN='cpantlog:cpantlog@tcp(127.0.0.1:3306)/'
fi

# versitygw, S3 on 127.0.0.1:7070.
gw=$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")
if [ ! -x "$gw" ]; then
  go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 && gw="$(go env GOPATH)/bin/versitygw"
fi
if [ -x "$gw" ]; then
  mkdir -p "$_tsdir/s3"
  export AWS_ACCESS_KEY_ID=cpantlogtest AWS_SECRET_ACCESS_KEY=cpantlogtestsecret AWS_REGION=us-east-1
  ("$gw" --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" --port 127.0.0.1:7070 posix "$_tsdir/s3" >"$_tsdir/versitygw.log" 2>&1 &)
  for _ in $(seq 1 40); do curl -s -o /dev/null http://127.0.0.1:7070/ && break; sleep 0.25; done
  export CPANTLOG_TEST_S3_ENDPOINT=http://127.0.0.1:7070
fi
echo "test-services: MySQL ${CPANTLOG_TEST_MYSQL_DSN:-unavailable}, S3 ${CPANTLOG_TEST_S3_ENDPOINT:-unavailable}"
