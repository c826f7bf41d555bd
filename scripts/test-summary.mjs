// Reads vitest's JSON report and prints the line CI reads: "N passed, M failed".
// Every suite that did not run counts as failed: a file that failed to load or whose setup failed
// (its tests show as skipped), a file missing from the report (a global setup that failed), and
// any skipped test, since no test here may skip. So does what the JSON report leaves out: each
// error thrown outside any test (REPORT.errors.json, from scripts/run-errors-reporter.mjs; a
// missing one means the reporters did not finish), and a lane whose vitest exited non-zero
// (REPORT.exit) although nothing else here failed.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const [report, ...filters] = process.argv.slice(2);
const testFiles = (dir) =>
  readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? testFiles(p) : p.endsWith('.test.ts') ? [p] : [];
  });
const expected = testFiles(process.env.TEST_SUMMARY_DIR ?? 'test')
  .map((p) => relative('.', p))
  .filter((p) => filters.length === 0 || filters.some((f) => p.includes(f)));

// Reports: one or more vitest JSON reports, comma-separated (the unit lane, then the integration lane).
const reports = [];
const outside = []; // failures outside any test: unhandled errors, reporters that did not finish
const exits = []; // lanes whose vitest exited non-zero
const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));
for (const path of report.split(',')) {
  try {
    reports.push(readJson(path));
  } catch {
    console.log(`test summary: no test report at ${path} (that lane did not run)`);
    continue;
  }
  const side = path.replace(/\.json$/, '');
  try {
    const run = readJson(`${side}.errors.json`);
    outside.push(...run.errors.map((e) => `${path}: ${e}`));
    if (run.reason === 'interrupted') outside.push(`${path}: the run was interrupted`);
  } catch {
    outside.push(`${path}: no ${side}.errors.json (the reporters did not finish)`);
  }
  const exit = existsSync(`${side}.exit`) ? readFileSync(`${side}.exit`, 'utf8').trim() : '0';
  if (exit !== '0') exits.push(`${path}: vitest exited with code ${exit}`);
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
const counted = r.numFailedTests + notRun.length + missing.length + skippedElsewhere.length + checksFailed;
// A lane that failed for a reason none of the counts above saw still fails the line.
const unexplained = counted + outside.length === 0 ? exits : [];
const failed = counted + outside.length + unexplained.length;
const why = [
  lintFailed && 'the formatter or linter is not clean (npm run lint)',
  depsFailed && 'an import breaks the import rules (npm run deps, docs/import-rules.md)',
  notRun.length && `${notRun.length} suite(s) failed to run: ${notRun.map((f) => f.path).join(', ')}`,
  missing.length && `${missing.length} suite(s) missing from the report: ${missing.join(', ')}`,
  skippedElsewhere.length && `${skippedElsewhere.length} skipped test(s)`,
  ...outside.map((e) => `an error outside any test: ${e}`),
  ...unexplained,
].filter(Boolean);
for (const w of why) console.log(`test summary: ${w}`);
console.log(`${r.numPassedTests} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
