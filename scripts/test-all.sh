#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine, then runs the whole test suite against the real
# components (Pebble, dockerd, Postfix and Dovecot containers). Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "setup failed"; node scripts/test-summary.mjs /nonexistent; exit 1; }
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
npm run -s typecheck || { echo "typecheck failed"; node scripts/test-summary.mjs /nonexistent; exit 1; }
mkdir -p .test-work
rm -f .test-work/vitest.json
npx vitest run --reporter=default --reporter=json --outputFile.json=.test-work/vitest.json "$@"
code=$?
node scripts/test-summary.mjs .test-work/vitest.json "$@"
summary=$?
[ $code -eq 0 ] && code=$summary
exit $code
