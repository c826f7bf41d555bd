/**
 * Certificates from Traefik's acme.json (v2 and v3): {resolver: {Account, Certificates: [{domain:
 * {main, sans}, certificate, key, Store}]}}, certificate and key being base64 of PEM. Only the
 * certificates are looked at; the ACME account (its private key) is never copied, logged or kept.
 */
import { type Bundle, BundleError, checkBundle, covers, parseBundle } from '../../../pki/bundle.js';
import { type Clock, systemClock } from '../../../util/clock.js';
import { UserError } from '../../../util/errors.js';
import { every, poll } from '../../../util/retry.js';
import { readAcmeJsonOnce } from './file.js';
import { Cancelled } from '../../../util/error-codes.js';

/** A read counts when the same bytes come back this much later (Traefik rewrites the file in place). */
const STABLE_MS = 250;
const READ_TRIES = 20;
/**
 * The longest lifetime a publicly trusted TLS certificate may have (CA/Browser Forum, 398 days):
 * "expires last" counts no further, so that a long-lived entry does not win over every renewal.
 */
export const MAX_LIFETIME_MS = 398 * 86_400_000;

export interface TraefikEntry {
  resolver: string;
  index: number;
  /** The usable certificate, or why the entry is not usable. */
  bundle?: Bundle;
  problem?: string;
}

/** Reads acme.json until it parses and two reads a moment apart are the same bytes. */
export async function readAcmeJsonStable(
  file: string,
  signal?: AbortSignal,
  clock: Clock = systemClock,
): Promise<{ data: unknown; partialReads: number }> {
  let last: string | undefined;
  let partialReads = 0;
  const read = async (): Promise<{ data: unknown } | undefined> => {
    const text = readAcmeJsonOnce(file);
    if (text === last) {
      try {
        return { data: JSON.parse(text) };
      } catch {
        /* the same half file twice: Traefik is slow, keep waiting */
      }
    }
    if (last !== undefined) partialReads++;
    last = text;
    return undefined;
  };
  const r = await poll(read, {
    until: (v) => v !== undefined,
    attempts: READ_TRIES,
    backoff: every(STABLE_MS),
    signal,
    clock,
  });
  if (r.ok) return { data: r.value!.data, partialReads };
  if (r.stopped === 'aborted') throw new Cancelled('reading acme.json');
  throw new UserError(
    `Traefik's acme.json at ${file} did not settle into valid JSON (being rewritten, or damaged); nothing was published, the current certificate is kept`,
  );
}

const b64pem = (value: unknown, what: string): string => {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/=\s]+$/.test(value))
    throw new BundleError(`its ${what} is not base64`);
  const text = Buffer.from(value, 'base64').toString('utf8');
  if (!text.includes('-----BEGIN ')) throw new BundleError(`its ${what} is not base64 of PEM`);
  return text;
};

/** Every certificate entry of the file (of one resolver, if given), each parsed and checked on its own. */
export function traefikEntries(data: unknown, file: string, resolver?: string): TraefikEntry[] {
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new UserError(`${file} is not a Traefik acme.json (not an object)`);
  const top = data as Record<string, unknown>;
  // Traefik v1 kept one account at the top: {Account, Certificates: [{Domain, Certificate, Key}], HTTPChallenges}.
  if (
    'Account' in top &&
    'Certificates' in top &&
    !Object.values(top).some((v) => typeof v === 'object' && v !== null && 'Certificates' in v)
  ) {
    throw new UserError(
      `${file} is a Traefik v1 acme.json, which mailcerts does not read; Traefik v2 and v3 write {resolver: {Account, Certificates}} (upgrade Traefik, or export the certificates with traefik-certs-dumper into CUSTOM_CERTS_DIR)`,
    );
  }
  const resolvers = Object.keys(top);
  if (resolver && !resolvers.includes(resolver))
    throw new UserError(
      `${file} has no resolver "${resolver}" (TRAEFIK_RESOLVER); it has ${
        resolvers
          .slice(0, 10)
          .map((r) => r.slice(0, 64))
          .join(', ') || 'none'
      }`,
    );
  const entries: TraefikEntry[] = [];
  for (const name of resolver ? [resolver] : resolvers) {
    const r = top[name];
    const certs = typeof r === 'object' && r !== null ? (r as { Certificates?: unknown }).Certificates : undefined;
    if (certs === null || certs === undefined) continue; // a resolver that has not issued anything yet
    if (!Array.isArray(certs))
      throw new UserError(
        `${file}: resolver "${name}" has Certificates that are not a list; not a Traefik v2/v3 acme.json`,
      );
    certs.forEach((c: unknown, index) => {
      const entry: TraefikEntry = { resolver: name, index };
      const where = `entry ${index} of resolver "${name}"`;
      try {
        const e = (typeof c === 'object' && c !== null ? c : {}) as { certificate?: unknown; key?: unknown };
        entry.bundle = parseBundle(b64pem(e.certificate, 'certificate'), b64pem(e.key, 'key'), where);
      } catch (err) {
        if (!(err instanceof BundleError)) throw err;
        entry.problem = err.message.startsWith(where) ? err.message : `${where}: ${err.message}`;
      }
      entries.push(entry);
    });
  }
  return entries;
}

