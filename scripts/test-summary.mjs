// Reads vitest's JSON report and prints the line CI reads: "N passed, M failed".
// Every suite that did not run counts as failed: a file that failed to load or whose setup failed
// (its tests show as skipped), a file missing from the report (a global setup that failed), and
// any skipped test, since no test here may skip.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const [report, ...filters] = process.argv.slice(2);
const testFiles = (dir) =>
  readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? testFiles(p) : p.endsWith('.test.ts') ? [p] : [];
  });
const expected = testFiles('test')
  .map((p) => relative('.', p))
  .filter((p) => filters.length === 0 || filters.some((f) => p.includes(f)));

// Reports: one or more vitest JSON reports, comma-separated (the unit lane, then the integration lane).
const reports = [];
for (const path of report.split(',')) {
  try {
    reports.push(JSON.parse(readFileSync(path, 'utf8')));
  } catch {
    console.log(`test summary: no test report at ${path} (that lane did not run)`);
  }
}
const lintFailed = process.env.LINT_FAILED === '1';
const depsFailed = process.env.DEPS_FAILED === '1';
const checksFailed = (lintFailed ? 1 : 0) + (depsFailed ? 1 : 0);
if (reports.length === 0) {
  console.log(`0 passed, ${Math.max(1, expected.length) + checksFailed} failed (no test report: vitest did not run)`);
  process.exit(1);
}
const r = {
  testResults: reports.flatMap((x) => x.testResults),
  numFailedTests: reports.reduce((n, x) => n + x.numFailedTests, 0),
  numPassedTests: reports.reduce((n, x) => n + x.numPassedTests, 0),
};
const files = r.testResults.map((f) => ({ ...f, path: relative(process.cwd(), f.name) }));
const notRun = files.filter((f) => f.status === 'failed' && !f.assertionResults.some((a) => a.status === 'failed'));
const missing = expected.filter((p) => !files.some((f) => f.path === p));
const skippedElsewhere = files
  .filter((f) => !notRun.includes(f))
  .flatMap((f) =>
    f.assertionResults.filter((a) => a.status === 'skipped' || a.status === 'pending' || a.status === 'todo'),
  );
const failed = r.numFailedTests + notRun.length + missing.length + skippedElsewhere.length + checksFailed;
const why = [
  lintFailed && 'the formatter or linter is not clean (npm run lint)',
  depsFailed && 'an import breaks the import rules (npm run deps, docs/import-rules.md)',
  notRun.length && `${notRun.length} suite(s) failed to run: ${notRun.map((f) => f.path).join(', ')}`,
  missing.length && `${missing.length} suite(s) missing from the report: ${missing.join(', ')}`,
  skippedElsewhere.length && `${skippedElsewhere.length} skipped test(s)`,
].filter(Boolean);
for (const w of why) console.log(`test summary: ${w}`);
console.log(`${r.numPassedTests} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
