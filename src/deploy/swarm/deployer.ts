import { connect } from 'node:net';
import type Docker from 'dockerode';
import type { Logger } from '../../log.js';
import type { ShippedFile } from '../../publish/shipped.js';
import { sleep } from '../../util/abort.js';
import { monotonicMs } from '../../util/clock.js';
import { errorMessage } from '../../util/errors.js';
import {
  type DeployReport,
  type DeployResult,
  type Deployer,
  endpointsFor,
  expectationsFor,
  resultOf,
  type ServedCert,
  VERIFY_BUDGET_MS,
} from '../deployer.js';
import { connectDocker, pingDocker } from '../docker.js';
import { RELOAD_LABEL } from '../kinds/index.js';
import { asTarget } from '../targets.js';
import { type Expectation, QUICK_RETRIES, verifyServed } from '../verify.js';
import {
  createObject,
  type FileRef,
  inspectService,
  listNodes,
  listObjects,
  listObjectsNamed,
  listServices,
  listTasks,
  type NodeView,
  type ObjectView,
  removeObject,
  type ServiceSpec,
  type ServiceView,
  swarmInfo,
  type TaskView,
  updateService,
} from './api.js';
import { reachTask, type Self, taskView, whoAmI } from './self.js';
import { holdLease, type Lead, LEASE_HOLDER_LABEL, type LeaseHolder, LeaseLost } from './lease.js';
import {
  groupOf,
  versionOf,
  MANAGED_LABEL,
  type Mount,
  mountsFor,
  objectFor,
  parseSecretTarget,
  sameObject,
  SECRET_TARGET_LABEL,
  type SwarmObject,
} from './objects.js';
import { unsatisfiable } from './placement.js';
import { STACK_LABEL, stackFile } from './stack-file.js';

export { STACK_LABEL };

/** How long one service's rolling update may take before it is reported as stuck. */
export const UPDATE_BUDGET_MS = 15 * 60_000;
const POLL_MS = 1_000;

export interface SwarmDeployerOptions {
  scope?: string;
  verifyHosts: string[] | '*';
  keyMode: number;
  owner?: number;
  group?: number;
  leaseMs: number;
  /** Every name of every configured certificate: who competes for the lease. */
  names: string[];
  log: Logger;
}

/** One labelled service and what it should mount. */
interface Plan {
  service: ServiceView;
  name: string;
  certs: string[];
  mounts: (Mount & { file: ShippedFile })[];
  /** The ids of mailcerts' objects of this scope when planned: the references it may replace. */
  own: Set<string>;
}

/**
 * DEPLOY_MODE=swarm: each published version becomes Swarm secrets and configs, the labelled
 * services of the stack are updated to them (Swarm replaces their tasks with its own update
 * policy, rolling back on failure), every task is verified, and only then are the objects of
 * versions older than the previous one removed.
 */
export class SwarmDeployer implements Deployer {
  private readonly opts: SwarmDeployerOptions;
  private self: Self | undefined;
  private lease: LeaseHolder | undefined;

  constructor(opts: SwarmDeployerOptions) {
    this.opts = opts;
  }

  /** Connects and finds mailcerts' own task; throws with what to change when this is no manager of a swarm. */
  private async connect(): Promise<{ docker: Docker; self: Self }> {
    const docker = connectDocker();
    await pingDocker(docker);
    const info = await swarmInfo(docker);
    if (info.Swarm?.LocalNodeState !== 'active') {
      throw new Error(
        'DEPLOY_MODE=swarm, but this Docker engine is not part of a swarm (docker swarm init); use DEPLOY_MODE=volume on a single host',
      );
    }
    if (!info.Swarm.ControlAvailable) {
      throw new Error(
        'DEPLOY_MODE=swarm, but this Docker engine is a worker, not a manager: only a manager can manage secrets and services; constrain the mailcerts service with node.role == manager',
      );
    }
    this.self ??= await whoAmI(docker, this.opts.scope);
    return { docker, self: this.self };
  }

