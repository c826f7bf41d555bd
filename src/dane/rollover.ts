/**
 * DANE rollover rules for the records and the burn-in clock, pure: which TLSA values a
 * certificate's RRset holds, when the next key's burn-in starts and ends, and how the state moves
 * once a key is served (a served next key ends the rollover; the old digest is then no longer
 * wanted, so it is retired). The DANE steps in run/ do the I/O and record what these return.
 */
import type { DaneState } from '../state/cert-state.js';
import { tlsa311 } from './plan.js';

/** One variant's keys as SPKI SHA-256 digests (hex). */
export interface KeyDigests {
  /** The published certificate's key, whoever made it (CERTS_DIR may hold a key mailcerts never made). */
  current?: string;
  /** mailcerts made or deployed that key: last verified as served, ordered by it, or its next key. */
  currentIsMine: boolean;
  /** The key last verified as served: its record stays until another key is served. */
  served?: string;
  /** The announced next key. */
  next: string;
}

/** A key is mailcerts' own when it was last verified as served, ordered by mailcerts, or is its next key. */
export const isMine = (digest: string | undefined, st: Readonly<DaneState> | undefined, next: string | undefined) =>
  !!digest && (digest === st?.served || digest === st?.ordered || digest === next);

/**
 * The records mailcerts writes: each variant's served and next digests, and its current one when
 * it is mailcerts' own. The next key's record is so published ahead of any use, and an old key's
 * record goes once another key is served and published.
 */
export function wantedValues(keys: KeyDigests[]): string[] {
  return [
    ...new Set(
      keys
        .flatMap((k) => [k.served, k.currentIsMine ? k.current : undefined, k.next])
        .filter((d): d is string => !!d)
        .map(tlsa311),
    ),
  ].sort();
}

/** Never deleted: the published keys (containers may serve them) and the served ones. */
export const keptValues = (keys: KeyDigests[]) =>
  keys
    .flatMap((k) => [k.current, k.served])
    .filter((d): d is string => !!d)
    .map(tlsa311);

/**
 * Before the orders, nothing is published while no TLSA record exists anywhere and a variant has
 * no key of mailcerts' own: validating senders use opportunistic TLS, and a record published
 * before the certificate would make them defer. The records follow the deploy.
 */
export const recordsFollowCertificate = (noRecordsAnywhere: boolean, keys: KeyDigests[]) =>
  noRecordsAnywhere && keys.some((k) => !k.currentIsMine);

/**
 * The burn-in clock after the records were asked for: it goes on only for the same RRset seen
 * everywhere, and only if no record had to be written again (a resolver may hold the RRset
 * without it); it starts over when the set changed, and stops while it is not seen everywhere.
 */
export function burnIn(
  st: Readonly<DaneState>,
  seen: { values: string[]; everywhere: boolean; rewritten: boolean; now: Date },
): DaneState {
  const values = seen.values.join(',');
  if (!seen.everywhere) return { ...st, seenSince: undefined, seenValues: undefined };
  if (st.seenSince && st.seenValues === values && !seen.rewritten) return { ...st };
  return { ...st, seenSince: seen.now.toISOString(), seenValues: values };
}

/** When the burn-in is over: the RRset answered everywhere for twice its TTL; undefined while it is not seen. */
export const burnInOverAt = (st: Readonly<DaneState>, ttlSeconds: number) =>
  st.seenSince ? new Date(Date.parse(st.seenSince) + 2 * ttlSeconds * 1000) : undefined;

/** A new next key was made: it changes the RRset, so the burn-in starts again. */
export const nextKeyMade = (st: Readonly<DaneState>, now: Date): DaneState => ({
  ...st,
  nextCreatedAt: now.toISOString(),
  seenSince: undefined,
  seenValues: undefined,
});

/** An order of this pass used a key the DANE step chose: it is mailcerts' own from now on. */
export const orderedWith = (st: Readonly<DaneState>, digest: string): DaneState => ({ ...st, ordered: digest });

export type AfterDeploy =
  /** Not a key mailcerts made: it counts only if DNS already names it (foreignVouched). */
  | { foreign: true }
  /**
   * `served`: the state with the served key recorded (`changed`: another key is served from now
   * on, and its clock starts). `rolledOver`: it is the next key, so the rollover is done: a new
   * next key is to be made, and `state` starts its burn-in; the old digest is then retired.
   */
  | { foreign: false; served: DaneState; changed: boolean; rolledOver: boolean; state: DaneState };

/** A variant whose deploy was verified serves this key (`next`: the announced next key's digest, if usable). */
export function afterDeploy(st: Readonly<DaneState>, served: string, next: string | undefined, now: Date): AfterDeploy {
  if (served !== st.served && served !== st.ordered && served !== next) return { foreign: true };
  const at = now.toISOString();
  const changed = st.served !== served;
  const withServed: DaneState = changed ? { ...st, served, ...(st.served ? { keySince: at } : {}) } : { ...st };
  const rolledOver = served === next;
  const state: DaneState = rolledOver
    ? {
        ...withServed,
        keySince: at,
        nextCreatedAt: at,
        seenSince: undefined,
        seenValues: undefined,
        rolloverRequestedAt: undefined,
      }
    : withServed;
  return { foreign: false, served: withServed, changed, rolledOver, state };
}

/** A key mailcerts did not make, but whose record every server answers: it stays the current key. */
export const foreignVouched = (st: Readonly<DaneState>, served: string): DaneState => ({ ...st, served });
