import { algorithmOf, type Config } from '../config/schema.js';
import { CHECK_REFUSED } from '../deploy/check-refused.js';
import type { DeployReport, DeployResult, Deployer, ServedCert } from '../deploy/deployer.js';
import { renderSni, SNI_FILE_NAMES } from '../deploy/kinds/index.js';
import type { Logger } from '../log.js';
import { type Published, publishSni, readPublished, repairPublished, rollbackPublished } from '../publish/publisher.js';
import { shippedFiles, shippedSniFiles } from '../publish/shipped.js';
import { recordContainers } from '../state/containers.js';
import type { PassLock } from '../state/lock.js';
import { readSniDeployed, writeSniDeployed } from '../state/sni-state.js';
import { errorMessage } from '../util/errors.js';
import type { CertRun } from './cert-run.js';
import type { ErrorCode } from '../util/error-codes.js';

export interface RolloutContext {
  config: Config;
  deployer: Deployer;
  lock: PassLock;
  log: Logger;
  signal?: AbortSignal;
}

const describeFailures = (results: DeployResult[]) =>
  results.map((r) => `container ${r.container}: ${r.error}`).join('; ');

/** A server that serves another certificate (or none) is a failed verification; one that was not reloaded, a failed reload. */
const deployFailureCode = (results: DeployResult[]): ErrorCode =>
  results.some((r) => r.reloaded && r.serves !== true)
    ? 'MC_VERIFY'
    : results.some((r) => r.error?.startsWith(CHECK_REFUSED))
      ? 'MC_RELOAD_CHECK'
      : 'MC_RELOAD';

/**
 * The rollout transaction, after the publishes of a pass:
 *   1. restore a missing copy of a published certificate (e.g. the top of CERTS_DIR);
 *   2. publish the sni/ files for what is now published;
 *   3. if a published certificate or the sni/ files are not yet deployed, reload and verify every
 *      container in scope;
 *   4. a container whose TLS breaks rolls back only the certificates it serves, which are then
 *      deployed and verified again;
 *   5. each certificate is deployed, or failed with the problems of the containers that serve it.
 */
export async function rollOut(runs: CertRun[], ctx: RolloutContext): Promise<DeployResult[]> {
  // A certificate's variants share one published set: it is repaired, and rolled back, once.
  const firstOfEach = runs.filter((r, i) => runs.findIndex((o) => o.name === r.name) === i);
  await restoreCopies(firstOfEach, ctx);
  let sni = await publishSniFiles(ctx, runs);
  // A variant with no certificate in the set yet (its first order failed) has nothing to deploy.
  const pending = runs.filter((r) => r.published && r.state.deployedDigest !== r.published.digest && r.bundle);
  if (pending.length === 0 && !sni.pending) {
    // Swarm: a docker stack deploy resets a service's secrets and configs to the stack file's; every
    // pass gives them back to a service that lost them (and reports only such services).
    if (!ctx.deployer.repairs) return [];
    const repaired = await deploy(runs, ctx, true);
    // Only the repaired services are in it: the others' records stay.
    await recordResults(ctx, { ...repaired, complete: false });
    return repaired.results;
  }
  if (!ctx.config.docker.reload) {
    ctx.log.info({ step: 'reload' }, 'DOCKER_RELOAD=false: not reloading any container');
    for (const run of pending) await run.deployed();
    await sni.deployed();
    return [];
  }
  let report = await deploy(runs, ctx);
  if (ctx.signal?.aborted) return report.results; // deployed again at the next start: nothing recorded
  const rolled = await rollBackBroken(
    runs,
    firstOfEach.filter((r) => pending.includes(r)),
    report,
    ctx,
  );
  if (rolled) ({ report, sni } = rolled);
  await recordResults(ctx, report);
  for (const run of pending) {
    if (rolled?.runs.has(run)) continue;
    const failures = report.results.filter((r) => !r.ok && blamed(r).includes(run.name));
    if (failures.length === 0) await run.deployed();
    else run.failed('deploy', describeFailures(failures), 'deployment failed', undefined, deployFailureCode(failures));
  }
  // The SNI files count as deployed once every container in scope took the reload.
  if (report.complete && report.results.every((r) => r.reloaded)) await sni.deployed();
  return report.results;
}

