/**
 * DANE for one certificate: before the orders, the next key exists, the TLSA RRset (at each
 * _PORT._tcp.NAME: the served, published and next digests of every variant) is written and
 * checked on every authoritative server, and each variant's order is given the key it may use;
 * after the deploy, a rollover that is now served retires the old digest and announces a new
 * next key, and the served key is checked against what the servers answer.
 */
import { createPublicKey } from 'node:crypto';
import type { CertificateSpec, Config, DaneSpec } from '../config/schema.js';
import { decideRollover, tlsa311, tlsaOwners } from '../dane/plan.js';
import { waitForRecords } from '../dns/propagation.js';
import { type Answers, ask, missingIn } from '../dane/records.js';
import { type DnsProvider, normalizeValue } from '../dns/provider.js';
import type { DnsProviders } from '../dns/providers/index.js';
import type { Logger } from '../log.js';
import { spkiOf, spkiOfKey } from '../pki/identity.js';
import { generatePrivateKey, keyTypeOf } from '../pki/keys.js';
import { renewalTime } from '../plan/renewal.js';
import { readDaneNextKey, writeDaneNextKey } from '../state/cert-state.js';
import { DnsJournal } from '../state/dns-journal.js';
import { errorMessage } from '../util/errors.js';
import type { CertRun } from './cert-run.js';

export interface DaneContext {
  config: Config;
  dns: DnsProviders;
  log: Logger;
  signal?: AbortSignal;
}

/** One variant's keys as SPKI SHA-256 digests (hex). */
interface VariantKeys {
  run: CertRun;
  /** The published certificate's key, when mailcerts made and deployed it (never a key found in CERTS_DIR). */
  published?: string;
  /** The key last verified as served: its record stays until another key is served. */
  served?: string;
  next: string;
  nextKey: string;
}

/** The stored next key, if it is a usable key of the variant's type. */
function usableNextKey(pem: string | undefined, run: CertRun): string | undefined {
  if (!pem) return undefined;
  try {
    if (keyTypeOf(createPublicKey(pem)) === run.spec.keyType) return pem;
  } catch {
    run.log.warn({ step: 'dane' }, 'the next key in STATE_DIR cannot be read; a new one is made and announced');
  }
  return undefined;
}

async function keysOf(runs: CertRun[], ctx: DaneContext): Promise<VariantKeys[]> {
  const out: VariantKeys[] = [];
  for (const run of runs) {
    let nextKey = usableNextKey(await readDaneNextKey(ctx.config.stateDir, run.stateKey), run);
    if (!nextKey) {
      // A new next key changes the RRset, so the burn-in of seenValues starts again by itself.
      nextKey = await generatePrivateKey(run.spec.keyType);
      await writeDaneNextKey(ctx.config.stateDir, run.stateKey, nextKey);
      Object.assign(run.daneState(), { nextCreatedAt: new Date().toISOString(), seenSince: undefined, seenValues: undefined });
      run.markDirty();
      run.log.info({ step: 'dane', digest: spkiOfKey(nextKey) }, 'made the next key; its TLSA record is published ahead of any use');
    }
    const leaf = run.state.deployedDigest ? run.bundle?.leaf : undefined;
    const published = leaf ? spkiOf(leaf) : undefined;
    const served = run.state.dane?.served ?? (published && run.state.deployedDigest === run.published?.digest ? published : undefined);
    out.push({ run, published, served, next: spkiOfKey(nextKey), nextKey });
  }
  return out;
}

/** The RRset every owner name must hold: each variant's served, published and next digests. */
export function desiredValues(keys: Pick<VariantKeys, 'published' | 'served' | 'next'>[]): string[] {
  return [...new Set(keys.flatMap((k) => [k.served, k.published, k.next]).filter((d): d is string => !!d).map(tlsa311))].sort();
}

