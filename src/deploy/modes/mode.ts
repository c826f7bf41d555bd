import type { ModeDefinition } from '../../config/parts.js';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import type { Deployer } from '../deployer.js';

/**
 * Everything mailcerts knows of one deploy mode (DEPLOY_MODE), in its own folder: how a published
 * set reaches the servers and how it is verified there (its Deployer), its own variables and their
 * checks, and what the rest of a pass must do for it. Adding a mode is one folder and one line in
 * modes/index.ts. Each mode's index.ts imports only zod, util/, config/fields.ts and types; the
 * deployer itself loads only when a pass needs it.
 */
export interface DeployMode extends ModeDefinition {
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
