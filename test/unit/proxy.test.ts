import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/log.js';
import { LISTENING_COMMAND } from '../../src/deploy/kinds/index.js';
import { containerRules } from '../../src/proxy/container-rules.js';
import { engineSocket } from '../../src/proxy/engine-socket.js';
import { identify } from '../../src/proxy/index.js';
import type { ProxyContext } from '../../src/proxy/rules.js';
import { proxyServer } from '../../src/proxy/server.js';
import { swarmRules } from '../../src/proxy/swarm-rules.js';
import { parseStrictJson } from '../../src/proxy/strict-json.js';

/**
 * The proxy's judgement, against an engine double on a unix socket that answers as Docker does for
 * the objects below and records every call that reaches it. The real proxy on a real engine and
 * swarm is tested in test/integration (isolation, compose, swarm).
 */
const quiet = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
} as unknown as Logger;
const id64 = (c: string) => c.repeat(64);
const id25 = (c: string) => c.repeat(25);
const SELF = id64('a');
const MAIL = id64('b');
const OTHER = id64('c');
const UNLABELLED = id64('d');

const serviceSpec = () => ({
  Name: 'mail_mail',
  Labels: {
    'com.docker.stack.namespace': 'mail',
    'mailcerts.reload': 'postfix',
    'mailcerts.secret-target': '/etc/ssl/mail',
  },
  TaskTemplate: {
    ContainerSpec: {
      Image: 'mail:1',
      Env: ['DB_PASSWORD=hunter2'],
      Secrets: [
        {
          File: { Name: '/run/secrets/db', UID: '0', GID: '0', Mode: 256 },
          SecretID: id25('s'),
          SecretName: 'db_root_password',
        },
      ],
    },
    ForceUpdate: 0,
  },
  Mode: { Replicated: { Replicas: 2 } },
});
const objects: Record<string, { ID: string; Spec: { Name: string; Labels: Record<string, string>; Data?: string } }> = {
  [id25('s')]: { ID: id25('s'), Spec: { Name: 'db_root_password', Labels: {} } },
  [id25('k')]: {
    ID: id25('k'),
    Spec: { Name: 'mailcerts.mail.example.ecdsa.0123456789ab.key', Labels: { 'mailcerts.managed-by': 'mail' } },
  },
  [id25('f')]: {
    ID: id25('f'),
    Spec: { Name: 'mailcerts.other.ecdsa.0123456789ab.key', Labels: { 'mailcerts.managed-by': 'other' } },
  },
  [id25('l')]: {
    ID: id25('l'),
    Spec: {
      Name: 'mailcerts.lease.mail',
      Labels: { 'mailcerts.managed-by': 'mail', 'mailcerts.lease.holder': 'x', 'mailcerts.lease.scope': 'mail' },
      Data: 'bGVhc2U=',
    },
  },
  [id25('o')]: {
    ID: id25('o'),
    Spec: {
      Name: 'mailcerts.lease.other',
      Labels: { 'mailcerts.managed-by': 'other', 'mailcerts.lease.holder': 'y' },
      Data: 'bGVhc2U=',
    },
  },
  [id25('p')]: { ID: id25('p'), Spec: { Name: 'other_app_config', Labels: {}, Data: 'c2VjcmV0' } },
};
const SIGNALLED = id64('5');
const containers: Record<string, Record<string, string>> = {
  [SELF]: { 'com.docker.compose.project': 'mail', 'mailcerts.reload': 'postfix' },
  [MAIL]: {
    'com.docker.compose.project': 'mail',
    'mailcerts.reload': 'postfix',
    'mailcerts.postmap': 'hash:/etc/postfix/sni',
  },
  [SIGNALLED]: { 'com.docker.compose.project': 'mail', 'mailcerts.reload': 'signal:HUP', 'mailcerts.escalate': 'off' },
  [OTHER]: { 'com.docker.compose.project': 'other', 'mailcerts.reload': 'exec:touch /tmp/pwned' },
  [UNLABELLED]: { 'com.docker.compose.project': 'mail' },
};

