#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine, then runs the whole test suite against the real
# components (Pebble, dockerd, Postfix and Dovecot containers). Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
npm run -s typecheck || { echo "typecheck failed"; echo "0 passed, 1 failed"; exit 1; }
mkdir -p .test-work
rm -f .test-work/vitest.json
npx vitest run --reporter=default --reporter=json --outputFile.json=.test-work/vitest.json "$@"
code=$?
if [ -s .test-work/vitest.json ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(".test-work/vitest.json", "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    // A suite that failed to load has no tests counted; count it as a failure.
    const broken = r.testResults.filter((f) => f.status === "failed" && f.assertionResults.length === 0).length;
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests + broken} failed` + (skipped ? `, ${skipped} skipped` : ""));'
else
  echo "0 passed, 1 failed"
  [ $code -eq 0 ] && code=1
fi
exit $code
