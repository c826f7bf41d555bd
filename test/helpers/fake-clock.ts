import type { Clock } from '../../src/util/clock.js';

/**
 * Time that moves only when the code under test sleeps, or the test calls advance(): a sleep
 * returns at once, having moved the clock by its length and run what at() and every() set up
 * for the time passed. Meant for code with one waiting loop at a time.
 */
export class FakeClock implements Clock {
  private time = 0;
  private timers: { at: number; run: () => void }[] = [];
  /** Every sleep asked for, in ms. */
  readonly slept: number[] = [];

  now(): number {
    return this.time;
  }

  async sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return false;
    this.slept.push(ms);
    this.advance(ms);
    await Promise.resolve();
    return !signal?.aborted;
  }

  /** Runs fn once the clock has moved ms past now. */
  at(ms: number, fn: () => void): void {
    this.timers.push({ at: this.time + ms, run: fn });
  }

  /** Runs fn every ms of fake time, until the returned function is called. */
  every(ms: number, fn: () => void): () => void {
    let on = true;
    const again = () => {
      if (!on) return;
      fn();
      this.at(ms, again);
    };
    this.at(ms, again);
    return () => {
      on = false;
    };
  }

  /** Moves the clock by ms, running what falls due on the way, in order. */
  advance(ms: number): void {
    const to = this.time + ms;
    for (;;) {
      const next = this.timers.filter((t) => t.at <= to).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.time = next.at;
      next.run();
    }
    this.time = to;
  }
}