  async lead(signal?: AbortSignal): Promise<Lead> {
    const { docker, self } = await this.connect();
    this.lease ??= holdLease({
      holder: self.holder,
      scope: self.scope,
      names: this.opts.names,
      leaseMs: this.opts.leaseMs,
      log: this.opts.log,
    });
    return this.lease.acquire(docker, signal);
  }

  /** Before each change to the swarm: a mailcerts that lost the lease stops (LeaseLost). */
  private async stillLeading(docker: Docker): Promise<void> {
    if (!this.lease) throw new LeaseLost('this mailcerts has not taken the lease');
    await this.lease.confirm(docker);
  }

  /** `mailcerts stack-file`: a compose file naming what each labelled service mounts now (see stack-file.ts). */
  async stackFile(composeVersion?: string): Promise<string> {
    const { docker, self } = await this.connect();
    if (self.scope === '*')
      throw new Error(
        'mailcerts stack-file is for one stack: set DOCKER_SCOPE to the stack name (docker stack ls), not *',
      );
    const services = await this.labelledServices(docker, self);
    return stackFile(
      services,
      services.length > 0 ? await ownIds(docker, self.scope) : new Set(),
      new Date(),
      self.scope,
      composeVersion,
    );
  }

  private async labelledServices(docker: Docker, self: Self): Promise<ServiceView[]> {
    const label = [RELOAD_LABEL, ...(self.scope === '*' ? [] : [`${STACK_LABEL}=${self.scope}`])];
    return (await listServices(docker, label))
      .filter((s) => s.ID !== self.serviceId)
      .sort((a, b) => (a.Spec.Name ?? '').localeCompare(b.Spec.Name ?? ''));
  }

  async deploy(
    certs: ServedCert[],
    signal?: AbortSignal,
    sni: ShippedFile[] = [],
    repairOnly = false,
  ): Promise<DeployReport> {
    const { log } = this.opts;
    const all = certs.map((c) => c.name);
    let docker: Docker;
    let self: Self;
    let plans: (Plan | DeployResult)[];
    try {
      ({ docker, self } = await this.connect());
      plans = await this.plan(docker, self, certs, sni, repairOnly);
    } catch (err) {
      return {
        results: [
          {
            container: '(swarm)',
            certs: all,
            ok: false,
            reloaded: false,
            serves: null,
            problem: 'reload',
            error: errorMessage(err),
          },
        ],
        complete: false,
      };
    }
    if (plans.length === 0 && !repairOnly)
      log.warn(
        { step: 'reload', scope: self.scope },
        'no service in scope carries the label mailcerts.reload; nothing to update',
      );
    const results = (
      await Promise.all(plans.map((p) => ('service' in p ? this.rollOut(docker, self, p, certs, signal) : [p])))
    ).flat();
    // A service refused at planning has its result: the report still covers the whole scope.
    const complete = !signal?.aborted;
    // Old versions go only after a deploy that updated or verified something, and all of it worked.
    const rolledOut = plans.filter((p): p is Plan => 'service' in p);
    if (complete && rolledOut.length > 0 && results.every((r) => r.ok))
      await this.prune(docker, self, rolledOut).catch((err: unknown) =>
        log.warn(
          { step: 'reload', error: errorMessage(err) },
          'could not remove the Swarm objects of old versions; tried again after the next deploy',
        ),
      );
    return { results, complete };
  }

