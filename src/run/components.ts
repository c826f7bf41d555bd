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
  return { issuer: new AcmeIssuer(config, log, dns), deployer: lazyDockerDeployer(config, log), dns };
}

function lazyDockerDeployer(config: Config, log: Logger): Deployer {
  let real: Promise<Deployer> | undefined;
  const load = () =>
    (real ??= import('../deploy/deployer.js').then(
      ({ DockerDeployer }) => new DockerDeployer({ scope: config.docker.scope, verifyHosts: config.docker.verifyHosts, inContainer: runsInContainer(), log }),
    ));
  return {
    deploy: async (certs, signal) => (await load()).deploy(certs, signal),
    prepare: () => {
      if (config.docker.reload) load().catch(() => undefined); // a failure shows again at deploy
    },
  };
}
