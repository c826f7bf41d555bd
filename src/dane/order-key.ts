/**
 * Which key a DANE variant's order of this pass uses, and what that does to the pass's plan, pure:
 * chooseKey and decideRollover (plan.ts) applied to one variant as the DANE step before the orders
 * sees it. The step (run/dane-step.ts) does what this returns.
 */
import type { DaneState } from '../state/cert-state.js';
import { chooseKey, decideRollover } from './plan.js';
import { burnInOverAt } from './rollover.js';

type Action = 'issue' | 'republish' | 'keep' | 'wait' | 'publish';

export interface OrderFacts {
  keyType: string;
  /** The pass's plan for the variant so far, and whether it is ok (not backing off or held). */
  action: Action;
  ok: boolean;
  /** The kept certificate the plan republishes (its key's digest and serial). */
  kept?: { key: string; serial: string };
  /** Digests: the published certificate's key, and the announced next key. */
  current?: string;
  next: string;
  currentIsMine: boolean;
  /** The current key's record is answered everywhere. */
  currentVouched: boolean;
  /** The published certificate's key type, when one is published. */
  currentKeyType?: string;
  /** The published certificate is due for renewal. */
  renewalDue: boolean;
  /** None of the certificate's variants has a certificate published. */
  nothingServed: boolean;
  /** No TLSA record exists yet and the records follow the certificate (rollover.ts recordsFollowCertificate). */
  noRecords: boolean;
  dane: Readonly<DaneState>;
  ttlSeconds: number;
  keyLifetimeMs: number;
  now: Date;
}

export interface OrderKey {
  /** The key the order uses: the published one, the next one, a fresh one, or none set (the default rule). */
  key: 'current' | 'next' | 'fresh' | 'none';
  /** The order is the rollover to the next key. */
  rollover: boolean;
  /** The kept certificate's key may not be deployed now: it is dropped. */
  dropKept: boolean;
  /** The plan changes to this. */
  replan?: { action: 'issue' | 'wait'; reason: string; nextAt?: Date };
  /** The next pass must come no later than this. */
  wakeBy?: Date;
  /** What to log, in order. */
  notes: { level: 'info' | 'warn'; fields: Record<string, unknown>; msg: string }[];
}

const ROLLOVER_ORDER = 'DANE rollover: ordering with the next key';
const WAITS = 'DANE rollover waits';

/** Which key, and what becomes of the plan. */
export function orderKey(f: OrderFacts): OrderKey {
  return f.noRecords ? freshOrCurrent(f) : withRecords(f);
}

/** No TLSA record anywhere: a variant without a key of mailcerts' own is ordered with a fresh one. */
function freshOrCurrent(f: OrderFacts): OrderKey {
  const out: OrderKey = { key: 'none', rollover: false, dropKept: false, notes: [] };
  const choice = chooseKey({ ...facts(f), noRecords: true, cannotWait: false });
  if (choice.use === 'current') return { ...out, key: 'current' };
  if (f.action === 'republish' && f.kept) return out; // issued for this very case: it goes out
  let action = f.action;
  if (f.ok && action === 'keep' && f.current) {
    action = 'issue';
    out.replan = { action, reason: choice.reason };
  }
  if (action === 'issue') out.key = 'fresh';
  out.notes.push({
    level: 'info',
    fields: { step: 'dane', keyType: f.keyType, reason: choice.reason },
    msg: 'DANE: no certificate served yet; its TLSA records are published once it is',
  });
  return out;
}

const facts = (f: OrderFacts) => ({
  keyType: f.keyType,
  hasCurrent: !!f.current,
  currentIsMine: f.currentIsMine,
  currentVouched: f.currentVouched,
  now: f.now,
});

