/**
 * DANE for one certificate: before the orders, the next key exists, the TLSA RRset (current and
 * next digests of every variant at each _PORT._tcp.NAME) is written and checked on every
 * authoritative server, and each variant's order is given the key it may use; after the deploy,
 * a completed rollover retires the old digest and announces a new next key, and the served key
 * is checked against what the servers answer.
 */
import type { CertificateSpec, Config, DaneSpec } from '../config/schema.js';
import { decideRollover } from '../dane/plan.js';
import { tlsa311, tlsaOwners } from '../dane/plan.js';
import { askRecords, authoritativeServers, waitForRecords } from '../dns/propagation.js';
import { type DnsProvider, normalizeValue } from '../dns/provider.js';
import type { DnsProviders } from '../dns/providers/index.js';
import type { Logger } from '../log.js';
import { spkiOf, spkiOfKey } from '../pki/identity.js';
import { createPublicKey } from 'node:crypto';
import { generatePrivateKey, keyTypeOf } from '../pki/keys.js';
import { DnsJournal } from '../state/dns-journal.js';
import { readDaneNextKey, writeDaneNextKey } from '../state/cert-state.js';
import { errorMessage } from '../util/errors.js';
import type { CertRun } from './cert-run.js';

export interface DaneContext {
  config: Config;
  dns: DnsProviders;
  log: Logger;
}

/** One variant's two keys as TLSA digests. */
interface VariantKeys {
  run: CertRun;
  current?: string;
  next: string;
  nextKey: string;
}

/** What each authoritative server answers at each owner name; a string is an error. */
type Answers = Map<string, Map<string, string[] | string>>;

async function keysOf(runs: CertRun[], ctx: DaneContext): Promise<VariantKeys[]> {
  const out: VariantKeys[] = [];
  for (const run of runs) {
    let nextKey = await readDaneNextKey(ctx.config.stateDir, run.stateKey);
    // A next key of another type (the key type was changed) is of no use: a new one is announced.
    if (nextKey && keyTypeOf(createPublicKey(nextKey)) !== run.spec.keyType) nextKey = undefined;
    if (!nextKey) {
      nextKey = await generatePrivateKey(run.spec.keyType);
      await writeDaneNextKey(ctx.config.stateDir, run.stateKey, nextKey);
      Object.assign(run.daneState(), { nextCreatedAt: new Date().toISOString(), seenSince: undefined });
      run.markDirty();
      run.log.info({ step: 'dane', digest: spkiOfKey(nextKey) }, 'made the next key; its TLSA record is published ahead of any use');
    }
    // Only a key mailcerts published and deployed counts as current: files found in CERTS_DIR
    // (a seed, a default image's key) are never reused, nor announced.
    const leaf = run.state.deployedDigest ? run.bundle?.leaf : undefined;
    out.push({ run, current: leaf ? spkiOf(leaf) : undefined, next: spkiOfKey(nextKey), nextKey });
  }
  return out;
}

/** The RRset every owner name must hold: each variant's current and next digests. */
export function desiredValues(keys: { current?: string; next: string }[]): string[] {
  return [...new Set(keys.flatMap((k) => [k.current, k.next]).filter((d): d is string => !!d).map(tlsa311))];
}

async function serversFor(provider: DnsProvider | undefined, owner: string, config: Config): Promise<string[]> {
  if (config.dns.resolvers) return config.dns.resolvers;
  const zone = provider ? (await provider.zoneFor(owner)).name : owner.split('.').slice(-2).join('.');
  return authoritativeServers(zone);
}

async function ask(owners: string[], provider: DnsProvider | undefined, config: Config): Promise<Answers> {
  const answers: Answers = new Map();
  for (const owner of owners) {
    const byServer = new Map<string, string[] | string>();
    for (const server of await serversFor(provider, owner, config)) byServer.set(server, await askRecords(server, 'TLSA', owner));
    answers.set(owner, byServer);
  }
  return answers;
}

/** Owner names and servers where some wanted value is not answered. */
function missingIn(answers: Answers, wanted: string[]): string[] {
  const missing: string[] = [];
  for (const [owner, byServer] of answers) {
    for (const [server, got] of byServer) {
      const lacking = typeof got === 'string' ? wanted : wanted.filter((w) => !got.includes(w));
      if (lacking.length > 0) missing.push(`${owner} on ${server}${typeof got === 'string' ? ` (${got})` : ` (${lacking.length} of ${wanted.length} missing)`}`);
    }
  }
  return missing;
}

/**
 * Makes the provider hold exactly the wanted TLSA values at each owner name, as far as mailcerts
 * wrote them: missing ones are created (journaled as lasting records); ours that are no longer
 * wanted are deleted. Records someone else put there are left alone.
 */
