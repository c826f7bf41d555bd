import type { Config } from '../config/schema.js';
import { failureFacts, type Issuer } from '../obtain/issuer.js';
import { suppliedSourceOf } from '../obtain/sources/index.js';
import { type Bundle, checkBundle, parseBundle } from '../pki/bundle.js';
import { publishedSet, publishSet } from '../publish/publisher.js';
import { recordFailedValidation, validationPause } from '../state/identifiers.js';
import type { PassLock } from '../state/lock.js';
import { raceAbort } from '../util/abort.js';
import { errorMessage } from '../util/errors.js';
import type { CertRun } from './cert-run.js';
import { explainPublishError } from './preflight.js';
import { intakeSupplied } from './supplied.js';
import { errorCode } from '../util/error-codes.js';

export interface ObtainContext {
  config: Config;
  issuer: Issuer;
  lock: PassLock;
  signal?: AbortSignal;
}

/**
 * Gets what this pass publishes for one certificate (each variant from the CA or from STATE_DIR,
 * or the supplied files) and publishes the certificate's whole set once. The variants are ordered
 * one after another: the second finds the names' authorizations already valid. Failures are
 * recorded on the runs; nothing is thrown.
 */
export async function obtainAndPublish(runs: CertRun[], ctx: ObtainContext): Promise<void> {
  const first = runs[0]!;
  const source = suppliedSourceOf(first.spec);
  if (source) {
    const supplied = await intakeOne(first, () => intakeSupplied(first, source, ctx.config, ctx.signal), ctx);
    if (supplied) await publish(runs, supplied.bundles, supplied.dual, ctx);
    return;
  }
  for (const run of runs) {
    if (ctx.signal?.aborted) break;
    if (!run.ok) continue; // backing off, or held: its published bundle stays in the set
    run.brought(
      await intakeOne(
        run,
        async () => {
          if (run.decision === 'republish' && run.pending) return run.pending;
          if (run.decision === 'issue') return issue(run, ctx);
          return undefined;
        },
        ctx,
      ),
    );
  }
  if (ctx.signal?.aborted) return;
  // The set: every configured variant, new or as published; a variant with neither (its first
  // order failed) is left out until it has one. What was removed from the list is not in it.
  // (A variant whose key type changed and whose new order failed keeps its old certificate in the set.)
  const bundles = runs.flatMap((r) => r.toPublish ?? r.bundle ?? []);
  // Dual files only once every key type has a certificate: until then the layout stays as it is,
  // so that a config naming rsa-*.pem never sees half of a dual set.
  const dual = first.spec.keyTypes.length > 1 && bundles.length === first.spec.keyTypes.length;
  if (bundles.length === 0) return;
  // A changed list of key types alone republishes the set, unless a variant is backing off (after
  // such a set was rolled back, say).
  const before = first.published;
  const sameSet =
    before &&
    before.dual === dual &&
    before.bundles.length === bundles.length &&
    bundles.every((b, i) => b === before.bundles[i]);
  const changedSet =
    runs.some((r) => r.toPublish) ||
    (!sameSet && runs.every((r) => r.ok) && publishedSet(ctx.config, bundles, dual).digest !== before?.digest);
  if (changedSet) await publish(runs, bundles, dual, ctx);
}

/** Runs one variant's intake; a failure or a stop is recorded on the run and gives undefined. */
async function intakeOne<T>(
  run: CertRun,
  get: () => Promise<T | undefined>,
  ctx: ObtainContext,
): Promise<T | undefined> {
  try {
    return await get();
  } catch (err) {
    if (ctx.signal?.aborted) {
      // A stop is not a failure: no backoff, the next start simply tries again.
      run.cancelled();
      run.log.info({ step: 'order' }, 'order abandoned on shutdown');
      return undefined;
    }
    const facts = failureFacts(err);
    if (facts.failedValidations.length > 0) {
      await recordFailedValidation(ctx.config.stateDir, facts.failedValidations, new Date(), run.log).catch(
        (e: unknown) =>
          run.log.warn({ step: 'state', error: errorMessage(e) }, 'could not record the failed validation'),
      );
    }
    run.failed('obtain', errorMessage(err), 'issuance failed', facts.retryAfterMs, errorCode(err, 'order'));
    return undefined;
  }
}