  /**
   * What each labelled service in scope should mount, its objects made where missing. A service
   * whose labels, targets or placement are wrong gets a result naming it, and is not touched.
   * `repairOnly`: only the services that lack some of their files (or are in an update).
   */
  private async plan(
    docker: Docker,
    self: Self,
    certs: ServedCert[],
    sni: ShippedFile[],
    repairOnly: boolean,
  ): Promise<(Plan | DeployResult)[]> {
    const services = await this.labelledServices(docker, self);
    const nodes = services.length > 0 ? await listNodes(docker) : [];
    const made = new Map<string, Promise<{ id: string } | { error: string }>>();
    const ensure = (o: SwarmObject) => {
      const key = `${o.kind}/${o.name}`;
      const known = made.get(key);
      if (known) return known;
      const p = ensureObject(docker, o).then(
        (id) => ({ id }),
        (err: unknown) => ({ error: errorMessage(err) }),
      );
      made.set(key, p);
      return p;
    };
    const own = services.length > 0 ? await ownIds(docker, self.scope) : new Set<string>();
    const out: (Plan | DeployResult)[] = [];
    for (const service of services) {
      const name = service.Spec.Name ?? service.ID;
      const labels = service.Spec.Labels ?? {};
      const wanted = expectationsFor({ labels }, certs);
      const base = {
        container: name,
        certs: [...new Set(wanted.map((w) => w.cert))],
        reloaded: false,
        serves: null,
        ok: false as boolean,
      };
      const target = parseSecretTarget(labels[SECRET_TARGET_LABEL]);
      if (typeof target !== 'string') {
        if (!repairOnly) out.push({ ...base, problem: 'label', error: `label ${target.error}` });
        continue;
      }
      const chosen = mountsFor(labels, certs, sni, {
        target,
        keyMode: this.opts.keyMode,
        owner: this.opts.owner,
        group: this.opts.group,
      });
      if (chosen.length === 0) {
        if (!repairOnly) out.push({ ...base, ok: true, reloaded: true });
        continue;
      }
      const objects = chosen.map((c) => objectFor(c.file, self.scope));
      // A service that mounts these already is not updated: only verified (or, repairing, left alone).
      const changes =
        withMounts(
          service.Spec,
          chosen.map((c, i) => ({ ...c.mount, object: objects[i]!.name, id: '' })),
          own,
        ) !== undefined;
      if (repairOnly && !changes && !inUpdate(service)) continue;
      const problem = changes
        ? await updateProblem(
            docker,
            service,
            chosen.map((c) => c.mount),
            own,
            nodes,
          )
        : undefined;
      if (problem) {
        out.push({ ...base, problem: 'reload', error: `service ${name} not updated: ${problem}` });
        continue;
      }
      const ids = await Promise.all(objects.map(ensure));
      const failed = ids.find((e) => 'error' in e);
      if (failed && 'error' in failed) {
        out.push({ ...base, problem: 'reload', error: `service ${name} not updated: ${failed.error}` });
        continue;
      }
      const mounts = chosen.map((c, i) => ({
        ...c.mount,
        object: objects[i]!.name,
        id: (ids[i] as { id: string }).id,
        file: c.file,
      }));
      out.push({ service, name, certs: base.certs, mounts, own });
    }
    return out;
  }

  /** Updates one service to its mounts (unless it has them), waits for Swarm's rollout, verifies every task. */
  private async rollOut(
    docker: Docker,
    self: Self,
    p: Plan,
    certs: ServedCert[],
    signal?: AbortSignal,
  ): Promise<DeployResult[]> {
    const { log } = this.opts;
    const notDeployed = (problem: 'reload' | 'broken', error: string): DeployResult[] => {
      log.error({ step: 'reload', service: p.name, problem, error }, 'service not deployed');
      return [{ container: p.name, certs: p.certs, ok: false, reloaded: false, serves: null, problem, error }];
    };
    try {
      let current = await inspectService(docker, p.service.ID);
      // An update in progress (docker stack deploy, or one a stopped mailcerts began) ends first:
      // one update never overtakes another, and ours is then told apart by its start time.
      const waited = inUpdate(current);
      if (waited) {
        const other = await waitForUpdate(docker, p.service.ID, undefined, signal);
        if (signal?.aborted) return [];
        // Not over (stuck, paused): no update of ours on top of it.
        if (other.end === 'unfinished') return notDeployed('reload', `service ${p.name} not updated: ${other.why}`);
        current = await inspectService(docker, p.service.ID);
      }
      const own = new Set([...p.own, ...p.mounts.map((m) => m.id)]);
      const spec = withMounts(current.Spec, p.mounts, own);
      if (spec && waited) {
        // The spec changed while it was waited for: checked again, as at planning.
        const problem = await updateProblem(docker, current, p.mounts, own, await listNodes(docker));
        if (problem) return notDeployed('reload', `service ${p.name} not updated: ${problem}`);
      }
      const begun = spec ? { before: current.UpdateStatus?.StartedAt } : undefined;
      if (spec) {
        await this.stillLeading(docker);
        log.info(
          { step: 'reload', service: p.name, objects: new Set(p.mounts.map((m) => m.object)).size },
          'updating the service to the new secrets and configs',
        );
        await updateService(docker, current, spec);
      }
      const done = await waitForUpdate(docker, p.service.ID, begun, signal);
      if (signal?.aborted) return []; // stopping: the next start looks again
      if (done.end !== 'completed') return notDeployed(done.end === 'rolled back' ? 'broken' : 'reload', done.why);
      if (spec)
        log.info({ step: 'reload', service: p.name }, 'service updated: every task runs the new secrets and configs');
      // Verified as the service is now (an update waited for may have scaled it or changed its labels).
      return await this.verifyTasks(
        docker,
        self,
        { ...p, service: await inspectService(docker, p.service.ID) },
        certs,
        signal,
      );
    } catch (err) {
      if (signal?.aborted) return [];
      return notDeployed('reload', `service ${p.name}: ${errorMessage(err)}`);
    }
  }

