import type { CertificateSpec, Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Issuer } from '../obtain/issuer.js';
import { safeAriCertId } from '../pki/identity.js';
import { decide } from '../plan/renewal.js';
import { type Bundle, digestOf, parseBundle } from '../publish/bundle.js';
import { filesFor, type Published, readPublishedOrBroken } from '../publish/publisher.js';
import { type AriState, type CertState, readCertState, readPending } from '../state/cert-state.js';
import { errorMessage } from '../util/errors.js';
import { CertRun } from './cert-run.js';

const HOUR = 3_600_000;
/** ARI is asked at least twice a day: a stored next check further out is not trusted. */
const MAX_ARI_RECHECK_MS = 12 * HOUR;

export interface PlanContext {
  config: Config;
  issuer: Issuer;
  log: Logger;
  force: boolean;
}

/** The kept certificate (issued, not deployed), unless it is what is published already; a damaged one is dropped. */
async function readKept(config: Config, spec: CertificateSpec, published: Published | undefined): Promise<{ bundle?: Bundle; live: boolean; damaged?: string }> {
  const kept = await readPending(config.stateDir, spec.name);
  if (!kept) return { live: false };
  try {
    const bundle = parseBundle(kept.fullchain, kept.key, `the kept certificate of "${spec.name}"`);
    return { bundle, live: digestOf(filesFor(config, bundle)) === published?.digest };
  } catch (err) {
    return { live: false, damaged: errorMessage(err) };
  }
}

/** Reads what is known about one certificate and decides what this pass does with it. */
export async function planCert(ctx: PlanContext, spec: CertificateSpec): Promise<CertRun> {
  const log = ctx.log.child({ cert: spec.name });
  const state = await readCertState(ctx.config.stateDir, spec.name, log);
  // Files that still hold the set last deployed were checked then: only their leaf is read again.
  const { published, broken } = await readPublishedOrBroken(ctx.config, spec, state.deployedDigest);
  if (broken) log.warn({ step: 'plan', error: broken }, 'published certificate is unusable');
  const run = new CertRun({ spec, state, stateDir: ctx.config.stateDir, log, published });
  if (spec.source === 'custom') {
    run.planned('keep', `supplied in ${spec.customDir}`, undefined, broken);
    return run;
  }
  const kept = await readKept(ctx.config, spec, published);
  if (kept.damaged) {
    log.warn({ step: 'plan', error: kept.damaged }, 'the kept certificate is damaged; dropping it');
    await run.dropPending();
  }
  run.pending = kept.bundle;
  const ari = published && !broken ? await refreshAri(ctx, run, published, state, log) : undefined;
  const pending = kept.bundle && !kept.live ? kept.bundle : undefined;
  const now = new Date();
  const decision = decide({ spec, published: published?.bundle, broken, pending, state, now, force: ctx.force, ari, profile: ctx.config.acme.profile });
  if (pending && decision.action === 'issue' && !ctx.force) {
    log.info({ step: 'plan', serial: pending.serial }, 'the kept certificate can no longer be used; a new one is ordered');
    await run.dropPending();
  }
  log.info({ step: 'plan', decision: decision.action, reason: decision.reason }, `plan: ${decision.action}`);
  const nextAt =
    decision.action === 'keep' ? earliest(decision.renewAt, ari && new Date(ari.nextCheckAt)) : decision.action === 'wait' ? decision.until : undefined;
  run.planned(decision.action, decision.reason, nextAt, decision.action === 'wait' ? (state.lastError ?? 'waiting') : undefined);
  run.replaces = ari?.certId;
  return run;
}

function earliest(a: Date, b?: Date): Date {
  return b && b < a ? b : a;
}

/** The CA's renewal window for the published certificate, fetched when due; undefined without ARI. */
async function refreshAri(ctx: PlanContext, run: CertRun, published: Published, state: CertState, log: Logger): Promise<AriState | undefined> {
  const certPem = published.bundle.certificates[0]!;
  // Parsing the certificate for its id costs about a millisecond: done once per published
  // certificate, and not at all while the CA offers no ARI (nothing stored).
  const id = !state.ari ? undefined : state.ari.digest === published.digest ? state.ari.certId : safeAriCertId(certPem);
  const known = id && state.ari?.certId === id ? state.ari : undefined;
  const now = Date.now();
  const nextCheck = known ? Date.parse(known.nextCheckAt) : NaN;
  if (known && nextCheck > now && nextCheck <= now + MAX_ARI_RECHECK_MS) return known;
  const before = JSON.stringify(state.ari);
  try {
    const fetched = await ctx.issuer.renewalInfo(certPem, known, log);
    state.ari = fetched && { ...fetched, digest: published.digest };
  } catch (err) {
    log.warn({ step: 'ari', error: errorMessage(err) }, 'could not ask the CA for the renewal window; using the last one or the lifetime rule');
    if (known) state.ari = { ...known, nextCheckAt: new Date(now + HOUR).toISOString(), digest: published.digest };
  }
  // A CA without ARI changes nothing: no state file is rewritten (and synced) for it at every pass.
  if (JSON.stringify(state.ari) !== before) run.markDirty();
  return state.ari;
}
