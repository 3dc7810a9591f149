#!/usr/bin/env bash
# Builds versioned static binaries of the four commands into dist/bin/ and,
# unless --binaries-only, one .deb per command into dist/: the binary in
# /usr/bin, the daemons' hardened systemd units (not enabled), example
# configuration in /usr/share/doc/<package>/examples, and a system user
# created by postinst; the server's package also holds the alerts'
# runbooks and the sample tarballs its demo reads (/usr/share/cpantlog/). Uses only the Go toolchain and dpkg-deb.
#
#   scripts/package.sh [--binaries-only]      VERSION=1.2.3 overrides the version
set -euo pipefail
cd "$(dirname "$0")/.."

binaries_only=
[ "${1:-}" = "--binaries-only" ] && binaries_only=1

# A Debian version starts with a digit: a tag v1.2.3 gives 1.2.3, an
# untagged tree 0.0~git<commit date>.<commit>, a modified tree +dirty.
if [ -z "${VERSION:-}" ]; then
  if tag=$(git describe --tags --exact-match 2>/dev/null); then
    VERSION=${tag#v}
  elif rev=$(git rev-parse --short=12 HEAD 2>/dev/null); then
    VERSION="0.0~git$(git show -s --format=%cd --date=format:%Y%m%d HEAD).$rev"
  else
    VERSION="0.0~unknown"
  fi
  if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then VERSION="$VERSION+dirty"; fi
fi
arch=$(go env GOARCH)
out=dist
rm -rf "$out"
mkdir -p "$out/bin"
CGO_ENABLED=0 go build -trimpath -buildvcs=auto \
  -ldflags "-s -w -X github.com/CPAN-Security/cpan-tlog/internal/cli.version=$VERSION" \
  -o "$out/bin/" ./cmd/cpantlog ./cmd/cpantlog-server ./cmd/cpantlog-witness ./cmd/cpantlog-monitor
echo "built $VERSION binaries in $out/bin"
[ -n "$binaries_only" ] && exit 0

# package NAME USER DESCRIPTION EXAMPLES... : one .deb; STATEMODE is the
# mode of /var/lib/USER.
package() {
  local name=$1 user=$2 description=$3 statemode=${STATEMODE:-0750}
  shift 3
  local root
  root=$(mktemp -d)
  chmod 0755 "$root"
  install -D -m 0755 "$out/bin/$name" "$root/usr/bin/$name"
  if [ -f "deploy/systemd/$name.service" ]; then
    install -d "$root/lib/systemd/system"
    sed 's#/usr/local/bin/#/usr/bin/#g' "deploy/systemd/$name.service" > "$root/lib/systemd/system/$name.service"
  fi
  install -d "$root/usr/share/doc/$name/examples"
  for ex in "$@"; do install -m 0644 "$ex" "$root/usr/share/doc/$name/examples/"; done
  if [ "$name" = cpantlog-server ]; then
    # The alerts' runbooks, and the sample tarballs that 'cpantlog-server
    # demo' and 'sample-mirror' read (testdata/authors/id only; they look
    # in /usr/share/cpantlog/testdata when ./testdata has none).
    install -m 0644 deploy/RUNBOOKS.md "$root/usr/share/doc/$name/RUNBOOKS.md"
    (cd testdata && find authors -type f -name '*.tar.gz') | while read -r f; do
      install -D -m 0644 "testdata/$f" "$root/usr/share/cpantlog/testdata/$f"
    done
  fi
  install -d "$root/DEBIAN"
  # Site settings for the unit, kept across upgrades (a conffile).
  if [ -f "deploy/default/$name" ]; then
    install -D -m 0644 "deploy/default/$name" "$root/etc/default/$name"
    echo "/etc/default/$name" > "$root/DEBIAN/conffiles"
  fi
  cat > "$root/DEBIAN/control" <<CONTROL
Package: $name
Version: $VERSION
Architecture: $arch
Maintainer: cpan-tlog developers <cpan-security@security.metacpan.org>
Section: net
Priority: optional
Homepage: https://github.com/CPAN-Security/cpan-tlog
Description: $description
 cpan-tlog is a transparency log for CPAN: every file PAUSE publishes is an
 entry of a witnessed Merkle log, and installs verify against it.
CONTROL
  if [ -n "$user" ]; then
    cat > "$root/DEBIAN/postinst" <<POSTINST
#!/bin/sh
set -e
if [ "\$1" = configure ] && ! getent passwd $user >/dev/null; then
  if command -v adduser >/dev/null; then
    adduser --system --group --home /var/lib/$user --no-create-home --quiet $user
  else
    useradd --system --user-group --home-dir /var/lib/$user --no-create-home --shell /usr/sbin/nologin $user
  fi
fi
# The state directory exists before the unit first starts, so that keygen
# can run as the user ('runuser -u $user -- ... keygen'). The log's tree is
# published data (nginx serves it): world readable; the others are not.
if [ "\$1" = configure ]; then
  install -d -o $user -g $user -m $statemode /var/lib/$user
  install -d -m 0755 /etc/cpantlog
fi
exit 0
POSTINST
    chmod 0755 "$root/DEBIAN/postinst"
  fi
  dpkg-deb --root-owner-group --build "$root" "$out/${name}_${VERSION}_${arch}.deb" >/dev/null
  rm -rf "$root"
  echo "packaged $out/${name}_${VERSION}_${arch}.deb"
}

package cpantlog "" "the cpan-tlog user's tool: verify, proxy, exec, snapshot"
STATEMODE=0755 package cpantlog-server cpantlog "the cpan-tlog log server" deploy/config/policy.example deploy/nginx/cpan-tlog.conf \
  deploy/prometheus/cpantlog.rules.yml deploy/prometheus/cpantlog.rules.test.yml
package cpantlog-witness cpantlog-witness "a C2SP tlog-witness for cpan-tlog" deploy/config/witness.config.example deploy/nginx/cpantlog-witness.conf
package cpantlog-monitor cpantlog-monitor "the cpan-tlog auditor's monitor" deploy/config/policy.example deploy/config/watch.example