  /** Checks what each running task of a service serves, at its address on a network mailcerts shares. */
  private async verifyTasks(
    docker: Docker,
    self: Self,
    p: Plan,
    certs: ServedCert[],
    signal?: AbortSignal,
  ): Promise<DeployResult[]> {
    const { log } = this.opts;
    const wanted = expectationsFor({ labels: p.service.Spec.Labels ?? {} }, certs);
    const checkable = wanted.filter((x): x is Expectation => x.leaf !== undefined);
    const targets = new Set(p.mounts.map((m) => `${m.object}@${m.target}`));
    const refsOfTask = (task: TaskView) => [
      ...(task.Spec?.ContainerSpec?.Secrets ?? []).map((r) => `${r.SecretName}@${r.File?.Name}`),
      ...(task.Spec?.ContainerSpec?.Configs ?? []).map((r) => `${r.ConfigName}@${r.File?.Name}`),
    ];
    const tasks = await runningTasks(
      docker,
      p.service,
      (t) => [...targets].every((x) => refsOfTask(t).includes(x)),
      signal,
    );
    const nodes = new Map((await listNodes(docker)).map((n) => [n.ID, n]));
    const replicas = p.service.Spec.Mode?.Replicated?.Replicas;
    const missing: DeployResult[] =
      replicas !== undefined && tasks.length < replicas
        ? [
            {
              container: `${p.name} (missing tasks)`,
              certs: p.certs,
              ok: false,
              reloaded: false,
              serves: null,
              problem: 'reload',
              error: `only ${tasks.length} of its ${replicas} tasks run with the published files after a minute; see docker service ps ${p.name}`,
            },
          ]
        : [];
    if (missing.length > 0)
      log.error({ step: 'verify', container: p.name, error: missing[0]!.error }, 'tasks missing after the update');
    return [
      ...missing,
      ...(await Promise.all(
        tasks.map(async (task): Promise<DeployResult> => {
          const node = nodes.get(task.NodeID ?? '');
          const name = `${p.name}.${task.Slot ?? task.ID.slice(0, 12)} on ${node?.Description?.Hostname ?? task.NodeID}`;
          const base = { container: name, certs: p.certs, reloaded: true };
          const refs = refsOfTask(task);
          if ([...targets].some((t) => !refs.includes(t))) {
            log.error(
              { step: 'verify', container: name },
              'task still runs with older secrets and configs after the update',
            );
            return {
              ...base,
              ok: false,
              serves: false,
              problem: 'stale',
              error: 'still runs with older secrets and configs after the update',
            };
          }
          const view = taskView(task, name, p.service.Spec.Labels ?? {});
          const endpoints = await endpointsFor(asTarget(view), {
            verifyHosts: this.opts.verifyHosts,
            reach: () => reachTask(view, node, self.container),
            listening: () => Promise.resolve(undefined),
          });
          if ('skip' in endpoints) {
            log.info({ step: 'verify', container: name, reason: endpoints.skip }, 'not verified');
            return { ...base, ok: true, serves: null };
          }
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
            view.labels['mailcerts.verify'] === undefined
              ? await answering(endpoints.list, monotonicMs() + 30_000, signal)
              : endpoints.list;
          if (list.length === 0) {
            const error = `none of the default ports ${endpoints.list.map((e) => e.port).join(', ')} answers, so not verified (not the certificate's fault); set mailcerts.verify`;
            log.error({ step: 'verify', container: name, problem: 'unreachable', error }, 'task not verified');
            return { ...base, ok: false, serves: null, problem: 'unreachable', error };
          }
          if (checkable.length === 0) return { ...base, ok: true, serves: null };
          const outcome = await verifyServed(list, checkable, {
            waits: QUICK_RETRIES,
            log,
            container: name,
            deadline: monotonicMs() + VERIFY_BUDGET_MS,
            signal,
          });
          const r = resultOf(base, outcome, 'after the update');
          if (r.ok)
            log.info(
              { step: 'verify', container: name, endpoints: list.map((e) => `${e.protocol}://${e.host}:${e.port}`) },
              'task serves the published certificate',
            );
          else
            log.error(
              { step: 'verify', container: name, problem: r.problem, error: r.error },
              'task not serving the published certificate',
            );
          return r;
        }),
      )),
    ];
  }

