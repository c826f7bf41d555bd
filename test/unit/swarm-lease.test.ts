import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import type { ServiceView, TaskView } from '../../src/deploy/swarm/api.js';
import { holdLease } from '../../src/deploy/swarm/lease.js';
import type { Logger } from '../../src/log.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as unknown as Logger;
const taskId = (c: string) => c.repeat(25);

/**
 * Swarm's service store as the lease sees it: versioned services (an update naming an old version
 * is refused, as Swarm refuses it), label filters, tasks. `beforeUpdate` runs between a reader's
 * read and its write: where a rival slips in.
 */
function fakeSwarm(services: ServiceView[], tasks: Record<string, TaskView | Error>) {
  const o = { beforeUpdate: undefined as undefined | (() => void), updates: 0 };
  const matches = (s: ServiceView, label: string[]) =>
    label.every((l) => {
      const [k, v] = l.split('=') as [string, string | undefined];
      const have = s.Spec.Labels?.[k];
      return v === undefined ? have !== undefined : have === v;
    });
  const dial = (opts: { path: string; method: string; options: { _query: Record<string, unknown>; _body: Record<string, unknown> } }, cb: (err: unknown, data?: unknown) => void) => {
    const path = opts.path.replace(/\?$/, '');
    const copy = <T>(x: T): T => structuredClone(x);
    if (path === '/services') return cb(null, copy(services.filter((s) => matches(s, (JSON.parse(String(opts.options._query.filters)) as { label: string[] }).label))));
    let m = /^\/services\/([^/]+)$/.exec(path);
    if (m) return cb(null, copy(services.find((s) => s.ID === m![1])));
    m = /^\/services\/([^/]+)\/update$/.exec(path);
    if (m) {
      o.beforeUpdate?.();
      o.beforeUpdate = undefined;
      const s = services.find((x) => x.ID === m![1])!;
      if (opts.options._query.version !== s.Version.Index) return cb(new Error('(HTTP code 500) server error - update out of sequence'));
      s.Spec = copy(opts.options._body) as ServiceView['Spec'];
      s.Version.Index++;
      o.updates++;
      return cb(null, {});
    }
    m = /^\/tasks\/([^/]+)$/.exec(path);
    if (m) {
      const t = tasks[m[1]!];
      if (t === undefined) return cb(new Error('(HTTP code 404) no such object - task not found'));
      return t instanceof Error ? cb(t) : cb(null, copy(t));
    }
    cb(new Error(`unexpected call ${opts.method} ${path}`));
  };
  return Object.assign(o, { docker: { modem: { dial } } as unknown as Docker });
}

const service = (id: string, labels: Record<string, string> = {}): ServiceView => ({ ID: id, Version: { Index: 1 }, Spec: { Name: id, Labels: labels } });
const leaseLabels = (holder: string, scope: string, untilMs = Date.now() + 60_000, names = 'mail.example.com') => ({
  'mailcerts.lease.holder': holder,
  'mailcerts.lease.scope': scope,
  'mailcerts.lease.names': names,
  'mailcerts.lease.renewed': new Date().toISOString(),
  'mailcerts.lease.until': new Date(untilMs).toISOString(),
});
const running: TaskView = { ID: 'x', DesiredState: 'running', Status: { State: 'running' } };
const lease = (holder: string, scope = 'mail', serviceId = 'svc-mailcerts') => holdLease({ serviceId, holder, scope, names: ['MAIL.example.com', 'smtp.example.com'], leaseMs: 60_000, log: quiet });

