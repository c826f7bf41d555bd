/**
 * The one way mailcerts waits for something: poll() looks until a condition holds, retry() tries
 * until a call succeeds. Both take a number of attempts, a backoff, a wait asked for by the other
 * side (Retry-After), a deadline and an AbortSignal, and wait on an injectable Clock so that unit
 * tests run on fake time. Why not p-retry or p-wait-for: docs/decisions.md.
 */
import { type Clock, systemClock } from './clock.js';
import { Cancelled } from './error-codes.js';

/**
 * The waits between looks: a list (the n-th wait is the n-th entry, the last one repeating), or
 * `initialMs` multiplied by `factor` (default 2; 1 is a fixed wait) at each wait, up to `maxMs`,
 * spread by ±`jitter` (a fraction: 0.05 is ±5%, rounded to the millisecond).
 */
export type Backoff = readonly number[] | { initialMs: number; factor?: number; maxMs?: number; jitter?: number };

/** A fixed wait of ms between looks. */
export const every = (ms: number): Backoff => ({ initialMs: ms, factor: 1 });

/** The n-th wait (from 0) of a backoff. */
export function backoffDelay(backoff: Backoff, n: number, random: () => number = Math.random): number {
  if (isList(backoff)) return backoff[Math.min(n, backoff.length - 1)] ?? 0;
  const { initialMs, factor = 2, maxMs = Number.POSITIVE_INFINITY, jitter = 0 } = backoff;
  const base = Math.min(initialMs * factor ** n, maxMs);
  return jitter > 0 ? Math.round(base * (1 - jitter + 2 * jitter * random())) : base;
}

const isList = (b: Backoff): b is readonly number[] => Array.isArray(b);

interface WaitOptions {
  backoff: Backoff;
  /** Looks (or tries) at most, the first included. Unlimited when absent: give a deadline then. */
  attempts?: number;
  /** A clock.now() time: no wait runs past it, and a look that fails at or after it is the last. */
  deadline?: number;
  /**
   * What a wait that would run past the deadline does. 'last-look' (the default): it is shortened to
   * end at the deadline, for a last look then. 'stop': it is shortened, and no look starts at or after
   * the deadline (a look that needs time to mean anything). 'give-up': it is not begun; the poll stops.
   */
  atDeadline?: 'last-look' | 'stop' | 'give-up';
  /** A wait asked for by the other side (a Retry-After) above this is cut to it. */
  maxRetryAfterMs?: number;
  signal?: AbortSignal;
  clock?: Clock;
  /** For jitter; Math.random unless a test fixes it. */
  random?: () => number;
}

export interface PollOptions<T> extends WaitOptions {
  /** Whether a look found what is waited for. */
  until: (value: T) => boolean;
  /** A wait asked for by this look's answer (a Retry-After in ms): taken instead of the backoff's. */
  retryAfter?: (value: T) => number | undefined;
  /** The first look comes after the first wait (what is looked at was just asked to change). */
  waitFirst?: boolean;
  /** Called before each wait with the look that failed (undefined before a first wait). */
  onWait?: (value: T | undefined, waitMs: number, attempt: number) => void;
}

/** How a poll ended: what the last look found, or why it stopped looking. */
export type Polled<T> =
  | { ok: true; value: T; attempts: number }
  | { ok: false; stopped: 'attempts' | 'deadline' | 'aborted'; value: T | undefined; attempts: number };

/** Looks until `until` holds, the attempts are used, the deadline passes or the signal aborts. */
export async function poll<T>(look: (attempt: number) => Promise<T>, opts: PollOptions<T>): Promise<Polled<T>> {
  const clock = opts.clock ?? systemClock;
  const deadline = opts.deadline ?? Number.POSITIVE_INFINITY;
  let waits = 0;
  let attempts = 0;
  let value: T | undefined;
  const pause = async (): Promise<'deadline' | 'aborted' | undefined> => {
    let ms = backoffDelay(opts.backoff, waits++, opts.random);
    const asked = attempts > 0 ? opts.retryAfter?.(value as T) : undefined;
    if (asked !== undefined) ms = Math.min(asked, opts.maxRetryAfterMs ?? Number.POSITIVE_INFINITY);
    const left = deadline - clock.now();
    if (ms > left) {
      if (opts.atDeadline === 'give-up') return 'deadline';
      ms = Math.max(0, left);
    }
    opts.onWait?.(value, ms, attempts);
    return (await clock.sleep(ms, opts.signal)) ? undefined : 'aborted';
  };
  const late = () => opts.atDeadline === 'stop' && clock.now() >= deadline;
  const end = (stopped: 'attempts' | 'deadline' | 'aborted'): Polled<T> => ({ ok: false, stopped, value, attempts });
  if (opts.waitFirst) {
    const stopped = await pause();
    if (stopped) return end(stopped);
  }
  for (;;) {
    if (late()) return end('deadline');
    value = await look(++attempts);
    if (opts.until(value)) return { ok: true, value, attempts };
    if (attempts >= (opts.attempts ?? Number.POSITIVE_INFINITY)) return end('attempts');
    if (clock.now() >= deadline) return end('deadline');
    const stopped = await pause();
    if (stopped) return end(stopped);
  }
}

export interface RetryOptions extends WaitOptions {
  /** Whether a failure is worth another try (default: every one). */
  retryIf?: (err: unknown, attempt: number) => boolean;
  /** A wait the failure asks for (a Retry-After in ms): taken instead of the backoff's. */
  retryAfter?: (err: unknown) => number | undefined;
  /** Called before each wait, with the failure that caused it. */
  onRetry?: (err: unknown, waitMs: number, attempt: number) => void;
}

type Try<T> = { ok: true; value: T } | { ok: false; error: unknown; attempt: number };

/**
 * Calls fn until it resolves; throws the last failure when it is not worth another try, or the
 * attempts or the time are used up. An abort during a wait throws the signal's reason.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const r = await poll<Try<T>>(
    async (attempt) => {
      try {
        return { ok: true, value: await fn(attempt) };
      } catch (error) {
        return { ok: false, error, attempt };
      }
    },
    {
      ...opts,
      until: (t) => t.ok || !(opts.retryIf?.(t.error, t.attempt) ?? true),
      retryAfter: (t) => (t.ok ? undefined : opts.retryAfter?.(t.error)),
      onWait: (t, ms, attempt) => t && !t.ok && opts.onRetry?.(t.error, ms, attempt),
    },
  );
  if (!r.ok && r.stopped === 'aborted') throw abortReason(opts.signal);
  const last = r.value!;
  if (last.ok) return last.value;
  throw last.error;
}

/** Why the signal aborted (mailcerts aborts with Cancelled); Cancelled when it says nothing. */
function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Cancelled();
}