async function writeRecords(spec: CertificateSpec, dane: DaneSpec, provider: DnsProvider, wanted: string[], ctx: DaneContext): Promise<number> {
  let created = 0;
  const journal = new DnsJournal(ctx.config.stateDir, ctx.log);
  const ours = (await journal.list()).filter((e) => e.purpose === 'lasting' && e.type === 'TLSA' && e.cert === spec.name && e.provider === provider.name);
  for (const owner of tlsaOwners(dane.names, dane.ports)) {
    const zone = await provider.zoneFor(owner);
    const present = await provider.list(zone, 'TLSA', owner);
    for (const value of wanted) {
      if (present.some((p) => p.record.value === normalizeValue('TLSA', value))) continue;
      const entry = { provider: provider.name, zoneId: zone.id, zoneName: zone.name, type: 'TLSA' as const, purpose: 'lasting' as const, name: owner, value, cert: spec.name, createdAt: new Date().toISOString() };
      await journal.add(entry);
      const id = await provider.create(zone, { type: 'TLSA', name: owner, value, ttl: dane.ttlSeconds });
      await journal.setId(entry, id);
      created++;
      ctx.log.info({ step: 'dane', cert: spec.name, record: owner, value }, 'TLSA record created');
    }
    for (const entry of ours.filter((e) => e.name === owner && !wanted.includes(e.value))) {
      for (const p of present.filter((r) => r.record.value === entry.value)) await provider.delete(zone, p.id);
      await journal.remove(entry);
      ctx.log.info({ step: 'dane', cert: spec.name, record: owner, value: entry.value }, 'TLSA record of a retired key deleted');
    }
  }
  return created;
}

/**
 * Before the orders. Records are written and checked; each variant that will be ordered gets its
 * key: the current one (renewals keep it, so the records stay valid), or the next one when a
 * rollover is due and its record has been seen for twice the TTL. A key type change waits for
 * that too. A provider failure leaves the records and the current key as they were.
 */
export async function prepareDane(runs: CertRun[], ctx: DaneContext): Promise<void> {
  const spec = runs[0]?.spec;
  const dane = spec?.dane;
  if (!spec || !dane || spec.source !== 'acme') return;
  const log = runs[0]!.log;
  let keys: VariantKeys[];
  try {
    keys = await keysOf(runs, ctx);
  } catch (err) {
    for (const run of runs) if (run.decision === 'issue') run.failed('obtain', `DANE: cannot make or read the next key: ${errorMessage(err)}`, 'DANE failed');
    return;
  }
  if (keys.some((k) => !k.current)) {
    // A first certificate: nothing is served that records could describe, and a record published
    // before the certificate would make validating senders defer. It is ordered with a key of its
    // own; the records follow its deploy (finishDane). The other variants keep their keys.
    for (const k of keys) k.run.daneKey = k.current && k.run.bundle?.keyType === k.run.spec.keyType ? k.run.bundle.privateKey : undefined;
    log.info({ step: 'dane' }, 'DANE: no certificate served yet; its TLSA records are published once it is');
    return;
  }
  const wanted = desiredValues(keys);
  const owners = tlsaOwners(dane.names, dane.ports);
  const provider = dane.provider === 'none' ? undefined : await ctx.dns.get(dane.provider);
  let problem: string | undefined;
  let created = 0;
  if (provider) {
    created = await writeRecords(spec, dane, provider, wanted, ctx).catch((err: unknown) => {
      problem = `DANE: writing the TLSA records failed: ${errorMessage(err)}`;
      log.warn({ step: 'dane', error: errorMessage(err) }, 'could not write the TLSA records; the current key stays');
      return 0;
    });
  }
  let missing: string[] = [];
  try {
    missing = missingIn(await ask(owners, provider, ctx.config), wanted);
  } catch (err) {
    missing = [`the name servers could not be asked (${errorMessage(err)})`];
  }
  const now = new Date();
  for (const k of keys) {
    const st = k.run.daneState();
    const seenBefore = st.seenSince;
    // A record that had to be written again (deleted since) restarts the count: a resolver may
    // hold the RRset without it.
    st.seenSince = missing.length === 0 && !problem ? (created === 0 && st.seenSince ? st.seenSince : now.toISOString()) : undefined;
    if (st.seenSince !== seenBefore) k.run.markDirty();
    if (missing.length > 0) log.info({ step: 'dane', keyType: k.run.spec.keyType, missing }, provider ? 'TLSA records not yet answered everywhere' : 'publish the TLSA records (DANE_PROVIDER=none): not yet answered everywhere');
    if (!k.current || !k.run.bundle) continue;
    const decision = decideRollover({
      now,
      ttlSeconds: dane.ttlSeconds,
      keyLifetimeMs: dane.keyLifetimeMs,
      keySince: new Date(st.keySince),
      seenSince: st.seenSince ? new Date(st.seenSince) : undefined,
      rolloverRequestedAt: st.rolloverRequestedAt ? new Date(st.rolloverRequestedAt) : undefined,
      keyTypeChanged: k.run.bundle.keyType !== k.run.spec.keyType,
    });
    if (decision.roll) {
      k.run.daneKey = k.nextKey;
      k.run.daneRollover = true;
      if (k.run.ok && k.run.decision !== 'issue' && k.run.decision !== 'wait') k.run.planned('issue', decision.reason);
      log.info({ step: 'dane', keyType: k.run.spec.keyType, reason: decision.reason }, 'DANE rollover: ordering with the next key');
    } else if (decision.due) {
      k.run.daneKey = k.run.bundle.keyType === k.run.spec.keyType ? k.run.bundle.privateKey : undefined;
      log.info({ step: 'dane', keyType: k.run.spec.keyType, reason: decision.reason, readyAt: decision.readyAt?.toISOString() }, 'DANE rollover waits');
      // A key type change is a new key: it waits like any rollover, with the current certificate kept.
      if (!k.run.daneKey && k.run.decision === 'issue') k.run.planned('wait', decision.reason, decision.readyAt, undefined);
      // Back when the wait is over, or, while the records are not seen everywhere, after a TTL.
      k.run.wakeBy(decision.readyAt ?? new Date(now.getTime() + Math.max(dane.ttlSeconds, 60) * 1000));
    } else {
      k.run.daneKey = k.run.bundle.privateKey; // a renewal keeps the key: the records stay valid
    }
  }
}

