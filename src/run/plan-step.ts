import { type CertificateSpec, type Config, variantsOf } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Issuer } from '../obtain/issuer.js';
import { describeSource, isSupplied } from '../obtain/sources/index.js';
import { safeAriCertId } from '../pki/identity.js';
import { decide } from '../plan/renewal.js';
import { type Bundle, parseBundle } from '../pki/bundle.js';
import { readPublishedOrBroken } from '../publish/publisher.js';
import { type AriState, type CertState, readCertState, readPending, settleVariantStates } from '../state/cert-state.js';
import { errorMessage } from '../util/errors.js';
import { CertRun, type Plan } from './cert-run.js';

const HOUR = 3_600_000;
/** ARI is asked at least twice a day: a stored next check further out is not trusted. */
const MAX_ARI_RECHECK_MS = 12 * HOUR;

export interface PlanContext {
  config: Config;
  issuer: Issuer;
  log: Logger;
  force: boolean;
  /** With force: only this variant is forced. */
  forceKeyType?: string;
}

/** The kept certificate (issued, not deployed), unless it is what is published already; a damaged one is dropped. */
async function readKept(config: Config, run: CertRun): Promise<{ bundle?: Bundle; live: boolean; damaged?: string }> {
  const kept = await readPending(config.stateDir, run.stateKey);
  if (!kept) return { live: false };
  try {
    const bundle = parseBundle(kept.fullchain, kept.key, `the kept certificate of "${run.name}" (${run.spec.keyType})`);
    return { bundle, live: run.published?.bundles.some((b) => b.fingerprint256 === bundle.fingerprint256) ?? false };
  } catch (err) {
    return { live: false, damaged: errorMessage(err) };
  }
}

/**
 * Reads what is known about one certificate and decides what this pass does with each of its
 * variants (one per key type; a supplied certificate is one run, whatever its files hold).
 */
export async function planCertificate(ctx: PlanContext, spec: CertificateSpec): Promise<CertRun[]> {
  return isSupplied(spec) ? [await planSupplied(ctx, spec)] : planOrdered(ctx, spec);
}

/** A supplied certificate: kept as published; the source's intake says whether a new set is there. */
async function planSupplied(ctx: PlanContext, spec: CertificateSpec): Promise<CertRun> {
  const log = ctx.log.child({ cert: spec.name });
  const state = await readCertState(ctx.config.stateDir, spec.name, log);
  const { published, broken } = await readPublishedOrBroken(ctx.config, spec, state.deployedDigest);
  if (broken) log.warn({ step: 'plan', error: broken }, 'published certificate is unusable');
  const run = new CertRun({
    spec: variantsOf(spec)[0]!,
    state,
    stateKey: spec.name,
    stateDir: ctx.config.stateDir,
    log,
    published,
  });
  run.decided({ action: 'keep', reason: describeSource(spec), error: broken });
  return run;
}

/** An ordered certificate: each variant's state, and whether it is due. */
async function planOrdered(ctx: PlanContext, spec: CertificateSpec): Promise<CertRun[]> {
  const log = ctx.log.child({ cert: spec.name });
  const variants = variantsOf(spec);
  const logs = variants.map((v) => (variants.length > 1 ? log.child({ keyType: v.keyType }) : log));
  const { keys, states: settled } = await settleVariantStates(ctx.config.stateDir, spec, log);
  const states: CertState[] = [];
  for (const [i, v] of variants.entries()) {
    const key = keys.get(v.keyType)!;
    states.push(settled.get(key) ?? (await readCertState(ctx.config.stateDir, key, logs[i])));
  }
  // Files that still hold the set last deployed were checked then: only their leaves are read again.
  const { published, broken } = await readPublishedOrBroken(ctx.config, spec, states[0]!.deployedDigest);
  if (broken) log.warn({ step: 'plan', error: broken }, 'published certificate is unusable');
  const runs: CertRun[] = [];
  for (const [i, v] of variants.entries()) {
    const run = new CertRun({
      spec: v,
      state: states[i]!,
      stateKey: keys.get(v.keyType)!,
      stateDir: ctx.config.stateDir,
      log: logs[i]!,
      published,
    });
    run.decided(await planVariant(ctx, run, broken));
    runs.push(run);
  }
  return runs;
}

/** What this pass does with one variant (a kept certificate that cannot be used is dropped on the way). */
async function planVariant(ctx: PlanContext, run: CertRun, broken: string | undefined): Promise<Plan> {
  const { spec, state, log } = run;
  const kept = await readKept(ctx.config, run);
  if (kept.damaged) {
    log.warn({ step: 'plan', error: kept.damaged }, 'the kept certificate is damaged; dropping it');
    await run.dropPending();
  }
  const mine = run.bundle;
  const ari = mine && !broken ? await refreshAri(ctx, run, mine, run.published!.digest, log) : undefined;
  const pending = kept.bundle && !kept.live ? kept.bundle : undefined;
  const now = new Date();
  const force = ctx.force && (!ctx.forceKeyType || ctx.forceKeyType === spec.keyType);
  const decision = decide({
    spec,
    published: mine,
    broken,
    pending,
    state,
    now,
    force,
    ari,
    profile: ctx.config.acme.profile,
  });
  let stillKept = kept.bundle;
  if (pending && decision.action === 'issue' && !force) {
    log.info(
      { step: 'plan', serial: pending.serial },
      'the kept certificate can no longer be used; a new one is ordered',
    );
    await run.dropPending();
    stillKept = undefined;
  }
  log.info({ step: 'plan', decision: decision.action, reason: decision.reason }, `plan: ${decision.action}`);
  const nextAt =
    decision.action === 'keep'
      ? earliest(decision.renewAt, ari && new Date(ari.nextCheckAt))
      : decision.action === 'wait'
        ? decision.until
        : undefined;
  return {
    action: decision.action,
    reason: decision.reason,
    nextAt,
    error: decision.action === 'wait' ? (state.lastError ?? 'waiting') : undefined,
    replaces: ari?.certId,
    kept: stillKept,
  };
}

function earliest(a: Date, b?: Date): Date {
  return b && b < a ? b : a;
}

/** The CA's renewal window for the variant's published certificate, fetched when due; undefined without ARI. */
async function refreshAri(
  ctx: PlanContext,
  run: CertRun,
  bundle: Bundle,
  setDigest: string,
  log: Logger,
): Promise<AriState | undefined> {
  const { state } = run;
  const certPem = bundle.certificates[0]!;
  // Parsing the certificate for its id costs about a millisecond: done once per published
  // certificate, and not at all while the CA offers no ARI (nothing stored).
  const id = !state.ari ? undefined : state.ari.digest === setDigest ? state.ari.certId : safeAriCertId(certPem);
  const known = id && state.ari?.certId === id ? state.ari : undefined;
  const now = Date.now();
  const nextCheck = known ? Date.parse(known.nextCheckAt) : NaN;
  if (known && nextCheck > now && nextCheck <= now + MAX_ARI_RECHECK_MS) return known;
  // A CA without ARI changes nothing: no state file is rewritten (and synced) for it at every pass.
  try {
    const fetched = await ctx.issuer.renewalInfo(certPem, known, log);
    run.ariRefreshed(fetched && { ...fetched, digest: setDigest });
  } catch (err) {
    log.warn(
      { step: 'ari', error: errorMessage(err) },
      'could not ask the CA for the renewal window; using the last one or the lifetime rule',
    );
    if (known) run.ariRefreshed({ ...known, nextCheckAt: new Date(now + HOUR).toISOString(), digest: setDigest });
  }
  return run.state.ari;
}
