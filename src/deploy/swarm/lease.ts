import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import type { Logger } from '../../log.js';
import { monotonicMs } from '../../util/clock.js';
import { errorMessage } from '../../util/errors.js';
import { createObject, inspectConfig, inspectTask, listObjects, type ObjectView, updateConfigLabels } from './api.js';
import { MANAGED_LABEL } from './objects.js';

/**
 * Only one mailcerts issues for a set of names at a time. The one that does holds a lease: the
 * labels of a config of its stack's own, mailcerts.lease.<stack> (who holds it, for which names,
 * for how long), renewed every third of SWARM_LEASE. Not on mailcerts' own service: an update of
 * it every renewal would replace the spec that `docker service rollback` returns to.
 * - One winner: a config's labels are updated at the version read, so of two that write at once
 *   one is refused and reads again; two stacks that take their leases at the same moment both look
 *   at the others after writing, and the one with the higher holder id gives its lease back.
 * - Staleness is judged as the pass lock judges it: a lease is stale once this mailcerts has seen
 *   it unchanged (the same version) for the lease's whole length, by its own clock; never by
 *   comparing another manager's clock. A holder task that is gone or stopped frees it at once.
 * - Who competes: a mailcerts of the same stack, or one for any of the same names (a second stack
 *   by mistake would order the same certificates); a deliberate second stack for other names does not.
 * - Before each change to the swarm (a service update, a removal), `confirm` reads the lease again:
 *   a mailcerts that lost it stops there.
 */
export const LEASE_HOLDER_LABEL = 'mailcerts.lease.holder';
export const LEASE_RENEWED_LABEL = 'mailcerts.lease.renewed';
export const LEASE_SCOPE_LABEL = 'mailcerts.lease.scope';
/** The names the holder issues for, sorted, comma-separated. */
export const LEASE_NAMES_LABEL = 'mailcerts.lease.names';
/** The holder's SWARM_LEASE, in ms: how long the others watch an unchanged lease before taking it. */
export const LEASE_MS_LABEL = 'mailcerts.lease.ms';
/** No lease is believed to last longer than the longest SWARM_LEASE (a label someone wrote by hand). */
const LONGEST_MS = 3_600_000;
const LEASE_DATA = Buffer.from('mailcerts lease: its labels say which mailcerts issues for which names\n').toString('base64');

export class LeaseLost extends Error {
  override name = 'LeaseLost';
  constructor(why: string) {
    super(`lost the lease, so it changes nothing more: ${why}`);
  }
}

export type Lead = { leader: true } | { leader: false; why: string };

export interface LeaseHolder {
  acquire(docker: Docker, signal?: AbortSignal): Promise<Lead>;
  /** Throws LeaseLost unless this mailcerts still holds the lease, as Swarm has it now. */
  confirm(docker: Docker): Promise<void>;
}

/** The lease config's name for a scope (Swarm names: at most 64 characters). */
export function leaseConfigName(scope: string): string {
  const name = `mailcerts.lease.${scope === '*' ? 'all-stacks' : scope}`;
  return name.length <= 64 ? name : `mailcerts.lease.${scope.slice(0, 34)}-${createHash('sha256').update(scope).digest('hex').slice(0, 12)}`;
}

export interface LeaseOptions {
  /** Its Swarm task id, or another id that is its own (outside a task). */
  holder: string;
  scope: string;
  names: string[];
  leaseMs: number;
  log: Logger;
  /** This process's monotonic clock (tests hand in their own). */
  now?: () => number;
}