const blamed = (r: DeployResult) => r.blame ?? r.certs;

/** Step 1: a missing copy of a published certificate (e.g. the top of CERTS_DIR) is restored. */
async function restoreCopies(firstOfEach: CertRun[], ctx: RolloutContext): Promise<void> {
  for (const run of firstOfEach) {
    if (!run.published || run.publishedNow) continue;
    try {
      await ctx.lock.check(`restoring a copy of "${run.name}"`);
      const { changed } = await repairPublished(ctx.config, run.spec, run.published);
      if (changed) run.log.info({ step: 'publish' }, 'restored a missing published copy');
    } catch (err) {
      run.log.warn({ step: 'publish', error: errorMessage(err) }, 'could not restore a missing published copy');
    }
  }
}

/**
 * Step 4: the certificates a broken container serves are rolled back, then deployed and verified
 * again; undefined when nothing was rolled back. `pending`: one run per certificate deployed now.
 */
async function rollBackBroken(
  runs: CertRun[],
  pending: CertRun[],
  report: DeployReport,
  ctx: RolloutContext,
): Promise<{ runs: Set<CertRun>; report: DeployReport; sni: Awaited<ReturnType<typeof publishSniFiles>> } | undefined> {
  const broken = report.results.filter((r) => r.problem === 'broken');
  const brokenCerts = new Set(broken.flatMap(blamed));
  if (brokenCerts.size === 0) return undefined;
  const why = describeFailures(broken);
  const rolled = new Map<CertRun, { from: Published; to: Published; layoutOnly: boolean }>();
  for (const run of pending.filter((r) => brokenCerts.has(r.name))) {
    const from = run.published!;
    const to = await rollBackOne(run, ctx);
    if (!to) continue;
    run.log.warn(
      {
        step: 'rollback',
        from: from.bundles.map((b) => b.serial).join(','),
        to: to.bundles.map((b) => b.serial).join(','),
      },
      'rolled back to the previous certificate',
    );
    // A variant whose certificate is the same before and after is not what broke, unless
    // nothing else changed (a key type removed from the list): the first one then carries it.
    const variants = runs.filter((r) => r.name === run.name);
    const changed = variants.filter((v) => v.bundleIn(to)?.serial !== v.bundle?.serial);
    for (const v of variants) v.restored(to); // what the containers must serve now
    for (const v of changed.length > 0 ? changed : [run]) rolled.set(v, { from, to, layoutOnly: changed.length === 0 });
  }
  if (rolled.size === 0) return undefined;
  // The SNI files follow what is published again (a rolled-back certificate may cover fewer
  // names), read from the files: a rollback that failed halfway left them unlike run.published.
  const sni = await publishSniFiles(ctx);
  const again = await deploy(runs, ctx);
  for (const [run, { from, to, layoutOnly }] of rolled) {
    const still = again.results.filter((r) => blamed(r).includes(run.name) && !r.ok);
    const after =
      still.length === 0
        ? '; the previous certificate is served again'
        : `; after the rollback: ${describeFailures(still)}`;
    run.rolledBack(from, to, `${why}${after}`, still.length === 0, layoutOnly);
  }
  return { runs: new Set(rolled.keys()), report: again, sni };
}

/**
 * Publishes the sni/ files; says whether the containers have yet to be reloaded with them. `known`:
 * runs whose published certificate is the one on disk, whose names need not be read again.
 */