  /**
   * Removes mailcerts' objects of this scope that no service uses, keeping in each group the
   * version now deployed and the one before it (what a rollback needs).
   */
  private async prune(docker: Docker, self: Self, plans: Plan[]): Promise<void> {
    const { log } = this.opts;
    const current = new Set(plans.flatMap((p) => p.mounts.map((m) => `${m.kind}/${m.object}`)));
    const services = await listServices(docker, []);
    // In use: by a service's spec, or by the spec it would roll back to (docker service rollback).
    const used = new Set(
      services.flatMap((s) =>
        [...refsOf(s.Spec), ...(s.PreviousSpec ? refsOf(s.PreviousSpec) : [])].map(
          (r) => r.SecretID ?? r.ConfigID ?? '',
        ),
      ),
    );
    for (const kind of ['secret', 'config'] as const) {
      // The lease's config is not a version of anything: it stays.
      const objects = (await listObjects(docker, kind, [`${MANAGED_LABEL}=${self.scope}`])).filter(
        (o) => !(LEASE_HOLDER_LABEL in (o.Spec.Labels ?? {})),
      );
      const byGroup = new Map<string, ObjectView[]>();
      for (const o of objects) {
        const g = groupOf(o.Spec.Labels ?? {}) ?? '';
        byGroup.set(g, [...(byGroup.get(g) ?? []), o]);
      }
      for (const list of byGroup.values()) {
        const version = (o: ObjectView) => versionOf(o.Spec.Labels ?? {}) ?? o.Spec.Name;
        const versions = [
          ...new Set(list.sort((x, y) => (y.CreatedAt ?? '').localeCompare(x.CreatedAt ?? '')).map(version)),
        ];
        const keepVersions = new Set<string>();
        const currentVersion = versions.find((v) =>
          list.some((o) => version(o) === v && current.has(`${kind}/${o.Spec.Name}`)),
        );
        if (currentVersion) keepVersions.add(currentVersion);
        const previous = versions.find((v) => v !== currentVersion);
        if (previous) keepVersions.add(previous);
        for (const o of list) {
          if (keepVersions.has(version(o)) || used.has(o.ID) || current.has(`${kind}/${o.Spec.Name}`)) continue;
          await this.stillLeading(docker);
          await removeObject(docker, kind, o.ID);
          log.info({ step: 'reload', [kind]: o.Spec.Name }, `removed the ${kind} of an old version`);
        }
      }
    }
  }
}

/**
 * The running tasks of a service, once as many run with the new files (`fresh`) as it asks for (a
 * task that Swarm is still starting, after a rollback or a restart, is waited for, up to a
 * minute): then those; otherwise whatever runs, older ones included, to be reported.
 */
async function runningTasks(
  docker: Docker,
  service: ServiceView,
  fresh: (t: TaskView) => boolean,
  signal?: AbortSignal,
): Promise<TaskView[]> {
  const wanted = service.Spec.Mode?.Replicated?.Replicas;
  const until = monotonicMs() + 60_000;
  for (;;) {
    const tasks = await tasksRunning(docker, service.ID);
    const ready = tasks.filter(fresh);
    if (wanted !== undefined && ready.length >= wanted) return ready;
    if (wanted === undefined || monotonicMs() > until || signal?.aborted) return tasks;
    await sleep(POLL_MS, signal);
  }
}

