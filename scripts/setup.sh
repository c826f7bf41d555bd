#!/usr/bin/env bash
# Prepares a fresh Debian machine for the demo and the tests; safe to run again.
# SETUP_DOCKER=optional: carry on without Docker if it cannot be installed or started (the demo).
# SETUP_IMAGE=no: skip building the mailcerts image (the demo runs from the checkout).
# SETUP_FOR=demo: only what `npm run demo` uses: Pebble, Docker and the bookworm mail image; no BIND,
#   unbound, Pebble 2.6, trixie mail image or mailcerts image (those are for the tests).
#   - Debian packages: docker.io, pebble (+ pebble-challtestsrv), debootstrap, openssl, bind9 (+ utils, dig), unbound
#   - Node 24 into .tools/ (the machine may have an older Node)
#   - npm dependencies, the build, a running dockerd (loopback only), the Postfix+Dovecot test images
#     (bookworm: Postfix 3.7, Dovecot 2.3; trixie: Postfix 3.10, Dovecot 2.4)
set -euo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
# Each line says how long setup has been running, so that a slow step shows.
log() { printf 'setup: %s (%ds)\n' "$*" $((SECONDS - START)); }
DEMO_ONLY=$([ "${SETUP_FOR:-tests}" = demo ] && echo 1 || echo 0)

need=()
pairs="docker:docker.io dockerd:docker.io pebble:pebble pebble-challtestsrv:pebble debootstrap:debootstrap openssl:openssl"
[ "$DEMO_ONLY" = 1 ] || pairs="$pairs named:bind9 tsig-keygen:bind9-utils dig:bind9-dnsutils nsupdate:bind9-dnsutils unbound:unbound"
for pair in $pairs; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: $(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null \
    || apt-get install -y -qq --no-install-recommends pebble openssl >/dev/null
fi

if [ ! -x .tools/node_modules/.bin/node ] || ! .tools/node_modules/.bin/node -e 'process.exit(+process.versions.node.split(".")[0] >= 24 ? 0 : 1)'; then
  log "installing Node 24 into .tools/"
  npm i --prefix .tools --no-save --no-audit --no-fund node@24 >/dev/null 2>&1
fi
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
log "node $(node --version)"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund >/dev/null 2>&1 || npm ci --no-audit --no-fund
fi
# The build is skipped when nothing it reads changed since the last one (a second demo run).
if [ ! -f dist/.built ] || [ -n "$(find src tsconfig.json package-lock.json -newer dist/.built -print -quit)" ]; then
  log "build"
  npm run -s build
  touch dist/.built
fi

docker_fail() {
  if [ "${SETUP_DOCKER:-required}" = optional ]; then log "no Docker: $* (continuing without containers)"; log "ready"; exit 0; fi
  echo "setup: $*" >&2; exit 1
}
command -v dockerd >/dev/null 2>&1 || docker_fail "dockerd is not installed"
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (no bridge, no iptables: containers use host or no networking)"
  nohup dockerd --bridge=none --iptables=false --ip6tables=false --ip-masq=false >/var/log/mailcerts-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -n 20 /var/log/mailcerts-dockerd.log; docker_fail "dockerd did not start"; }
fi
log "the mail image (Postfix 3.7, Dovecot 2.3)"
bash scripts/mail-image.sh || docker_fail "the mail image could not be built"
if [ "$DEMO_ONLY" = 0 ]; then
  log "Pebble 2.6, Compose v2 and the trixie mail image (Postfix 3.10, Dovecot 2.4), for the tests"
  bash scripts/trixie-tools.sh
  bash scripts/mail-image.sh trixie || docker_fail "the trixie mail image (Postfix 3.10, Dovecot 2.4) could not be built"
  if [ "${SETUP_IMAGE:-yes}" = yes ]; then
    log "the mailcerts image"
    bash scripts/image.sh || docker_fail "the mailcerts image could not be built"
  fi
fi
log "ready"
