#!/usr/bin/env bash
# Builds the mailcerts image here, where no container registry is reachable:
#   1. a Node 24 base: a Debian bookworm rootfs + Node 24 and npm from the npm registry (docker import);
#   2. docker/Dockerfile on that base (npm ci runs with the host's network).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
BASE=${MAILCERTS_BASE_IMAGE:-mailcerts-node24-base:local}
IMAGE=${MAILCERTS_IMAGE:-mailcerts:local}
CACHE=${MAILCERTS_CACHE:-/var/cache/mailcerts}
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  TAR="$CACHE/base-bookworm.tar"
  mkdir -p "$CACHE"
  if [ ! -s "$TAR" ]; then
    root=$(mktemp -d "$CACHE/base.XXXXXX")
    echo "image: debootstrap of the base rootfs into $root"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$root" http://deb.debian.org/debian >"$CACHE/base-debootstrap.log" 2>&1 \
      || { tail -n 30 "$CACHE/base-debootstrap.log"; exit 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/locale
    tar -C "$root" -cf "$TAR.tmp" . && mv "$TAR.tmp" "$TAR" && rm -rf "$root"
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/root" && tar -C "$work/root" -xf "$TAR"
  install -D -m 0755 "$(readlink -f .tools/node_modules/.bin/node)" "$work/root/usr/local/bin/node"
  npm i --prefix "$work/npm" --no-save --no-audit --no-fund npm@11 >/dev/null 2>&1
  mkdir -p "$work/root/usr/local/lib/node_modules" && cp -a "$work/npm/node_modules/npm" "$work/root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/root/usr/local/bin/npx"
  tar -C "$work/root" -c . | docker import --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BASE" >/dev/null
  echo "image: imported $BASE ($(node --version) on Debian bookworm)"
fi
# A registry behind a TLS-intercepting proxy: give the build stage the CAs this host trusts for npm.
for cafile in "$(npm config get cafile 2>/dev/null || true)" "${NODE_EXTRA_CA_CERTS:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
  if [ -n "$cafile" ] && [ "$cafile" != null ] && [ -s "$cafile" ]; then cp "$cafile" docker/build-ca/ca.crt; break; fi
done
trap 'rm -f docker/build-ca/ca.crt; rm -rf "${work:-/nonexistent}"' EXIT
DOCKER_BUILDKIT=0 docker build --network host --build-arg BASE="$BASE" -f docker/Dockerfile -t "$IMAGE" . >"${TMPDIR:-/tmp}/mailcerts-image-build.log" 2>&1 \
  || { tail -n 40 "${TMPDIR:-/tmp}/mailcerts-image-build.log"; exit 1; }
size() { docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.1f MB", $1/1000/1000}'; }
echo "image: built $IMAGE: $(size "$IMAGE") (base $BASE: $(size "$BASE"))"