/** TLSA records exist: the key DNS allows, or none (a wait), or the current one and its rollover rule. */
function withRecords(f: OrderFacts): OrderKey {
  const out: OrderKey = { key: 'none', rollover: false, dropKept: false, notes: [] };
  const readyAt = burnInOverAt(f.dane, f.ttlSeconds);
  const ready = !!readyAt && f.now >= readyAt;
  const choice = chooseKey({
    ...facts(f),
    noRecords: false,
    nextReadyAt: readyAt,
    cannotWait: f.renewalDue || f.nothingServed,
  });
  const wakeAt = readyAt ?? new Date(f.now.getTime() + Math.max(f.ttlSeconds, 60) * 1000);
  let { action, ok } = f;
  // A kept certificate (issued, not yet deployed) goes out only with a key DANE allows now.
  if (action === 'republish' && f.kept) {
    const key = f.kept.key;
    if (!((key === f.current && choice.use === 'current') || (key === f.next && (ready || choice.use === 'next')))) {
      out.notes.push({
        level: 'info',
        fields: { step: 'dane', serial: f.kept.serial },
        msg: "the kept certificate's key has no TLSA record seen long enough; it is dropped",
      });
      out.dropKept = true;
      [action, ok] = ['issue', true];
      out.replan = { action, reason: "DANE: the kept certificate's key was not announced long enough" };
    }
  }
  if (choice.use === 'next') {
    if (ok && action !== 'issue' && action !== 'wait') out.replan = { action: 'issue', reason: choice.reason };
    out.notes.push({
      level: choice.early ? 'warn' : 'info',
      fields: { step: 'dane', keyType: f.keyType, reason: choice.reason },
      msg: choice.early ? 'DANE: ordering with the next key before its burn-in ends' : ROLLOVER_ORDER,
    });
    return { ...out, key: 'next', rollover: true };
  }
  if (choice.use !== 'current') {
    // 'fresh' cannot come here: records exist. Nothing is ordered; what is served stays.
    const reason = choice.use === 'wait' ? choice.reason : 'DANE: waiting for the next key';
    if (action === 'issue') out.replan = { action: 'wait', reason, nextAt: readyAt };
    out.notes.push({
      level: 'info',
      fields: { step: 'dane', keyType: f.keyType, reason, readyAt: readyAt?.toISOString() },
      msg: WAITS,
    });
    return { ...out, wakeBy: wakeAt };
  }
  return rollover(f, { ...out, key: 'current' }, action, ok, wakeAt);
}

/** The published key is current: renewals keep it, and a rollover due waits for the next key's burn-in. */
function rollover(f: OrderFacts, out: OrderKey, action: Action, ok: boolean, wakeAt: Date): OrderKey {
  const keyTypeChanged = f.currentKeyType !== f.keyType;
  const decision = decideRollover({
    now: f.now,
    ttlSeconds: f.ttlSeconds,
    keyLifetimeMs: f.keyLifetimeMs,
    keySince: new Date(f.dane.keySince),
    seenSince: f.dane.seenSince ? new Date(f.dane.seenSince) : undefined,
    rolloverRequestedAt: f.dane.rolloverRequestedAt ? new Date(f.dane.rolloverRequestedAt) : undefined,
    keyTypeChanged,
  });
  if (decision.roll) {
    if (ok && action !== 'issue' && action !== 'wait') out.replan = { action: 'issue', reason: decision.reason };
    out.notes.push({
      level: 'info',
      fields: { step: 'dane', keyType: f.keyType, reason: decision.reason },
      msg: ROLLOVER_ORDER,
    });
    return { ...out, key: 'next', rollover: true };
  }
  // Renewals keep the key: the records stay valid.
  if (!decision.due) return out;
  const { readyAt } = decision;
  out.notes.push({
    level: 'info',
    fields: { step: 'dane', keyType: f.keyType, reason: decision.reason, readyAt: readyAt?.toISOString() },
    msg: WAITS,
  });
  if (keyTypeChanged && action === 'issue') {
    // A new key type is a new key: it waits like any rollover. Meanwhile the certificate is
    // renewed with its current key when it is due, so that waiting never lets it expire.
    if (f.renewalDue)
      out.notes.push({
        level: 'info',
        fields: { step: 'dane', keyType: f.currentKeyType },
        msg: "renewing with the current key while the new key type's record is not announced long enough",
      });
    else out.replan = { action: 'wait', reason: decision.reason, nextAt: readyAt };
  }
  // Back when the wait is over, or, while the records are not seen everywhere, after a TTL.
  return { ...out, wakeBy: readyAt ?? wakeAt };
}
