import { connect } from 'node:net';
import { every, poll } from '../../../util/retry.js';
import { monotonicMs } from '../../../util/clock.js';
import {
  type DeployResult,
  endpointsFor,
  expectationsFor,
  NOTHING_TO_CHECK,
  resultOf,
  type ServedCert,
  unverifiedResult,
  VERIFY_BUDGET_MS,
} from '../../deployer.js';
import type { Endpoint } from '../../probe.js';
import { asTarget } from '../../targets.js';
import { type Expectation, QUICK_RETRIES, VERIFY_LABEL, verifyServed } from '../../verify.js';
import { listNodes, type NodeView, type TaskView } from './api.js';
import type { ServicePlan, SwarmPass } from './context.js';
import { reachTask, taskView } from './self.js';
import { POLL_MS, runningTasks } from './updates.js';

/** The references a task runs with, as object@target. */
const refsOfTask = (task: TaskView) => [
  ...(task.Spec?.ContainerSpec?.Secrets ?? []).map((r) => `${r.SecretName}@${r.File?.Name}`),
  ...(task.Spec?.ContainerSpec?.Configs ?? []).map((r) => `${r.ConfigName}@${r.File?.Name}`),
];

/** Checks what each running task of a service serves, at its address on a network mailcerts shares. */
export async function verifyTasks(
  pass: SwarmPass,
  p: ServicePlan,
  certs: ServedCert[],
  verifyHosts: string[] | '*',
  signal?: AbortSignal,
): Promise<DeployResult[]> {
  const { docker, log } = pass;
  const wanted = expectationsFor({ labels: p.service.Spec.Labels ?? {} }, certs);
  const checkable = wanted.filter((x): x is Expectation => x.leaf !== undefined);
  const targets = [...new Set(p.mounts.map((m) => `${m.object}@${m.target}`))];
  const tasks = await runningTasks(docker, p.service, (t) => targets.every((x) => refsOfTask(t).includes(x)), signal);
  const nodes = new Map((await listNodes(docker)).map((n) => [n.ID, n]));
  const replicas = p.service.Spec.Mode?.Replicated?.Replicas;
  const missing: DeployResult[] = [];
  if (replicas !== undefined && tasks.length < replicas) {
    const error = `only ${tasks.length} of its ${replicas} tasks run with the published files after a minute; see docker service ps ${p.name}`;
    log.error({ step: 'verify', container: p.name, error }, 'tasks missing after the update');
    missing.push({
      container: `${p.name} (missing tasks)`,
      certs: p.certs,
      ok: false,
      reloaded: false,
      serves: null,
      problem: 'reload',
      error,
    });
  }
  const one = { pass, p, targets, checkable, verifyHosts, signal };
  return [...missing, ...(await Promise.all(tasks.map((task) => verifyTask(one, task, nodes.get(task.NodeID ?? '')))))];
}

interface TaskCheck {
  pass: SwarmPass;
  p: ServicePlan;
  /** What every task must run with: object@target. */
  targets: string[];
  checkable: Expectation[];
  verifyHosts: string[] | '*';
  signal?: AbortSignal;
}

/** One task: it runs with the new files, and serves them on its endpoints. */
async function verifyTask(c: TaskCheck, task: TaskView, node: NodeView | undefined): Promise<DeployResult> {
  const { log } = c.pass;
  const name = `${c.p.name}.${task.Slot ?? task.ID.slice(0, 12)} on ${node?.Description?.Hostname ?? task.NodeID}`;
  const base = { container: name, certs: c.p.certs, reloaded: true };
  const refs = refsOfTask(task);
  if (c.targets.some((t) => !refs.includes(t))) {
    log.error({ step: 'verify', container: name }, 'task still runs with older secrets and configs after the update');
    return {
      ...base,
      ok: false,
      serves: false,
      problem: 'stale',
      error: 'still runs with older secrets and configs after the update',
    };
  }
  const view = taskView(task, name, c.p.service.Spec.Labels ?? {});
  const endpoints = await endpointsFor(asTarget(view), {
    verifyHosts: c.verifyHosts,
    reach: () => reachTask(view, node, c.pass.self.container),
    listening: () => Promise.resolve(undefined),
  });
  if ('skip' in endpoints) return unverifiedResult(base, endpoints.skip, log);
  if ('problem' in endpoints) {
    log.error(
      { step: 'verify', container: name, problem: endpoints.problem, error: endpoints.error },
      'task not verified',
    );
    return { ...base, ok: false, serves: null, problem: endpoints.problem, error: endpoints.error };
  }
  // Without a mailcerts.verify label, only the preset ports that answer are probed (a task
  // that has just started is given half a minute to listen).
  const list =
    view.labels[VERIFY_LABEL] === undefined
      ? await answering(endpoints.list, monotonicMs() + 30_000, c.signal)
      : endpoints.list;
  if (list.length === 0) {
    const error = `none of the default ports ${endpoints.list.map((e) => e.port).join(', ')} answers, so not verified (not the certificate's fault); set mailcerts.verify`;
    log.error({ step: 'verify', container: name, problem: 'unreachable', error }, 'task not verified');
    return { ...base, ok: false, serves: null, problem: 'unreachable', error };
  }
  if (c.checkable.length === 0) return unverifiedResult(base, NOTHING_TO_CHECK, log);
  return probeTask(c, base, list);
}

/** What a task serves on its endpoints, against what is published. */
async function probeTask(
  c: TaskCheck,
  base: { container: string; certs: string[]; reloaded: boolean },
  list: Endpoint[],
): Promise<DeployResult> {
  const { log } = c.pass;
  const outcome = await verifyServed(list, c.checkable, {
    waits: QUICK_RETRIES,
    log,
    container: base.container,
    deadline: monotonicMs() + VERIFY_BUDGET_MS,
    signal: c.signal,
  });
  const r = resultOf(base, outcome, 'after the update');
  if (r.ok)
    log.info(
      {
        step: 'verify',
        container: base.container,
        endpoints: list.map((e) => `${e.protocol}://${e.host}:${e.port}`),
      },
      'task serves the published certificate',
    );
  else
    log.error(
      { step: 'verify', container: base.container, problem: r.problem, error: r.error },
      'task not serving the published certificate',
    );
  return r;
}

/**
 * The endpoints that accept a connection within 2 s (the preset ports a server really uses); asked
 * again each second until one does or `deadline` passes.
 */
async function answering<E extends { host: string; port: number }>(
  list: E[],
  deadline: number,
  signal?: AbortSignal,
): Promise<E[]> {
  const r = await poll(() => answeringNow(list), {
    until: (open) => open.length > 0,
    backoff: every(POLL_MS),
    deadline,
    signal,
  });
  return r.value ?? [];
}

async function answeringNow<E extends { host: string; port: number }>(list: E[]): Promise<E[]> {
  const ok = await Promise.all(
    list.map(
      (e) =>
        new Promise<boolean>((resolve) => {
          const done = (open: boolean) => {
            s.destroy();
            resolve(open);
          };
          const s = connect({ host: e.host, port: e.port, timeout: 2_000 }, () => done(true));
          s.on('error', () => resolve(false));
          s.on('timeout', () => done(false));
        }),
    ),
  );
  return list.filter((_, i) => ok[i]);
}
