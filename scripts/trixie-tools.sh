#!/usr/bin/env bash
# Tools from Debian trixie, unpacked into a cache folder; the system's apt setup is untouched:
#   pebble 2.6 (ARI) and docker-compose (Compose v2, used as a standalone binary).
set -euo pipefail
CACHE=${MAILCERTS_CACHE:-/var/cache/mailcerts}
want=()
[ -x "$CACHE/trixie/pebble/usr/bin/pebble" ] || want+=(pebble)
[ -x "$CACHE/trixie/docker-compose/usr/libexec/docker/cli-plugins/docker-compose" ] || want+=(docker-compose)
if [ ${#want[@]} -eq 0 ]; then echo "trixie-tools: present in $CACHE/trixie"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{lists/partial,cache/archives/partial,parts,prefs}
echo "deb http://deb.debian.org/debian trixie main" > "$work/sources.list"
O=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=$work/parts" -o "Dir::Etc::preferencesparts=$work/prefs"
   -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
apt-get "${O[@]}" -qq update
for pkg in "${want[@]}"; do
  (cd "$work" && apt-get "${O[@]}" -qq download "$pkg")
  rm -rf "$CACHE/trixie/$pkg.tmp" && mkdir -p "$CACHE/trixie/$pkg.tmp"
  dpkg -x "$work/${pkg}"_*.deb "$CACHE/trixie/$pkg.tmp" && rm -rf "$CACHE/trixie/$pkg" && mv "$CACHE/trixie/$pkg.tmp" "$CACHE/trixie/$pkg"
  echo "trixie-tools: $(basename "$work/${pkg}"_*.deb) unpacked into $CACHE/trixie/$pkg"
done
