/**
 * DANE for one certificate: before the orders, the next key exists, the TLSA RRset (at each
 * _PORT._tcp.NAME: the served, current and next digests of every variant) is written and checked
 * on every authoritative server, and each variant's order is given the key it may use, decided
 * from what DNS answers (dane/plan.ts chooseKey); after the deploy, a rollover that is now served
 * retires the old digest and announces a new next key, and the served key is checked against
 * what the servers answer.
 */
import type { CertificateSpec, DaneSpec } from '../config/schema.js';
import { orderKey } from '../dane/order-key.js';
import { tlsa311, tlsaOwners } from '../dane/plan.js';
import { ask, dnssecNotes, missingInView, noRecordsAnywhere, type TlsaView } from '../dane/records.js';
import { burnIn, keptValues, recordsFollowCertificate, wantedValues } from '../dane/rollover.js';
import { writeRecords } from '../dane/write-records.js';
import type { DnsProvider } from '../dns/provider.js';
import type { Logger } from '../log.js';
import { spkiOf } from '../pki/identity.js';
import { generatePrivateKey } from '../pki/keys.js';
import { renewalTime } from '../plan/renewal.js';
import { errorMessage } from '../util/errors.js';
import type { CertRun } from './cert-run.js';
import { type DaneContext, keysOf, type VariantKeys, vouched } from './dane-keys.js';

function logDnssec(view: TlsaView, log: Logger): void {
  for (const problem of dnssecNotes(view).problems) log.warn({ step: 'dane', problem }, 'DANE: DNSSEC problem');
}

/** What the authoritative servers answer now; `problem` says why nothing is known. */
interface Asked {
  view?: TlsaView;
  problem?: string;
}

/**
 * Before the orders. What DNS answers is asked first: it decides which key each variant may be
 * ordered with (dane/order-key.ts). Then the records are written and checked, and the burn-in
 * clock goes on or starts over. A provider failure leaves the records and the current key as they were.
 */
export async function prepareDane(runs: CertRun[], ctx: DaneContext): Promise<void> {
  const spec = runs[0]?.spec;
  const dane = spec?.dane;
  if (!spec || !dane) return; // DANE is only set for an ordered source (config/certificates.ts)
  const log = runs[0]!.log;
  let keys: VariantKeys[];
  try {
    keys = await keysOf(runs, ctx);
  } catch (err) {
    for (const run of runs)
      if (run.decision === 'issue')
        run.failed(
          'obtain',
          `DANE: cannot make or read the next key: ${errorMessage(err)}`,
          'DANE failed',
          undefined,
          'MC_DANE',
        );
    return;
  }
  const provider = dane.provider === 'none' ? undefined : await ctx.dns.get(dane.provider);
  const askDns = async (): Promise<Asked> => {
    try {
      return { view: await ask(tlsaOwners(dane.names, dane.ports), provider, ctx.config, dane) };
    } catch (err) {
      return { problem: `the name servers could not be asked (${errorMessage(err)})` };
    }
  };
  const first = await askDns();
  if (first.view) logDnssec(first.view, log);
  if (first.view && recordsFollowCertificate(noRecordsAnywhere(first.view), keys)) {
    // The records follow the deploy (finishDane).
    const o = { view: first.view, noRecords: true, dane, nothingServed: false, now: new Date() };
    for (const k of keys) await applyOrderKey(k, o);
    return;
  }
  const written = provider ? await writeWanted(spec, dane, provider, keys, ctx) : { created: 0 };
  const again = written.created > 0 ? await askDns() : undefined;
  const view = again ? again.view : first.view;
  // The last problem met: a failed ask or write stops the burn-in clock for this pass.
  const problem = again?.problem ?? written.problem ?? first.problem;
  const now = new Date();
  countBurnIn(keys, { view, problem, rewritten: written.created > 0, withProvider: !!provider, now });
  const o = { view, noRecords: false, dane, nothingServed: keys.every((k) => !k.current), now };
  for (const k of keys) await applyOrderKey(k, o);
}

/** Writes the wanted records; a failure is reported and leaves them as they were. */
async function writeWanted(
  spec: CertificateSpec,
  dane: DaneSpec,
  provider: DnsProvider,
  keys: VariantKeys[],
  ctx: DaneContext,
): Promise<{ created: number; problem?: string }> {
  const log = keys[0]!.run.log;
  try {
    const values = { wanted: wantedValues(keys), keep: keptValues(keys) };
    return { created: await writeRecords(spec, dane, provider, values, { stateDir: ctx.config.stateDir, log }) };
  } catch (err) {
    log.warn({ step: 'dane', error: errorMessage(err) }, 'could not write the TLSA records; the current key stays');
    return { created: 0, problem: `DANE: writing the TLSA records failed: ${errorMessage(err)}` };
  }
}

/** The burn-in is counted for the whole RRset, a published key DNS vouches for included. */
function countBurnIn(
  keys: VariantKeys[],
  o: { view?: TlsaView; problem?: string; rewritten: boolean; withProvider: boolean; now: Date },
): void {
  const log = keys[0]!.run.log;
  const vouchedFor = keys.filter((k) => vouched(o.view, k.current)).map((k) => tlsa311(k.current!));
  const values = [...new Set([...wantedValues(keys), ...vouchedFor])].sort();
  const missing = o.view ? missingInView(o.view, values) : [o.problem!];
  if (missing.length > 0)
    log.info(
      { step: 'dane', missing },
      o.withProvider
        ? 'TLSA records not yet answered everywhere'
        : 'publish the TLSA records (DANE_PROVIDER=none): not yet answered everywhere',
    );
  const seen = { values, everywhere: missing.length === 0 && !o.problem, rewritten: o.rewritten, now: o.now };
  for (const k of keys) k.run.daneRecorded(burnIn(k.run.daneState(), seen));
}

/** Gives the variant's order its key, or holds it back, as dane/order-key.ts says. */
async function applyOrderKey(
  k: VariantKeys,
  o: { view?: TlsaView; noRecords: boolean; dane: DaneSpec; nothingServed: boolean; now: Date },
): Promise<void> {
  const { run } = k;
  const { now } = o;
  const bundle = run.bundle;
  const kept = run.decision === 'republish' && run.pending ? run.pending : undefined;
  const what = orderKey({
    keyType: run.spec.keyType,
    action: run.decision,
    ok: run.ok,
    kept: kept && { key: spkiOf(kept.leaf), serial: kept.serial },
    current: k.current,
    next: k.next,
    currentIsMine: k.currentIsMine,
    currentVouched: vouched(o.view, k.current),
    currentKeyType: bundle?.keyType,
    renewalDue: !!bundle && now >= renewalTime(bundle.notBefore, bundle.notAfter),
    nothingServed: o.nothingServed,
    noRecords: o.noRecords,
    dane: run.daneState(),
    ttlSeconds: o.dane.ttlSeconds,
    keyLifetimeMs: o.dane.keyLifetimeMs,
    now,
  });
  for (const n of what.notes) run.log[n.level](n.fields, n.msg);
  if (what.dropKept) await run.dropPending();
  if (what.replan) run.replanned(what.replan.action, what.replan.reason, what.replan.nextAt);
  if (what.key === 'current') run.orderWith(bundle!.privateKey);
  else if (what.key === 'next') run.orderWith(k.nextKey, what.rollover);
  else if (what.key === 'fresh') run.orderWith(await generatePrivateKey(run.spec.keyType));
  if (what.wakeBy) run.wakeBy(what.wakeBy);
}
