import type { CertificateSpec } from '../config/schema.js';
import { type AriState, emergency } from './ari.js';
import type { CertState } from '../state/cert-state.js';
import { formatDuration } from '../util/duration.js';

/** Waits after consecutive failures: 1 min, 10 min, 100 min, then daily (Let's Encrypt's advice). */
export const BACKOFF_MS = [60_000, 600_000, 6_000_000, 86_400_000] as const;

export function backoffDelay(failures: number): number {
  return BACKOFF_MS[Math.min(Math.max(failures, 1), BACKOFF_MS.length) - 1]!;
}

/** The next attempt after a failure: the backoff step, or later when the CA asked for more (Retry-After of a rateLimited answer). */
export function nextAttemptAt(failures: number, now: Date, retryAfterMs?: number): Date {
  return new Date(now.getTime() + Math.max(backoffDelay(failures), retryAfterMs ?? 0));
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
  | { action: 'keep'; renewAt: Date; reason: string }
  | { action: 'wait'; until: Date; reason: string };

/** What to do with one certificate now. */
export function decide(input: {
  spec: CertificateSpec;
  published?: PublishedFacts;
  /** Why the published files are unusable, when they are. */
  broken?: string;
  state: CertState;
  now: Date;
  force?: boolean;
  /** The CA's window for the published certificate (only when it names that certificate). */
  ari?: AriState;
  /** The configured ACME profile; a change renews. */
  profile?: string;
}): Decision {
  const { spec, published, broken, state, now, force, ari, profile } = input;
  if (force) return { action: 'issue', reason: 'forced' };
  const retryAt = state.nextAttemptAt ? new Date(state.nextAttemptAt) : undefined;
  if (retryAt && retryAt > now) {
    return { action: 'wait', until: retryAt, reason: `backing off after ${state.failures} failure(s), next try in ${formatDuration(retryAt.getTime() - now.getTime())}` };
  }
  if (broken) return { action: 'issue', reason: `the published files are unusable: ${broken}` };
  if (state.failedStep === 'verify') return { action: 'issue', reason: 'the last new certificate was rolled back; trying again' };
  if (!published) return { action: 'issue', reason: 'no certificate published yet' };
  const want = [...spec.domains].sort();
  const have = [...published.names].sort();
  if (want.join(',') !== have.join(',')) {
    const added = want.filter((n) => !have.includes(n));
    const removed = have.filter((n) => !want.includes(n));
    return { action: 'issue', reason: `names changed (${[...added.map((n) => `+${n}`), ...removed.map((n) => `-${n}`)].join(' ')})` };
  }
  if (published.keyType !== spec.keyType) return { action: 'issue', reason: `key type changed from ${published.keyType} to ${spec.keyType}` };
  if ((profile ?? '') !== (state.profile ?? '')) return { action: 'issue', reason: `profile changed from ${state.profile ?? '(none)'} to ${profile ?? '(none)'}` };
  if (now >= published.notAfter) return { action: 'issue', reason: 'expired' };
  if (emergency(published.notBefore, published.notAfter, now)) {
    return { action: 'issue', reason: `emergency: only ${formatDuration(published.notAfter.getTime() - now.getTime())} left, whatever the CA's window says` };
  }
  if (ari) {
    const selected = new Date(ari.selected);
    if (now >= selected) return { action: 'issue', reason: `ARI window open (${ari.start} to ${ari.end})` };
    return { action: 'keep', renewAt: selected, reason: 'ARI window' };
  }
  const renewAt = renewalTime(published.notBefore, published.notAfter);
  if (now >= renewAt) return { action: 'issue', reason: `due: ${formatDuration(published.notAfter.getTime() - now.getTime())} left` };
  return { action: 'keep', renewAt, reason: 'lifetime rule' };
}
