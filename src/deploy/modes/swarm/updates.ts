import type Docker from 'dockerode';
import { monotonicMs } from '../../../util/clock.js';
import { every, poll } from '../../../util/retry.js';
import { inspectService, listTasks, type NodeView, type ServiceView, type TaskView } from './api.js';
import type { Mount } from './objects.js';
import { unsatisfiable } from './placement.js';
import { collisionIn } from './service-spec.js';

/** How long one service's rolling update may take before it is reported as stuck. */
export const UPDATE_BUDGET_MS = 15 * 60_000;
export const POLL_MS = 1_000;

/**
 * The running tasks of a service, once as many run with the new files (`fresh`) as it asks for (a
 * task that Swarm is still starting, after a rollback or a restart, is waited for, up to a
 * minute): then those; otherwise whatever runs, older ones included, to be reported.
 */
export async function runningTasks(
  docker: Docker,
  service: ServiceView,
  fresh: (t: TaskView) => boolean,
  signal?: AbortSignal,
): Promise<TaskView[]> {
  const wanted = service.Spec.Mode?.Replicated?.Replicas;
  if (wanted === undefined) return tasksRunning(docker, service.ID);
  const r = await poll(() => tasksRunning(docker, service.ID), {
    until: (tasks) => tasks.filter(fresh).length >= wanted,
    backoff: every(POLL_MS),
    deadline: monotonicMs() + 60_000,
    signal,
  });
  return r.ok ? r.value.filter(fresh) : r.value!;
}

export const tasksRunning = async (docker: Docker, serviceId: string) =>
  (await listTasks(docker, serviceId)).filter((t) => t.DesiredState === 'running' && t.Status?.State === 'running');

/** Why an update of this service to these mounts must not be made: a target taken, or replaced tasks that could not start. */
export async function updateProblem(
  docker: Docker,
  service: ServiceView,
  mounts: Pick<Mount, 'target'>[],
  own: Set<string>,
  nodes: NodeView[],
): Promise<string | undefined> {
  return (
    collisionIn(service, mounts, own) ??
    unsatisfiable(service.Spec, nodes, (await tasksRunning(docker, service.ID)).length)
  );
}

/** How a Swarm update ended, as far as mailcerts is concerned. */
export type UpdateEnd = { end: 'completed' } | { end: 'rolled back' | 'unfinished'; why: string };

/**
 * Waits until Swarm has finished the update that mailcerts began (`begun`: the update status as it
 * was before, so that an older status is not taken for ours), or any update in progress (one that
 * a mailcerts stopped in the middle left); 'completed', or what went wrong. A rollback seen to
 * happen is reported; one that was over before is no news (what the tasks serve is verified next).
 */
export async function waitForUpdate(
  docker: Docker,
  id: string,
  begun: { before?: string } | undefined,
  signal?: AbortSignal,
): Promise<UpdateEnd> {
  // Swarm clears the update status when it takes a new spec, and sets it once its updater starts.
  // A status that never comes (a spec whose tasks need no replacing) is taken as done after this;
  // the tasks' files are checked next all the same.
  const noStatusUntil = monotonicMs() + 30_000;
  let watched = begun !== undefined;
  const look = async (): Promise<{ end: UpdateEnd } | { name: string | undefined; state: string }> => {
    const s = await inspectService(docker, id);
    const u = s.UpdateStatus;
    const ours =
      !begun ||
      (u?.StartedAt !== undefined && u.StartedAt !== begun.before) ||
      (u === undefined && monotonicMs() > noStatusUntil);
    const state = ours ? u?.State : 'updating';
    const end = updateEnd(s.Spec.Name, state, u?.Message, watched);
    if (end) return { end };
    watched = true;
    return { name: s.Spec.Name, state: state! };
  };
  const r = await poll(look, {
    until: (l) => 'end' in l,
    backoff: every(POLL_MS),
    deadline: monotonicMs() + UPDATE_BUDGET_MS,
    signal,
  });
  const last = r.value;
  if (last && 'end' in last) return last.end;
  if (!r.ok && r.stopped === 'aborted') return { end: 'unfinished', why: 'stopped before the update finished' };
  const { name, state } = last!;
  return {
    end: 'unfinished',
    why: `the update of ${name} did not finish within ${UPDATE_BUDGET_MS / 60_000} minutes (state ${state}); see docker service ps ${name}`,
  };
}

/** How an update in this state ended, or undefined while it runs (`watched`: it was seen running). */
function updateEnd(name: string | undefined, state: string | undefined, message: string | undefined, watched: boolean) {
  if (state === 'paused' || state === 'rollback_paused') {
    return {
      end: 'unfinished',
      why: `the update of ${name} is paused (${message ?? state}); resume or roll it back with docker service update --rollback ${name}`,
    } as const;
  }
  if (state === 'updating' || state === 'rollback_started') return undefined;
  if (!watched || state !== 'rollback_completed') return { end: 'completed' } as const;
  return {
    end: 'rolled back',
    why: `Swarm rolled the update of ${name} back: ${message ?? 'a new task failed'}; the old certificate files are in place again`,
  } as const;
}
