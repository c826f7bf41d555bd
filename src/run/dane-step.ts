/**
 * DANE for one certificate: before the orders, the next key exists, the TLSA RRset (at each
 * _PORT._tcp.NAME: the served, current and next digests of every variant) is written and checked
 * on every authoritative server, and each variant's order is given the key it may use, decided
 * from what DNS answers (dane/plan.ts chooseKey); after the deploy, a rollover that is now served
 * retires the old digest and announces a new next key, and the served key is checked against
 * what the servers answer.
 */
import { chooseKey, decideRollover, tlsa311, tlsaOwners } from '../dane/plan.js';
import { ask, dnssecNotes, missingInView, noRecordsAnywhere, type TlsaView } from '../dane/records.js';
import { writeRecords } from '../dane/write-records.js';
import type { Logger } from '../log.js';
import { spkiOf } from '../pki/identity.js';
import { generatePrivateKey } from '../pki/keys.js';
import { renewalTime } from '../plan/renewal.js';
import { errorMessage } from '../util/errors.js';
import type { CertRun } from './cert-run.js';
import { type DaneContext, desiredValues, keptValues, keysOf, type VariantKeys, vouched } from './dane-keys.js';

function logDnssec(view: TlsaView, log: Logger): void {
  for (const problem of dnssecNotes(view).problems) log.warn({ step: 'dane', problem }, 'DANE: DNSSEC problem');
}

/**
 * Before the orders. What DNS answers is asked first: it decides which key each variant may be
 * ordered with (chooseKey). Then the records are written and checked, and the burn-in clock goes
 * on or starts over. A provider failure leaves the records and the current key as they were.
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
        run.failed('obtain', `DANE: cannot make or read the next key: ${errorMessage(err)}`, 'DANE failed');
    return;
  }
  const owners = tlsaOwners(dane.names, dane.ports);
  const provider = dane.provider === 'none' ? undefined : await ctx.dns.get(dane.provider);
  let problem: string | undefined;
  const askDns = () =>
    ask(owners, provider, ctx.config, dane).catch((err: unknown) => {
      problem = `the name servers could not be asked (${errorMessage(err)})`;
      return undefined;
    });
  let view = await askDns();
  if (view) logDnssec(view, log);
  if (view && noRecordsAnywhere(view) && keys.some((k) => !k.currentIsMine)) {
    // No TLSA record anywhere: validating senders use opportunistic TLS, and a record published
    // before the certificate would make them defer. Each variant without a key of mailcerts' own
    // is ordered with a fresh one; the records follow the deploy (finishDane).
    for (const k of keys) await useFreshOrCurrent(k, view, log);
    return;
  }
  const wanted = desiredValues(keys);
  let created = 0;
  if (provider) {
    created = await writeRecords(
      spec,
      dane,
      provider,
      { wanted, keep: keptValues(keys) },
      { stateDir: ctx.config.stateDir, log },
    ).catch((err: unknown) => {
      problem = `DANE: writing the TLSA records failed: ${errorMessage(err)}`;
      log.warn({ step: 'dane', error: errorMessage(err) }, 'could not write the TLSA records; the current key stays');
      return 0;
    });
    if (created > 0) view = await askDns();
  }
  // The burn-in is counted for the whole RRset, a published key DNS vouches for included.
  const seen = [
    ...new Set([...wanted, ...keys.filter((k) => vouched(view, k.current)).map((k) => tlsa311(k.current!))]),
  ].sort();
  const missing = view ? missingInView(view, seen) : [problem!];
  if (missing.length > 0)
    log.info(
      { step: 'dane', missing },
      provider
        ? 'TLSA records not yet answered everywhere'
        : 'publish the TLSA records (DANE_PROVIDER=none): not yet answered everywhere',
    );
  const now = new Date();
  for (const k of keys) {
    const st = k.run.daneState();
    const before = `${st.seenSince}|${st.seenValues}`;
    const values = seen.join(',');
    if (missing.length === 0 && !problem) {
      // The count goes on only for the same RRset, and only if no record had to be written again
      // (a resolver may hold the RRset without it).
      if (!(st.seenSince && st.seenValues === values && created === 0))
        Object.assign(st, { seenSince: now.toISOString(), seenValues: values });
    } else {
      Object.assign(st, { seenSince: undefined, seenValues: undefined });
    }
    if (`${st.seenSince}|${st.seenValues}` !== before) k.run.markDirty();
    await applyChoice(
      k,
      { currentVouched: vouched(view, k.current), nothingServed: keys.every((o) => !o.current) },
      now,
      dane.ttlSeconds,
      dane.keyLifetimeMs,
    );
  }
}

/** No TLSA record anywhere: a variant without a key of mailcerts' own is ordered with a fresh one. */
async function useFreshOrCurrent(k: VariantKeys, v: TlsaView, log: Logger): Promise<void> {
  const choice = chooseKey({
    keyType: k.run.spec.keyType,
    hasCurrent: !!k.current,
    currentIsMine: k.currentIsMine,
    currentVouched: vouched(v, k.current),
    noRecords: true,
    cannotWait: false,
    now: new Date(),
  });
  if (choice.use === 'current') {
    k.run.daneKey = k.run.bundle!.privateKey;
    return;
  }
  const run = k.run;
  if (run.decision === 'republish' && run.pending) return; // issued for this very case: it goes out
  if (run.ok && run.decision === 'keep' && k.current) run.planned('issue', choice.reason);
  if (run.decision === 'issue') run.daneKey = await generatePrivateKey(run.spec.keyType);
  log.info(
    { step: 'dane', keyType: run.spec.keyType, reason: choice.reason },
    'DANE: no certificate served yet; its TLSA records are published once it is',
  );
}

