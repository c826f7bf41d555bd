/**
 * `mailcerts dane`: the TLSA records each DANE certificate needs, whether every authoritative
 * server answers them, and where its rollover stands. `mailcerts dane rollover` asks for one.
 */
import { type Config, type DaneSpec, variantsOf } from '../config/schema.js';
import { decideRollover, tlsa311, tlsaOwners } from '../dane/plan.js';
import { ask, dnssecNotes, missingInView } from '../dane/records.js';
import { DnsProviders } from '../dns/providers/index.js';
import type { Logger } from '../log.js';
import { spkiOf, spkiOfKey } from '../pki/identity.js';
import { bundleFor, readPublishedOrBroken } from '../publish/publisher.js';
import {
  type DaneState,
  readCertState,
  readDaneNextKey,
  variantStateKeys,
  writeCertState,
} from '../state/cert-state.js';
import { acquireLock } from '../state/lock.js';
import { errorMessage } from '../util/errors.js';

export interface DaneRecordRow {
  owner: string;
  value: string;
  /** other: a record at the name that is neither key (someone else's, or left from a lost STATE_DIR). */
  role: 'current' | 'next' | 'other';
  /** Servers answering it, of those asked. */
  answeredBy: number;
  asked: number;
  /** Validating resolvers (DANE_RESOLVER) answering it with the AD bit, of those asked. */
  validatedBy: number;
  resolvers: number;
}

export interface DaneRow {
  cert: string;
  keyType: string;
  provider: string;
  state: string;
  records: DaneRecordRow[];
  /** What DNSSEC says of the zone: problems (DANE void, or mail deferred), and how it was checked. */
  dnssec: { problems: string[]; checked: string };
}

const count = (byServer: Map<string, string[] | string> | undefined, value: string) =>
  [...(byServer?.values() ?? [])].filter((g) => typeof g !== 'string' && g.includes(value)).length;

type View = Awaited<ReturnType<typeof ask>>;

/** One record at one name, with who answers it. */
function recordRow(view: View, owner: string, value: string, role: DaneRecordRow['role']): DaneRecordRow {
  return {
    owner,
    value,
    role,
    answeredBy: count(view.answers.get(owner), value),
    asked: view.answers.get(owner)?.size ?? 0,
    validatedBy: count(view.validated.get(owner), value),
    resolvers: view.resolvers.length,
  };
}

export async function daneReport(config: Config, log: Logger): Promise<DaneRow[]> {
  const rows: DaneRow[] = [];
  const dns = new DnsProviders(config.dns.providers, log);
  for (const spec of config.certificates.filter((c) => c.dane)) {
    const dane = spec.dane!;
    const keys = await variantStateKeys(config.stateDir, spec);
    const { published } = await readPublishedOrBroken(config, spec);
    const provider = dane.provider === 'none' ? undefined : await dns.get(dane.provider);
    const owners = tlsaOwners(dane.names, dane.ports);
    const view = await ask(owners, provider, config, dane);
    const dnssec = dnssecNotes(view);
    const mine = new Set<string>();
    const variantRows: DaneRow[] = [];
    for (const v of variantsOf(spec)) {
      const key = keys.get(v.keyType)!;
      const state = await readCertState(config.stateDir, key, undefined, { readOnly: true });
      const bundle = bundleFor(published, v);
      const next = await readDaneNextKey(config.stateDir, key);
      const current = bundle?.leaf && spkiOf(bundle.leaf);
      const records: DaneRecordRow[] = [];
      for (const owner of owners)
        for (const [role, digest] of [
          ['current', current],
          ['next', next && spkiOfKey(next)],
        ] as const) {
          if (!digest) continue;
          const value = tlsa311(digest);
          mine.add(value);
          records.push(recordRow(view, owner, value, role));
        }
      const text = variantState({
        dane,
        view,
        state: state.dane,
        current,
        keyTypeChanged: bundle?.keyType !== v.keyType,
      });
      variantRows.push({ cert: spec.name, keyType: v.keyType, provider: dane.provider, state: text, records, dnssec });
    }
    // Records at the names that are neither variant's keys: left alone by mailcerts.
    for (const owner of owners) {
      const others = new Set(
        [...view.answers.get(owner)!.values()]
          .flatMap((g) => (typeof g === 'string' ? [] : g))
          .filter((value) => !mine.has(value)),
      );
      for (const value of others) variantRows[0]?.records.push(recordRow(view, owner, value, 'other'));
    }
    rows.push(...variantRows);
  }
  return rows;
}

