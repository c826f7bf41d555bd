#!/usr/bin/env bash
# Builds the Postfix + Dovecot test image from a Debian rootfs (no registry needed).
# The rootfs tarball is cached, so later builds take seconds.
set -euo pipefail
IMAGE=${MAILSTACK_IMAGE:-mailcerts-mailstack:bookworm-3}
CACHE=${MAILCERTS_CACHE:-/var/cache/mailcerts}
TAR="$CACHE/mailstack-bookworm-3.tar"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "mail-image: $IMAGE already present"; exit 0
fi
mkdir -p "$CACHE"
if [ ! -s "$TAR" ]; then
  root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  echo "mail-image: debootstrap into $root (about a minute)"
  debootstrap --variant=minbase --include=postfix,dovecot-imapd,dovecot-pop3d,dovecot-managesieved,haproxy,openssl,ca-certificates \
    bookworm "$root" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 30 "$CACHE/debootstrap.log"; exit 1; }
  # Drop what a container never needs, keeping the image small.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc "$root"/usr/share/man
  tar -C "$root" -cf "$TAR.tmp" . && mv "$TAR.tmp" "$TAR"
  rm -rf "$root"
fi
docker import "$TAR" "$IMAGE" >/dev/null
echo "mail-image: imported $IMAGE"
