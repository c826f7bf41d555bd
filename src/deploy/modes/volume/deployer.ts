import type Docker from 'dockerode';
import type { Logger } from '../../../log.js';
import { monotonicMs } from '../../../util/clock.js';
import { errorMessage } from '../../../util/errors.js';
import {
  type ContainerEndpoints,
  type DeployReport,
  type DeployResult,
  type Deployer,
  endpointsFor,
  expectationsFor,
  NOTHING_TO_CHECK,
  resultOf,
  type ServedCert,
  unverifiedResult,
  VERIFY_BUDGET_MS,
  type Wanted,
} from '../../deployer.js';
import { connectDocker, execIn, pingDocker, restartContainer } from '../../docker.js';
import { ESCALATE_LABEL, LISTENING_COMMAND, LISTENING_MAX_OUTPUT } from '../../kinds/index.js';
import { addressOf, discoverTargets, resolveScope, type Scope } from '../../scope.js';
import type { ReloadTarget } from '../../targets.js';
import { AFTER_RESTART_RETRIES, type Expectation, listeningPorts, QUICK_RETRIES, verifyServed } from '../../verify.js';
import { reloadTarget } from './reload.js';

export interface DockerDeployerOptions {
  scope?: string;
  verifyHosts: string[] | '*';
  inContainer: boolean;
  log: Logger;
}

/** Reloads and verifies the labelled containers in scope through the Docker API. */
export class DockerDeployer implements Deployer {
  private readonly opts: DockerDeployerOptions;
  private scope: Scope | undefined;
  private warnedWide = false;

  constructor(opts: DockerDeployerOptions) {
    this.opts = opts;
  }

  async deploy(certs: ServedCert[], signal?: AbortSignal): Promise<DeployReport> {
    const { log } = this.opts;
    let docker: Docker;
    let targets: ReloadTarget[];
    try {
      docker = connectDocker();
      await pingDocker(docker);
      this.scope ??= await resolveScope(docker, this.opts.scope, this.opts.inContainer);
      if (this.scope.project === '*' && !this.warnedWide) {
        this.warnedWide = true;
        log.warn(
          { step: 'reload', scope: '*' },
          'DOCKER_SCOPE=*: every labelled container on this host is trusted, whatever compose project it belongs to',
        );
      }
      targets = await discoverTargets(docker, this.scope);
    } catch (err) {
      const all = certs.map((c) => c.name);
      return {
        results: [
          {
            container: '(docker)',
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
    const scope = this.scope;
    if (targets.length === 0)
      log.warn(
        { step: 'reload', scope: scope.project },
        `no running container in scope carries the label mailcerts.reload; nothing to reload`,
      );
    // Containers are reloaded and verified side by side; each one's own steps stay in order.
    const results = await Promise.all(targets.map((t) => this.deployTarget(docker, t, scope, certs, signal)));
    return { results: results.filter((r): r is DeployResult => r !== undefined), complete: !signal?.aborted };
  }

  /** Validate and reload one container, then check what it serves; undefined when stopped first. */
  private async deployTarget(
    docker: Docker,
    t: ReloadTarget,
    scope: Scope,
    certs: ServedCert[],
    signal?: AbortSignal,
  ): Promise<DeployResult | undefined> {
    const { log } = this.opts;
    if (signal?.aborted) return undefined;
    const served = expectationsFor(t, certs);
    const base = { container: t.name, certs: [...new Set(served.map((x) => x.cert))] };
    // Which endpoints to probe does not depend on the reload: found while it runs.
    const endpoints = this.endpointsOf(docker, t, scope, signal);
    endpoints.catch(() => undefined);
    const reloadError = await reloadTarget(docker, t, log, signal);
    let r: DeployResult;
    if (reloadError) {
      r = {
        ...base,
        ok: false,
        reloaded: false,
        serves: null,
        problem: 'error' in t.action || reloadError.startsWith('label ') ? 'label' : 'reload',
        error: reloadError,
      };
    } else {
      log.info({ step: 'reload', container: t.name }, 'container reloaded');
      r = await this.verifyTarget(docker, t, await endpoints, served, signal).catch(
        (err: unknown): DeployResult => ({
          ...base,
          ok: false,
          reloaded: true,
          serves: null,
          problem: 'reload',
          error: `verification failed: ${errorMessage(err)}`,
        }),
      );
    }
    if (!r.ok)
      log.error(
        {
          step: r.problem === 'broken' ? 'verify' : 'reload',
          container: r.container,
          problem: r.problem,
          error: r.error,
        },
        r.problem === 'broken' ? 'TLS broken with the published certificate' : 'container not deployed',
      );
    return r;
  }

  /** Checks what a reloaded container serves; restarts it once when it still serves an old certificate. */
  private async verifyTarget(
    docker: Docker,
    t: ReloadTarget,
    endpoints: ContainerEndpoints,
    expected: Wanted[],
    signal?: AbortSignal,
  ): Promise<DeployResult> {
    const { log } = this.opts;
    const base = { container: t.name, certs: [...new Set(expected.map((x) => x.cert))], reloaded: true };
    if ('skip' in endpoints) return unverifiedResult(base, endpoints.skip, log);
    if ('problem' in endpoints)
      return { ...base, ok: false, serves: null, problem: endpoints.problem, error: endpoints.error };
    const checkable = expected.filter((x): x is Expectation => x.leaf !== undefined);
    if (checkable.length === 0) return unverifiedResult(base, NOTHING_TO_CHECK, log);
    const deadline = monotonicMs() + VERIFY_BUDGET_MS;
    const check = (waits: number[]) =>
      verifyServed(endpoints.list, checkable, { waits, log, container: t.name, deadline, signal });
    let outcome = await check(QUICK_RETRIES);
    let escalated = false;
    if (
      !outcome.ok &&
      outcome.kind === 'stale' &&
      (t.labels[ESCALATE_LABEL] ?? 'restart') === 'restart' &&
      !signal?.aborted
    ) {
      log.warn(
        { step: 'verify', container: t.name, problem: outcome.detail },
        'still serving an old certificate after reload: restarting the container',
      );
      await restartContainer(docker, t.id);
      escalated = true;
      outcome = await check(AFTER_RESTART_RETRIES);
    }
    return resultOf(base, outcome, escalated ? 'after reload and restart' : 'after reload');
  }

  /** The endpoints to check on a container, a reason to skip it, or a problem with its labels. */
  private endpointsOf(
    docker: Docker,
    t: ReloadTarget,
    scope: Scope,
    signal?: AbortSignal,
  ): Promise<ContainerEndpoints> {
    return endpointsFor(t, {
      verifyHosts: this.opts.verifyHosts,
      reach: () => addressOf(t, scope.self),
      // Read even when cat fails on one of the two (a kernel without IPv6 has no tcp6).
      listening: async () => {
        const proc = await execIn(docker, t.id, LISTENING_COMMAND, {
          timeoutMs: 15_000,
          signal,
          maxOutput: LISTENING_MAX_OUTPUT,
        }).catch(() => undefined);
        return proc && /local_address/.test(proc.output) ? listeningPorts(proc.output) : undefined;
      },
    });
  }
}
