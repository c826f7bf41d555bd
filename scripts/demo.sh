#!/usr/bin/env bash
# The main job against an embedded default: a local Pebble CA, the test domain mail.example.test,
# certificates into ./demo/certs, and Postfix + Dovecot containers reloaded where Docker is present.
set -euo pipefail
cd "$(dirname "$0")/.."
SETUP_FOR=demo SETUP_DOCKER=optional SETUP_IMAGE=no bash scripts/setup.sh
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
exec node scripts/demo.mjs "$@"
