import type { VariantSpec } from '../config/schema.js';
import { emergency } from './ari.js';
import type { AriState, CertState } from '../state/cert-state.js';
import { formatDuration } from '../util/duration.js';

/** Waits after consecutive failures: 1 min, 10 min, 100 min, then daily (Let's Encrypt's advice). */
export const BACKOFF_MS = [60_000, 600_000, 6_000_000, 86_400_000] as const;

export function backoffDelay(failures: number): number {
  return BACKOFF_MS[Math.min(Math.max(failures, 1), BACKOFF_MS.length) - 1]!;
}

/** The longest wait mailcerts accepts, whatever a CA's Retry-After or a stored state says. */
export const MAX_WAIT_MS = 86_400_000;
/** With the certificate expired or in its last tenth, no wait is longer than this. */
export const URGENT_MAX_WAIT_MS = 3_600_000;

/** The next attempt after a failure: the backoff step, or later when the CA asked for more (Retry-After of a rateLimited answer), at most a day. */
export function nextAttemptAt(failures: number, now: Date, retryAfterMs?: number): Date {
  return new Date(now.getTime() + Math.min(Math.max(backoffDelay(failures), retryAfterMs ?? 0), MAX_WAIT_MS));
}

const SHORT_LIVED_MS = 10 * 86_400_000;

/** Renew when a third of the lifetime is left, or half of it for certificates shorter than 10 days. */
export function renewalTime(notBefore: Date, notAfter: Date): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const left = lifetime < SHORT_LIVED_MS ? lifetime / 2 : lifetime / 3;
  return new Date(notAfter.getTime() - left);
}

export interface PublishedFacts {
  names: string[];
  keyType: string;
  notBefore: Date;
  notAfter: Date;
}

export type Decision =
  | { action: 'issue'; reason: string }
  /** Publish the certificate issued earlier and kept in STATE_DIR (its publish failed, or it was rolled back). */
  | { action: 'republish'; reason: string }
  | { action: 'keep'; renewAt: Date; reason: string }
  | { action: 'wait'; until: Date; reason: string };

const earlier = (a: number, b: number) => new Date(Math.min(a, b));
const validTime = (iso: string | undefined) => (iso && !Number.isNaN(Date.parse(iso)) ? Date.parse(iso) : undefined);

/**
 * When the backoff ends. Stored times are not trusted: the wait is measured from the failure (a
 * failure stamped in the future counts as now), is at most a day, and at most an hour when the
 * certificate has expired or is in its last tenth.
 */
export function retryTime(state: CertState, now: Date, published?: PublishedFacts): Date | undefined {
  const stored = validTime(state.nextAttemptAt);
  if (stored === undefined) return undefined;
  const failedAt = Math.min(
    validTime(state.failedAt) ?? validTime(state.lastAttemptAt) ?? now.getTime(),
    now.getTime(),
  );
  const urgent = !published || now >= published.notAfter || emergency(published.notBefore, published.notAfter, now);
  return earlier(stored, failedAt + (urgent ? URGENT_MAX_WAIT_MS : MAX_WAIT_MS));
}

/** Whether a kept certificate can still be published instead of ordering a new one; the reason when not. */
export function pendingProblem(spec: VariantSpec, pending: PublishedFacts, now: Date): string | undefined {
  if ([...pending.names].sort().join(',') !== [...spec.domains].sort().join(','))
    return 'its names are no longer the configured ones';
  if (pending.keyType !== spec.keyType) return `its key type ${pending.keyType} is no longer the configured one`;
  if (now >= renewalTime(pending.notBefore, pending.notAfter)) return 'it is itself due for renewal';
  return undefined;
}

/** What to do with one certificate now. */
export function decide(input: {
  spec: VariantSpec;
  published?: PublishedFacts;
  /** Why the published files are unusable, when they are. */
  broken?: string;
  /** A certificate issued earlier, kept because it is not deployed, and not the one published now. */
  pending?: PublishedFacts & { serial: string };
  state: CertState;
  now: Date;
  force?: boolean;
  /** The CA's window for the published certificate (only when it names that certificate). */
  ari?: AriState;
  /** The configured ACME profile; a change renews. */
  profile?: string;
}): Decision {
  const { spec, published, broken, pending, state, now, force, ari, profile } = input;
  if (force) return { action: 'issue', reason: 'forced' };
  const retryAt = retryTime(state, now, broken ? undefined : published);
  if (retryAt && retryAt > now) {
    return {
      action: 'wait',
      until: retryAt,
      reason: `backing off after ${state.failures} failure(s), next try in ${formatDuration(retryAt.getTime() - now.getTime())}`,
    };
  }
  if (pending && !pendingProblem(spec, pending, now)) {
    const why = state.failedStep === 'verify' ? 'rolled back' : 'not published';
    return {
      action: 'republish',
      reason: `publishing again the certificate issued earlier (serial ${pending.serial}, ${why}) instead of ordering a new one`,
    };
  }
  if (broken) return { action: 'issue', reason: `the published files are unusable: ${broken}` };
  if (state.failedStep === 'verify')
    return { action: 'issue', reason: 'the last new certificate was rolled back; trying again' };
  if (!published) return { action: 'issue', reason: 'no certificate published yet' };
  const want = [...spec.domains].sort();
  const have = [...published.names].sort();
  if (want.join(',') !== have.join(',')) {
    const added = want.filter((n) => !have.includes(n));
    const removed = have.filter((n) => !want.includes(n));
    return {
      action: 'issue',
      reason: `names changed (${[...added.map((n) => `+${n}`), ...removed.map((n) => `-${n}`)].join(' ')})`,
    };
  }
  if (published.keyType !== spec.keyType)
    return { action: 'issue', reason: `key type changed from ${published.keyType} to ${spec.keyType}` };
  if ((profile ?? '') !== (state.profile ?? ''))
    return { action: 'issue', reason: `profile changed from ${state.profile ?? '(none)'} to ${profile ?? '(none)'}` };
  if (now >= published.notAfter) return { action: 'issue', reason: 'expired' };
  if (emergency(published.notBefore, published.notAfter, now)) {
    return {
      action: 'issue',
      reason: `emergency: only ${formatDuration(published.notAfter.getTime() - now.getTime())} left, whatever the CA's window says`,
    };
  }
  if (ari) {
    const selected = earlier(Date.parse(ari.selected), Date.parse(ari.end)); // a stored pick beyond the window is not trusted
    if (now >= selected) return { action: 'issue', reason: `ARI window open (${ari.start} to ${ari.end})` };
    return { action: 'keep', renewAt: selected, reason: 'ARI window' };
  }
  const renewAt = renewalTime(published.notBefore, published.notAfter);
  if (now >= renewAt)
    return { action: 'issue', reason: `due: ${formatDuration(published.notAfter.getTime() - now.getTime())} left` };
  return { action: 'keep', renewAt, reason: 'lifetime rule' };
}