let dir: string;
let engine: Server;
let proxy: Server;
let base: string;
const reached: string[] = [];
/** The bodies that reached the engine, by path as it got it. */
const bodies: Record<string, string> = {};

function fakeEngine(path: string): Server {
  const services = [
    { ID: id25('m'), Version: { Index: 7 }, Spec: serviceSpec() },
    { ID: id25('x'), Version: { Index: 3 }, Spec: { Name: 'db', Labels: { 'mailcerts.reload': 'x' } } },
  ];
  const tasks = [
    { ID: id25('t'), ServiceID: id25('m'), Spec: { ContainerSpec: { Env: ['DB_PASSWORD=hunter2'] } } },
    { ID: id25('u'), ServiceID: id25('x'), Spec: {} },
  ];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '', 'http://docker');
    const p = url.pathname;
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => (bodies[`${req.method} ${p}`] = body));
    const json = (status: number, body: unknown) => (
      res.writeHead(status, { 'content-type': 'application/json' }), res.end(JSON.stringify(body))
    );
    let m: RegExpExecArray | null;
    if ((m = /^\/containers\/([0-9a-f]{64})\/json$/.exec(p)))
      return containers[m[1]!]
        ? json(200, { Id: m[1], Config: { Labels: containers[m[1]!] } })
        : json(404, { message: 'no such container' });
    if ((m = /^\/services\/([a-z0-9]{25})$/.exec(p)))
      return services.find((s) => s.ID === m![1])
        ? json(
            200,
            services.find((s) => s.ID === m![1]),
          )
        : json(404, {});
    if (p === '/services') return json(200, services);
    if ((m = /^\/(secrets|configs)\/([a-z0-9]{25})$/.exec(p)) && req.method === 'GET')
      return objects[m[2]!] ? json(200, objects[m[2]!]) : json(404, {});
    if (p === '/tasks') return json(200, tasks);
    if ((m = /^\/tasks\/([a-z0-9]{25})$/.exec(p)))
      return json(
        200,
        tasks.find((t) => t.ID === m![1]),
      );
    reached.push(`${req.method} ${p}`);
    if (p === '/secrets' || p === '/configs') return json(200, Object.values(objects));
    if (/\/exec$/.test(p)) return json(201, { Id: id64('e') });
    return json(200, {});
  });
  server.listen(path);
  return server;
}

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`${base}${path}`, {
    method,
    ...(body !== undefined
      ? {
          body: typeof body === 'string' ? body : JSON.stringify(body),
          headers: { 'content-type': 'application/json' },
        }
      : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mc-proxy-'));
  const sock = join(dir, 'docker.sock');
  engine = fakeEngine(sock);
  const socket = engineSocket(sock);
  const ctx: ProxyContext = {
    engine: socket,
    ...(await identify(socket, undefined, `1 2 0:1 /var/lib/docker/containers/${SELF}/hostname /etc/hostname rw`)),
    execs: new Set(),
  };
  expect(ctx.scope.name).toBe('mail'); // from its own container's compose project
  proxy = proxyServer([...containerRules, ...swarmRules], ctx, quiet);
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(proxy.address() as { port: number }).port}/v1.41`;
});
afterAll(() => {
  proxy?.close();
  engine?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('strict JSON', () => {
  it('refuses a key twice, keys that differ only in case, and keys outside ASCII (Go folds ſ to s)', () => {
    expect(() => parseStrictJson(Buffer.from('{"Name":"a","Name":"b"}'))).toThrow(
      'the key "Name" appears twice at the top',
    );
    expect(() => parseStrictJson(Buffer.from('{"a":{"Name":"a","name":"b"}}'))).toThrow(
      'the keys "Name" and "name" at a differ only in case',
    );
    expect(() => parseStrictJson(Buffer.from('{"ſecrets":[]}'))).toThrow('is not plain ASCII');
    expect(() => parseStrictJson(Buffer.from([0x7b, 0xff, 0x7d]))).toThrow('not UTF-8');
    expect(parseStrictJson(Buffer.from('{"a":[1,{"b":true}]}'))).toEqual({ a: [1, { b: true }] });
  });
});

describe('mailcerts proxy: containers', () => {
  const exec = { Cmd: ['postfix', 'reload'], AttachStdout: true, AttachStderr: true, Tty: false };

  it('lets through the exec mailcerts sends to a labelled container of its project, then its start and inspect; the API version prefix is not forwarded', async () => {
    expect((await call('POST', `/containers/${MAIL}/exec`, exec)).status).toBe(201);
    expect(reached.at(-1)).toBe(`POST /containers/${MAIL}/exec`); // not /v1.41/…: the engine reads it as its own version
    for (const Cmd of [['postconf', '-n'], ['postmap', '-F', 'hash:/etc/postfix/sni'], LISTENING_COMMAND])
      expect((await call('POST', `/containers/${MAIL}/exec`, { ...exec, Cmd })).status).toBe(201);
    expect((await call('POST', `/containers/${SIGNALLED}/kill?signal=SIGHUP`)).status).toBe(200);
    expect(
      (await call('POST', `/containers/${MAIL}/exec`, { ...exec, Cmd: ['postfix', 'check'], Tty: true })).status,
    ).toBe(201);
    expect((await call('POST', `/exec/${id64('e')}/start`, { hijack: false, stdin: false })).status).toBe(200);
    expect((await call('GET', `/exec/${id64('e')}/json`)).status).toBe(200);
    expect(reached).toContain(`POST /exec/${id64('e')}/start`);
  });

  it('refuses an exec with anything more, into itself, into another project or an unlabelled container, and an exec it did not make', async () => {
    const before = reached.length;
    expect(await call('POST', `/containers/${MAIL}/exec`, { ...exec, User: 'root' })).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining('"User"') },
    });
    expect((await call('POST', `/containers/${MAIL}/exec`, { ...exec, Privileged: true })).status).toBe(403);
    expect(await call('POST', `/containers/${MAIL}/exec`, { ...exec, Tty: true })).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining('do not ask for "postfix reload" on a terminal') },
    });
    expect(
      (await call('POST', `/containers/${MAIL}/exec`, { ...exec, Cmd: ['postfix', 'check', '-v'], Tty: true })).status,
    ).toBe(403);
    // Only what the container's own labels ask for: no shell to read the mailboxes, no other signal, no restart it turned off.
    expect(
      await call('POST', `/containers/${MAIL}/exec`, { ...exec, Cmd: ['sh', '-c', 'cat /var/mail/*'] }),
    ).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining('do not ask for "sh -c cat /var/mail/*"') },
    });
    expect(
      (await call('POST', `/containers/${MAIL}/exec`, { ...exec, Cmd: ['postmap', '-F', 'hash:/etc/shadow'] })).status,
    ).toBe(403);
    expect((await call('POST', `/containers/${SIGNALLED}/kill?signal=SIGKILL`)).status).toBe(403);
    expect((await call('POST', `/containers/${SIGNALLED}/restart`)).status).toBe(403);
    expect((await call('POST', `/containers/${MAIL}/kill?signal=SIGHUP`)).status).toBe(403);
    expect(
      (
        await call(
          'POST',
          `/containers/${MAIL}/exec`,
          '{"Cmd":["id"],"AttachStdout":true,"AttachStderr":true,"Tty":false,"Tty":true}',
        )
      ).status,
    ).toBe(403);
    expect(await call('POST', `/containers/${SELF}/exec`, exec)).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining('the proxy itself') },
    });
    expect(await call('POST', `/containers/${OTHER}/kill?signal=SIGKILL`)).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining('not part of mail') },
    });
    expect(await call('POST', `/containers/${UNLABELLED}/restart`)).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining('no mailcerts.reload label') },
    });
    expect((await call('POST', `/exec/${id64('9')}/start`, { hijack: false, stdin: false })).status).toBe(403);
    expect((await call('POST', `/containers/${MAIL}/exec?x=1`, exec)).status).toBe(403);
    expect((await call('GET', `/containers/${MAIL}/json`)).status).toBe(403);
    expect((await call('GET', `/containers/${MAIL}/../../images/json`)).status).toBe(403);
    expect(reached.length).toBe(before);
  });

  it('a proxy that cannot tell its own container refuses every exec, kill and restart', async () => {
    const socket = engineSocket(join(dir, 'docker.sock'));
    const blind = proxyServer(
      containerRules,
      { engine: socket, ...(await identify(socket, 'mail', 'nothing here')), execs: new Set() },
      quiet,
    );
    await new Promise<void>((r) => blind.listen(0, '127.0.0.1', r));
    try {
      const r = await fetch(
        `http://127.0.0.1:${(blind.address() as { port: number }).port}/containers/${MAIL}/restart`,
        { method: 'POST' },
      );
      expect(r.status).toBe(403);
      expect(await r.text()).toContain('cannot tell which container is its own');
    } finally {
      blind.close();
    }
  });
});

