import type Docker from 'dockerode';
import type { Logger } from '../../log.js';
import { errorMessage } from '../../util/errors.js';
import { inspectService, inspectTask, listServices, updateService } from './api.js';

/**
 * Only one mailcerts issues at a time. The one that does holds a lease: two labels on its own
 * service (who, and when it last renewed), renewed every third of SWARM_LEASE. Service labels live
 * in Swarm's Raft store, and an update names the version it read, so two replicas that try at
 * once cannot both win. Changing a service's own labels does not restart its tasks.
 * A lease counts until the time it names (renewal + the holder's SWARM_LEASE) while its holder's
 * task still runs: a holder that was killed is replaced at once, one that hangs after SWARM_LEASE.
 */
export const LEASE_HOLDER_LABEL = 'mailcerts.lease.holder';
export const LEASE_RENEWED_LABEL = 'mailcerts.lease.renewed';
/** Until when it holds, by the holder's own SWARM_LEASE. */
export const LEASE_UNTIL_LABEL = 'mailcerts.lease.until';
/** No lease is believed to last longer than the longest SWARM_LEASE (a label someone wrote by hand). */
const LONGEST_MS = 3_600_000 + 60_000;

export interface LeaseHolder {
  acquire(docker: Docker, signal?: AbortSignal): Promise<{ leader: true } | { leader: false; why: string }>;
}

export function holdLease(o: { serviceId?: string; holder: string; leaseMs: number; log: Logger }): LeaseHolder {
  let timer: NodeJS.Timeout | undefined;
  let held = false;

  const fresh = (labels: Record<string, string>, now: number) => {
    const until = Date.parse(labels[LEASE_UNTIL_LABEL] ?? '');
    return Number.isFinite(until) && until > now && until - now <= LONGEST_MS;
  };
  /** A holder that is a task which no longer runs holds nothing. */
  const alive = async (docker: Docker, holder: string) => {
    if (!/^[a-z0-9]{25}$/.test(holder)) return true; // not a task id: only its age counts
    const t = await inspectTask(docker, holder).catch(() => undefined);
    return t !== undefined && t.DesiredState === 'running' && ['new', 'pending', 'assigned', 'accepted', 'preparing', 'starting', 'running'].includes(t.Status?.State ?? '');
  };

  const renew = async (docker: Docker): Promise<{ leader: true } | { leader: false; why: string }> => {
    const now = Date.now();
    for (const s of await listServices(docker, [LEASE_HOLDER_LABEL])) {
      const labels = s.Spec.Labels ?? {};
      const holder = labels[LEASE_HOLDER_LABEL]!;
      if (holder === o.holder || !fresh(labels, now) || !(await alive(docker, holder))) continue;
      const until = labels[LEASE_UNTIL_LABEL];
      const where = s.ID === o.serviceId ? 'another replica of this service' : `the mailcerts of service ${s.Spec.Name}`;
      return { leader: false, why: `${where} (task ${holder}) holds the lease until ${until} unless it renews it; this one stays passive` };
    }
    if (!o.serviceId) return { leader: true }; // outside a Swarm task (a command run by hand): nothing to hold
    for (let attempt = 0; ; attempt++) {
      const own = await inspectService(docker, o.serviceId);
      const at = Date.now();
      const labels = { ...own.Spec.Labels, [LEASE_HOLDER_LABEL]: o.holder, [LEASE_RENEWED_LABEL]: new Date(at).toISOString(), [LEASE_UNTIL_LABEL]: new Date(at + o.leaseMs).toISOString() };
      try {
        await updateService(docker, own, { ...own.Spec, Labels: labels });
        return { leader: true };
      } catch (err) {
        // Out of sequence: someone updated the service in between; read it again once.
        if (attempt > 0) return { leader: false, why: `could not take the lease on its service: ${errorMessage(err)}` };
      }
    }
  };

  return {
    async acquire(docker, signal) {
      const r = await renew(docker);
      if (r.leader && !held) o.log.info({ step: 'lease', holder: o.holder }, 'holds the lease: this mailcerts issues and deploys');
      if (!r.leader && held) o.log.warn({ step: 'lease', why: r.why }, 'lost the lease');
      held = r.leader;
      if (held && !timer && o.serviceId) {
        timer = setInterval(() => {
          if (signal?.aborted) return;
          renew(docker).then(
            (again) => {
              if (!again.leader && held) o.log.warn({ step: 'lease', why: again.why }, 'lost the lease');
              held = again.leader;
            },
            (err: unknown) => o.log.warn({ step: 'lease', error: errorMessage(err) }, 'could not renew the lease; tried again'),
          );
        }, Math.max(1_000, Math.floor(o.leaseMs / 3)));
        timer.unref();
      }
      return r;
    },
  };
}
