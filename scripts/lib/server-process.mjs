// A test server run in the foreground: its output into a log file, up once `answers()` is true
// (it is asked every 100 ms for 10 s), stopped with SIGTERM. Shared by the BIND and unbound harnesses.
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * @param {{ bin: string, args: string[], logFile: string, answers: () => boolean, what: string }} o
 * @returns {Promise<{ stop(): Promise<void> }>}
 */
export async function startServerProcess(o) {
  const log = createWriteStream(o.logFile);
  const proc = spawn(o.bin, o.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.pipe(log, { end: false });
  proc.stderr.pipe(log, { end: false });
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
    log.end();
  };
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`${o.bin} exited at start; see ${o.logFile}`);
    let up = false;
    try {
      up = o.answers();
    } catch {
      /* not up yet */
    }
    if (up) return { stop };
    if (i > 100) {
      await stop();
      throw new Error(
        `${o.what} did not answer within 10s; see ${o.logFile}: ${readFileSync(o.logFile, 'utf8').slice(-800)}`,
      );
    }
    await delay(100);
  }
}
