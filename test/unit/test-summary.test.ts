/**
 * The summary line CI reads cannot say "0 failed" for a run that failed: a real vitest run of
 * fixture suites, with the reporters of scripts/test-all.sh, then scripts/test-summary.mjs on what
 * it wrote. vitest's JSON report leaves out errors thrown outside any test; the summary must not.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WORK = join(ROOT, '.test-work', `summary-${process.pid}`);
afterAll(() => rmSync(WORK, { recursive: true, force: true }));

const PASSING = `import { expect, it } from 'vitest';
it('adds', () => expect(1 + 1).toBe(2));
`;
// Thrown by a timer the file starts at load time: in no test, after the test passed.
const THROWS_OUTSIDE = `import { expect, it } from 'vitest';
setTimeout(() => { throw new Error('thrown outside any test'); }, 20);
it('waits for the timer', async () => {
  await new Promise((r) => setTimeout(r, 200));
  expect(true).toBe(true);
});
`;

/** Runs vitest on the given suites as test-all.sh runs a lane, then the summary on its report. */
function runLane(name: string, suites: Record<string, string>, opts: { errorsReporter?: boolean } = {}) {
  const dir = join(WORK, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vitest.config.mjs'), "export default { test: { include: ['*.test.ts'] } };\n");
  for (const [file, text] of Object.entries(suites)) writeFileSync(join(dir, file), text);
  const report = join(dir, 'lane.json');
  const reporters = ['--reporter=json', `--outputFile.json=${report}`];
  if (opts.errorsReporter !== false) reporters.push(`--reporter=${join(ROOT, 'scripts/run-errors-reporter.mjs')}`);
  const vitest = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--root', dir, ...reporters],
    { cwd: dir, encoding: 'utf8', env: { ...process.env, RUN_ERRORS_FILE: join(dir, 'lane.errors.json') } },
  );
  writeFileSync(join(dir, 'lane.exit'), `${vitest.status}\n`);
  const summary = spawnSync(process.execPath, [join(ROOT, 'scripts/test-summary.mjs'), report], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, TEST_SUMMARY_DIR: dir, LINT_FAILED: '0', DEPS_FAILED: '0' },
  });
  const lines = summary.stdout.trim().split('\n');
  return { vitestExit: vitest.status, exit: summary.status, line: lines.at(-1), why: lines.slice(0, -1) };
}

describe('the summary line', () => {
  it('counts a passing run as passed, nothing failed', () => {
    const run = runLane('clean', { 'adds.test.ts': PASSING });
    expect(run.vitestExit).toBe(0);
    expect(run.line).toBe('1 passed, 0 failed');
    expect(run.exit).toBe(0);
  }, 60_000);

  it('counts an error thrown outside any test as failed, though every test passed', () => {
    const run = runLane('outside', { 'adds.test.ts': PASSING, 'throws.test.ts': THROWS_OUTSIDE });
    expect(run.vitestExit).not.toBe(0);
    expect(run.line).toBe('2 passed, 1 failed');
    expect(run.why.join('\n')).toContain('an error outside any test');
    expect(run.why.join('\n')).toContain('thrown outside any test');
    expect(run.exit).toBe(1);
  }, 60_000);

  it('counts a lane whose reporters did not finish as failed', () => {
    const run = runLane('no-errors-file', { 'adds.test.ts': PASSING }, { errorsReporter: false });
    expect(run.line).toBe('1 passed, 1 failed');
    expect(run.why.join('\n')).toContain('the reporters did not finish');
    expect(run.exit).toBe(1);
  }, 60_000);
});
