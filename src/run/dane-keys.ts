/** The keys of a DANE certificate's variants, as the DANE step before and after the orders sees them. */
import { createPublicKey } from 'node:crypto';
import { tlsa311 } from '../dane/plan.js';
import { missingInView, type TlsaView } from '../dane/records.js';
import { spkiOf, spkiOfKey } from '../pki/identity.js';
import { generatePrivateKey, keyTypeOf } from '../pki/keys.js';
import { readDaneNextKey, writeDaneNextKey } from '../state/cert-state.js';
import type { Config } from '../config/schema.js';
import type { DnsProviders } from '../dns/providers/index.js';
import type { Logger } from '../log.js';
import type { CertRun } from './cert-run.js';

/** What the DANE steps before and after the orders (dane-step.ts, dane-finish.ts) work with. */
export interface DaneContext {
  config: Config;
  dns: DnsProviders;
  log: Logger;
  signal?: AbortSignal;
}

/** One variant's keys as SPKI SHA-256 digests (hex). */
export interface VariantKeys {
  run: CertRun;
  /** The published certificate's key, whoever made it (CERTS_DIR may hold a key mailcerts never made). */
  current?: string;
  /** mailcerts made or deployed that key: last verified as served, ordered by it, or its next key. */
  currentIsMine: boolean;
  /** The key last verified as served: its record stays until another key is served. */
  served?: string;
  next: string;
  nextKey: string;
}

/** The stored next key, if it is a usable key of the variant's type. */
export function usableNextKey(pem: string | undefined, run: CertRun): string | undefined {
  if (!pem) return undefined;
  try {
    if (keyTypeOf(createPublicKey(pem)) === run.spec.keyType) return pem;
  } catch {
    run.log.warn({ step: 'dane' }, 'the next key in STATE_DIR cannot be read; a new one is made and announced');
  }
  return undefined;
}

export async function keysOf(runs: CertRun[], ctx: DaneContext): Promise<VariantKeys[]> {
  const out: VariantKeys[] = [];
  for (const run of runs) {
    let nextKey = usableNextKey(await readDaneNextKey(ctx.config.stateDir, run.stateKey), run);
    if (!nextKey) {
      // A new next key changes the RRset, so the burn-in of seenValues starts again by itself.
      nextKey = await generatePrivateKey(run.spec.keyType);
      await writeDaneNextKey(ctx.config.stateDir, run.stateKey, nextKey);
      Object.assign(run.daneState(), {
        nextCreatedAt: new Date().toISOString(),
        seenSince: undefined,
        seenValues: undefined,
      });
      run.markDirty();
      run.log.info(
        { step: 'dane', digest: spkiOfKey(nextKey) },
        'made the next key; its TLSA record is published ahead of any use',
      );
    }
    const next = spkiOfKey(nextKey);
    const current = run.bundle ? spkiOf(run.bundle.leaf) : undefined;
    const st = run.state.dane;
    const currentIsMine = !!current && (current === st?.served || current === st?.ordered || current === next);
    out.push({ run, current, currentIsMine, served: st?.served, next, nextKey });
  }
  return out;
}

/** The records mailcerts writes: each variant's served and next digests, and its current one when it is mailcerts' own. */
export function desiredValues(keys: Pick<VariantKeys, 'current' | 'currentIsMine' | 'served' | 'next'>[]): string[] {
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
export const keptValues = (keys: VariantKeys[]) =>
  keys
    .flatMap((k) => [k.current, k.served])
    .filter((d): d is string => !!d)
    .map(tlsa311);

export const vouched = (view: TlsaView | undefined, digest: string | undefined) =>
  !!view && !!digest && missingInView(view, [tlsa311(digest)]).length === 0;
