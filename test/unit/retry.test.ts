import { describe, expect, it } from 'vitest';
import { backoffDelay, every, poll, retry } from '../../src/util/retry.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** A function that fails `failures` times with the given errors, then answers 'done'. */
function flaky(failures: number, error: (n: number) => unknown = (n) => new Error(`failure ${n}`)) {
  const calls: number[] = [];
  const fn = async (attempt: number) => {
    calls.push(attempt);
    if (calls.length <= failures) throw error(calls.length);
    return 'done';
  };
  return { fn, calls };
}

describe('backoffDelay', () => {
  it('multiplies from the first wait up to the cap; factor 1 is a fixed wait', () => {
    const b = { initialMs: 100, factor: 2, maxMs: 500 };
    expect([0, 1, 2, 3, 4].map((n) => backoffDelay(b, n))).toEqual([100, 200, 400, 500, 500]);
    expect([0, 1, 5].map((n) => backoffDelay(every(50), n))).toEqual([50, 50, 50]);
    expect([0, 1, 2].map((n) => backoffDelay({ initialMs: 500, factor: 1.5 }, n))).toEqual([500, 750, 1125]);
  });

  it('a list gives the n-th wait, its last entry repeating', () => {
    expect([0, 1, 2, 7].map((n) => backoffDelay([10, 20, 30], n))).toEqual([10, 20, 30, 30]);
  });

  it('jitter spreads a wait by ± the fraction, to the millisecond', () => {
    const b = { initialMs: 1_000, factor: 1, jitter: 0.05 };
    expect(backoffDelay(b, 0, () => 0)).toBe(950);
    expect(backoffDelay(b, 0, () => 0.5)).toBe(1_000);
    expect(backoffDelay(b, 0, () => 0.999_999)).toBe(1_050);
  });
});

describe('retry', () => {
  it('tries up to `attempts` times with the backoff between, then throws the last failure', async () => {
    const clock = new FakeClock();
    const { fn, calls } = flaky(10);
    await expect(retry(fn, { attempts: 4, backoff: { initialMs: 500 }, clock })).rejects.toThrow('failure 4');
    expect(calls).toEqual([1, 2, 3, 4]);
    expect(clock.slept).toEqual([500, 1_000, 2_000]);
  });

  it('returns as soon as a try succeeds, without a wait after it', async () => {
    const clock = new FakeClock();
    const { fn, calls } = flaky(2);
    await expect(retry(fn, { attempts: 5, backoff: every(100), clock })).resolves.toBe('done');
    expect(calls).toHaveLength(3);
    expect(clock.slept).toEqual([100, 100]);
  });

  it('a failure that retryIf refuses is thrown at once', async () => {
    const clock = new FakeClock();
    const { fn, calls } = flaky(5, (n) => (n === 2 ? new Error('permanent') : new Error('transient')));
    const retryIf = (err: unknown) => (err as Error).message === 'transient';
    await expect(retry(fn, { attempts: 5, backoff: every(100), retryIf, clock })).rejects.toThrow('permanent');
    expect(calls).toHaveLength(2);
    expect(clock.slept).toEqual([100]);
  });

  it('a Retry-After replaces the backoff step, cut to maxRetryAfterMs; onRetry sees each wait', async () => {
    const clock = new FakeClock();
    const asked = [3_000, undefined, 90_000];
    const { fn } = flaky(3, (n) => Object.assign(new Error(`429 #${n}`), { retryAfterMs: asked[n - 1] }));
    const seen: string[] = [];
    await retry(fn, {
      attempts: 4,
      backoff: { initialMs: 500 },
      retryAfter: (err) => (err as { retryAfterMs?: number }).retryAfterMs,
      maxRetryAfterMs: 30_000,
      onRetry: (err, ms, attempt) => seen.push(`${attempt}: ${(err as Error).message} → ${ms}`),
      clock,
    });
    expect(clock.slept).toEqual([3_000, 1_000, 30_000]);
    expect(seen).toEqual(['1: 429 #1 → 3000', '2: 429 #2 → 1000', '3: 429 #3 → 30000']);
  });

  it('stops at the deadline: the last wait is shortened to it, and the failure there is thrown', async () => {
    const clock = new FakeClock();
    const { fn, calls } = flaky(100);
    await expect(retry(fn, { backoff: every(400), deadline: 1_000, clock })).rejects.toThrow('failure 4');
    expect(clock.slept).toEqual([400, 400, 200]);
    expect(calls).toHaveLength(4);
    expect(clock.now()).toBe(1_000);
  });

  it('an abort during a wait throws the signal’s reason, and no further try is made', async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    clock.at(250, () => ac.abort(new Error('stopping')));
    const { fn, calls } = flaky(100);
    await expect(retry(fn, { attempts: 10, backoff: every(100), signal: ac.signal, clock })).rejects.toThrow(
      'stopping',
    );
    expect(calls).toHaveLength(3);
  });
});

