#!/usr/bin/env bash
# Pebble 2.6 (with ARI) from Debian trixie, unpacked into a cache folder; the system's apt setup is untouched.
set -euo pipefail
CACHE=${MAILCERTS_CACHE:-/var/cache/mailcerts}
DEST="$CACHE/pebble-trixie"
if [ -x "$DEST/usr/bin/pebble" ]; then echo "pebble-trixie: present in $DEST"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{lists/partial,cache/archives/partial,parts,prefs}
echo "deb http://deb.debian.org/debian trixie main" > "$work/sources.list"
O=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=$work/parts" -o "Dir::Etc::preferencesparts=$work/prefs"
   -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
apt-get "${O[@]}" -qq update
(cd "$work" && apt-get "${O[@]}" -qq download pebble 2>/dev/null)
mkdir -p "$DEST.tmp" && dpkg -x "$work"/pebble_*.deb "$DEST.tmp" && rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
echo "pebble-trixie: $(basename "$work"/pebble_*.deb) unpacked into $DEST"
