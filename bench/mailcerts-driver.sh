#!/usr/bin/env bash
# mailcerts-driver.sh — the `cmd` client of peers.sh: mailcerts issuing every name in
# $BENCH_NAMES, one certificate per name, with a fresh account (fresh STATE_DIR), in one
# `mailcerts run --once`, then each certificate copied to $BENCH_OUT/<name>/cert.pem.
#
# Environment from peers.sh: BENCH_NAMES, BENCH_CHALLENGE, BENCH_OUT, BENCH_WORKDIR,
# PEBBLE_DIRECTORY_URL, NODE_EXTRA_CA_CERTS. Knobs: ACME_CONCURRENCY (default 4; passed
# whether or not this build of mailcerts reads it), MAILCERTS_LOG_LEVEL (default info).
# mailcerts' standalone HTTP-01 listener binds 127.0.0.1:5002, where Pebble validates.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
node=node
[[ -x $root/.tools/node_modules/.bin/node ]] && node=$root/.tools/node_modules/.bin/node
cli=${MAILCERTS_CLI:-$root/dist/cli.js} # run.sh passes the bundle the image runs
[[ -s $cli ]] || { echo "mailcerts-driver: $cli missing: run npm run build (and node scripts/bundle.mjs) in $root" >&2; exit 2; }
[[ ${BENCH_CHALLENGE:-http-01} == http-01 ]] || { echo "mailcerts-driver: only http-01 is driven here" >&2; exit 2; }

w=${BENCH_WORKDIR:?}/mailcerts
rm -rf "$w"
mkdir -p "$w/state" "$w/certs"
{
  echo "certificates:"
  for name in ${BENCH_NAMES:?}; do echo "  - domains: [$name]"; done
} >"$w/mailcerts.yml"

# Only the variables below: nothing of the caller's environment leaks into mailcerts' config.
# MAILCERTS_NODE_FLAGS: the node flags the image runs with (run.sh reads them from docker/Dockerfile).
# shellcheck disable=SC2086
env -i PATH="$PATH" HOME="${HOME:-/root}" \
  MAILCERTS_CONFIG="$w/mailcerts.yml" \
  ACME_DIRECTORY="${PEBBLE_DIRECTORY_URL:?}" \
  NODE_EXTRA_CA_CERTS="${NODE_EXTRA_CA_CERTS:?}" \
  ACME_CHALLENGE=http-01 \
  HTTP01_MODE=standalone HTTP01_PORT=5002 HTTP01_ADDRESS=127.0.0.1 \
  CERTS_DIR="$w/certs" STATE_DIR="$w/state" \
  DOCKER_RELOAD=false STATUS_ADDRESS=off \
  ACME_CONCURRENCY="${ACME_CONCURRENCY:-4}" \
  LOG_LEVEL="${MAILCERTS_LOG_LEVEL:-info}" \
  "$node" ${MAILCERTS_NODE_FLAGS-} "$cli" run --once >"$w/mailcerts.log" 2>&1 || {
    rc=$?
    echo "mailcerts-driver: run --once exited $rc; last log lines:" >&2
    tail -n 20 "$w/mailcerts.log" >&2
    exit "$rc"
  }

# One certificate is published at the top of CERTS_DIR; several each get CERTS_DIR/<name>/.
set -- $BENCH_NAMES
for name in "$@"; do
  src=$w/certs/$name/cert.pem
  [[ -e $src || $# -gt 1 ]] || src=$w/certs/cert.pem
  mkdir -p "$BENCH_OUT/$name"
  cp -L "$src" "$BENCH_OUT/$name/cert.pem"
done
