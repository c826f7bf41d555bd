import { setTimeout as delay } from 'node:timers/promises';

const MAX_TIMER = 86_400_000;

/** Sleeps up to ms; resolves false early when the signal aborts. Long waits are chunked (setTimeout caps at ~24.8 days). */
export async function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  let left = ms;
  while (left > 0) {
    if (signal?.aborted) return false;
    const step = Math.min(left, MAX_TIMER);
    try {
      await delay(step, undefined, { signal });
    } catch {
      return false;
    }
    left -= step;
  }
  return !signal?.aborted;
}

/** Rejects as soon as the signal aborts, whatever the promise does. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new Error(`${what} cancelled: shutting down`));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error(`${what} cancelled: shutting down`));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Wraps a promise with a deadline; the error names the operation. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${Math.round(ms / 1000)}s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
