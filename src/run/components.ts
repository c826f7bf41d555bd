import type { Config } from '../config/schema.js';
import type { Deployer } from '../deploy/deployer.js';
import type { Logger } from '../log.js';
import { DnsProviders } from '../dns/providers/index.js';
import { AcmeIssuer } from '../obtain/issuer.js';
import { runsInContainer } from '../util/container.js';
import type { Components } from './engine.js';

/**
 * The composition root: the CA and Docker behind the engine's two interfaces. dockerode, like
 * acme-client and the cloudflare SDK, loads only when a pass needs it.
 */
export function defaultComponents(config: Config, log: Logger): Components {
  const dns = new DnsProviders(config.dns.providers, log); // one set of providers for DNS-01 and DANE
  return { issuer: new AcmeIssuer(config, log, dns), deployer: lazyDeployer(config, log), dns };
}

/** DEPLOY_MODE=swarm's deployer, for a pass and for mailcerts stack-file. */
export async function swarmDeployer(config: Config, log: Logger) {
  const { SwarmDeployer } = await import('../deploy/swarm/deployer.js');
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

function lazyDeployer(config: Config, log: Logger): Deployer {
  let real: Promise<Deployer> | undefined;
  const { scope, verifyHosts, mode } = config.docker;
  const load = () =>
    (real ??=
      mode === 'swarm'
        ? swarmDeployer(config, log)
        : import('../deploy/deployer.js').then(
            ({ DockerDeployer }) => new DockerDeployer({ scope, verifyHosts, inContainer: runsInContainer(), log }),
          ));
  return {
    deploy: async (certs, signal, sni, repairOnly) => (await load()).deploy(certs, signal, sni, repairOnly),
    prepare: () => {
      if (config.docker.reload) load().catch(() => undefined); // a failure shows again at deploy
    },
    // Swarm: only the holder of the lease issues and deploys.
    ...(mode === 'swarm'
      ? {
          lead: async (signal?: AbortSignal) => {
            const d: Deployer = await load();
            return d.lead ? d.lead(signal) : { leader: true as const };
          },
        }
      : {}),
  };
}
