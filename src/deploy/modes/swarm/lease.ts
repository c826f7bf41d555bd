import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import type { Logger } from '../../../log.js';
import { monotonicMs } from '../../../util/clock.js';
import { errorMessage } from '../../../util/errors.js';
import { poll } from '../../../util/retry.js';
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
const LEASE_DATA = 'mailcerts lease: its labels say which mailcerts issues for which names\n';

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
  return name.length <= 64
    ? name
    : `mailcerts.lease.${scope.slice(0, 34)}-${createHash('sha256').update(scope).digest('hex').slice(0, 12)}`;
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
  return new SwarmLease(o);
}

const RUNNING = ['new', 'pending', 'assigned', 'accepted', 'preparing', 'starting', 'running'];
const statusOf = (err: unknown) => (err as { statusCode?: number }).statusCode;

class SwarmLease implements LeaseHolder {
  private readonly o: LeaseOptions;
  private readonly clock: () => number;
  private readonly names: string[];
  private readonly ownName: string;
  private timer: NodeJS.Timeout | undefined;
  private held = false;
  /** The lease config this mailcerts holds, its version then, and when (by its clock) it began to write it. */
  private mine: { id: string; version: number; at: number } | undefined;
  /** Each lease seen: its version, and since when (this clock) it has been that version. */
  private readonly watched = new Map<string, { version: number; since: number }>();

  constructor(o: LeaseOptions) {
    this.o = o;
    this.clock = o.now ?? monotonicMs;
    this.names = [...new Set(o.names.map((n) => n.toLowerCase()))].sort();
    this.ownName = leaseConfigName(o.scope);
  }

  async acquire(docker: Docker, signal?: AbortSignal): Promise<Lead> {
    const r = await this.renew(docker);
    this.note(r);
    if (this.held && !this.timer) {
      this.timer = setInterval(
        () => {
          this.renew(docker).then(
            (again) => this.note(again),
            (err: unknown) =>
              this.o.log.warn({ step: 'lease', error: errorMessage(err) }, 'could not renew the lease; tried again'),
          );
        },
        Math.max(1_000, Math.floor(this.o.leaseMs / 3)),
      );
      this.timer.unref();
      signal?.addEventListener('abort', () => clearInterval(this.timer), { once: true });
    }
    return r;
  }

  async confirm(docker: Docker): Promise<void> {
    const mine = this.mine;
    if (!this.held || !mine) throw new LeaseLost('this mailcerts does not hold the lease');
    if (this.clock() - mine.at > this.o.leaseMs)
      throw new LeaseLost(`its lease was not renewed for ${Math.round(this.o.leaseMs / 1000)} s`);
    const now = await inspectConfig(docker, mine.id);
    const holder = now.Spec.Labels?.[LEASE_HOLDER_LABEL];
    // Another holder always means a newer version; an older version than written would be a store gone back.
    if (holder !== this.o.holder || (now.Version?.Index ?? 0) < mine.version) {
      this.held = false;
      throw new LeaseLost(
        `another mailcerts (${holder || 'none'}) holds the lease now (config ${now.Spec.Name} at version ${now.Version?.Index})`,
      );
    }
    this.mine = { ...mine, version: now.Version?.Index ?? mine.version };
  }

  private note(r: Lead): void {
    if (r.leader && !this.held)
      this.o.log.info(
        { step: 'lease', holder: this.o.holder, config: this.ownName },
        'holds the lease: this mailcerts issues and deploys',
      );
    if (!r.leader && this.held) this.o.log.warn({ step: 'lease', why: r.why }, 'lost the lease');
    this.held = r.leader;
  }

  /** Takes or keeps the lease; another mailcerts writing it at the same moment makes it read again, three times at most. */
  private async renew(docker: Docker): Promise<Lead> {
    const r = await poll(() => this.tryTake(docker), { until: (l) => l !== 'raced', attempts: 3, backoff: [0] });
    return r.value !== undefined && r.value !== 'raced'
      ? r.value
      : {
          leader: false,
          why: 'the lease changed three times while it was being taken; tried again at the next pass',
        };
  }

  /** One try at the lease: held elsewhere, held here, or 'raced' when someone wrote first. */
  private async tryTake(docker: Docker): Promise<Lead | 'raced'> {
    const all = await this.leases(docker);
    const blocked = await this.heldElsewhere(docker, all);
    if (blocked) return blocked;
    const own = all.find((c) => c.Spec.Name === this.ownName);
    const holder = own && (await this.heldBy(docker, own));
    if (own && holder) return { leader: false, why: this.describe(own, holder) };
    if (!(await this.write(docker, own && (await inspectConfig(docker, own.ID))))) return 'raced';
    // Another stack's mailcerts may have taken its lease at the same moment: the higher holder id yields.
    const rival = await this.heldElsewhere(docker, await this.leases(docker), (h) => h < this.o.holder);
    if (!rival) return { leader: true };
    this.mine = undefined;
    await this.giveBack(docker);
    return rival;
  }

  /** A live lease of another stack that competes with this one (and, with `only`, whose holder passes it). */
  private async heldElsewhere(
    docker: Docker,
    all: ObjectView[],
    only: (holder: string) => boolean = () => true,
  ): Promise<Lead | undefined> {
    for (const c of all.filter((x) => x.Spec.Name !== this.ownName)) {
      const holder = await this.heldBy(docker, c);
      if (holder && only(holder)) return { leader: false, why: this.describe(c, holder) };
    }
    return undefined;
  }

