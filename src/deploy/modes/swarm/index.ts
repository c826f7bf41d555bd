import type { Config } from '../../../config/schema.js';
import { duration } from '../../../config/fields.js';
import type { Logger } from '../../../log.js';
import * as z from 'zod/mini';
import type { DeployMode } from '../mode.js';

declare module '../../../config/types.js' {
  interface DockerConfig {
    /** Swarm: how long the lease on the issuing role lasts without being renewed. */
    leaseMs: number;
  }
}

async function swarmDeployer(config: Config, log: Logger) {
  const { SwarmDeployer } = await import('./deployer.js');
  const { scope, verifyHosts, leaseMs } = config.docker;
  return new SwarmDeployer({
    scope,
    verifyHosts,
    keyMode: config.files.keyMode,
    owner: config.files.owner,
    group: config.files.group,
    leaseMs,
    names: config.certificates.flatMap((c) => c.domains),
    log,
  });
}

/**
 * DEPLOY_MODE=swarm: each published version becomes Swarm secrets and configs, the labelled
 * services are updated to them and every task is probed; one mailcerts of several holds the lease.
 */
export const swarm: DeployMode = {
  name: 'swarm',
  summary: 'Swarm secrets and configs, services updated',
  env: {
    /**
     * Swarm only: how long the lease on the issuing role lasts unless renewed.
     * @group deploy
     * @default 2m
     */
    SWARM_LEASE: z._default(duration(10_000, 3_600_000, '2m'), 120_000),
  },
  settings: (env) => ({ leaseMs: env.SWARM_LEASE as number }),
  check(env, { inContainer }, problems) {
    if (!env.DOCKER_RELOAD)
      problems.push(
        'DEPLOY_MODE: swarm ships the certificates by updating the labelled services, which DOCKER_RELOAD=false forbids; drop DOCKER_RELOAD=false, or use DEPLOY_MODE=volume',
      );
    if (!env.DOCKER_SCOPE && !inContainer)
      problems.push(
        'DOCKER_SCOPE: mailcerts does not run in a Swarm task, so it cannot tell which stack is its own; set DOCKER_SCOPE to the stack name (docker stack ls), or * for every labelled service',
      );
  },
  shipsFiles: true,
  repairs: true,
  leads: true,
  create: swarmDeployer,
  stackFile: async (config, log, composeVersion) => (await swarmDeployer(config, log)).stackFile(composeVersion),
};
