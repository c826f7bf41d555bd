/** The keys of a DANE certificate's variants, as the DANE step before and after the orders sees them. */
import { createPublicKey } from 'node:crypto';
import { tlsa311 } from '../dane/plan.js';
import { missingInView, type TlsaView } from '../dane/records.js';
import { isMine, type KeyDigests, nextKeyMade } from '../dane/rollover.js';
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

/** One variant's keys as SPKI SHA-256 digests (hex), with its run and the next key itself. */
export interface VariantKeys extends KeyDigests {
  run: CertRun;
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
      run.daneRecorded(nextKeyMade(run.daneState(), new Date()));
      run.log.info(
        { step: 'dane', digest: spkiOfKey(nextKey) },
        'made the next key; its TLSA record is published ahead of any use',
      );
    }
    const next = spkiOfKey(nextKey);
    const current = run.bundle ? spkiOf(run.bundle.leaf) : undefined;
    const st = run.state.dane;
    const currentIsMine = isMine(current, st, next);
    out.push({ run, current, currentIsMine, served: st?.served, next, nextKey });
  }
  return out;
}

export const vouched = (view: TlsaView | undefined, digest: string | undefined) =>
  !!view && !!digest && missingInView(view, [tlsa311(digest)]).length === 0;
