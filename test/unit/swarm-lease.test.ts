import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import type { ObjectView, TaskView } from '../../src/deploy/modes/swarm/api.js';
import { holdLease, leaseConfigName } from '../../src/deploy/modes/swarm/lease.js';
import type { Logger } from '../../src/log.js';

const quiet = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
} as unknown as Logger;
const taskId = (c: string) => c.repeat(25);

/**
 * Swarm's config store as the lease sees it: versioned configs whose labels may be updated (an
 * update naming an old version is refused, as Swarm refuses it; the name and data never change),
 * names that are unique, label filters, tasks. `beforeWrite` runs between a reader's read and its
 * write: where a rival slips in.
 */
/** An error as docker-modem makes it: the message and the HTTP status. */
const httpError = (statusCode: number, message: string) =>
  Object.assign(new Error(`(HTTP code ${statusCode}) ${message}`), { statusCode });

function fakeSwarm(configs: ObjectView[], tasks: Record<string, TaskView | Error>) {
  const o = { beforeWrite: undefined as undefined | (() => void), writes: 0 };
  let nextId = 0;
  const dial = (
    opts: {
      path: string;
      method: string;
      options: { _query: Record<string, unknown>; _body: Record<string, unknown> };
    },
    cb: (err: unknown, data?: unknown) => void,
  ) => {
    const path = opts.path.replace(/\?$/, '');
    const copy = <T>(x: T): T => structuredClone(x);
    if (path === '/configs') {
      const { label } = JSON.parse(String(opts.options._query.filters)) as { label: string[] };
      return cb(null, copy(configs.filter((c) => label.every((l) => c.Spec.Labels?.[l] !== undefined))));
    }
    let m = /^\/configs\/([^/]+)$/.exec(path);
    if (m && m[1] !== 'create') return cb(null, copy(configs.find((c) => c.ID === m![1])));
    const write = () => {
      o.beforeWrite?.();
      o.beforeWrite = undefined;
      o.writes++;
    };
    if (path === '/configs/create') {
      write();
      const b = opts.options._body as { Name: string; Labels: Record<string, string>; Data: string };
      if (configs.some((c) => c.Spec.Name === b.Name)) return cb(httpError(409, 'conflict - config already exists'));
      configs.push({
        ID: `cfg${nextId++}`,
        Version: { Index: 1 },
        Spec: { Name: b.Name, Labels: b.Labels, Data: b.Data },
      });
      return cb(null, { ID: `cfg${nextId - 1}` });
    }
    m = /^\/configs\/([^/]+)\/update$/.exec(path);
    if (m) {
      write();
      const c = configs.find((x) => x.ID === m![1])!;
      const b = opts.options._body as { Name: string; Labels: Record<string, string>; Data?: string };
      if (opts.options._query.version !== c.Version!.Index)
        return cb(httpError(500, 'server error - update out of sequence'));
      if (b.Name !== c.Spec.Name || (b.Data !== undefined && b.Data !== c.Spec.Data))
        return cb(httpError(400, 'bad parameter - only updates to Labels are allowed'));
      c.Spec.Labels = copy(b.Labels);
      c.Version!.Index++;
      return cb(null, undefined);
    }
    m = /^\/tasks\/([^/]+)$/.exec(path);
    if (m) {
      const t = tasks[m[1]!];
      if (t === undefined) return cb(httpError(404, 'no such object - task not found'));
      return t instanceof Error ? cb(t) : cb(null, copy(t));
    }
    cb(new Error(`unexpected call ${opts.method} ${path}`));
  };
  return Object.assign(o, { docker: { modem: { dial } } as unknown as Docker });
}