const tasksRunning = async (docker: Docker, serviceId: string) =>
  (await listTasks(docker, serviceId)).filter((t) => t.DesiredState === 'running' && t.Status?.State === 'running');

/** Why an update of this service to these mounts must not be made: a target taken, or replaced tasks that could not start. */
async function updateProblem(
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

const inUpdate = (s: ServiceView) =>
  s.UpdateStatus?.State === 'updating' || s.UpdateStatus?.State === 'rollback_started';

/** Makes the object unless it exists (its id either way); one that exists with other content, or not made by mailcerts, is refused. */
async function ensureObject(docker: Docker, o: SwarmObject): Promise<string> {
  const [existing] = (await listObjectsNamed(docker, o.kind, o.name)).filter((e) => e.Spec.Name === o.name);
  if (existing) {
    if (!sameObject({ labels: existing.Spec.Labels ?? {} }, o))
      throw new Error(
        `a ${o.kind} named ${o.name} exists and was not made by mailcerts for this content; remove it (docker ${o.kind} rm ${o.name})`,
      );
    return existing.ID;
  }
  return (await createObject(docker, o.kind, o.name, o.data, o.labels)).ID;
}

/** The ids of mailcerts' own objects in this scope: the references a service update may replace. */
async function ownIds(docker: Docker, scope: string): Promise<Set<string>> {
  const [secrets, configs] = await Promise.all([
    listObjects(docker, 'secret', [`${MANAGED_LABEL}=${scope}`]),
    listObjects(docker, 'config', [`${MANAGED_LABEL}=${scope}`]),
  ]);
  return new Set([...secrets, ...configs].map((o) => o.ID));
}

const refsOf = (spec: ServiceSpec): FileRef[] => [
  ...(spec.TaskTemplate?.ContainerSpec?.Secrets ?? []),
  ...(spec.TaskTemplate?.ContainerSpec?.Configs ?? []),
];

/** A reference of the service's own (not mailcerts') whose target is one mailcerts would mount. */
export function collisionIn(
  service: ServiceView,
  mounts: Pick<Mount, 'target'>[],
  own: Set<string>,
): string | undefined {
  const ours = new Set(mounts.map((m) => m.target));
  for (const r of refsOf(service.Spec)) {
    if (own.has(r.SecretID ?? r.ConfigID ?? '')) continue;
    if (r.File?.Name && ours.has(r.File.Name)) {
      return `its ${r.SecretName ? `secret ${r.SecretName}` : `config ${r.ConfigName}`} is mounted at ${r.File.Name}, where mailcerts would mount a certificate file; set ${SECRET_TARGET_LABEL} to another directory, or remove that ${r.SecretName ? 'secret' : 'config'} from the service`;
    }
  }
  return undefined;
}

/**
 * The service's spec with mailcerts' references at the targets of `mounts` replaced (the service's
 * own references kept, and mailcerts' at other targets too: a certificate whose files could not be
 * read this time keeps the ones it had), and an update policy that rolls back on failure;
 * undefined when it mounts exactly these already.
 */
export function withMounts(spec: ServiceSpec, mounts: Mount[], own: Set<string>): ServiceSpec | undefined {
  const cs = spec.TaskTemplate?.ContainerSpec ?? {};
  const targets = new Set(mounts.map((m) => m.target));
  const isOurs = (r: FileRef) => own.has(r.SecretID ?? r.ConfigID ?? '');
  const replaced = (r: FileRef) => isOurs(r) && targets.has(r.File?.Name ?? '');
  const ref = (m: Mount) => ({
    File: { Name: m.target, UID: m.uid, GID: m.gid, Mode: m.mode },
    ...(m.kind === 'secret' ? { SecretID: m.id, SecretName: m.object } : { ConfigID: m.id, ConfigName: m.object }),
  });
  const key = (r: FileRef) =>
    `${r.SecretName ?? r.ConfigName}@${r.File?.Name}:${r.File?.Mode}:${r.File?.UID}:${r.File?.GID}`;
  const now = [...(cs.Secrets ?? []), ...(cs.Configs ?? [])].filter(replaced).map(key).sort();
  const next = mounts.map(ref).map(key).sort();
  if (now.length === next.length && now.every((k, i) => k === next[i])) return undefined;
  const secrets = [
    ...(cs.Secrets ?? []).filter((r) => !replaced(r)),
    ...mounts.filter((m) => m.kind === 'secret').map(ref),
  ];
  const configs = [
    ...(cs.Configs ?? []).filter((r) => !replaced(r)),
    ...mounts.filter((m) => m.kind === 'config').map(ref),
  ];
  const first = ![...(cs.Secrets ?? []), ...(cs.Configs ?? [])].some(isOurs);
  return {
    ...spec,
    TaskTemplate: { ...spec.TaskTemplate, ContainerSpec: { ...cs, Secrets: secrets, Configs: configs } },
    // Swarm's own defaults where the service sets none (without them the API replaces every task
    // at once). A task that fails with the new files (health check, exit) makes Swarm put the old
    // ones back; the first shipment has nothing to go back to (the tasks had no certificate, and
    // may have been failing for want of one): it rolls forward.
    UpdateConfig: {
      Parallelism: 1,
      Order: 'stop-first',
      Monitor: 5_000_000_000,
      ...spec.UpdateConfig,
      FailureAction: first ? 'continue' : 'rollback',
    },
  };
}

/** How a Swarm update ended, as far as mailcerts is concerned. */
type UpdateEnd = { end: 'completed' } | { end: 'rolled back' | 'unfinished'; why: string };

/**
 * Waits until Swarm has finished the update that mailcerts began (`begun`: the update status as it
 * was before, so that an older status is not taken for ours), or any update in progress (one that
 * a mailcerts stopped in the middle left); 'completed', or what went wrong. A rollback seen to
 * happen is reported; one that was over before is no news (what the tasks serve is verified next).
 */
async function waitForUpdate(
  docker: Docker,
  id: string,
  begun: { before?: string } | undefined,
  signal?: AbortSignal,
): Promise<UpdateEnd> {
  const deadline = monotonicMs() + UPDATE_BUDGET_MS;
  // Swarm clears the update status when it takes a new spec, and sets it once its updater starts.
  // A status that never comes (a spec whose tasks need no replacing) is taken as done after this;
  // the tasks' files are checked next all the same.
  const noStatusUntil = monotonicMs() + 30_000;
  let watched = begun !== undefined;
  for (;;) {
    const s = await inspectService(docker, id);
    const u = s.UpdateStatus;
    const ours =
      !begun ||
      (u?.StartedAt !== undefined && u.StartedAt !== begun.before) ||
      (u === undefined && monotonicMs() > noStatusUntil);
    const state = ours ? u?.State : 'updating';
    if (state === 'paused' || state === 'rollback_paused') {
      return {
        end: 'unfinished',
        why: `the update of ${s.Spec.Name} is paused (${u?.Message ?? state}); resume or roll it back with docker service update --rollback ${s.Spec.Name}`,
      };
    }
    if (state !== 'updating' && state !== 'rollback_started') {
      if (!watched || state !== 'rollback_completed') return { end: 'completed' };
      return {
        end: 'rolled back',
        why: `Swarm rolled the update of ${s.Spec.Name} back: ${u?.Message ?? 'a new task failed'}; the old certificate files are in place again`,
      };
    }
    watched = true;
    if (monotonicMs() > deadline)
      return {
        end: 'unfinished',
        why: `the update of ${s.Spec.Name} did not finish within ${UPDATE_BUDGET_MS / 60_000} minutes (state ${state}); see docker service ps ${s.Spec.Name}`,
      };
    if (!(await sleep(POLL_MS, signal))) return { end: 'unfinished', why: 'stopped before the update finished' };
  }
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
  for (;;) {
    const open = await answeringNow(list);
    if (open.length > 0 || monotonicMs() > deadline || !(await sleep(POLL_MS, signal))) return open;
  }
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