/** Where one variant's records stand: not started, a key not mailcerts' own, or in step and its rollover. */
function variantState(v: {
  dane: DaneSpec;
  view: View;
  state: DaneState | undefined;
  /** The SPKI digest of the published leaf, undefined when none is published. */
  current: string | undefined;
  keyTypeChanged: boolean;
}): string {
  const d = v.state;
  const isMine = !!v.current && (v.current === d?.served || v.current === d?.ordered);
  if (!v.current) return 'no certificate yet: its records are published once it is served';
  if (!isMine && missingInView(v.view, [tlsa311(v.current)]).length > 0)
    return `the key in CERTS_DIR is not one mailcerts made or deployed, and not every server answers its record: it is not announced, and is replaced by a key of mailcerts' own (at once while no TLSA record exists, else once the next key's record has been answered everywhere for twice the TTL)`;
  if (!d) return 'not started: the records are written at the next pass';
  const decision = decideRollover({
    now: new Date(),
    ttlSeconds: v.dane.ttlSeconds,
    keyLifetimeMs: v.dane.keyLifetimeMs,
    keySince: new Date(d.keySince),
    seenSince: d.seenSince ? new Date(d.seenSince) : undefined,
    rolloverRequestedAt: d.rolloverRequestedAt ? new Date(d.rolloverRequestedAt) : undefined,
    keyTypeChanged: v.keyTypeChanged,
  });
  const step = d.check ? (d.check.inStep ? 'in step' : `OUT OF STEP: ${d.check.detail}`) : 'not checked yet';
  const seen = d.seenSince ? `next published since ${d.seenSince}` : 'next key not yet answered by every server';
  return `${step}; ${seen}; ${decision.reason}`;
}

export function formatDane(rows: DaneRow[], config: Config): string {
  if (rows.length === 0) return 'No certificate has DANE names (dane: in MAILCERTS_CONFIG, or DANE_NAMES).';
  const lines: string[] = [];
  for (const [i, r] of rows.entries()) {
    const ttl = config.certificates.find((c) => c.name === r.cert)?.dane?.ttlSeconds ?? 3600;
    lines.push(
      `${r.cert} (${r.keyType}), records written by ${r.provider === 'none' ? 'you (DANE_PROVIDER=none): publish these' : r.provider}: ${r.state}`,
    );
    for (const rec of r.records) {
      const role = rec.role === 'other' ? 'not a key of mailcerts (left alone)' : rec.role;
      const validated = rec.resolvers > 0 ? `, validated by ${rec.validatedBy} of ${rec.resolvers} resolvers` : '';
      lines.push(
        `  ${rec.owner}. ${ttl} IN TLSA ${rec.value}   ; ${role}, answered by ${rec.answeredBy} of ${rec.asked} servers${validated}`,
      );
    }
    if (rows[i + 1]?.cert === r.cert) continue; // once per certificate
    for (const p of r.dnssec.problems) lines.push(`  DNSSEC WARNING: ${p}`);
    if (r.dnssec.problems.length === 0) lines.push(`  DNSSEC: signed; ${r.dnssec.checked}`);
  }
  return lines.join('\n');
}

/** For `mailcerts check`: per DANE certificate, what DNSSEC says of its records' zone. */
export async function daneDnssecCheck(config: Config, log: Logger): Promise<string[]> {
  const lines: string[] = [];
  const dns = new DnsProviders(config.dns.providers, log);
  for (const spec of config.certificates.filter((c) => c.dane)) {
    const dane = spec.dane!;
    try {
      const provider = dane.provider === 'none' ? undefined : await dns.get(dane.provider);
      const { problems, checked } = dnssecNotes(await ask(tlsaOwners(dane.names, dane.ports), provider, config, dane));
      if (problems.length === 0) lines.push(`DANE for ${spec.name}: DNSSEC ok (${checked})`);
      for (const p of problems) lines.push(`DANE for ${spec.name}: WARNING: ${p}`);
    } catch (err) {
      lines.push(`DANE for ${spec.name}: WARNING: the TLSA records could not be asked for: ${errorMessage(err)}`);
    }
  }
  return lines;
}

/** Marks a rollover as asked for, under the pass lock (a running pass keeps its own view until it ends). */
export async function requestRollover(config: Config, log: Logger, name?: string): Promise<string[]> {
  const specs = config.certificates.filter((c) => c.dane && (!name || c.name === name));
  if (specs.length === 0)
    throw new Error(name ? `"${name}" is not a certificate with DANE names` : 'no certificate has DANE names');
  const lock = await acquireLock(config.stateDir, { waitMs: 120_000, log });
  const done: string[] = [];
  try {
    for (const spec of specs) {
      const keys = await variantStateKeys(config.stateDir, spec);
      for (const v of variantsOf(spec)) {
        const key = keys.get(v.keyType)!;
        const state = await readCertState(config.stateDir, key, log);
        state.dane = {
          keySince: state.dane?.keySince ?? new Date().toISOString(),
          ...state.dane,
          rolloverRequestedAt: new Date().toISOString(),
        };
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