  /** The leases: configs with the holder label, each named as its own scope's lease and made for it. */
  private async leases(docker: Docker): Promise<ObjectView[]> {
    return (await listObjects(docker, 'config', [LEASE_HOLDER_LABEL])).filter((c) => {
      const l = c.Spec.Labels ?? {};
      const scope = l[LEASE_SCOPE_LABEL];
      return (
        c.Spec.Name === this.ownName ||
        (scope !== undefined && l[MANAGED_LABEL] === scope && c.Spec.Name === leaseConfigName(scope))
      );
    });
  }

  private competes(l: Record<string, string>): boolean {
    const scope = l[LEASE_SCOPE_LABEL];
    if (scope === undefined || scope === this.o.scope || scope === '*' || this.o.scope === '*') return true;
    return (l[LEASE_NAMES_LABEL] ?? '').split(',').some((n) => this.names.includes(n));
  }

  /** Whether this lease has had the same version for the holder's whole lease, as watched by this clock. */
  private unchangedTooLong(c: ObjectView): boolean {
    const version = c.Version?.Index ?? -1;
    const now = this.clock();
    const seen = this.watched.get(c.ID);
    if (!seen || seen.version !== version) {
      this.watched.set(c.ID, { version, since: now });
      return false;
    }
    const ms = Number(c.Spec.Labels?.[LEASE_MS_LABEL]);
    return now - seen.since > (Number.isFinite(ms) && ms >= 1_000 ? Math.min(ms, LONGEST_MS) : LONGEST_MS);
  }

  /** A holder task that is gone (404) or stopped holds nothing; one that cannot be read may still hold. */
  private async gone(docker: Docker, holder: string): Promise<boolean> {
    if (!/^[a-z0-9]{25}$/.test(holder)) return false;
    try {
      const t = await inspectTask(docker, holder);
      return t.DesiredState !== 'running' || !RUNNING.includes(t.Status?.State ?? '');
    } catch (err) {
      return statusOf(err) === 404;
    }
  }

  /** Who holds this lease against this mailcerts, if anyone. */
  private async heldBy(docker: Docker, c: ObjectView): Promise<string | undefined> {
    const l = c.Spec.Labels ?? {};
    const holder = l[LEASE_HOLDER_LABEL];
    const stale = this.unchangedTooLong(c); // watched on every look, whoever holds it
    if (!holder || holder === this.o.holder || !this.competes(l) || stale) return undefined;
    return (await this.gone(docker, holder)) ? undefined : holder;
  }

  private describe(c: ObjectView, holder: string): string {
    return c.Spec.Name === this.ownName
      ? `another mailcerts of this stack (${holder}) holds the lease (config ${c.Spec.Name}); this one stays passive while it renews it`
      : `the mailcerts of stack ${c.Spec.Labels?.[LEASE_SCOPE_LABEL] ?? '?'} (${holder}) holds the lease for some of the same names (config ${c.Spec.Name}); this one stays passive while it renews it`;
  }

  private labels(): Record<string, string> {
    return {
      [MANAGED_LABEL]: this.o.scope,
      [LEASE_HOLDER_LABEL]: this.o.holder,
      [LEASE_SCOPE_LABEL]: this.o.scope,
      [LEASE_NAMES_LABEL]: this.names.join(','),
      [LEASE_MS_LABEL]: String(this.o.leaseMs),
      [LEASE_RENEWED_LABEL]: new Date().toISOString(),
    };
  }

  /** Writes this mailcerts' labels on its lease config (made if missing); false when someone wrote first. */
  private async write(docker: Docker, own: ObjectView | undefined): Promise<boolean> {
    // Before the write: a watcher may start counting as soon as it lands.
    const at = this.clock();
    try {
      if (!own) await createObject(docker, 'config', this.ownName, LEASE_DATA, this.labels());
      else await updateConfigLabels(docker, own, this.labels());
    } catch (err) {
      if (statusOf(err) === 409 || /out of sequence/i.test(errorMessage(err))) return false;
      throw err;
    }
    const now = (await this.leases(docker)).find((c) => c.Spec.Name === this.ownName);
    if (now?.Spec.Labels?.[LEASE_HOLDER_LABEL] !== this.o.holder) return false;
    this.mine = { id: now.ID, version: now.Version?.Index ?? 0, at };
    this.watched.set(now.ID, { version: this.mine.version, since: at });
    return true;
  }

  private async giveBack(docker: Docker): Promise<void> {
    try {
      const own = (await this.leases(docker)).find((c) => c.Spec.Name === this.ownName);
      if (own?.Spec.Labels?.[LEASE_HOLDER_LABEL] === this.o.holder)
        await updateConfigLabels(docker, await inspectConfig(docker, own.ID), {
          ...own.Spec.Labels,
          [LEASE_HOLDER_LABEL]: '',
        });
    } catch (err) {
      this.o.log.warn(
        { step: 'lease', error: errorMessage(err) },
        'could not give back the lease; the others take it once it has not changed for a whole lease',
      );
    }
  }
}