/**
 * Makes the provider hold the wanted TLSA values at each owner name, as far as mailcerts wrote
 * them: missing ones are created (journaled as lasting records); ours that are no longer wanted
 * are deleted. Records someone else put there are left alone. Returns how many were created.
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
 * rollover is due and the RRset with it has been seen for twice the TTL. A new key type, or a
 * variant added to the certificate, waits for that too. A provider failure leaves the records
 * and the current key as they were.
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
  if (keys.every((k) => !k.published)) {
    // A first certificate: nothing is served that records could describe, and an RRset published
    // before the certificate would make validating senders defer. It is ordered with a key of its
    // own; the records follow its deploy (finishDane).
    for (const k of keys) k.run.daneKey = undefined;
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
  if (missing.length > 0) log.info({ step: 'dane', missing }, provider ? 'TLSA records not yet answered everywhere' : 'publish the TLSA records (DANE_PROVIDER=none): not yet answered everywhere');
  const now = new Date();
  const values = wanted.join(',');
  for (const k of keys) {
    const run = k.run;
    const st = run.daneState();
    const before = `${st.seenSince}|${st.seenValues}`;
    if (missing.length === 0 && !problem) {
      // The count goes on only for the same RRset, and only if no record had to be written again
      // (a resolver may hold the RRset without it).
      if (!(st.seenSince && st.seenValues === values && created === 0)) Object.assign(st, { seenSince: now.toISOString(), seenValues: values });
    } else {
      Object.assign(st, { seenSince: undefined, seenValues: undefined });
    }
    if (`${st.seenSince}|${st.seenValues}` !== before) run.markDirty();
    const burnIn = 2 * dane.ttlSeconds * 1000;
    const readyAt = st.seenSince ? new Date(Date.parse(st.seenSince) + burnIn) : undefined;
    const ready = !!readyAt && now >= readyAt;

    // A kept certificate (issued, not yet deployed) goes out only with a key DANE allows now.
    if (run.decision === 'republish' && run.pending) {
      const key = spkiOf(run.pending.leaf);
      if (key !== k.published && !(key === k.next && ready)) {
        log.info({ step: 'dane', serial: run.pending.serial }, 'the kept certificate\'s key has no TLSA record seen long enough; it is dropped');
        await run.dropPending();
        run.planned('issue', 'DANE: the kept certificate\'s key was not announced long enough');
      }
    }

    if (!k.published || !run.bundle) {
      // A key type added to a DANE certificate: its first key is the announced next key.
      if (ready) {
        run.daneKey = k.nextKey;
        run.daneRollover = true;
      } else {
        const reason = `DANE: the ${run.spec.keyType} key's TLSA record must be answered everywhere for twice the TTL before its first certificate${readyAt ? `: not before ${readyAt.toISOString()}` : ''}`;
        if (run.decision === 'issue') run.planned('wait', reason, readyAt, undefined);
        run.wakeBy(readyAt ?? new Date(now.getTime() + Math.max(dane.ttlSeconds, 60) * 1000));
        log.info({ step: 'dane', keyType: run.spec.keyType, reason, readyAt: readyAt?.toISOString() }, 'DANE rollover waits');
      }
      continue;
    }
    const decision = decideRollover({
      now,
      ttlSeconds: dane.ttlSeconds,
      keyLifetimeMs: dane.keyLifetimeMs,
      keySince: new Date(st.keySince),
      seenSince: st.seenSince ? new Date(st.seenSince) : undefined,
      rolloverRequestedAt: st.rolloverRequestedAt ? new Date(st.rolloverRequestedAt) : undefined,
      keyTypeChanged: run.bundle.keyType !== run.spec.keyType,
    });
    if (decision.roll) {
      run.daneKey = k.nextKey;
      run.daneRollover = true;
      if (run.ok && run.decision !== 'issue' && run.decision !== 'wait') run.planned('issue', decision.reason);
      log.info({ step: 'dane', keyType: run.spec.keyType, reason: decision.reason }, 'DANE rollover: ordering with the next key');
      continue;
    }
    // Renewals keep the key: the records stay valid.
    run.daneKey = run.bundle.privateKey;
    if (!decision.due) continue;
    log.info({ step: 'dane', keyType: run.spec.keyType, reason: decision.reason, readyAt: decision.readyAt?.toISOString() }, 'DANE rollover waits');
    if (run.bundle.keyType !== run.spec.keyType && run.decision === 'issue') {
      // A new key type is a new key: it waits like any rollover. Meanwhile the certificate is
      // renewed with its current key when it is due, so that waiting never lets it expire.
      if (now >= renewalTime(run.bundle.notBefore, run.bundle.notAfter)) log.info({ step: 'dane', keyType: run.bundle.keyType }, 'renewing with the current key while the new key type\'s record is not announced long enough');
      else run.planned('wait', decision.reason, decision.readyAt, undefined);
    }
    // Back when the wait is over, or, while the records are not seen everywhere, after a TTL.
    run.wakeBy(decision.readyAt ?? new Date(now.getTime() + Math.max(dane.ttlSeconds, 60) * 1000));
  }
}

/**
 * After the deploy: a variant whose deploy was verified now serves its published key; one that
 * serves its next key finished its rollover (a new next key is made, and the old digest goes only
 * now). Then every served key is checked against what the authoritative servers answer.
 */
