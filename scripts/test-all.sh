#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine, then runs the whole test suite against the real
# components (Pebble, dockerd, Postfix and Dovecot containers). Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "setup failed"; node scripts/test-summary.mjs /nonexistent; exit 1; }
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
npm run -s typecheck || { echo "typecheck failed"; node scripts/test-summary.mjs /nonexistent; exit 1; }
# The fast lane first: formatter and linter, the import rules, then the unit tests (no Docker); then the integration lane.
LINT_FAILED=0
npx biome check . >.test-work-lint.log 2>&1 || { LINT_FAILED=1; cat .test-work-lint.log; echo "lint failed: run npm run format, then npm run lint"; }
rm -f .test-work-lint.log
DEPS_FAILED=0
npm run -s deps >.test-work-deps.log 2>&1 || { DEPS_FAILED=1; cat .test-work-deps.log; echo "import rules broken: see docs/import-rules.md, then npm run deps"; }
rm -f .test-work-deps.log
export LINT_FAILED DEPS_FAILED
mkdir -p .test-work
rm -f .test-work/unit.json .test-work/integration.json .test-work/*.errors.json .test-work/*.exit
# Each lane: vitest's JSON report, what it leaves out (errors outside any test) and vitest's exit code.
lane() {
  RUN_ERRORS_FILE=.test-work/$1.errors.json npx vitest run --project "$1" --passWithNoTests --reporter=default \
    --reporter=json --outputFile.json=".test-work/$1.json" --reporter=./scripts/run-errors-reporter.mjs "${@:2}"
  local code=$?
  echo "$code" >".test-work/$1.exit"
  return "$code"
}
lane unit "$@"
unit=$?
lane integration "$@"
integration=$?
node scripts/test-summary.mjs .test-work/unit.json,.test-work/integration.json "$@"
summary=$?
code=$((unit || integration || summary || LINT_FAILED || DEPS_FAILED))
exit $code