describe('poll', () => {
  it('looks until the condition holds and returns that look, with the number of looks', async () => {
    const clock = new FakeClock();
    let n = 0;
    const r = await poll(async () => ++n, { until: (v) => v === 3, backoff: { initialMs: 20, maxMs: 30 }, clock });
    expect(r).toEqual({ ok: true, value: 3, attempts: 3 });
    expect(clock.slept).toEqual([20, 30]);
  });

  it('used-up attempts end with the last look and no wait after it', async () => {
    const clock = new FakeClock();
    const r = await poll(async (attempt) => `look ${attempt}`, {
      until: () => false,
      attempts: 3,
      backoff: [5],
      clock,
    });
    expect(r).toEqual({ ok: false, stopped: 'attempts', value: 'look 3', attempts: 3 });
    expect(clock.slept).toEqual([5, 5]);
  });

  it('a deadline shortens the last wait for a last look at it (the default)', async () => {
    const clock = new FakeClock();
    const at: number[] = [];
    const r = await poll(async () => at.push(clock.now()), {
      until: () => false,
      backoff: every(250),
      deadline: 600,
      clock,
    });
    expect(r).toMatchObject({ ok: false, stopped: 'deadline', attempts: 4 });
    expect(at).toEqual([0, 250, 500, 600]);
  });

  it("atDeadline 'stop' shortens the last wait but makes no look at the deadline, nor any once it has passed", async () => {
    const clock = new FakeClock();
    const at: number[] = [];
    const look = async () => at.push(clock.now());
    const r = await poll(look, { until: () => false, backoff: every(250), deadline: 600, atDeadline: 'stop', clock });
    expect(r).toMatchObject({ ok: false, stopped: 'deadline', attempts: 3 });
    expect(at).toEqual([0, 250, 500]);
    expect(clock.now()).toBe(600);
    const none = await poll(look, { until: () => true, backoff: every(250), deadline: 600, atDeadline: 'stop', clock });
    expect(none).toEqual({ ok: false, stopped: 'deadline', value: undefined, attempts: 0 });
  });

  it("atDeadline 'give-up' does not start a wait that would end past the deadline", async () => {
    const clock = new FakeClock();
    const r = await poll(async () => 'pending', {
      until: () => false,
      backoff: { initialMs: 100 },
      deadline: 1_000,
      atDeadline: 'give-up',
      clock,
    });
    expect(r).toMatchObject({ ok: false, stopped: 'deadline', attempts: 4 });
    expect(clock.slept).toEqual([100, 200, 400]);
    expect(clock.now()).toBe(700);
  });

  it('waitFirst waits before the first look; a deadline too close stops before any look', async () => {
    const clock = new FakeClock();
    const looked: number[] = [];
    const r = await poll(async () => looked.push(clock.now()), {
      until: (n) => n === 2,
      backoff: every(50),
      waitFirst: true,
      clock,
    });
    expect(r.ok).toBe(true);
    expect(looked).toEqual([50, 100]);
    const none = await poll(async () => 1, {
      until: () => true,
      backoff: every(50),
      waitFirst: true,
      deadline: clock.now() + 10,
      atDeadline: 'give-up',
      clock,
    });
    expect(none).toEqual({ ok: false, stopped: 'deadline', value: undefined, attempts: 0 });
  });

  it('a Retry-After read from a look sets the next wait, capped; the backoff still advances', async () => {
    const clock = new FakeClock();
    const answers = [{ after: 7_000 }, {}, { after: 100_000 }, {}, { done: true }];
    let i = 0;
    const r = await poll(async () => answers[i++]!, {
      until: (a) => 'done' in a,
      backoff: { initialMs: 20 },
      retryAfter: (a) => ('after' in a ? a.after : undefined),
      maxRetryAfterMs: 30_000,
      clock,
    });
    expect(r.ok).toBe(true);
    expect(clock.slept).toEqual([7_000, 40, 30_000, 160]);
  });

  it('an abort ends the poll with the last look, and onWait saw each wait', async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    clock.at(150, () => ac.abort());
    const waits: string[] = [];
    const r = await poll(async (attempt) => attempt, {
      until: () => false,
      backoff: every(100),
      signal: ac.signal,
      onWait: (v, ms) => waits.push(`${v}:${ms}`),
      clock,
    });
    expect(r).toEqual({ ok: false, stopped: 'aborted', value: 2, attempts: 2 });
    expect(waits).toEqual(['1:100', '2:100']);
  });

  it('an already aborted signal makes one look and no wait', async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    ac.abort();
    const r = await poll(async () => 'x', { until: () => false, backoff: every(100), signal: ac.signal, clock });
    expect(r).toMatchObject({ ok: false, stopped: 'aborted', attempts: 1 });
    expect(clock.slept).toEqual([]);
  });
});