/** Orders a new certificate; undefined when the per-name validation limit says wait. */
async function issue(run: CertRun, ctx: ObtainContext): Promise<Bundle | undefined> {
  const { spec, log } = run;
  const pause = await validationPause(ctx.config.stateDir, spec.domains, new Date(), log);
  if (pause) {
    // Not even --force: the CA counts failed validations per name, and pauses accounts that keep failing.
    const error = `${pause.count} failed validations of ${pause.name} in the last hour; no new order before ${pause.until.toISOString()} (the CA's limit is per name)`;
    run.replanned('wait', run.reason, pause.until, error);
    log.warn(
      { step: 'plan', domain: pause.name, until: pause.until.toISOString() },
      'validation limit reached; waiting',
    );
    return undefined;
  }
  run.attempting();
  const { order } = run;
  const reuse =
    order.key ?? (ctx.config.acme.reuseKey && run.bundle?.keyType === spec.keyType ? run.bundle.privateKey : undefined);
  if (order.rollover)
    log.info(
      { step: 'order', keyType: spec.keyType },
      'ordering with the next key, whose TLSA record is published (DANE rollover)',
    );
  else if (order.key && order.key !== run.bundle?.privateKey)
    log.info(
      { step: 'order', keyType: spec.keyType },
      "ordering with a new key of mailcerts' own (DANE: no TLSA record exists yet)",
    );
  else if (reuse)
    log.info(
      { step: 'order', keyType: spec.keyType },
      order.key ? 'reusing the published private key (DANE)' : 'reusing the published private key (ACME_REUSE_KEY)',
    );
  const issued = await raceAbort(
    ctx.issuer.issue({ spec, replaces: order.replaces, privateKey: reuse, signal: ctx.signal }),
    ctx.signal,
    `certificate "${spec.name}": order`,
  );
  const bundle = parseBundle(issued.fullchain, issued.privateKey, `the new certificate "${spec.name}"`);
  const skew = checkBundle(bundle, spec.domains, new Date(), `the new certificate "${spec.name}"`);
  if (skew) log.warn({ step: 'validate' }, skew);
  log.info(
    { step: 'validate', serial: bundle.serial, notAfter: bundle.notAfter.toISOString() },
    'new certificate checked',
  );
  await run.issued(bundle, issued.profile); // kept before the publish: a failed publish does not lose it
  return bundle;
}

/**
 * Publishes the set atomically; from here on nothing is cancelled. A failure keeps each new
 * certificate for the next attempt.
 */
async function publish(runs: CertRun[], bundles: Bundle[], dual: boolean, ctx: ObtainContext): Promise<void> {
  const { log, spec } = runs[0]!;
  const supplied = suppliedSourceOf(spec);
  const custom = supplied !== undefined;
  try {
    await ctx.lock.check(`publishing "${spec.name}"`);
    const { changed, ...published } = await publishSet(ctx.config, spec, bundles, dual);
    const serials = bundles.map((b) => b.serial);
    log.info(
      {
        step: 'publish',
        changed,
        serial: serials[0],
        ...(bundles.length > 1 ? { serials, keyTypes: bundles.map((b) => b.keyType) } : {}),
        ...(supplied ? { source: supplied.origin(spec) } : {}),
      },
      supplied ? supplied.published : changed ? 'published' : 'identical files already published',
    );
    for (const run of runs) {
      if (custom || run.toPublish)
        run.publishedFiles(published, changed, custom ? undefined : { profile: run.state.pending?.profile });
      else run.republishedSet(published, changed);
    }
  } catch (err) {
    const message = explainPublishError(err, ctx.config);
    for (const run of runs) {
      if (custom) run.failed('publish', message, 'publish failed');
      else if (run.toPublish)
        run.failed(
          'publish',
          `${message}; the new certificate (serial ${run.toPublish.serial}) is kept in STATE_DIR and published at the next attempt`,
          'publish failed',
        );
    }
    if (!runs.some((r) => custom || r.toPublish))
      log.error(
        { step: 'publish', error: message },
        'could not publish the changed list of key types; will retry at the next pass',
      );
  }
}