describe('the Swarm lease', () => {
  it('a replica whose rival took the lease between its read and its write stays passive (the write names the version it read)', async () => {
    // Replica b reads the service (no lease yet), then replica a writes its lease before b does.
    const services = [service('svc-mailcerts')];
    const race = fakeSwarm(services, { [taskId('a')]: running, [taskId('b')]: running });
    race.beforeUpdate = () => {
      services[0]!.Spec.Labels = leaseLabels(taskId('a'), 'mail');
      services[0]!.Version.Index++;
    };
    const b = await lease(taskId('b')).acquire(race.docker);
    expect(b).toEqual({ leader: false, why: expect.stringContaining(`another replica of this service (task ${taskId('a')}) holds the lease until`) });
    expect(services[0]!.Spec.Labels!['mailcerts.lease.holder']).toBe(taskId('a'));
    // a renews; b still stays passive.
    expect(await lease(taskId('a')).acquire(race.docker)).toEqual({ leader: true });
    expect((await lease(taskId('b')).acquire(race.docker)).leader).toBe(false);
  });

  it('a mailcerts of the same stack, or of another stack for any of the same names, competes; one of another stack for other names does not', async () => {
    const services = [service('other_mailcerts', leaseLabels(taskId('c'), 'other', undefined, 'mail.other.test')), service('svc-mailcerts')];
    const s = fakeSwarm(services, { [taskId('c')]: running });
    expect(await lease(taskId('b')).acquire(s.docker)).toEqual({ leader: true });
    expect(services[1]!.Spec.Labels).toMatchObject({ 'mailcerts.lease.holder': taskId('b'), 'mailcerts.lease.scope': 'mail', 'mailcerts.lease.names': 'mail.example.com,smtp.example.com' });
    // A second stack by mistake orders the same certificates: it stays passive.
    const mistake = fakeSwarm([service('mail2_mailcerts', leaseLabels(taskId('c'), 'mail2', undefined, 'imap.example.com,smtp.example.com')), service('svc-mailcerts')], { [taskId('c')]: running });
    expect(await lease(taskId('b')).acquire(mistake.docker)).toEqual({ leader: false, why: expect.stringContaining(`the mailcerts of service mail2_mailcerts (task ${taskId('c')}) holds the lease`) });
    // The same stack in another service; a lease of an older mailcerts (no scope or names) counts too.
    const same = fakeSwarm([service('x_mailcerts', leaseLabels(taskId('c'), 'mail', undefined, 'mail.other.test')), service('svc-mailcerts')], { [taskId('c')]: running });
    expect((await lease(taskId('b')).acquire(same.docker)).leader).toBe(false);
    const older = fakeSwarm([service('x_mailcerts', { 'mailcerts.lease.holder': taskId('c'), 'mailcerts.lease.until': new Date(Date.now() + 60_000).toISOString() }), service('svc-mailcerts')], { [taskId('c')]: running });
    expect((await lease(taskId('b')).acquire(older.docker)).leader).toBe(false);
  });

  it('two services that take the lease at the same moment: the later one yields and takes its labels back off', async () => {
    const services = [service('mail2_mailcerts'), service('svc-mailcerts')];
    const s = fakeSwarm(services, { [taskId('b')]: running, [taskId('c')]: running });
    // Between b's read and its write, c (another service) writes a lease renewed a moment earlier.
    s.beforeUpdate = () => {
      services[0]!.Spec.Labels = { ...leaseLabels(taskId('c'), 'mail2'), 'mailcerts.lease.renewed': new Date(Date.now() - 1_000).toISOString() };
      services[0]!.Version.Index++;
    };
    const b = await lease(taskId('b')).acquire(s.docker);
    expect(b).toEqual({ leader: false, why: expect.stringContaining('the mailcerts of service mail2_mailcerts') });
    expect(services[1]!.Spec.Labels?.['mailcerts.lease.holder']).toBeUndefined();
    // c, which was first, keeps it: b's labels are gone, so c sees no rival.
    const c = holdLease({ serviceId: 'mail2_mailcerts', holder: taskId('c'), scope: 'mail2', names: ['mail.example.com'], leaseMs: 60_000, log: quiet });
    expect(await c.acquire(s.docker)).toEqual({ leader: true });
  });

  it('a holder whose task is gone (404) or stopped holds nothing; one that cannot be read (an API error) still holds', async () => {
    const gone = [service('svc-mailcerts', leaseLabels(taskId('a'), 'mail'))];
    expect(await lease(taskId('b')).acquire(fakeSwarm(gone, {}).docker)).toEqual({ leader: true });
    const stopped = [service('svc-mailcerts', leaseLabels(taskId('a'), 'mail'))];
    expect(await lease(taskId('b')).acquire(fakeSwarm(stopped, { [taskId('a')]: { ID: 'a', DesiredState: 'shutdown', Status: { State: 'complete' } } }).docker)).toEqual({ leader: true });
    const unreadable = [service('svc-mailcerts', leaseLabels(taskId('a'), 'mail'))];
    const s = fakeSwarm(unreadable, { [taskId('a')]: new Error('(HTTP code 500) server error - rpc error: context deadline exceeded') });
    expect((await lease(taskId('b')).acquire(s.docker)).leader).toBe(false);
    expect(s.updates).toBe(0);
  });

  it('a lease that ran out, or claims more than an hour, holds nothing', async () => {
    const expired = [service('svc-mailcerts', leaseLabels(taskId('a'), 'mail', Date.now() - 1_000))];
    expect(await lease(taskId('b')).acquire(fakeSwarm(expired, { [taskId('a')]: running }).docker)).toEqual({ leader: true });
    const boastful = [service('svc-mailcerts', leaseLabels(taskId('a'), 'mail', Date.now() + 2 * 3_600_000))];
    expect(await lease(taskId('b')).acquire(fakeSwarm(boastful, { [taskId('a')]: running }).docker)).toEqual({ leader: true });
  });
});