/** How an entry's expiry ranks: its notAfter, but no later than MAX_LIFETIME_MS after its notBefore. */
export const rankedExpiry = (b: Pick<Bundle, 'notBefore' | 'notAfter'>): number =>
  Math.min(b.notAfter.getTime(), b.notBefore.getTime() + MAX_LIFETIME_MS);

export interface PickOptions {
  /** Why an entry's chain is not trusted, or undefined (pki/trust.ts); no check when absent. */
  distrust?: (bundle: Bundle) => Promise<string | undefined>;
  now?: Date;
}

/**
 * The entry to publish for these names: it covers all of them (wildcards per label, as a TLS
 * client matches), is valid now, its chain trusted, and expires last (counted up to 398 days of
 * lifetime); among equals, the preferred key type. Throws naming the missing names, or why the
 * entries that cover them cannot be used.
 */
export async function pickTraefikEntry(
  entries: TraefikEntry[],
  names: string[],
  preferredKeyType: string,
  file: string,
  opts: PickOptions = {},
): Promise<{ entry: TraefikEntry; skipped: string[] }> {
  const now = opts.now ?? new Date();
  const skipped: string[] = [];
  const usable: TraefikEntry[] = [];
  for (const e of entries) {
    const where = `entry ${e.index} of resolver "${e.resolver}"`;
    if (!e.bundle) {
      skipped.push(e.problem!);
      continue;
    }
    try {
      checkBundle(e.bundle, names, now, where);
    } catch (err) {
      if (!(err instanceof BundleError)) throw err;
      if (names.some((n) => covers(e.bundle!.names, n))) skipped.push(err.message);
      continue;
    }
    const distrust = await opts.distrust?.(e.bundle);
    if (distrust) skipped.push(`${where}: ${distrust}`);
    else usable.push(e);
  }
  if (usable.length === 0) {
    const covered = (n: string) => entries.some((e) => e.bundle && covers(e.bundle.names, n));
    const missing = names.filter((n) => !covered(n));
    const why =
      missing.length > 0
        ? `no entry covers ${missing.join(', ')} (Traefik requests a certificate only for the hosts a router uses: add a router with Host(\`${missing[0]}\`), or a domains list to its TLS options)`
        : `no usable entry covers all of ${names.join(', ')}`;
    // Entries that cannot be read may have been for these names: said when no entry covers them all.
    const unusable =
      missing.length === 0 && skipped.length > 0
        ? `; not usable: ${skipped.slice(0, 5).join('; ')}${skipped.length > 5 ? `; and ${skipped.length - 5} more` : ''}`
        : '';
    throw new UserError(
      `Traefik's acme.json at ${file}: ${why}${unusable}; nothing was published, the current certificate is kept`,
    );
  }
  // The configured key type first (a stack with an RSA and an ECDSA resolver must not flip
  // between them at each renewal), then the one that expires last.
  usable.sort(
    (a, b) =>
      Number(b.bundle!.keyType === preferredKeyType) - Number(a.bundle!.keyType === preferredKeyType) ||
      rankedExpiry(b.bundle!) - rankedExpiry(a.bundle!),
  );
  return { entry: usable[0]!, skipped };
}
