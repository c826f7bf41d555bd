/**
 * DANE rollover rules, pure: what key the next order of a DANE certificate uses, and whether a
 * rollover may happen now. A new key is used only once its TLSA record has been answered by every
 * authoritative server for at least twice the RRset's TTL, so that no validating sender still
 * holds an RRset without it (the "current + next" scheme of RFC 7671 §8.1 and Postfix's TLS_README).
 */
import { formatDuration } from '../util/duration.js';

export interface DaneFacts {
  now: Date;
  ttlSeconds: number;
  keyLifetimeMs: number;
  /** Since when the current key has been served. */
  keySince: Date;
  /** Since when the whole RRset (current and next) has been seen everywhere; undefined when it is not. */
  seenSince?: Date;
  rolloverRequestedAt?: Date;
  /** The configured key type differs from the current key's. */
  keyTypeChanged: boolean;
}

export type DaneDecision =
  | { roll: false; due: false; reason: string }
  /** Due, but the next key's record has not been seen long enough: the current key stays. */
  | { roll: false; due: true; reason: string; readyAt?: Date }
  | { roll: true; due: true; reason: string };

export function whyDue(f: DaneFacts): string | undefined {
  if (f.keyTypeChanged) return 'the key type changed';
  if (f.rolloverRequestedAt) return `a rollover was asked for at ${f.rolloverRequestedAt.toISOString()}`;
  const age = f.now.getTime() - f.keySince.getTime();
  if (age >= f.keyLifetimeMs)
    return `the key is ${formatDuration(age)} old (DANE_KEY_LIFETIME ${formatDuration(f.keyLifetimeMs)})`;
  return undefined;
}

export function decideRollover(f: DaneFacts): DaneDecision {
  const due = whyDue(f);
  if (!due)
    return {
      roll: false,
      due: false,
      reason: `key in use since ${f.keySince.toISOString()}; rollover at ${new Date(f.keySince.getTime() + f.keyLifetimeMs).toISOString()}`,
    };
  const burnIn = 2 * f.ttlSeconds * 1000;
  if (!f.seenSince)
    return {
      roll: false,
      due: true,
      reason: `rollover due (${due}), but the next key's TLSA record is not yet answered by every authoritative server (and validating resolver, with DANE_RESOLVER); the current key stays`,
    };
  const readyAt = new Date(f.seenSince.getTime() + burnIn);
  if (f.now < readyAt) {
    return {
      roll: false,
      due: true,
      readyAt,
      reason: `rollover due (${due}); the next key's record has been seen since ${f.seenSince.toISOString()}, and must be for twice the TTL (${formatDuration(burnIn)}): not before ${readyAt.toISOString()}`,
    };
  }
  return {
    roll: true,
    due: true,
    reason: `DANE rollover (${due}): the next key's record has been seen since ${f.seenSince.toISOString()}`,
  };
}

/** The owner names of a DANE certificate's records: _PORT._tcp.NAME. */
export function tlsaOwners(names: string[], ports: number[]): string[] {
  return names.flatMap((n) => ports.map((p) => `_${p}._tcp.${n}`));
}

export const tlsa311 = (spkiSha256Hex: string) => `3 1 1 ${spkiSha256Hex.toLowerCase()}`;

/** What DNS and mailcerts' own state say of one variant's keys (digests compared by the caller). */
export interface KeyFacts {
  keyType: string;
  /** A certificate of this variant's key type is published (a key in CERTS_DIR, whoever made it). */
  hasCurrent: boolean;
  /** That key is mailcerts' own: last verified as served, ordered by mailcerts, or its announced next key. */
  currentIsMine: boolean;
  /** That key's record is answered by every authoritative server (and validating resolver). */
  currentVouched: boolean;
  /** No server holds any TLSA record at these names: validating senders use plain opportunistic TLS. */
  noRecords: boolean;
  /** When the next key's record will have been seen for 2 x TTL; undefined while it is not seen everywhere. */
  nextReadyAt?: Date;
  /**
   * Waiting would leave the mail server without a working certificate: the published one (not
   * DNS-vouched, so validating senders defer against it already) is due, or none of the
   * certificate's key types has one at all.
   */
  cannotWait: boolean;
  now: Date;
}

export type KeyChoice =
  /** The published key is current: renewals keep it, a rollover follows decideRollover(). */
  | { use: 'current' }
  /** A first certificate with a key of mailcerts' own; its records follow its deploy. */
  | { use: 'fresh'; reason: string }
  /** The announced next key, burned in (early: not yet, but waiting would cost a working certificate). */
  | { use: 'next'; reason: string; early?: boolean }
  /** No key may be deployed yet: the next key's record must be seen for 2 x TTL first. */
  | { use: 'wait'; reason: string; readyAt?: Date };

/**
 * Which key a variant may be ordered with, decided from what DNS answers rather than from local
 * state alone: a key is deployed only when DNS vouches for it (its record answered everywhere
 * for 2 x TTL), or when it is the key already served, or when no TLSA record exists at all.
 * A key found in CERTS_DIR that mailcerts did not make counts only if DNS already names it. The
 * one exception: when the key served is not vouched for either (validating senders defer against
 * it already) and waiting would cost the mail server its working certificate, the announced
 * next key is used before its burn-in ends.
 */
export function chooseKey(f: KeyFacts): KeyChoice {
  if (f.hasCurrent && (f.currentIsMine || f.currentVouched)) return { use: 'current' };
  if (f.noRecords) {
    const what = f.hasCurrent
      ? `the ${f.keyType} key in CERTS_DIR is not one mailcerts made or deployed`
      : `no ${f.keyType} certificate is served yet`;
    return {
      use: 'fresh',
      reason: `DANE: ${what} and no TLSA record exists at these names: a certificate with a key of mailcerts' own is ordered, its records published once it is served`,
    };
  }
  const first = f.hasCurrent
    ? `the ${f.keyType} key in CERTS_DIR is not one mailcerts made or deployed, and no TLSA record names it: the next key's record must be answered everywhere for twice the TTL before a certificate replaces it`
    : `the ${f.keyType} key's TLSA record must be answered everywhere for twice the TTL before its first certificate`;
  if (f.nextReadyAt && f.now >= f.nextReadyAt)
    return { use: 'next', reason: `DANE: ${first}; it has been: ordering with it` };
  if (f.cannotWait) {
    const why = f.hasCurrent ? 'the certificate is due' : 'no key type of this certificate has one';
    return {
      use: 'next',
      early: true,
      reason: `DANE: ${first}, but ${why}: ordering with the announced next key now rather than leave the mail server without a working certificate; validating senders may defer until its record is answered everywhere`,
    };
  }
  const when = f.nextReadyAt
    ? `: not before ${f.nextReadyAt.toISOString()}`
    : ' (it is not yet answered by every authoritative server)';
  return { use: 'wait', readyAt: f.nextReadyAt, reason: `DANE: ${first}${when}` };
}
