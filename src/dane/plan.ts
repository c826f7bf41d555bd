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
  if (age >= f.keyLifetimeMs) return `the key is ${formatDuration(age)} old (DANE_KEY_LIFETIME ${formatDuration(f.keyLifetimeMs)})`;
  return undefined;
}

export function decideRollover(f: DaneFacts): DaneDecision {
  const due = whyDue(f);
  if (!due) return { roll: false, due: false, reason: `key in use since ${f.keySince.toISOString()}; rollover at ${new Date(f.keySince.getTime() + f.keyLifetimeMs).toISOString()}` };
  const burnIn = 2 * f.ttlSeconds * 1000;
  if (!f.seenSince) return { roll: false, due: true, reason: `rollover due (${due}), but the next key's TLSA record is not yet answered by every authoritative server; the current key stays` };
  const readyAt = new Date(f.seenSince.getTime() + burnIn);
  if (f.now < readyAt) {
    return { roll: false, due: true, readyAt, reason: `rollover due (${due}); the next key's record has been seen since ${f.seenSince.toISOString()}, and must be for twice the TTL (${formatDuration(burnIn)}): not before ${readyAt.toISOString()}` };
  }
  return { roll: true, due: true, reason: `DANE rollover (${due}): the next key's record has been seen since ${f.seenSince.toISOString()}` };
}

/** The owner names of a DANE certificate's records: _PORT._tcp.NAME. */
export function tlsaOwners(names: string[], ports: number[]): string[] {
  return names.flatMap((n) => ports.map((p) => `_${p}._tcp.${n}`));
}

export const tlsa311 = (spkiSha256Hex: string) => `3 1 1 ${spkiSha256Hex.toLowerCase()}`;
