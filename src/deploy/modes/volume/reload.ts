import type Docker from 'dockerode';
import type { Logger } from '../../../log.js';
import { errorMessage } from '../../../util/errors.js';
import { execIn, restartContainer, signalContainer } from '../../docker.js';
import { planReload, RELOAD_LABEL, type Step } from '../../kinds/index.js';
import type { ReloadTarget } from '../../targets.js';
import { CHECK_REFUSED } from '../../check-refused.js';

/**
 * Running a container's reload through the Docker API: the plan its kind makes (deploy/kinds/),
 * its checks side by side, then its steps in order.
 */
/** Runs one command; its failure with the container's output, or undefined. */
async function execStep(
  docker: Docker,
  target: ReloadTarget,
  step: Step,
  log: Logger,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const cmd = step.argv.join(' ');
  const { exitCode, output } = await execIn(docker, target.id, step.argv, { signal, tty: step.tty });
  log.info(
    { step: 'reload', container: target.name, command: cmd, exitCode },
    exitCode === 0 ? 'command succeeded' : 'command failed',
  );
  if (exitCode === 0) return undefined;
  const said = output ? `:\n${output}` : ' and printed nothing (see the container log)';
  const what = exitCode === 126 || exitCode === 127 ? ' (command not found in the container?)' : '';
  return `"${cmd}" exited with ${exitCode}${what}${said}`;
}

/**
 * Runs the checks side by side and waits for all of them; reports the first failure in the listed
 * order. Nothing that changes the server starts before every check has finished.
 */
async function execChecks(
  docker: Docker,
  target: ReloadTarget,
  checks: Step[],
  log: Logger,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const results = await Promise.allSettled(checks.map((step) => execStep(docker, target, step, log, signal)));
  for (const r of results) {
    if (r.status === 'rejected') throw r.reason;
    if (r.value) return r.value;
  }
  return undefined;
}

/** Validates, then reloads one container. Never throws: the answer is the error, or undefined. */
export async function reloadTarget(
  docker: Docker,
  target: ReloadTarget,
  log: Logger,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const { action } = target;
  if ('error' in action) return `label ${RELOAD_LABEL}=${target.label}: ${action.error}`;
  const plan = planReload(action, target.labels);
  if ('error' in plan) return plan.error;
  try {
    const invalid = await execChecks(docker, target, plan.checks, log, signal);
    if (invalid) return `${CHECK_REFUSED}: ${invalid}`;
    for (const step of plan.steps) {
      if ('exec' in step) {
        const failed = await execStep(docker, target, step.exec, log, signal);
        if (failed) return `${step.failure}: ${failed}`;
      } else if ('signal' in step) {
        await signalContainer(docker, target.id, step.signal);
        log.info({ step: 'reload', container: target.name, signal: step.signal }, 'signal sent');
      } else {
        await restartContainer(docker, target.id);
        log.info({ step: 'reload', container: target.name }, 'container restarted');
      }
    }
    return undefined;
  } catch (err) {
    return `reload failed: ${errorMessage(err)}`;
  }
}