/** Gives the variant's order its key, or holds it back, as chooseKey and decideRollover say. */
async function applyChoice(
  k: VariantKeys,
  dns: { currentVouched: boolean; nothingServed: boolean },
  now: Date,
  ttlSeconds: number,
  keyLifetimeMs: number,
): Promise<void> {
  const { run } = k;
  const due = !!run.bundle && now >= renewalTime(run.bundle.notBefore, run.bundle.notAfter);
  const st = run.daneState();
  const burnIn = 2 * ttlSeconds * 1000;
  const readyAt = st.seenSince ? new Date(Date.parse(st.seenSince) + burnIn) : undefined;
  const ready = !!readyAt && now >= readyAt;
  const choice = chooseKey({
    keyType: run.spec.keyType,
    hasCurrent: !!k.current,
    currentIsMine: k.currentIsMine,
    currentVouched: dns.currentVouched,
    noRecords: false,
    nextReadyAt: readyAt,
    cannotWait: due || dns.nothingServed,
    now,
  });
  const wakeAt = readyAt ?? new Date(now.getTime() + Math.max(ttlSeconds, 60) * 1000);

  // A kept certificate (issued, not yet deployed) goes out only with a key DANE allows now.
  if (run.decision === 'republish' && run.pending) {
    const key = spkiOf(run.pending.leaf);
    if (!((key === k.current && choice.use === 'current') || (key === k.next && (ready || choice.use === 'next')))) {
      run.log.info(
        { step: 'dane', serial: run.pending.serial },
        "the kept certificate's key has no TLSA record seen long enough; it is dropped",
      );
      await run.dropPending();
      run.planned('issue', "DANE: the kept certificate's key was not announced long enough");
    }
  }
  if (choice.use === 'next') {
    run.daneKey = k.nextKey;
    run.daneRollover = true;
    if (run.ok && run.decision !== 'issue' && run.decision !== 'wait') run.planned('issue', choice.reason);
    if (choice.early)
      run.log.warn(
        { step: 'dane', keyType: run.spec.keyType, reason: choice.reason },
        'DANE: ordering with the next key before its burn-in ends',
      );
    else
      run.log.info(
        { step: 'dane', keyType: run.spec.keyType, reason: choice.reason },
        'DANE rollover: ordering with the next key',
      );
    return;
  }
  if (choice.use !== 'current') {
    // 'fresh' cannot come here: records exist. Nothing is ordered; what is served stays.
    const reason = choice.use === 'wait' ? choice.reason : 'DANE: waiting for the next key';
    if (run.decision === 'issue') run.planned('wait', reason, readyAt, undefined);
    run.wakeBy(wakeAt);
    run.log.info(
      { step: 'dane', keyType: run.spec.keyType, reason, readyAt: readyAt?.toISOString() },
      'DANE rollover waits',
    );
    return;
  }
  applyRollover(k, now, ttlSeconds, keyLifetimeMs, wakeAt);
}

/** The published key is current: renewals keep it, and a rollover due waits for the next key's burn-in. */
function applyRollover(k: VariantKeys, now: Date, ttlSeconds: number, keyLifetimeMs: number, wakeAt: Date): void {
  const { run } = k;
  const st = run.daneState();
  const bundle = run.bundle!;
  const decision = decideRollover({
    now,
    ttlSeconds,
    keyLifetimeMs,
    keySince: new Date(st.keySince),
    seenSince: st.seenSince ? new Date(st.seenSince) : undefined,
    rolloverRequestedAt: st.rolloverRequestedAt ? new Date(st.rolloverRequestedAt) : undefined,
    keyTypeChanged: bundle.keyType !== run.spec.keyType,
  });
  if (decision.roll) {
    run.daneKey = k.nextKey;
    run.daneRollover = true;
    if (run.ok && run.decision !== 'issue' && run.decision !== 'wait') run.planned('issue', decision.reason);
    run.log.info(
      { step: 'dane', keyType: run.spec.keyType, reason: decision.reason },
      'DANE rollover: ordering with the next key',
    );
    return;
  }
  // Renewals keep the key: the records stay valid.
  run.daneKey = bundle.privateKey;
  if (!decision.due) return;
  run.log.info(
    { step: 'dane', keyType: run.spec.keyType, reason: decision.reason, readyAt: decision.readyAt?.toISOString() },
    'DANE rollover waits',
  );
  if (bundle.keyType !== run.spec.keyType && run.decision === 'issue') {
    // A new key type is a new key: it waits like any rollover. Meanwhile the certificate is
    // renewed with its current key when it is due, so that waiting never lets it expire.
    if (now >= renewalTime(bundle.notBefore, bundle.notAfter))
      run.log.info(
        { step: 'dane', keyType: bundle.keyType },
        "renewing with the current key while the new key type's record is not announced long enough",
      );
    else run.planned('wait', decision.reason, decision.readyAt, undefined);
  }
  // Back when the wait is over, or, while the records are not seen everywhere, after a TTL.
  run.wakeBy(decision.readyAt ?? wakeAt);
}
