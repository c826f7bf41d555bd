/**
 * What a stage reads of a CertRun and hands it (the plan, the outcome, the state's read-only view),
 * and the failure bookkeeping CertRun does on its state (called by it alone).
 */
import { type Decision, nextAttemptAt } from '../plan/renewal.js';
import type { Bundle } from '../pki/bundle.js';
import type { AriState, CertState, DaneState } from '../state/cert-state.js';
import type { ErrorCode } from '../util/error-codes.js';

/** What a pass did with one certificate, as `run --once`, the daemon and the logs report it. */
export interface CertOutcome {
  name: string;
  /** The variant's key type, for a certificate with several. */
  keyType?: string;
  /** ok: a valid certificate is published and deployed; failed: see error. */
  ok: boolean;
  /** For supplied certificates, 'publish' (new files) or 'keep'. */
  decision: Action;
  reason: string;
  issued: boolean;
  published: boolean;
  error?: string;
  /** When this certificate next needs attention (renewal time or end of backoff). */
  nextAt?: Date;
}

export type FailedStep = NonNullable<CertState['failedStep']>;

/** What the planning of a pass decided for one variant: computed by the plan step, recorded by the run. */
export interface Plan {
  action: Action;
  reason: string;
  /** When the variant next needs attention (renewal time, ARI check, end of a wait). */
  nextAt?: Date;
  /** A failure still being backed off (or why it waits): the run is not ok. */
  error?: string;
  /** ARI: the certificate a new order replaces. */
  replaces?: string;
  /** The certificate issued earlier and kept in STATE_DIR, still usable. */
  kept?: Bundle;
}

export type Action = Decision['action'] | 'publish';

/** The state as stages read it: it changes only through the run's methods. */
export type StateView = Readonly<Omit<CertState, 'dane' | 'ari' | 'pending'>> & {
  readonly dane?: Readonly<DaneState>;
  readonly ari?: Readonly<AriState>;
  readonly pending?: Readonly<NonNullable<CertState['pending']>>;
};

/** Counts a failure on the state and backs off; returns when the next attempt may come. */
export function recordFailure(
  st: CertState,
  step: FailedStep,
  error: string,
  now: Date,
  retryAfterMs?: number,
  code?: ErrorCode,
): Date {
  st.failures += 1;
  st.failedStep = step;
  st.lastError = error;
  st.lastErrorCode = code;
  st.failedAt = now.toISOString();
  st.failingSince ??= now.toISOString();
  const next = nextAttemptAt(st.failures, now, retryAfterMs);
  st.nextAttemptAt = next.toISOString();
  return next;
}

/** The failure is over: nothing of it stays in the state. */
export function clearFailure(st: CertState): void {
  st.failures = 0;
  st.lastError = undefined;
  st.lastErrorCode = undefined;
  st.failedStep = undefined;
  st.nextAttemptAt = undefined;
  st.failedAt = undefined;
  st.failingSince = undefined;
  st.rejectedDigest = undefined;
}
