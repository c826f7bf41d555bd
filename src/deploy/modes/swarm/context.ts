import type Docker from 'dockerode';
import type { Logger } from '../../../log.js';
import type { ShippedFile } from '../../../publish/shipped.js';
import type { ServiceView } from './api.js';
import type { Mount } from './objects.js';
import type { Self } from './self.js';

/** What one deploy to the swarm works with, from its first call to the last. */
export interface SwarmPass {
  docker: Docker;
  /** mailcerts' own task and the stack it serves. */
  self: Self;
  log: Logger;
  /** Before each change to the swarm: throws LeaseLost when this mailcerts no longer holds the lease. */
  stillLeading(): Promise<void>;
}

/** One labelled service and what it should mount. */
export interface ServicePlan {
  service: ServiceView;
  name: string;
  certs: string[];
  mounts: (Mount & { file: ShippedFile })[];
  /** The ids of mailcerts' objects of this scope when planned: the references it may replace. */
  own: Set<string>;
}
