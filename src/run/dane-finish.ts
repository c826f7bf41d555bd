/**
 * The DANE step after the deploy: the served key is recorded (a rollover that is served is done),
 * the records follow, and the served key is checked against what the servers answer.
 */
import type { CertificateSpec, DaneSpec } from '../config/schema.js';
import { tlsa311, tlsaOwners } from '../dane/plan.js';
import { ask, missingIn, type TlsaView } from '../dane/records.js';
import { afterDeploy, foreignVouched, keptValues, orderedWith, wantedValues } from '../dane/rollover.js';
import { writeRecords } from '../dane/write-records.js';
import type { DnsProvider } from '../dns/provider.js';
import { waitForRecords } from '../dns/propagation.js';
import { spkiOf, spkiOfKey } from '../pki/identity.js';
import { generatePrivateKey } from '../pki/keys.js';
import { readDaneNextKey, writeDaneNextKey } from '../state/cert-state.js';
import { errorMessage } from '../util/errors.js';
import type { CertRun } from './cert-run.js';
import { type DaneContext, keysOf, usableNextKey, type VariantKeys, vouched } from './dane-keys.js';

/**
 * After the deploy: a variant whose deploy was verified now serves its published key. If that
 * key is mailcerts' own it becomes the served one (a rollover whose next key is served is done: a
 * new next key is made, and the old digest goes only now); a key mailcerts did not make counts
 * only when DNS already vouches for it, and is never announced. Then every served key is checked
 * against what the authoritative servers answer.
 */
export async function finishDane(runs: CertRun[], ctx: DaneContext): Promise<void> {
  const spec = runs[0]?.spec;
  const dane = spec?.dane;
  if (!spec || !dane) return; // DANE is only set for an ordered source (config/certificates.ts)
  const log = runs[0]!.log;
  const now = new Date();
  let changed = runs.some((r) => r.publishedNow);
  const foreign: CertRun[] = [];
  for (const run of runs) {
    const served = await recordServed(run, ctx, now);
    if (served === 'foreign') foreign.push(run);
    else if (served === 'changed') changed = true;
  }
  const keys = await keysOf(runs, ctx).catch(() => undefined);
  if (!keys) return;
  const provider = dane.provider === 'none' ? undefined : await ctx.dns.get(dane.provider);
  if (provider && changed) await updateRecords(spec, dane, provider, keys, ctx);
  let view: TlsaView | undefined;
  try {
    view = await ask(tlsaOwners(dane.names, dane.ports), provider, ctx.config, dane);
  } catch (err) {
    log.warn({ step: 'dane', error: errorMessage(err) }, 'could not ask the name servers for the TLSA records');
  }
  for (const run of foreign) reportForeign(run, view);
  if (view) checkServed(keys, view, now.toISOString());
}

/**
 * One variant after the deploy, as dane/rollover.ts afterDeploy says: its served key recorded,
 * a rollover that is served done (with a new next key). 'changed': another key is served.
 */
async function recordServed(
  run: CertRun,
  ctx: DaneContext,
  now: Date,
): Promise<'foreign' | 'changed' | 'same' | 'none'> {
  // An order of this pass used the key the DANE step chose for it: mailcerts' own.
  const { key } = run.order;
  if (run.issuedNow && key) run.daneRecorded(orderedWith(run.daneState(), spkiOfKey(key)));
  const leaf = run.bundle?.leaf;
  // Served: deployed and verified (rollout recorded the digest only then).
  if (!leaf || !run.published || run.state.deployedDigest !== run.published.digest || !run.ok) return 'none';
  const served = spkiOf(leaf);
  const nextKey = usableNextKey(await readDaneNextKey(ctx.config.stateDir, run.stateKey), run);
  const after = afterDeploy(run.daneState(), served, nextKey && spkiOfKey(nextKey), now);
  if (after.foreign) return 'foreign';
  run.daneRecorded(after.served);
  if (after.rolledOver) {
    run.log.info(
      { step: 'dane', keyType: run.spec.keyType, digest: served },
      'DANE rollover done: the next key is served; a new next key is announced and the old digest retired',
    );
    await writeDaneNextKey(ctx.config.stateDir, run.stateKey, await generatePrivateKey(run.spec.keyType));
    run.daneRecorded(after.state);
  }
  return after.changed ? 'changed' : 'same';
}

