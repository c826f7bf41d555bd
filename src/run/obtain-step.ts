import type { Config } from '../config/schema.js';
import { failureFacts, type Issuer } from '../obtain/issuer.js';
import { type Bundle, checkBundle, parseBundle } from '../publish/bundle.js';
import { publishBundle } from '../publish/publisher.js';
import { recordFailedValidation, validationPause } from '../state/identifiers.js';
import type { PassLock } from '../state/lock.js';
import { raceAbort } from '../util/abort.js';
import { errorMessage } from '../util/errors.js';
import type { CertRun } from './cert-run.js';
import { explainPublishError } from './preflight.js';
import { intakeSupplied } from './supplied.js';

export interface ObtainContext {
  config: Config;
  issuer: Issuer;
  lock: PassLock;
  signal?: AbortSignal;
}

/**
 * Gets the certificate this pass publishes (from the CA, from STATE_DIR, or from the supplied
 * files) and publishes it. Failures are recorded on the run; nothing is thrown.
 */
export async function obtainAndPublish(run: CertRun, ctx: ObtainContext): Promise<void> {
  let bundle: Bundle | undefined;
  let orderedWith: { profile?: string } | undefined;
  try {
    if (run.spec.source === 'custom') {
      bundle = await intakeSupplied(run, ctx.config);
    } else if (run.decision === 'republish' && run.pending) {
      bundle = run.pending;
      orderedWith = { profile: run.state.pending?.profile };
    } else if (run.decision === 'issue') {
      const issued = await issue(run, ctx);
      if (!issued) return;
      bundle = issued;
      orderedWith = { profile: run.state.pending?.profile };
    }
  } catch (err) {
    if (ctx.signal?.aborted) {
      // A stop is not a failure: no backoff, the next start simply tries again.
      run.cancelled();
      run.log.info({ step: 'order' }, 'order abandoned on shutdown');
      return;
    }
    const facts = failureFacts(err);
    if (facts.failedValidations.length > 0) {
      await recordFailedValidation(ctx.config.stateDir, facts.failedValidations, new Date(), run.log).catch((e: unknown) =>
        run.log.warn({ step: 'state', error: errorMessage(e) }, 'could not record the failed validation'),
      );
    }
    run.failed('obtain', errorMessage(err), 'issuance failed', facts.retryAfterMs);
    return;
  }
  if (bundle) await publish(run, bundle, ctx, orderedWith);
}

/** Orders a new certificate; undefined when the per-name validation limit says wait. */
async function issue(run: CertRun, ctx: ObtainContext): Promise<Bundle | undefined> {
  const { spec, log } = run;
  const pause = await validationPause(ctx.config.stateDir, spec.domains, new Date(), log);
  if (pause) {
    // Not even --force: the CA counts failed validations per name, and pauses accounts that keep failing.
    const error = `${pause.count} failed validations of ${pause.name} in the last hour; no new order before ${pause.until.toISOString()} (the CA's limit is per name)`;
    run.planned('wait', run.reason, pause.until, error);
    log.warn({ step: 'plan', domain: pause.name, until: pause.until.toISOString() }, 'validation limit reached; waiting');
    return undefined;
  }
  run.attempting();
  const reuse = ctx.config.acme.reuseKey && run.published?.bundle.keyType === spec.keyType ? run.published.bundle.privateKey : undefined;
  if (reuse) log.info({ step: 'order', keyType: spec.keyType }, 'reusing the published private key (ACME_REUSE_KEY)');
  const issued = await raceAbort(ctx.issuer.issue({ spec, replaces: run.replaces, privateKey: reuse, signal: ctx.signal }), ctx.signal, `certificate "${spec.name}": order`);
  const bundle = parseBundle(issued.fullchain, issued.privateKey, `the new certificate "${spec.name}"`);
  const skew = checkBundle(bundle, spec.domains, new Date(), `the new certificate "${spec.name}"`);
  if (skew) log.warn({ step: 'validate' }, skew);
  log.info({ step: 'validate', serial: bundle.serial, notAfter: bundle.notAfter.toISOString() }, 'new certificate checked');
  await run.issued(bundle, issued.profile); // kept before the publish: a failed publish does not lose it
  return bundle;
}

/** Publishes atomically; from here on nothing is cancelled. A failure keeps the certificate for the next attempt. */
async function publish(run: CertRun, bundle: Bundle, ctx: ObtainContext, orderedWith?: { profile?: string }): Promise<void> {
  const { log } = run;
  try {
    await ctx.lock.check(`publishing "${run.name}"`);
    const { changed, ...published } = await publishBundle(ctx.config, run.spec, bundle);
    log.info({ step: 'publish', changed, serial: bundle.serial, ...(run.spec.source === 'custom' ? { source: run.spec.customDir } : {}) }, run.spec.source === 'custom' ? 'published the supplied certificate' : changed ? 'published' : 'identical files already published');
    run.publishedFiles(published, changed, orderedWith);
  } catch (err) {
    const kept = run.spec.source === 'acme' ? `; the new certificate (serial ${bundle.serial}) is kept in STATE_DIR and published at the next attempt` : '';
    run.failed('publish', `${explainPublishError(err, ctx.config)}${kept}`, 'publish failed');
  }
}