/**
 * After the deploy: a variant now serving its next key finished its rollover (a new next key is
 * made, the old digest goes); then every served key is checked against what the authoritative
 * servers answer.
 */
export async function finishDane(runs: CertRun[], ctx: DaneContext): Promise<void> {
  const spec = runs[0]?.spec;
  const dane = spec?.dane;
  if (!spec || !dane || spec.source !== 'acme') return;
  const log = runs[0]!.log;
  const now = new Date().toISOString();
  for (const run of runs) {
    const leaf = run.bundle?.leaf;
    if (!leaf || !run.publishedNow || !run.ok) continue;
    const st = run.daneState();
    const nextKey = await readDaneNextKey(ctx.config.stateDir, run.stateKey);
    if (nextKey && spkiOfKey(nextKey) === spkiOf(leaf)) {
      log.info({ step: 'dane', keyType: run.spec.keyType, digest: spkiOf(leaf) }, 'DANE rollover done: the next key is served; a new next key is announced and the old digest retired');
      await writeDaneNextKey(ctx.config.stateDir, run.stateKey, await generatePrivateKey(run.spec.keyType));
      Object.assign(st, { keySince: now, nextCreatedAt: now, seenSince: undefined, rolloverRequestedAt: undefined });
      run.markDirty();
    } else if (!run.state.dane?.keySince || run.issuedNow && !run.daneKey) {
      st.keySince = now; // a first certificate, or one ordered with a key of its own
      run.markDirty();
    }
  }
  const keys = await keysOf(runs, ctx).catch(() => undefined);
  if (!keys) return;
  const wanted = desiredValues(keys);
  const provider = dane.provider === 'none' ? undefined : await ctx.dns.get(dane.provider);
  if (provider && runs.some((r) => r.publishedNow)) {
    const created = await writeRecords(spec, dane, provider, wanted, ctx).catch((err: unknown) => {
      log.warn({ step: 'dane', error: errorMessage(err) }, 'could not update the TLSA records; retried at the next pass');
      return 0;
    });
    // New records take a while to reach every server: the check below waits for them first.
    if (created > 0) {
      const expected = await Promise.all(tlsaOwners(dane.names, dane.ports).map(async (name) => ({ type: 'TLSA' as const, name, zone: (await provider.zoneFor(name)).name, values: wanted })));
      await waitForRecords(expected, { resolvers: ctx.config.dns.resolvers, timeoutMs: ctx.config.dns.propagationTimeoutMs, log, step: 'dane', timeoutVariable: 'DNS01_PROPAGATION_TIMEOUT' })
        .catch((err: unknown) => log.warn({ step: 'dane', error: errorMessage(err) }, 'the new TLSA records are not visible everywhere yet'));
    }
  }
  // The served key against the records as answered: a mismatch is reported now, with the digests.
  let answers: Answers | undefined;
  try {
    answers = await ask(tlsaOwners(dane.names, dane.ports), provider, ctx.config);
  } catch (err) {
    log.warn({ step: 'dane', error: errorMessage(err) }, 'could not ask the name servers for the TLSA records');
  }
  for (const k of keys) {
    if (!k.current || !answers) continue;
    const missing = missingIn(answers, [tlsa311(k.current)]);
    const inStep = missing.length === 0;
    const detail = inStep ? `the served key ${tlsa311(k.current)} is in the TLSA RRset on every authoritative server` : `the served key ${tlsa311(k.current)} is missing: ${missing.join('; ')}`;
    const before = k.run.state.dane?.check;
    k.run.daneState().check = { at: now, inStep, detail };
    if (!before || before.inStep !== inStep || before.detail !== detail) k.run.markDirty();
    if (inStep) log.info({ step: 'dane', keyType: k.run.spec.keyType }, 'TLSA records in step with the served key');
    else log.error({ step: 'dane', keyType: k.run.spec.keyType, served: k.current, missing }, 'DANE: the served key has no TLSA record; validating senders will defer mail');
  }
}
