import { errorMessage } from '../../../util/errors.js';
import type { DeployResult, ServedCert } from '../../deployer.js';
import { inspectService, listNodes, type ServiceView, updateService } from './api.js';
import type { ServicePlan, SwarmPass } from './context.js';
import { inUpdate, withMounts } from './service-spec.js';
import { updateProblem, waitForUpdate } from './updates.js';
import { verifyTasks } from './verify-tasks.js';

/** A result that says the service was not deployed, and why (logged). */
function notDeployed(pass: SwarmPass, p: ServicePlan, problem: 'reload' | 'broken', error: string): DeployResult[] {
  pass.log.error({ step: 'reload', service: p.name, problem, error }, 'service not deployed');
  return [{ container: p.name, certs: p.certs, ok: false, reloaded: false, serves: null, problem, error }];
}

/**
 * An update in progress (docker stack deploy, or one a stopped mailcerts began) ends first: one
 * update never overtakes another, and ours is then told apart by its start time. The service as it
 * is then, or why no update of ours goes on top of it (stuck, paused), or undefined on a stop.
 */
async function afterOtherUpdate(
  pass: SwarmPass,
  p: ServicePlan,
  signal?: AbortSignal,
): Promise<{ current: ServiceView; waited: boolean } | { error: string } | undefined> {
  const current = await inspectService(pass.docker, p.service.ID);
  if (!inUpdate(current)) return { current, waited: false };
  const other = await waitForUpdate(pass.docker, p.service.ID, undefined, signal);
  if (signal?.aborted) return undefined;
  if (other.end === 'unfinished') return { error: `service ${p.name} not updated: ${other.why}` };
  return { current: await inspectService(pass.docker, p.service.ID), waited: true };
}

/** Updates one service to its mounts (unless it has them), waits for Swarm's rollout, verifies every task. */
export async function rollOutService(
  pass: SwarmPass,
  p: ServicePlan,
  certs: ServedCert[],
  verifyHosts: string[] | '*',
  signal?: AbortSignal,
): Promise<DeployResult[]> {
  const { docker, log } = pass;
  try {
    const before = await afterOtherUpdate(pass, p, signal);
    if (!before) return [];
    if ('error' in before) return notDeployed(pass, p, 'reload', before.error);
    const { current, waited } = before;
    const own = new Set([...p.own, ...p.mounts.map((m) => m.id)]);
    const spec = withMounts(current.Spec, p.mounts, own);
    if (spec && waited) {
      // The spec changed while it was waited for: checked again, as at planning.
      const problem = await updateProblem(docker, current, p.mounts, own, await listNodes(docker));
      if (problem) return notDeployed(pass, p, 'reload', `service ${p.name} not updated: ${problem}`);
    }
    const begun = spec ? { before: current.UpdateStatus?.StartedAt } : undefined;
    if (spec) {
      await pass.stillLeading();
      log.info(
        { step: 'reload', service: p.name, objects: new Set(p.mounts.map((m) => m.object)).size },
        'updating the service to the new secrets and configs',
      );
      await updateService(docker, current, spec);
    }
    const done = await waitForUpdate(docker, p.service.ID, begun, signal);
    if (signal?.aborted) return []; // stopping: the next start looks again
    if (done.end !== 'completed')
      return notDeployed(pass, p, done.end === 'rolled back' ? 'broken' : 'reload', done.why);
    if (spec)
      log.info({ step: 'reload', service: p.name }, 'service updated: every task runs the new secrets and configs');
    // Verified as the service is now (an update waited for may have scaled it or changed its labels).
    const now = { ...p, service: await inspectService(docker, p.service.ID) };
    return await verifyTasks(pass, now, certs, verifyHosts, signal);
  } catch (err) {
    if (signal?.aborted) return [];
    return notDeployed(pass, p, 'reload', `service ${p.name}: ${errorMessage(err)}`);
  }
}