/** The records follow what is served; new ones are waited for before the check. */
async function updateRecords(
  spec: CertificateSpec,
  dane: DaneSpec,
  provider: DnsProvider,
  keys: VariantKeys[],
  ctx: DaneContext,
): Promise<void> {
  const log = keys[0]!.run.log;
  const wanted = wantedValues(keys);
  const created = await writeRecords(
    spec,
    dane,
    provider,
    { wanted, keep: keptValues(keys) },
    { stateDir: ctx.config.stateDir, log },
  ).catch((err: unknown) => {
    log.warn({ step: 'dane', error: errorMessage(err) }, 'could not update the TLSA records; retried at the next pass');
    return 0;
  });
  // New records take a while to reach every server: the check waits for them first.
  if (created === 0) return;
  const expected = await Promise.all(
    tlsaOwners(dane.names, dane.ports).map(async (name) => ({
      type: 'TLSA' as const,
      name,
      zone: (await provider.zoneFor(name)).name,
      values: wanted,
    })),
  );
  await waitForRecords(expected, {
    resolvers: ctx.config.dns.resolvers,
    timeoutMs: ctx.config.dns.propagationTimeoutMs,
    log,
    signal: ctx.signal,
    step: 'dane',
    timeoutVariable: 'DNS01_PROPAGATION_TIMEOUT',
  }).catch((err: unknown) =>
    log.warn({ step: 'dane', error: errorMessage(err) }, 'the new TLSA records are not visible everywhere yet'),
  );
}

/** A served key mailcerts did not make: it stays current only if DNS names it. */
function reportForeign(run: CertRun, view: TlsaView | undefined): void {
  const served = spkiOf(run.bundle!.leaf);
  if (vouched(view, served)) {
    // DNS names it: it is what validating senders expect, and it stays current.
    run.daneRecorded(foreignVouched(run.daneState(), served));
    run.log.info(
      { step: 'dane', keyType: run.spec.keyType, digest: served },
      'the served key was not made by mailcerts, but its TLSA record is answered everywhere: it stays the current key',
    );
  } else {
    run.log.warn(
      { step: 'dane', keyType: run.spec.keyType, digest: served },
      "the served key was not made by mailcerts and no TLSA record names it: it is not announced, and is replaced by a key of mailcerts' own as soon as DNS allows",
    );
  }
}

/** The served key against the records as the authoritative servers answer them: a mismatch is reported now, with the digests. */
function checkServed(keys: VariantKeys[], view: TlsaView, now: string): void {
  const answers = view.answers;
  for (const k of keys) {
    const key = k.run.state.dane?.served ?? k.current;
    if (!key) continue;
    const missing = missingIn(answers, [tlsa311(key)]);
    const inStep = missing.length === 0;
    const detail = inStep
      ? `the served key ${tlsa311(key)} is in the TLSA RRset on every authoritative server`
      : `the served key ${tlsa311(key)} is missing: ${missing.join('; ')}`;
    // Per owner name (_PORT._tcp.NAME): in step on every server.
    const names = Object.fromEntries(
      [...answers.keys()].map((owner) => [owner, !missing.some((m) => m.startsWith(`${owner} on `))]),
    );
    k.run.daneChecked({ at: now, inStep, detail, names });
    if (inStep)
      k.run.log.info({ step: 'dane', keyType: k.run.spec.keyType }, 'TLSA records in step with the served key');
    else
      k.run.log.error(
        { step: 'dane', keyType: k.run.spec.keyType, served: key, missing },
        'DANE: the served key has no TLSA record; validating senders will defer mail',
      );
  }
}
