import type { Config } from '../../config/schema.js';
import type { DeployMode } from './mode.js';
import { swarm } from './swarm/index.js';
import { volume } from './volume/index.js';

export type { DeployMode } from './mode.js';

/** Every deploy mode, the default (DEPLOY_MODE unset) first. */
export const DEPLOY_MODES: readonly DeployMode[] = [volume, swarm];

/** The configured deploy mode. */
export function deployModeOf(config: Pick<Config, 'docker'>): DeployMode {
  const mode = DEPLOY_MODES.find((m) => m.name === config.docker.mode);
  if (!mode) throw new Error(`DEPLOY_MODE=${config.docker.mode}: no such deploy mode`);
  return mode;
}