const running: TaskView = { ID: 'x', DesiredState: 'running', Status: { State: 'running' } };
const leaseConfig = (scope: string, holder: string, names = 'mail.example.com', ms = '60000'): ObjectView => ({
  ID: `lease-${scope}`,
  Version: { Index: 5 },
  Spec: {
    Name: leaseConfigName(scope),
    Data: 'bGVhc2U=',
    Labels: {
      'mailcerts.managed-by': scope,
      'mailcerts.lease.holder': holder,
      'mailcerts.lease.scope': scope,
      'mailcerts.lease.names': names,
      'mailcerts.lease.ms': ms,
    },
  },
});
/** A clock the test moves. */
const clock = () => {
  let t = 1_000_000;
  return { now: () => t, pass: (ms: number) => (t += ms) };
};
const lease = (holder: string, o: { scope?: string; now?: () => number; names?: string[] } = {}) =>
  holdLease({
    holder,
    scope: o.scope ?? 'mail',
    names: o.names ?? ['MAIL.example.com', 'smtp.example.com'],
    leaseMs: 60_000,
    log: quiet,
    now: o.now,
  });

describe('the Swarm lease: a config of the stack, its labels updated at the version read', () => {
  it('is taken by writing a config mailcerts.lease.<stack>, not the service spec; a rival writing between read and write wins', async () => {
    const configs: ObjectView[] = [];
    const s = fakeSwarm(configs, { [taskId('a')]: running, [taskId('b')]: running });
    expect(await lease(taskId('a')).acquire(s.docker)).toEqual({ leader: true });
    expect(configs).toHaveLength(1);
    expect(configs[0]!.Spec).toMatchObject({
      Name: 'mailcerts.lease.mail',
      Labels: {
        'mailcerts.managed-by': 'mail',
        'mailcerts.lease.holder': taskId('a'),
        'mailcerts.lease.names': 'mail.example.com,smtp.example.com',
        'mailcerts.lease.ms': '60000',
      },
    });
    // b reads a's lease: a runs, and b has not seen it unchanged for a whole lease: passive.
    const b = await lease(taskId('b')).acquire(s.docker);
    expect(b).toEqual({
      leader: false,
      why: expect.stringContaining(`another mailcerts of this stack (${taskId('a')}) holds the lease`),
    });
    // A lease nobody holds (given back): b reads it, a writes first, b's write names the old version and is refused.
    configs[0]!.Spec.Labels!['mailcerts.lease.holder'] = '';
    s.beforeWrite = () => {
      configs[0]!.Spec.Labels!['mailcerts.lease.holder'] = taskId('a');
      configs[0]!.Version!.Index++;
    };
    expect((await lease(taskId('b')).acquire(s.docker)).leader).toBe(false);
    expect(configs[0]!.Spec.Labels!['mailcerts.lease.holder']).toBe(taskId('a'));
  });

  it("is stale once it has not changed for the holder's whole lease, by the watcher's own clock (never another manager's)", async () => {
    const configs = [leaseConfig('mail', taskId('a'))];
    const s = fakeSwarm(configs, { [taskId('a')]: httpError(403, 'mailcerts proxy: that task is not of this stack') });
    const c = clock();
    const b = lease(taskId('b'), { now: c.now });
    expect((await b.acquire(s.docker)).leader).toBe(false);
    c.pass(50_000);
    expect((await b.acquire(s.docker)).leader).toBe(false);
    // The holder renews (a new version): the watch starts again.
    configs[0]!.Version!.Index++;
    c.pass(20_000);
    expect((await b.acquire(s.docker)).leader).toBe(false);
    c.pass(30_000);
    expect((await b.acquire(s.docker)).leader).toBe(false);
    c.pass(31_000); // 61 s unchanged while watched
    expect(await b.acquire(s.docker)).toEqual({ leader: true });
    expect(configs[0]!.Spec.Labels!['mailcerts.lease.holder']).toBe(taskId('b'));
  });

  it('a holder whose task is gone (404) or stopped holds nothing; one that cannot be read still holds', async () => {
    expect(await lease(taskId('b')).acquire(fakeSwarm([leaseConfig('mail', taskId('a'))], {}).docker)).toEqual({
      leader: true,
    });
    const stopped = fakeSwarm([leaseConfig('mail', taskId('a'))], {
      [taskId('a')]: { ID: 'a', DesiredState: 'shutdown', Status: { State: 'complete' } },
    });
    expect(await lease(taskId('b')).acquire(stopped.docker)).toEqual({ leader: true });
    const unreadable = fakeSwarm([leaseConfig('mail', taskId('a'))], {
      [taskId('a')]: httpError(
        500,
        'server error - rpc error: context deadline exceeded, task 404aaaaaaaaaaaaaaaaaaaaaa',
      ),
    });
    expect((await lease(taskId('b')).acquire(unreadable.docker)).leader).toBe(false);
    expect(unreadable.writes).toBe(0);
  });

  it('competes with another stack for any of the same names, not with one for other names', async () => {
    const other = fakeSwarm([leaseConfig('other', taskId('c'), 'mail.other.test')], { [taskId('c')]: running });
    expect(await lease(taskId('b')).acquire(other.docker)).toEqual({ leader: true });
    const mistake = fakeSwarm([leaseConfig('mail2', taskId('c'), 'imap.example.com,smtp.example.com')], {
      [taskId('c')]: running,
    });
    expect(await lease(taskId('b')).acquire(mistake.docker)).toEqual({
      leader: false,
      why: expect.stringContaining(
        `the mailcerts of stack mail2 (${taskId('c')}) holds the lease for some of the same names`,
      ),
    });
    expect(mistake.writes).toBe(0);
  });

  it("counts another stack's lease only under its own name and for its own scope: no squatting, no claiming to be another stack", async () => {
    const squat = leaseConfig('other', taskId('c'));
    squat.Spec.Labels!['mailcerts.lease.scope'] = 'mail'; // stack other claims to speak for mail
    const s = fakeSwarm([squat], { [taskId('c')]: running });
    expect(await lease(taskId('b')).acquire(s.docker)).toEqual({ leader: true });
  });

  it('two stacks that take their leases at the same moment: the higher holder id gives its lease back', async () => {
    const configs: ObjectView[] = [];
    const s = fakeSwarm(configs, { [taskId('b')]: running, [taskId('c')]: running });
    // Between c's read and its write, b (another stack, for the same names) takes its own lease.
    s.beforeWrite = () => configs.push(leaseConfig('mail2', taskId('b'), 'mail.example.com'));
    const c = await lease(taskId('c')).acquire(s.docker);
    expect(c).toEqual({ leader: false, why: expect.stringContaining(`the mailcerts of stack mail2 (${taskId('b')})`) });
    expect(configs.find((x) => x.Spec.Name === 'mailcerts.lease.mail')!.Spec.Labels!['mailcerts.lease.holder']).toBe(
      '',
    );
    expect(await lease(taskId('b'), { scope: 'mail2', names: ['mail.example.com'] }).acquire(s.docker)).toEqual({
      leader: true,
    });
  });

  it('confirm, before each change to the swarm: a mailcerts whose lease another took, or that could not renew it in time, stops', async () => {
    const configs: ObjectView[] = [];
    const s = fakeSwarm(configs, {});
    const c = clock();
    const a = lease(taskId('a'), { now: c.now });
    expect((await a.acquire(s.docker)).leader).toBe(true);
    await expect(a.confirm(s.docker)).resolves.toBeUndefined();
    c.pass(61_000);
    await expect(a.confirm(s.docker)).rejects.toThrow(
      'lost the lease, so it changes nothing more: its lease was not renewed for 60 s',
    );
    expect((await a.acquire(s.docker)).leader).toBe(true);
    configs[0]!.Spec.Labels!['mailcerts.lease.holder'] = taskId('z');
    configs[0]!.Version!.Index++;
    await expect(a.confirm(s.docker)).rejects.toThrow(`another mailcerts (${taskId('z')}) holds the lease now`);
    await expect(lease(taskId('q')).confirm(s.docker)).rejects.toThrow('this mailcerts does not hold the lease');
  });
});
