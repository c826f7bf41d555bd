import { runsInContainer } from '../../../util/container.js';
import type { DeployMode } from '../mode.js';

/** DEPLOY_MODE=volume: the servers read CERTS_DIR from a shared volume; labelled containers are reloaded and probed. */
export const volume: DeployMode = {
  name: 'volume',
  summary: 'a shared volume, containers reloaded through the Docker API',
  check(env, { inContainer }, problems) {
    if (env.DOCKER_RELOAD && !env.DOCKER_SCOPE && !inContainer)
      problems.push(
        "DOCKER_SCOPE: mailcerts does not run in a container, so it cannot tell which compose project is its own; set DOCKER_SCOPE to the mail stack's project name (docker compose ls), DOCKER_SCOPE=* to act on every labelled container on this host, or DOCKER_RELOAD=false",
      );
  },
  shipsFiles: false,
  repairs: false,
  leads: false,
  async create(config, log) {
    const { DockerDeployer } = await import('./deployer.js');
    const { scope, verifyHosts } = config.docker;
    return new DockerDeployer({ scope, verifyHosts, inContainer: runsInContainer(), log });
  },
};
