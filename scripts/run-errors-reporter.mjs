// A vitest reporter that writes what vitest's JSON report leaves out: the errors thrown outside
// any test (unhandled errors and rejections, a reporter that threw) and why the run ended.
// scripts/test-summary.mjs counts them as failed. The file is RUN_ERRORS_FILE (vitest's JSON report's
// path with .errors.json in place of .json).
import { writeFileSync } from 'node:fs';

export default class RunErrorsReporter {
  onTestRunEnd(_modules, unhandledErrors, reason) {
    const file = process.env.RUN_ERRORS_FILE;
    if (!file) throw new Error('scripts/run-errors-reporter.mjs needs RUN_ERRORS_FILE');
    const errors = unhandledErrors.map((e) => `${e.name ?? 'Error'}: ${e.message ?? String(e)}`);
    writeFileSync(file, JSON.stringify({ reason, errors }));
  }
}
