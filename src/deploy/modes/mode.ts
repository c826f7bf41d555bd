import type * as z from 'zod/mini';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import type { Deployer } from '../deployer.js';

/**
 * Everything mailcerts knows of one deploy mode (DEPLOY_MODE), in its own folder: how a published
 * set reaches the servers and how it is verified there (its Deployer), its own variables and their
 * checks, and what the rest of a pass must do for it. Adding a mode is one folder and one line in
 * modes/index.ts. This file and each mode's index.ts are read by the configuration: they import
 * only zod, util/, config/fields.ts and types; the deployer itself loads only when a pass needs it.
 */
export interface DeployMode {
  /** Its DEPLOY_MODE value. */
  name: string;
  /** What it does, for DEPLOY_MODE's error: "a shared volume, containers reloaded through the Docker API". */
  summary: string;
  /** Its own environment variables, merged into the configuration's schema. */
  env?: Record<string, z.ZodMiniType>;
  /** Its settings from the parsed environment, merged into config.docker (declared there by augmenting DockerConfig). */
  settings?(env: Record<string, unknown>): Record<string, unknown>;
  /** What is missing or contradictory in the environment when this mode is chosen. */
  check?(env: Record<string, unknown>, where: { inContainer: boolean }, problems: string[]): void;
  /** The published files travel with the deploy (Swarm secrets and configs); otherwise the servers read CERTS_DIR. */
  shipsFiles: boolean;
  /** Every pass gives back what a target lost, even when nothing new was published. */
  repairs: boolean;
  /** Only the holder of a lease issues and deploys (several mailcerts, one of them active). */
  leads: boolean;
  /** Its deployer; the code (and dockerode) loads here. */
  create(config: Config, log: Logger): Promise<Deployer>;
  /** `mailcerts stack-file`: a compose file naming what each service mounts now; absent: the mode has none. */
  stackFile?(config: Config, log: Logger, composeVersion?: string): Promise<string>;
}