export function holdLease(o: LeaseOptions): LeaseHolder {
  const clock = o.now ?? monotonicMs;
  let timer: NodeJS.Timeout | undefined;
  let held = false;
  /** The lease config this mailcerts holds, and when (by its clock) it last wrote or confirmed it. */
  let mine: { id: string; version: number; at: number } | undefined;
  const names = [...new Set(o.names.map((n) => n.toLowerCase()))].sort();
  const ownName = leaseConfigName(o.scope);
  /** Each lease seen: its version, and since when (this clock) it has been that version. */
  const watched = new Map<string, { version: number; since: number }>();

  const competes = (l: Record<string, string>) => {
    const scope = l[LEASE_SCOPE_LABEL];
    if (scope === undefined || scope === o.scope || scope === '*' || o.scope === '*') return true;
    return (l[LEASE_NAMES_LABEL] ?? '').split(',').some((n) => names.includes(n));
  };
  const unchangedTooLong = (c: ObjectView) => {
    const version = c.Version?.Index ?? -1;
    const now = clock();
    const seen = watched.get(c.ID);
    if (!seen || seen.version !== version) {
      watched.set(c.ID, { version, since: now });
      return false;
    }
    const ms = Number(c.Spec.Labels?.[LEASE_MS_LABEL]);
    return now - seen.since > (Number.isFinite(ms) && ms >= 1_000 ? Math.min(ms, LONGEST_MS) : LONGEST_MS);
  };
  /** A holder task that is gone or stopped holds nothing; one that cannot be read may still hold. */
  const gone = async (docker: Docker, holder: string) => {
    if (!/^[a-z0-9]{25}$/.test(holder)) return false;
    try {
      const t = await inspectTask(docker, holder);
      return t.DesiredState !== 'running' || !['new', 'pending', 'assigned', 'accepted', 'preparing', 'starting', 'running'].includes(t.Status?.State ?? '');
    } catch (err) {
      return /no such|404/i.test(errorMessage(err));
    }
  };
  /** Who holds this lease against this mailcerts, if anyone. */
  const heldBy = async (docker: Docker, c: ObjectView) => {
    const l = c.Spec.Labels ?? {};
    const holder = l[LEASE_HOLDER_LABEL];
    const stale = unchangedTooLong(c); // watched on every look, whoever holds it
    if (!holder || holder === o.holder || !competes(l) || stale) return undefined;
    return (await gone(docker, holder)) ? undefined : holder;
  };
  const leases = async (docker: Docker) => (await listObjects(docker, 'config', [LEASE_HOLDER_LABEL])).filter((c) => c.Spec.Name.startsWith('mailcerts.lease.'));
  const describe = (c: ObjectView, holder: string) =>
    c.Spec.Name === ownName
      ? `another mailcerts of this stack (${holder}) holds the lease (config ${c.Spec.Name}); this one stays passive while it renews it`
      : `the mailcerts of stack ${c.Spec.Labels?.[LEASE_SCOPE_LABEL] ?? '?'} (${holder}) holds the lease for some of the same names (config ${c.Spec.Name}); this one stays passive while it renews it`;

  const labels = () => ({
    [MANAGED_LABEL]: o.scope,
    [LEASE_HOLDER_LABEL]: o.holder,
    [LEASE_SCOPE_LABEL]: o.scope,
    [LEASE_NAMES_LABEL]: names.join(','),
    [LEASE_MS_LABEL]: String(o.leaseMs),
    [LEASE_RENEWED_LABEL]: new Date().toISOString(),
  });

  /** Writes this mailcerts' labels on its lease config (made if missing); false when someone wrote first. */
  const write = async (docker: Docker, own: ObjectView | undefined): Promise<boolean> => {
    try {
      if (!own) await createObject(docker, 'config', ownName, Buffer.from(LEASE_DATA, 'base64').toString(), labels());
      else await updateConfigLabels(docker, own, labels());
    } catch (err) {
      if (/conflict|out of sequence|409|already exists/i.test(errorMessage(err))) return false;
      throw err;
    }
    const now = (await leases(docker)).find((c) => c.Spec.Name === ownName);
    if (now?.Spec.Labels?.[LEASE_HOLDER_LABEL] !== o.holder) return false;
    mine = { id: now.ID, version: now.Version?.Index ?? 0, at: clock() };
    watched.set(now.ID, { version: mine.version, since: mine.at });
    return true;
  };

  const renew = async (docker: Docker): Promise<Lead> => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const all = await leases(docker);
      for (const c of all.filter((x) => x.Spec.Name !== ownName)) {
        const holder = await heldBy(docker, c);
        if (holder) return { leader: false, why: describe(c, holder) };
      }
      const own = all.find((c) => c.Spec.Name === ownName);
      const holder = own && (await heldBy(docker, own));
      if (own && holder) return { leader: false, why: describe(own, holder) };
      if (!(await write(docker, own && (await inspectConfig(docker, own.ID))))) continue; // someone wrote first: read again
      // Another stack's mailcerts may have taken its lease at the same moment: the higher holder id yields.
      for (const c of (await leases(docker)).filter((x) => x.Spec.Name !== ownName)) {
        const rival = await heldBy(docker, c);
        if (rival && rival < o.holder) {
          mine = undefined;
          await giveBack(docker);
          return { leader: false, why: describe(c, rival) };
        }
      }
      return { leader: true };
    }
    return { leader: false, why: 'the lease changed three times while it was being taken; tried again at the next pass' };
  };

  const giveBack = async (docker: Docker) => {
    try {
      const own = (await leases(docker)).find((c) => c.Spec.Name === ownName);
      if (own?.Spec.Labels?.[LEASE_HOLDER_LABEL] === o.holder) await updateConfigLabels(docker, await inspectConfig(docker, own.ID), { ...own.Spec.Labels, [LEASE_HOLDER_LABEL]: '' });
    } catch (err) {
      o.log.warn({ step: 'lease', error: errorMessage(err) }, 'could not give back the lease; the others take it once it has not changed for a whole lease');
    }
  };

  const note = (r: Lead) => {
    if (r.leader && !held) o.log.info({ step: 'lease', holder: o.holder, config: ownName }, 'holds the lease: this mailcerts issues and deploys');
    if (!r.leader && held) o.log.warn({ step: 'lease', why: r.why }, 'lost the lease');
    held = r.leader;
  };

  return {
    async acquire(docker, signal) {
      const r = await renew(docker);
      note(r);
      if (held && !timer) {
        timer = setInterval(() => {
          if (signal?.aborted) return;
          renew(docker).then(note, (err: unknown) => o.log.warn({ step: 'lease', error: errorMessage(err) }, 'could not renew the lease; tried again'));
        }, Math.max(1_000, Math.floor(o.leaseMs / 3)));
        timer.unref();
      }
      return r;
    },
    async confirm(docker) {
      if (!held || !mine) throw new LeaseLost('this mailcerts does not hold the lease');
      if (clock() - mine.at > o.leaseMs) throw new LeaseLost(`its lease was not renewed for ${Math.round(o.leaseMs / 1000)} s`);
      const now = await inspectConfig(docker, mine.id);
      const holder = now.Spec.Labels?.[LEASE_HOLDER_LABEL];
      if (holder !== o.holder || (now.Version?.Index ?? 0) < mine.version) {
        held = false;
        throw new LeaseLost(`another mailcerts (${holder || 'none'}) holds the lease now (config ${now.Spec.Name} at version ${now.Version?.Index})`);
      }
      mine = { ...mine, version: now.Version?.Index ?? mine.version };
    },
  };
}
