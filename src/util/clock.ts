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