describe('mailcerts proxy: swarm', () => {
  const update = (spec: unknown) => call('POST', `/services/${id25('m')}/update?version=7`, spec);
  const ours = {
    File: { Name: '/etc/ssl/mail/privkey.pem', UID: '0', GID: '0', Mode: 384 },
    SecretID: id25('k'),
    SecretName: 'mailcerts.mail.example.ecdsa.0123456789ab.key',
  };
  /** The spec as the proxy shows it (no environment), with these secrets, as mailcerts sends it. */
  const withSecrets = (secrets: unknown[]) => {
    const s = serviceSpec();
    const { Env: _env, ...cs } = s.TaskTemplate.ContainerSpec;
    return {
      ...s,
      TaskTemplate: { ...s.TaskTemplate, ContainerSpec: { ...cs, Secrets: secrets } },
      UpdateConfig: { Parallelism: 1, Order: 'stop-first', Monitor: 5_000_000_000, FailureAction: 'rollback' },
    };
  };

  it("lets an update change only which of mailcerts' files a service mounts; the service keeps its environment, which it never showed", async () => {
    const before = reached.length;
    const shown = (await call('GET', `/services/${id25('m')}`)).body as { Spec: ReturnType<typeof serviceSpec> };
    expect(shown.Spec.TaskTemplate.ContainerSpec.Env).toBeUndefined();
    expect((await update(withSecrets([...serviceSpec().TaskTemplate.ContainerSpec.Secrets, ours]))).status).toBe(200);
    expect(reached.slice(before)).toEqual([`POST /services/${id25('m')}/update`]);
    const forwarded = JSON.parse(bodies[`POST /services/${id25('m')}/update`]!) as ReturnType<typeof serviceSpec>;
    expect(forwarded.TaskTemplate.ContainerSpec.Env).toEqual(['DB_PASSWORD=hunter2']);
    expect(forwarded.TaskTemplate.ContainerSpec.Secrets).toEqual([
      ...serviceSpec().TaskTemplate.ContainerSpec.Secrets,
      ours,
    ]);
  });

  it("refuses any other change, a foreign or misplaced file, the service's own secret dropped, a stale version, a service outside the stack", async () => {
    const before = reached.length;
    const s = withSecrets([...serviceSpec().TaskTemplate.ContainerSpec.Secrets, ours]);
    const image = structuredClone(s);
    image.TaskTemplate.ContainerSpec.Image = 'evil:latest';
    expect(await update(image)).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining('changes TaskTemplate.ContainerSpec.Image') },
    });
    const mount = structuredClone(s) as Record<string, any>;
    mount.TaskTemplate.ContainerSpec.Mounts = [{ Type: 'bind', Source: '/', Target: '/host' }];
    expect((await update(mount)).status).toBe(403);
    const caps = structuredClone(s) as Record<string, any>;
    caps.TaskTemplate.ContainerSpec.CapabilityAdd = ['ALL'];
    expect((await update(caps)).status).toBe(403);
    const folded = structuredClone(s) as Record<string, any>;
    folded.TaskTemplate.ContainerSpec.mounts = [{ Type: 'bind', Source: '/', Target: '/host' }];
    expect((await update(folded)).status).toBe(403);
    expect(
      await update(
        withSecrets([
          ...serviceSpec().TaskTemplate.ContainerSpec.Secrets,
          { ...ours, SecretID: id25('f'), SecretName: 'mailcerts.other.ecdsa.0123456789ab.key' },
        ]),
      ),
    ).toMatchObject({ status: 403, body: { message: expect.stringContaining('not made by mailcerts for mail') } });
    expect(
      await update(
        withSecrets([
          ...serviceSpec().TaskTemplate.ContainerSpec.Secrets,
          { ...ours, File: { ...ours.File, Name: '/etc/cron.d/x' } },
        ]),
      ),
    ).toMatchObject({ status: 403, body: { message: expect.stringContaining('not a file below /etc/ssl/mail') } });
    expect(await update(withSecrets([ours]))).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining('db_root_password was not made by mailcerts') },
    });
    expect(
      await update(
        withSecrets([
          ...serviceSpec().TaskTemplate.ContainerSpec.Secrets,
          { ...ours, File: { ...ours.File, Mode: 0o777 } },
        ]),
      ),
    ).toMatchObject({ status: 403, body: { message: expect.stringContaining('mode 511 would make it executable') } });
    expect(
      (
        await update(
          withSecrets([
            ...serviceSpec().TaskTemplate.ContainerSpec.Secrets,
            { ...ours, File: { ...ours.File, Name: '/etc/ssl/mail/' } },
          ]),
        )
      ).status,
    ).toBe(403);
    const rollForward = { ...s, UpdateConfig: { Parallelism: 0, FailureAction: 'continue' } };
    expect(await update(rollForward)).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining('changes UpdateConfig.Parallelism') },
    });
    const withEnv = structuredClone(s) as Record<string, any>;
    withEnv.TaskTemplate.ContainerSpec.Env = ['LD_PRELOAD=/x.so'];
    expect(await update(withEnv)).toMatchObject({
      status: 403,
      body: { message: expect.stringContaining('names an environment') },
    });
    expect(
      (
        await call(
          'POST',
          `/services/${id25('m')}/update?version=7`,
          JSON.stringify(s).replace('"Replicas":2', '"Replicas":90071992547409930'),
        )
      ).status,
    ).toBe(403);
    expect((await call('POST', `/services/${id25('m')}/update?version=6`, s)).status).toBe(403);
    expect(
      (
        await call('POST', `/services/${id25('x')}/update?version=3`, {
          Name: 'db',
          Labels: { 'mailcerts.reload': 'x' },
        })
      ).status,
    ).toBe(403);
    expect(reached.length).toBe(before);
  });

  it("creates and removes only mailcerts.* objects of the stack, and updates only its lease's labels", async () => {
    const before = reached.length;
    const create = (body: string) => call('POST', '/secrets/create', body);
    expect((await create('{"Name":"mailcerts.x","Labels":{"mailcerts.managed-by":"mail"},"Data":"eA=="}')).status).toBe(
      200,
    );
    expect(
      (
        await create(
          '{"Name":"mailcerts.x","Labels":{"mailcerts.managed-by":"mail"},"Data":"eA==","Name":"db_root_password"}',
        )
      ).status,
    ).toBe(403);
    expect(
      (
        await create(
          '{"Name":"mailcerts.x","Labels":{"mailcerts.managed-by":"mail"},"Data":"eA==","name":"db_root_password"}',
        )
      ).status,
    ).toBe(403);
    expect(
      (await create('{"Name":"db_root_password","Labels":{"mailcerts.managed-by":"mail"},"Data":"eA=="}')).status,
    ).toBe(403);
    expect(
      (await create('{"Name":"mailcerts.x","Labels":{"mailcerts.managed-by":"other"},"Data":"eA=="}')).status,
    ).toBe(403);
    expect(
      (
        await create(
          '{"Name":"mailcerts.x","Labels":{"mailcerts.managed-by":"mail"},"Data":"eA==","Driver":{"Name":"evil"}}',
        )
      ).status,
    ).toBe(403);
    expect((await call('DELETE', `/secrets/${id25('k')}`)).status).toBe(200);
    expect((await call('DELETE', `/secrets/${id25('s')}`)).status).toBe(403);
    expect((await call('DELETE', `/secrets/${id25('f')}`)).status).toBe(403);
    expect((await call('DELETE', `/configs/${id25('p')}`)).status).toBe(403);
    const lease = objects[id25('l')]!.Spec;
    expect(
      (
        await call('POST', `/configs/${id25('l')}/update?version=4`, {
          ...lease,
          Labels: { ...lease.Labels, 'mailcerts.lease.holder': 'me' },
        })
      ).status,
    ).toBe(200);
    // A lease only under the stack's own name and scope: no squatting another's, no speaking for it.
    expect(
      (
        await call('POST', `/configs/${id25('l')}/update?version=4`, {
          ...lease,
          Labels: { ...lease.Labels, 'mailcerts.lease.scope': 'other' },
        })
      ).status,
    ).toBe(403);
    const leaseOf = (name: string, scope: string) => ({
      Name: name,
      Data: 'eA==',
      Labels: { 'mailcerts.managed-by': 'mail', 'mailcerts.lease.holder': 'me', 'mailcerts.lease.scope': scope },
    });
    expect((await call('POST', '/configs/create', leaseOf('mailcerts.lease.other', 'other'))).status).toBe(403);
    expect((await call('POST', '/configs/create', leaseOf('mailcerts.lease.mail', 'other'))).status).toBe(403);
    expect((await call('POST', `/configs/${id25('l')}/update?version=4`, { ...lease, Data: 'ZXZpbA==' })).status).toBe(
      403,
    );
    expect((await call('POST', `/configs/${id25('o')}/update?version=4`, objects[id25('o')]!.Spec)).status).toBe(403);
    expect(reached.slice(before)).toEqual([
      'POST /secrets/create',
      `DELETE /secrets/${id25('k')}`,
      `POST /configs/${id25('l')}/update`,
    ]);
    expect((await call('POST', '/configs/create', leaseOf('mailcerts.lease.mail', 'mail'))).status).toBe(200);
  });

  it("shows only the stack: its services, their tasks without environment, mailcerts' objects and the other stacks' leases without data", async () => {
    expect(((await call('GET', '/services')).body as { ID: string }[]).map((s) => s.ID)).toEqual([id25('m')]);
    expect((await call('GET', `/services/${id25('x')}`)).status).toBe(403);
    const tasks = (await call('GET', '/tasks')).body as { ID: string; Spec: { ContainerSpec?: { Env?: string[] } } }[];
    expect(tasks.map((t) => t.ID)).toEqual([id25('t')]);
    expect(JSON.stringify(tasks)).not.toContain('hunter2');
    expect((await call('GET', `/tasks/${id25('u')}`)).status).toBe(403);
    expect(JSON.stringify((await call('GET', `/tasks/${id25('t')}`)).body)).not.toContain('hunter2');
    const configs = (await call('GET', '/configs')).body as { ID: string; Spec: { Data?: string } }[];
    expect(configs.map((c) => c.ID).sort()).toEqual([id25('k'), id25('l'), id25('o')].sort());
    expect(configs.find((c) => c.ID === id25('o'))!.Spec.Data).toBeUndefined();
    expect(JSON.stringify(configs)).not.toContain('c2VjcmV0');
    expect((await call('GET', `/configs/${id25('p')}`)).status).toBe(403);
    expect((await call('GET', `/secrets/${id25('k')}`)).status).toBe(403);
  });
});
