#!/usr/bin/env bash
# Builds a Postfix + Dovecot test image from a Debian rootfs (no registry needed).
# The rootfs tarball is cached, so later builds take seconds.
#   bash scripts/mail-image.sh           bookworm: Postfix 3.7, Dovecot 2.3 (and HAProxy, the socket proxy of the tests)
#   bash scripts/mail-image.sh trixie    trixie: Postfix 3.10, Dovecot 2.4
set -euo pipefail
SUITE=${1:-bookworm}
CACHE=${MAILCERTS_CACHE:-/var/cache/mailcerts}
case "$SUITE" in
  bookworm) IMAGE=${MAILSTACK_IMAGE:-mailcerts-mailstack:bookworm-3}; TAG=bookworm-3; EXTRA=haproxy, ;;
  trixie) IMAGE=${MAILSTACK_TRIXIE_IMAGE:-mailcerts-mailstack:trixie-1}; TAG=trixie-1; EXTRA= ;;
  *) echo "mail-image: unknown suite $SUITE (bookworm or trixie)" >&2; exit 2 ;;
esac
TAR="$CACHE/mailstack-$TAG.tar"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "mail-image: $IMAGE already present"; exit 0
fi
mkdir -p "$CACHE"
if [ ! -s "$TAR" ]; then
  root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  echo "mail-image: debootstrap $SUITE into $root (about a minute)"
  debootstrap --variant=minbase --include=postfix,dovecot-imapd,dovecot-pop3d,dovecot-managesieved,${EXTRA}openssl,ca-certificates \
    "$SUITE" "$root" http://deb.debian.org/debian >"$CACHE/debootstrap-$SUITE.log" 2>&1 \
    || { tail -n 30 "$CACHE/debootstrap-$SUITE.log"; rm -rf "$root"; exit 1; }
  # Drop what a container never needs, keeping the image small.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc "$root"/usr/share/man
  tar -C "$root" -cf "$TAR.tmp" . && mv "$TAR.tmp" "$TAR"
  rm -rf "$root"
fi
docker import "$TAR" "$IMAGE" >/dev/null
echo "mail-image: imported $IMAGE"
