#!/usr/bin/env bash
# Prepares a fresh Debian machine for the demo and the tests; safe to run again.
# SETUP_DOCKER=optional: carry on without Docker if it cannot be installed or started (the demo).
# SETUP_IMAGE=no: skip building the mailcerts image (the demo runs from the checkout).
#   - Debian packages: docker.io, pebble (+ pebble-challtestsrv), debootstrap, openssl, bind9 (+ utils, dig), unbound
#   - Node 24 into .tools/ (the machine may have an older Node)
#   - npm dependencies, the build, a running dockerd (loopback only), the Postfix+Dovecot test images
#     (bookworm: Postfix 3.7, Dovecot 2.3; trixie: Postfix 3.10, Dovecot 2.4)
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'setup: %s\n' "$*"; }

need=()
for pair in docker:docker.io dockerd:docker.io pebble:pebble pebble-challtestsrv:pebble debootstrap:debootstrap openssl:openssl \
  named:bind9 tsig-keygen:bind9-utils dig:bind9-dnsutils nsupdate:bind9-dnsutils unbound:unbound; do
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
log "build"
npm run -s build

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
bash scripts/trixie-tools.sh
bash scripts/mail-image.sh || docker_fail "the mail image could not be built"
bash scripts/mail-image.sh trixie || docker_fail "the trixie mail image (Postfix 3.10, Dovecot 2.4) could not be built"
if [ "${SETUP_IMAGE:-yes}" = yes ]; then bash scripts/image.sh || docker_fail "the mailcerts image could not be built"; fi
log "ready"