async function publishSniFiles(
  ctx: RolloutContext,
  known: CertRun[] = [],
): Promise<{ pending: boolean; deployed: () => Promise<void> }> {
  try {
    await ctx.lock.check('publishing the SNI files');
    const sni = await publishSni(
      ctx.config,
      renderSni,
      new Map(known.flatMap((r) => (r.published ? [[r.name, r.published] as const] : []))),
    );
    if (!sni) return { pending: false, deployed: async () => undefined };
    if (sni.changed)
      ctx.log.info(
        { step: 'publish', certificates: sni.listed },
        `published the SNI files (${SNI_FILE_NAMES.map((n) => `sni/${n}`).join(', ')})`,
      );
    const deployed = await readSniDeployed(ctx.config.stateDir, ctx.log);
    return {
      pending: deployed !== sni.digest,
      deployed: () =>
        writeSniDeployed(ctx.config.stateDir, sni.digest).catch((err: unknown) =>
          ctx.log.warn({ step: 'state', error: errorMessage(err) }, 'could not record the SNI files as deployed'),
        ),
    };
  } catch (err) {
    ctx.log.error({ step: 'publish', error: errorMessage(err) }, 'could not publish the SNI files; the last ones stay');
    return { pending: false, deployed: async () => undefined };
  }
}

/**
 * Restores the previous version of one certificate. Not to a certificate that has expired: a
 * verdict of "broken" may be wrong, and an expired certificate helps no client.
 */
async function rollBackOne(run: CertRun, ctx: RolloutContext): Promise<Published | undefined> {
  try {
    await ctx.lock.check(`rolling back "${run.name}"`);
    const to = await rollbackPublished(ctx.config, run.spec, new Date());
    if ('expired' in to) {
      run.log.error(
        { step: 'rollback', notAfter: to.expired },
        `not rolled back: the previous certificate expired on ${to.expired}`,
      );
      return undefined;
    }
    if (!to.published) run.log.error({ step: 'rollback' }, 'no previous version to roll back to');
    return to.published;
  } catch (err) {
    run.log.error({ step: 'rollback', error: errorMessage(err) }, 'the rollback failed');
    return undefined;
  }
}

async function deploy(runs: CertRun[], ctx: RolloutContext, repairOnly = false): Promise<DeployReport> {
  const ships = ctx.deployer.shipsFiles === true;
  // SNI files that cannot be read are not shipped; the services keep the ones they have.
  return ctx.deployer.deploy(
    await servedCerts(runs, ctx.config, ships),
    ctx.signal,
    ships ? await shippedSniFiles(ctx.config, SNI_FILE_NAMES).catch(() => []) : undefined,
    repairOnly,
  );
}

/** containers.json is only a report: failing to write it must not undo a deploy. */
async function recordResults(ctx: RolloutContext, report: DeployReport): Promise<void> {
  await recordContainers(
    ctx.config.stateDir,
    report.results.map((r) => ({ ...r, verified: r.serves === true })),
    report.complete,
    ctx.log,
  ).catch((err: unknown) =>
    ctx.log.warn({ step: 'state', error: errorMessage(err) }, 'could not record the container results'),
  );
}

/**
 * What the containers should serve: every configured certificate in configuration order, even in a
 * pass over one; without a leaf where nothing usable is published.
 */
async function servedCerts(runs: CertRun[], config: Config, withFiles: boolean): Promise<ServedCert[]> {
  const served: ServedCert[] = [];
  for (const spec of config.certificates) {
    const run = runs.find((r) => r.name === spec.name);
    const published = run ? run.published : await readPublished(config, spec).catch(() => undefined);
    // A dual set is probed once per variant, each with only its algorithm offered.
    const variants = published?.dual
      ? published.bundles.map((b) => ({ algorithm: algorithmOf(b.keyType)!, leaf: b.leaf }))
      : undefined;
    const files = withFiles && published ? shippedFiles(config, spec, published) : undefined;
    served.push({ name: spec.name, domains: spec.domains, leaf: published?.bundle.leaf, variants, files });
  }
  return served;
}
