import type { Config } from '../config/schema.js';
import type { Deployer } from '../deploy/deployer.js';
import { deployModeOf } from '../deploy/modes/index.js';
import type { Logger } from '../log.js';
import { DnsProviders } from '../dns/providers/index.js';
import { AcmeIssuer } from '../obtain/issuer.js';
import type { Components } from './engine.js';

/**
 * The composition root: the CA and Docker behind the engine's two interfaces. dockerode, like
 * acme-client and the cloudflare SDK, loads only when a pass needs it.
 */
export function defaultComponents(config: Config, log: Logger): Components {
  const dns = new DnsProviders(config.dns.providers, log); // one set of providers for DNS-01 and DANE
  return { issuer: new AcmeIssuer(config, log, dns), deployer: lazyDeployer(config, log), dns };
}

/** The deployer of the configured mode (deploy/modes/), made the first time a pass needs it. */
function lazyDeployer(config: Config, log: Logger): Deployer {
  const mode = deployModeOf(config);
  let real: Promise<Deployer> | undefined;
  const load = () => (real ??= mode.create(config, log));
  return {
    shipsFiles: mode.shipsFiles,
    repairs: mode.repairs,
    deploy: async (certs, signal, sni, repairOnly) => (await load()).deploy(certs, signal, sni, repairOnly),
    prepare: () => {
      if (config.docker.reload) load().catch(() => undefined); // a failure shows again at deploy
    },
    // Only the holder of the lease issues and deploys.
    ...(mode.leads
      ? {
          lead: async (signal?: AbortSignal) => {
            const d: Deployer = await load();
            return d.lead ? d.lead(signal) : { leader: true as const };
          },
        }
      : {}),
  };
}
