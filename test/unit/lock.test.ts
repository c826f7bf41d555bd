import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireLock } from '../../src/state/lock.js';
import { FakeClock } from '../helpers/fake-clock.js';

const fresh = () => mkdtempSync(join(tmpdir(), 'mailcerts-lock-'));
/** A lock file as another container (another pid namespace) writes it: its pid means nothing here. */
const foreign = (beat: number) =>
  `${JSON.stringify({ owner: 'other-container', host: 'c0ffee', pid: 1, ns: 'elsewhere/pid:[1]', since: '2026-01-01T00:00:00.000Z', beat })}\n`;

describe('the pass lock (STATE_DIR/pass.lock)', () => {
  it('a second holder waits, then gives up naming the first', async () => {
    const dir = fresh();
    const first = await acquireLock(dir, { waitMs: 0 });
    const clock = new FakeClock();
    await expect(acquireLock(dir, { waitMs: 300, clock })).rejects.toThrow(
      /another mailcerts \(host .+, pid \d+, since .+\) is working on .+; try again when it has finished/,
    );
    expect(clock.now()).toBeGreaterThanOrEqual(300);
    await first.release();
    const again = await acquireLock(dir, { waitMs: 0 });
    await again.release();
  });

  it('PID 1 of another container is not "this process": its lock is not taken over while it beats', async () => {
    const dir = fresh();
    const path = join(dir, 'pass.lock');
    writeFileSync(path, foreign(0));
    let beat = 0;
    const clock = new FakeClock();
    // Each beat replaces the file whole: a reader never sees it empty (the lock's own beat rewrites its fixed-size record in place).
    const stop = clock.every(100, () => {
      writeFileSync(`${path}.beat`, foreign(++beat));
      renameSync(`${path}.beat`, path);
    });
    try {
      await expect(acquireLock(dir, { waitMs: 1_500, staleMs: 600, clock })).rejects.toThrow(
        /another mailcerts \(host c0ffee, pid 1/,
      );
    } finally {
      stop();
    }
    expect(clock.now()).toBeGreaterThanOrEqual(1_500);
    expect(readFileSync(path, 'utf8')).toContain('other-container');
  });

  it('a lock whose holder stopped beating (a dead container, another host) is taken over after it stayed unchanged', async () => {
    const dir = fresh();
    writeFileSync(join(dir, 'pass.lock'), foreign(7));
    const clock = new FakeClock();
    const lock = await acquireLock(dir, { waitMs: 5_000, staleMs: 600, clock });
    expect(clock.now()).toBeGreaterThanOrEqual(600);
    expect(readFileSync(join(dir, 'pass.lock'), 'utf8')).not.toContain('other-container');
    await lock.release();
  });

  it('a holder that was taken over (it looked dead) refuses to publish, even before its next heartbeat', async () => {
    const dir = fresh();
    const lock = await acquireLock(dir, { waitMs: 0, heartbeatMs: 60_000 });
    await lock.check('publishing "mail"');
    writeFileSync(join(dir, 'pass.lock'), foreign(1)); // what a breaker's fresh lock looks like
    await expect(lock.check('publishing "mail"')).rejects.toThrow(
      /the pass lock was taken over by host c0ffee, pid 1, .*; publishing "mail" was not done/,
    );
    await lock.release();
    expect(readFileSync(join(dir, 'pass.lock'), 'utf8')).toContain('other-container'); // the new holder's lock stays
  });

  it('the holder keeps its lock alive: its file changes at every heartbeat', async () => {
    const dir = fresh();
    const lock = await acquireLock(dir, { waitMs: 0, heartbeatMs: 50 });
    const a = readFileSync(join(dir, 'pass.lock'), 'utf8');
    await new Promise((r) => setTimeout(r, 200));
    expect(readFileSync(join(dir, 'pass.lock'), 'utf8')).not.toBe(a);
    await lock.release();
  });

  it('a lock file that cannot be read is reported at once, not spun on', async () => {
    const dir = fresh();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'pass.lock')); // a directory where the lock file goes
    const started = Date.now();
    await expect(acquireLock(dir, { waitMs: 10_000 })).rejects.toThrow(
      /cannot read the pass lock .*pass\.lock \(EISDIR\); if no mailcerts is running, remove it/,
    );
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
