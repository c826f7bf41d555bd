import type Docker from 'dockerode';
import type { Logger } from '../../../log.js';
import type { ShippedFile } from '../../../publish/shipped.js';
import { errorMessage } from '../../../util/errors.js';
import type { DeployReport, DeployResult, Deployer, ServedCert } from '../../deployer.js';
import { connectDocker, pingDocker } from '../../docker.js';
import { swarmInfo } from './api.js';
import type { ServicePlan, SwarmPass } from './context.js';
import { holdLease, type Lead, type LeaseHolder, LeaseLost } from './lease.js';
import { labelledServices, planServices } from './plan.js';
import { pruneOldVersions } from './prune.js';
import { rollOutService } from './rollout.js';
import { type Self, whoAmI } from './self.js';
import { ownIds } from './service-spec.js';
import { stackFile } from './stack-file.js';

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

/** The report of a deploy that could not start (no swarm, no manager, the API failed). */
const failedDeploy = (certs: ServedCert[], err: unknown): DeployReport => ({
  results: [
    {
      container: '(swarm)',
      certs: certs.map((c) => c.name),
      ok: false,
      reloaded: false,
      serves: null,
      problem: 'reload',
      error: errorMessage(err),
    },
  ],
  complete: false,
});

/**
 * DEPLOY_MODE=swarm: each published version becomes Swarm secrets and configs, the labelled
 * services of the stack are updated to them (Swarm replaces their tasks with its own update
 * policy, rolling back on failure), every task is verified, and only then are the objects of
 * versions older than the previous one removed.
 */
export class SwarmDeployer implements Deployer {
  readonly shipsFiles = true;
  readonly repairs = true;
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
    const services = await labelledServices(docker, self);
    return stackFile(
      services,
      services.length > 0 ? await ownIds(docker, self.scope) : new Set(),
      new Date(),
      self.scope,
      composeVersion,
    );
  }

  async deploy(
    certs: ServedCert[],
    signal?: AbortSignal,
    sni: ShippedFile[] = [],
    repairOnly = false,
  ): Promise<DeployReport> {
    const { log, keyMode, owner, group, verifyHosts } = this.opts;
    let pass: SwarmPass;
    let plans: (ServicePlan | DeployResult)[];
    try {
      const { docker, self } = await this.connect();
      pass = { docker, self, log, stillLeading: () => this.stillLeading(docker) };
      plans = await planServices(pass, certs, sni, repairOnly, { keyMode, owner, group });
    } catch (err) {
      return failedDeploy(certs, err);
    }
    if (plans.length === 0 && !repairOnly)
      log.warn(
        { step: 'reload', scope: pass.self.scope },
        'no service in scope carries the label mailcerts.reload; nothing to update',
      );
    const results = (
      await Promise.all(plans.map((p) => ('service' in p ? rollOutService(pass, p, certs, verifyHosts, signal) : [p])))
    ).flat();
    // A service refused at planning has its result: the report still covers the whole scope.
    const complete = !signal?.aborted;
    // Old versions go only after a deploy that updated or verified something, and all of it worked.
    const rolledOut = plans.filter((p): p is ServicePlan => 'service' in p);
    if (complete && rolledOut.length > 0 && results.every((r) => r.ok))
      await pruneOldVersions(pass, rolledOut).catch((err: unknown) =>
        log.warn(
          { step: 'reload', error: errorMessage(err) },
          'could not remove the Swarm objects of old versions; tried again after the next deploy',
        ),
      );
    return { results, complete };
  }
}
