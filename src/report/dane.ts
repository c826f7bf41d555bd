/**
 * `mailcerts dane`: the TLSA records each DANE certificate needs, whether every authoritative
 * server answers them, and where its rollover stands. `mailcerts dane rollover` asks for one.
 */
import { type Config, variantsOf } from '../config/schema.js';
import { decideRollover, tlsa311, tlsaOwners } from '../dane/plan.js';
import { ask } from '../dane/records.js';
import { DnsProviders } from '../dns/providers/index.js';
import type { Logger } from '../log.js';
import { spkiOf, spkiOfKey } from '../pki/identity.js';
import { bundleFor, readPublishedOrBroken } from '../publish/publisher.js';
import { readCertState, readDaneNextKey, variantStateKeys, writeCertState } from '../state/cert-state.js';
import { acquireLock } from '../state/lock.js';
import { errorMessage } from '../util/errors.js';

export interface DaneRecordRow {
  owner: string;
  value: string;
  role: 'current' | 'next';
  /** Servers answering it, of those asked. */
  answeredBy: number;
  asked: number;
}

export interface DaneRow {
  cert: string;
  keyType: string;
  provider: string;
  state: string;
  records: DaneRecordRow[];
}

export async function daneReport(config: Config, log: Logger): Promise<DaneRow[]> {
  const rows: DaneRow[] = [];
  const dns = new DnsProviders(config.dns.providers, log);
  for (const spec of config.certificates.filter((c) => c.dane && c.source === 'acme')) {
    const dane = spec.dane!;
    const keys = await variantStateKeys(config.stateDir, spec);
    const { published } = await readPublishedOrBroken(config, spec);
    const provider = dane.provider === 'none' ? undefined : await dns.get(dane.provider);
    const owners = tlsaOwners(dane.names, dane.ports);
    // Errors count as asked and not answered.
    const answers = new Map([...(await ask(owners, provider, config))].map(([owner, byServer]) => [owner, [...byServer.values()].map((got) => (typeof got === 'string' ? [] : got))]));
    for (const v of variantsOf(spec)) {
      const key = keys.get(v.keyType)!;
      const state = await readCertState(config.stateDir, key, undefined, { readOnly: true });
      const leaf = bundleFor(published, v)?.leaf;
      const next = await readDaneNextKey(config.stateDir, key);
      const records: DaneRecordRow[] = [];
      for (const owner of owners) {
        const got = answers.get(owner)!;
        for (const [role, digest] of [['current', leaf && spkiOf(leaf)], ['next', next && spkiOfKey(next)]] as const) {
          if (!digest) continue;
          const value = tlsa311(digest);
          records.push({ owner, value, role, answeredBy: got.filter((g) => g.includes(value)).length, asked: got.length });
        }
      }
      const d = state.dane;
      let text: string;
      if (!leaf) text = 'no certificate yet: its records are published once it is served';
      else if (!d) text = 'not started: the records are written at the next pass';
      else {
        const decision = decideRollover({
          now: new Date(), ttlSeconds: dane.ttlSeconds, keyLifetimeMs: dane.keyLifetimeMs, keySince: new Date(d.keySince),
          seenSince: d.seenSince ? new Date(d.seenSince) : undefined, rolloverRequestedAt: d.rolloverRequestedAt ? new Date(d.rolloverRequestedAt) : undefined,
          keyTypeChanged: bundleFor(published, v)!.keyType !== v.keyType,
        });
        const step = d.check ? (d.check.inStep ? 'in step' : `OUT OF STEP: ${d.check.detail}`) : 'not checked yet';
        const seen = d.seenSince ? `next published since ${d.seenSince}` : 'next key not yet answered by every server';
        text = `${step}; ${seen}; ${decision.reason}`;
      }
      rows.push({ cert: spec.name, keyType: v.keyType, provider: dane.provider, state: text, records });
    }
  }
  return rows;
}

export function formatDane(rows: DaneRow[], config: Config): string {
  if (rows.length === 0) return 'No certificate has DANE names (dane: in MAILCERTS_CONFIG, or DANE_NAMES).';
  const lines: string[] = [];
  for (const r of rows) {
    const ttl = config.certificates.find((c) => c.name === r.cert)?.dane?.ttlSeconds ?? 3600;
    lines.push(`${r.cert} (${r.keyType}), records written by ${r.provider === 'none' ? 'you (DANE_PROVIDER=none): publish these' : r.provider}: ${r.state}`);
    for (const rec of r.records) lines.push(`  ${rec.owner}. ${ttl} IN TLSA ${rec.value}   ; ${rec.role}, answered by ${rec.answeredBy} of ${rec.asked} servers`);
  }
  return lines.join('\n');
}

/** Marks a rollover as asked for, under the pass lock (a running pass keeps its own view until it ends). */
export async function requestRollover(config: Config, log: Logger, name?: string): Promise<string[]> {
  const specs = config.certificates.filter((c) => c.dane && c.source === 'acme' && (!name || c.name === name));
  if (specs.length === 0) throw new Error(name ? `"${name}" is not a certificate with DANE names` : 'no certificate has DANE names');
  const lock = await acquireLock(config.stateDir, { waitMs: 120_000, log });
  const done: string[] = [];
  try {
    for (const spec of specs) {
      const keys = await variantStateKeys(config.stateDir, spec);
      for (const v of variantsOf(spec)) {
        const key = keys.get(v.keyType)!;
        const state = await readCertState(config.stateDir, key, log);
        state.dane = { keySince: state.dane?.keySince ?? new Date().toISOString(), ...state.dane, rolloverRequestedAt: new Date().toISOString() };
        await writeCertState(config.stateDir, key, { ...state, keyType: v.keyType });
        done.push(`${spec.name} (${v.keyType})`);
      }
    }
  } catch (err) {
    throw new Error(`could not record the rollover request: ${errorMessage(err)}`);
  } finally {
    await lock.release();
  }
  return done;
}