export async function finishDane(runs: CertRun[], ctx: DaneContext): Promise<void> {
  const spec = runs[0]?.spec;
  const dane = spec?.dane;
  if (!spec || !dane || spec.source !== 'acme') return;
  const log = runs[0]!.log;
  const now = new Date().toISOString();
  let changed = runs.some((r) => r.publishedNow);
  for (const run of runs) {
    const leaf = run.bundle?.leaf;
    // Served: deployed and verified (rollout recorded the digest only then), and made by mailcerts.
    if (!leaf || !run.published || run.state.deployedDigest !== run.published.digest || !run.ok) continue;
    const st = run.daneState();
    const served = spkiOf(leaf);
    if (st.served !== served) {
      st.served = served;
      run.markDirty();
      changed = true;
    }
    const nextKey = await readDaneNextKey(ctx.config.stateDir, run.stateKey);
    if (nextKey && usableNextKey(nextKey, run) && spkiOfKey(nextKey) === served) {
      log.info({ step: 'dane', keyType: run.spec.keyType, digest: served }, 'DANE rollover done: the next key is served; a new next key is announced and the old digest retired');
      await writeDaneNextKey(ctx.config.stateDir, run.stateKey, await generatePrivateKey(run.spec.keyType));
      Object.assign(st, { keySince: now, nextCreatedAt: now, seenSince: undefined, seenValues: undefined, rolloverRequestedAt: undefined });
      run.markDirty();
    } else if (run.issuedNow && !run.daneKey) {
      st.keySince = now; // ordered with a key of its own (a first certificate)
      run.markDirty();
    }
  }
  const keys = await keysOf(runs, ctx).catch(() => undefined);
  if (!keys) return;
  const wanted = desiredValues(keys);
  const provider = dane.provider === 'none' ? undefined : await ctx.dns.get(dane.provider);
  if (provider && changed) {
    const created = await writeRecords(spec, dane, provider, wanted, ctx).catch((err: unknown) => {
      log.warn({ step: 'dane', error: errorMessage(err) }, 'could not update the TLSA records; retried at the next pass');
      return 0;
    });
    // New records take a while to reach every server: the check below waits for them first.
    if (created > 0) {
      const expected = await Promise.all(tlsaOwners(dane.names, dane.ports).map(async (name) => ({ type: 'TLSA' as const, name, zone: (await provider.zoneFor(name)).name, values: wanted })));
      await waitForRecords(expected, { resolvers: ctx.config.dns.resolvers, timeoutMs: ctx.config.dns.propagationTimeoutMs, log, signal: ctx.signal, step: 'dane', timeoutVariable: 'DNS01_PROPAGATION_TIMEOUT' })
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
    const key = k.served ?? k.published;
    if (!key || !answers) continue;
    const missing = missingIn(answers, [tlsa311(key)]);
    const inStep = missing.length === 0;
    const detail = inStep ? `the served key ${tlsa311(key)} is in the TLSA RRset on every authoritative server` : `the served key ${tlsa311(key)} is missing: ${missing.join('; ')}`;
    // Per owner name (_PORT._tcp.NAME): in step on every server.
    const names = Object.fromEntries([...answers.keys()].map((owner) => [owner, !missing.some((m) => m.startsWith(`${owner} on `))]));
    const before = k.run.state.dane?.check;
    k.run.daneState().check = { at: now, inStep, detail, names };
    if (!before || before.inStep !== inStep || before.detail !== detail) k.run.markDirty();
    if (inStep) log.info({ step: 'dane', keyType: k.run.spec.keyType }, 'TLSA records in step with the served key');
    else log.error({ step: 'dane', keyType: k.run.spec.keyType, served: key, missing }, 'DANE: the served key has no TLSA record; validating senders will defer mail');
  }
}
