import { sleep } from './abort.js';

/**
 * A monotonic clock in milliseconds, from process.hrtime. Not performance.now(): the first read of
 * the global `performance` loads perf_hooks and eight modules behind it (histograms, timerify,
 * event-loop delay), half a megabyte that an idle daemon keeps for no use.
 */
export function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

const wallAtZero = Date.now() - monotonicMs();

/** Wall-clock ms with sub-millisecond precision: intervals of processes on one host can be compared. */
export const preciseWallMs = (): number => wallAtZero + monotonicMs();

/**
 * Time as code that waits reads it: monotonic now() for deadlines and intervals, and sleep().
 * Injected where a unit test would otherwise wait out real time; systemClock everywhere else.
 */
export interface Clock {
  now(): number;
  /** Waits up to ms; false when the signal aborted first. */
  sleep(ms: number, signal?: AbortSignal): Promise<boolean>;
}

export const systemClock: Clock = { now: monotonicMs, sleep };
