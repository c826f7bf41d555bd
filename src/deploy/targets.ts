import type Docker from 'dockerode';
import type { Logger } from '../log.js';
import { errorMessage } from '../util/errors.js';
import { type ContainerView, execIn, restartContainer, signalContainer } from './docker.js';
import {
  PRESETS,
  parseReloadLabel,
  postmapSteps,
  RELOAD_LABEL,
  type ReloadAction,
  type Step,
} from './reload-actions.js';

/**
 * Running a container's reload: its checks side by side, then postmap and the reload itself. What
 * each kind of server needs is in reload-actions.ts.
 */
export {
  describeAction,
  parsePostmapLabel,
  parseReloadLabel,
  POSTMAP_LABEL,
  presetEndpoints,
  RELOAD_LABEL,
  type ReloadAction,
} from './reload-actions.js';

export interface ReloadTarget extends ContainerView {
  label: string;
  action: ReloadAction | { error: string };
}

export function asTarget(c: ContainerView): ReloadTarget {
  const label = c.labels[RELOAD_LABEL] ?? '';
  return { ...c, label, action: parseReloadLabel(label) };
}

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

/** Runs the commands in order; stops at the first failure and reports it with the container's output. */
async function execSteps(
  docker: Docker,
  target: ReloadTarget,
  steps: string[][],
  log: Logger,
  signal?: AbortSignal,
): Promise<string | undefined> {
  for (const argv of steps) {
    const failed = await execStep(docker, target, { argv }, log, signal);
    if (failed) return failed;
  }
  return undefined;
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

/** What is wrong with a container's mailcerts labels (reload, postmap), for `check`; empty when nothing. */
export function labelProblems(target: ReloadTarget): string[] {
  const problems: string[] = [];
  if ('error' in target.action) problems.push(`${RELOAD_LABEL}=${target.label}: ${target.action.error}`);
  const maps = postmapSteps(target);
  if ('error' in maps) problems.push(maps.error.replace(/^label /, ''));
  return problems;
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
  try {
    switch (action.kind) {
      case 'postfix':
      case 'dovecot': {
        const preset = PRESETS[action.kind];
        const invalid = await execChecks(docker, target, preset.validate, log, signal);
        if (invalid) return `validation failed, not reloaded: ${invalid}`;
        // postmap -F stores the files' contents in the table: it must run after every publish.
        const maps = postmapSteps(target);
        if ('error' in maps) return maps.error;
        const unmapped = await execSteps(docker, target, maps.steps, log, signal);
        if (unmapped) return `postmap failed, not reloaded: ${unmapped}`;
        const failed = await execSteps(docker, target, preset.reload, log, signal);
        return failed && `reload failed: ${failed}`;
      }
      case 'exec': {
        const failed = await execSteps(docker, target, [action.argv], log, signal);
        return failed && `reload failed: ${failed}`;
      }
      case 'signal':
        await signalContainer(docker, target.id, action.signal);
        log.info({ step: 'reload', container: target.name, signal: action.signal }, 'signal sent');
        return undefined;
      case 'restart':
        await restartContainer(docker, target.id);
        log.info({ step: 'reload', container: target.name }, 'container restarted');
        return undefined;
    }
  } catch (err) {
    return `reload failed: ${errorMessage(err)}`;
  }
}
