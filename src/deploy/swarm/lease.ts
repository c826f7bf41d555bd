import type Docker from 'dockerode';
import type { Logger } from '../../log.js';
import { errorMessage } from '../../util/errors.js';
import { inspectService, inspectTask, listServices, updateService } from './api.js';

/**
 * Only one mailcerts issues for a set of names at a time. The one that does holds a lease: labels on
 * its own service (who, when it last renewed, until when, for which stack and names), renewed every
 * third of SWARM_LEASE. Service labels live in Swarm's Raft store, and an update names the version
 * it read, so two replicas of one service that try at once cannot both win; two services that do
 * (a stack deployed twice) both read the others again after writing, and the later one yields.
 * Changing a service's own labels does not restart its tasks.
 * A lease counts until the time it names while its holder's task still runs: a holder that was
 * killed is replaced at once, one whose task cannot be read when it runs out.
 * Who competes: a mailcerts of the same stack, or one for any of the same names (a second stack by
 * mistake would order the same certificates); a deliberate second stack for other names does not.
 */
export const LEASE_HOLDER_LABEL = 'mailcerts.lease.holder';
export const LEASE_RENEWED_LABEL = 'mailcerts.lease.renewed';
/** Until when it holds, by the holder's own SWARM_LEASE. */
export const LEASE_UNTIL_LABEL = 'mailcerts.lease.until';
/** The scope (stack, or *) the lease is for. */
export const LEASE_SCOPE_LABEL = 'mailcerts.lease.scope';
/** The names the holder issues for, sorted, comma-separated. */
export const LEASE_NAMES_LABEL = 'mailcerts.lease.names';
/** No lease is believed to last longer than the longest SWARM_LEASE (a label someone wrote by hand). */
const LONGEST_MS = 3_600_000 + 60_000;

export interface LeaseHolder {
  acquire(docker: Docker, signal?: AbortSignal): Promise<{ leader: true } | { leader: false; why: string }>;
}

export function holdLease(o: { serviceId?: string; holder: string; scope: string; names: string[]; leaseMs: number; log: Logger }): LeaseHolder {
  let timer: NodeJS.Timeout | undefined;
  let held = false;
  const names = [...new Set(o.names.map((n) => n.toLowerCase()))].sort();

  /** Whether a lease in these labels is one this mailcerts competes with (a lease without scope or names: an older mailcerts, it does). */
  const competes = (labels: Record<string, string>) => {
    const scope = labels[LEASE_SCOPE_LABEL];
    const theirs = labels[LEASE_NAMES_LABEL];
    if (scope === undefined || theirs === undefined || scope === o.scope || scope === '*' || o.scope === '*') return true;
    return theirs.split(',').some((n) => names.includes(n));
  };

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
    if (!holder || holder === o.holder || !competes(labels) || !fresh(labels, now)) return undefined;
    return (await alive(docker, holder)) ? holder : undefined;
  };

  const renew = async (docker: Docker): Promise<{ leader: true } | { leader: false; why: string }> => {
    for (let attempt = 0; ; attempt++) {
      const now = Date.now();
      const before = await otherHolder(docker, now);
      if (before) return { leader: false, why: before.why };
      if (!o.serviceId) return { leader: true }; // outside a Swarm task (a command run by hand): nothing to hold
      const own = await inspectService(docker, o.serviceId);
      const holder = await heldBy(docker, own.Spec.Labels ?? {}, now);
      if (holder) return { leader: false, why: `another replica of this service (task ${holder}) holds the lease until ${own.Spec.Labels?.[LEASE_UNTIL_LABEL]} unless it renews it; this one stays passive` };
      const at = Date.now();
      const labels = {
        ...own.Spec.Labels,
        [LEASE_HOLDER_LABEL]: o.holder,
        [LEASE_SCOPE_LABEL]: o.scope,
        [LEASE_NAMES_LABEL]: names.join(','),
        [LEASE_RENEWED_LABEL]: new Date(at).toISOString(),
        [LEASE_UNTIL_LABEL]: new Date(at + o.leaseMs).toISOString(),
      };
      try {
        // The version read above: if anyone changed the service since, this fails, and all is read again.
        await updateService(docker, own, { ...own.Spec, Labels: labels });
      } catch (err) {
        if (attempt > 0) return { leader: false, why: `could not take the lease on its service: ${errorMessage(err)}` };
        continue;
      }
      // Another service's mailcerts may have written its lease meanwhile: the later one yields (both
      // compare the same labels, so exactly one does), and takes its own back off.
      const rival = await otherHolder(docker, Date.now(), { renewed: labels[LEASE_RENEWED_LABEL], holder: o.holder });
      if (!rival) return { leader: true };
      try {
        const mine = await inspectService(docker, o.serviceId);
        const { [LEASE_HOLDER_LABEL]: _h, [LEASE_UNTIL_LABEL]: _u, [LEASE_RENEWED_LABEL]: _r, ...rest } = mine.Spec.Labels ?? {};
        if (mine.Spec.Labels?.[LEASE_HOLDER_LABEL] === o.holder) await updateService(docker, mine, { ...mine.Spec, Labels: rest });
      } catch (err) {
        o.log.warn({ step: 'lease', error: errorMessage(err) }, 'could not give back the lease; it runs out by itself');
      }
      return { leader: false, why: rival.why };
    }
  };

  /**
   * A live holder of a competing lease on another service; with `earlierThan`, only one that took
   * it before (an earlier renewal, or the same moment and a lower holder id).
   */
  const otherHolder = async (docker: Docker, now: number, earlierThan?: { renewed: string; holder: string }) => {
    for (const s of await listServices(docker, [LEASE_HOLDER_LABEL])) {
      if (s.ID === o.serviceId) continue; // its own service is read with the version it updates
      const l = s.Spec.Labels ?? {};
      const holder = await heldBy(docker, l, now);
      if (!holder) continue;
      const theirs = l[LEASE_RENEWED_LABEL] ?? '';
      if (earlierThan && !(theirs < earlierThan.renewed || (theirs === earlierThan.renewed && holder < earlierThan.holder))) continue;
      return { why: `the mailcerts of service ${s.Spec.Name} (task ${holder}) holds the lease until ${l[LEASE_UNTIL_LABEL]} unless it renews it; this one stays passive` };
    }
    return undefined;
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
