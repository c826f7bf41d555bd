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
/** The scope (stack) the lease is for: mailcerts of other stacks do not compete. */
export const LEASE_SCOPE_LABEL = 'mailcerts.lease.scope';
/** No lease is believed to last longer than the longest SWARM_LEASE (a label someone wrote by hand). */
const LONGEST_MS = 3_600_000 + 60_000;

export interface LeaseHolder {
  acquire(docker: Docker, signal?: AbortSignal): Promise<{ leader: true } | { leader: false; why: string }>;
}

export function holdLease(o: { serviceId?: string; holder: string; scope: string; leaseMs: number; log: Logger }): LeaseHolder {
  let timer: NodeJS.Timeout | undefined;
  let held = false;

  const fresh = (labels: Record<string, string>, now: number) => {
    const until = Date.parse(labels[LEASE_UNTIL_LABEL] ?? '');
    return Number.isFinite(until) && until > now && until - now <= LONGEST_MS;
  };
  /** A holder that is a task which no longer runs holds nothing; one that cannot be read (an API error) still holds. */
  const alive = async (docker: Docker, holder: string) => {
    if (!/^[a-z0-9]{25}$/.test(holder)) return true; // not a task id: only its age counts
    let t: Awaited<ReturnType<typeof inspectTask>>;
    try {
      t = await inspectTask(docker, holder);
    } catch (err) {
      return !/no such|404/i.test(errorMessage(err));
    }
    return t.DesiredState === 'running' && ['new', 'pending', 'assigned', 'accepted', 'preparing', 'starting', 'running'].includes(t.Status?.State ?? '');
  };
  /** Whose lease in these labels keeps this one passive, if any. */
  const heldBy = async (docker: Docker, labels: Record<string, string>, now: number) => {
    const holder = labels[LEASE_HOLDER_LABEL];
    if (!holder || holder === o.holder || labels[LEASE_SCOPE_LABEL] !== o.scope || !fresh(labels, now)) return undefined;
    return (await alive(docker, holder)) ? holder : undefined;
  };

  const renew = async (docker: Docker): Promise<{ leader: true } | { leader: false; why: string }> => {
    for (let attempt = 0; ; attempt++) {
      const now = Date.now();
      // Only a mailcerts of the same scope competes: another stack's mailcerts has its own services.
      for (const s of await listServices(docker, [LEASE_HOLDER_LABEL, `${LEASE_SCOPE_LABEL}=${o.scope}`])) {
        if (s.ID === o.serviceId) continue; // read again below, with the version to update
        const holder = await heldBy(docker, s.Spec.Labels ?? {}, now);
        if (holder) return { leader: false, why: `the mailcerts of service ${s.Spec.Name} (task ${holder}) holds the lease until ${s.Spec.Labels?.[LEASE_UNTIL_LABEL]} unless it renews it; this one stays passive` };
      }
      if (!o.serviceId) return { leader: true }; // outside a Swarm task (a command run by hand): nothing to hold
      const own = await inspectService(docker, o.serviceId);
      const holder = await heldBy(docker, own.Spec.Labels ?? {}, now);
      if (holder) return { leader: false, why: `another replica of this service (task ${holder}) holds the lease until ${own.Spec.Labels?.[LEASE_UNTIL_LABEL]} unless it renews it; this one stays passive` };
      const at = Date.now();
      const labels = {
        ...own.Spec.Labels,
        [LEASE_HOLDER_LABEL]: o.holder,
        [LEASE_SCOPE_LABEL]: o.scope,
        [LEASE_RENEWED_LABEL]: new Date(at).toISOString(),
        [LEASE_UNTIL_LABEL]: new Date(at + o.leaseMs).toISOString(),
      };
      try {
        // The version read above: if anyone changed the service since, this fails, and all is read again.
        await updateService(docker, own, { ...own.Spec, Labels: labels });
        return { leader: true };
      } catch (err) {
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
