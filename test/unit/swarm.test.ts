import { describe, expect, it } from 'vitest';
import * as yaml from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { collisionIn, withMounts } from '../../src/deploy/modes/swarm/service-spec.js';
import { reachTask } from '../../src/deploy/modes/swarm/self.js';
import type { ServiceView } from '../../src/deploy/modes/swarm/api.js';
import { mountsFor, objectFor, parseSecretTarget, sameObject } from '../../src/deploy/modes/swarm/objects.js';
import { unsatisfiable } from '../../src/deploy/modes/swarm/placement.js';
import { stackFile } from '../../src/deploy/modes/swarm/stack-file.js';
import { parseBundle } from '../../src/pki/bundle.js';
import { type ShippedFile, shippedFiles } from '../../src/publish/shipped.js';
import { makeChain } from '../helpers/pki.js';
import { CONFIG_PARTS } from '../../src/parts.js';

const variant = (cert: string, algorithm = 'ecdsa') => ({
  cert,
  algorithm,
  fingerprint256: 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:FF',
  serial: '0A1B',
  notAfter: new Date('2027-01-01T00:00:00Z'),
});
const file = (path: string, f: string, secret: boolean, cert = 'mail.example.com'): ShippedFile => ({
  path,
  data: `${path} data`,
  secret,
  file: f,
  variant: variant(cert),
});

describe('Swarm objects: named by their version, immutable', () => {
  it('a key file is a secret, a chain a config, named mailcerts.<certificate>.<algorithm>.<fingerprint>.<file>, labelled with serial and expiry', () => {
    const key = objectFor(file('privkey.pem', 'privkey.pem', true), 'mail');
    expect(key).toMatchObject({
      kind: 'secret',
      name: 'mailcerts.mail.example.com.ecdsa.abcdef012345.key',
      group: 'mail.example.com.ecdsa',
    });
    expect(key.labels).toMatchObject({
      'mailcerts.managed-by': 'mail',
      'mailcerts.certificate': 'mail.example.com',
      'mailcerts.serial': '0A1B',
      'mailcerts.not-after': '2027-01-01T00:00:00.000Z',
    });
    expect(objectFor(file('privkey-fullchain.pem', 'privkey-fullchain.pem', true), 'mail').name).toBe(
      'mailcerts.mail.example.com.ecdsa.abcdef012345.keychain',
    );
    expect(objectFor(file('fullchain.pem', 'fullchain.pem', false), 'mail')).toMatchObject({
      kind: 'config',
      name: 'mailcerts.mail.example.com.ecdsa.abcdef012345.fullchain',
    });
    const sni = objectFor({ path: 'sni/postfix.map', data: 'map', secret: false, file: 'postfix.map' }, 'mail');
    expect(sni.name).toMatch(/^mailcerts\.sni\.[0-9a-f]{12}\.postfix\.map$/);
  });

  it("a long certificate name is cut to fit Swarm's 64 characters and stays unique", () => {
    const long = 'a'.repeat(60);
    const a = objectFor(file('privkey.pem', 'privkey.pem', true, long), 'mail').name;
    const b = objectFor(file('privkey.pem', 'privkey.pem', true, `${'a'.repeat(59)}b`), 'mail').name;
    expect(a.length).toBeLessThanOrEqual(64);
    expect(a).not.toBe(b);
  });

  it('an existing object is reused only when mailcerts made it, for this scope, with the same content', () => {
    const o = objectFor(file('privkey.pem', 'privkey.pem', true), 'mail');
    expect(sameObject({ labels: o.labels }, o)).toBe(true);
    expect(sameObject({ labels: { ...o.labels, 'mailcerts.sha256': '0'.repeat(64) } }, o)).toBe(false);
    expect(sameObject({ labels: {} }, o)).toBe(false);
    expect(sameObject({ labels: { ...o.labels, 'mailcerts.managed-by': 'other' } }, o)).toBe(false);
  });
});

describe('what a service mounts', () => {
  const certs = [
    {
      name: 'a.example.com',
      domains: ['a.example.com'],
      files: [
        file('privkey.pem', 'privkey.pem', true, 'a.example.com'),
        file('a.example.com/privkey.pem', 'privkey.pem', true, 'a.example.com'),
      ],
    },
    {
      name: 'b.example.com',
      domains: ['b.example.com'],
      files: [file('b.example.com/fullchain.pem', 'fullchain.pem', false, 'b.example.com')],
    },
  ];
  const sni = [{ path: 'sni/postfix.map', data: 'm', secret: false, file: 'postfix.map' }];
  const opts = { target: '/etc/ssl/mail', keyMode: 0o600 };

  it('the first certificate by default; the SNI files only with every certificate; paths as under CERTS_DIR', () => {
    expect(mountsFor({}, certs, sni, opts).map((m) => m.mount.target)).toEqual([
      '/etc/ssl/mail/privkey.pem',
      '/etc/ssl/mail/a.example.com/privkey.pem',
    ]);
    expect(
      mountsFor({ 'mailcerts.certificates': 'b.example.com' }, certs, sni, opts).map((m) => m.mount.target),
    ).toEqual(['/etc/ssl/mail/b.example.com/fullchain.pem']);
    expect(mountsFor({ 'mailcerts.certificates': '*' }, certs, sni, opts).map((m) => m.mount.target)).toContain(
      '/etc/ssl/mail/sni/postfix.map',
    );
    const [key] = mountsFor({}, certs, sni, { ...opts, owner: 101, group: 102 });
    expect(key!.mount).toMatchObject({ kind: 'secret', mode: 0o600, uid: '101', gid: '102' });
  });

  it('mailcerts.secret-target must be an absolute directory below /', () => {
    expect(parseSecretTarget(undefined)).toBe('/run/secrets/mail');
    expect(parseSecretTarget('/etc/ssl/mail/')).toBe('/etc/ssl/mail');
    expect(parseSecretTarget('/')).toEqual({ error: expect.stringMatching(/below \//) });
    expect(parseSecretTarget('/etc/../root')).toEqual({ error: expect.stringMatching(/not an absolute directory/) });
    expect(parseSecretTarget('etc/ssl')).toEqual({ error: expect.stringMatching(/not an absolute directory/) });
  });
});

describe('the service update', () => {
  const service = (secrets: object[] = [], configs: object[] = []): ServiceView => ({
    ID: 's1',
    Version: { Index: 7 },
    Spec: {
      Name: 'mail_mail',
      TaskTemplate: { ContainerSpec: { Image: 'x', Secrets: secrets, Configs: configs } },
      UpdateConfig: { Order: 'stop-first', FailureAction: 'pause' },
    },
  });
  const mounts = [
    {
      kind: 'secret' as const,
      object: 'mailcerts.m.ecdsa.abc.key',
      id: 'id1',
      target: '/etc/ssl/mail/privkey.pem',
      mode: 0o600,
      uid: '0',
      gid: '0',
    },
  ];

  it("replaces only mailcerts' references, keeps the service's own, and rolls back on failure once there is something to go back to", () => {
    const own = {
      SecretID: 'u1',
      SecretName: 'db_password',
      File: { Name: '/run/secrets/db', UID: '0', GID: '0', Mode: 0o400 },
    };
    const old = {
      SecretID: 'o1',
      SecretName: 'mailcerts.m.ecdsa.old.key',
      File: { Name: '/etc/ssl/mail/privkey.pem', UID: '0', GID: '0', Mode: 0o600 },
    };
    const spec = withMounts(service([own, old]).Spec, mounts, new Set(['o1']))!;
    expect(spec.TaskTemplate!.ContainerSpec!.Secrets).toEqual([
      own,
      {
        SecretID: 'id1',
        SecretName: 'mailcerts.m.ecdsa.abc.key',
        File: { Name: '/etc/ssl/mail/privkey.pem', UID: '0', GID: '0', Mode: 0o600 },
      },
    ]);
    expect(spec.UpdateConfig).toEqual({
      Parallelism: 1,
      Monitor: 5_000_000_000,
      Order: 'stop-first',
      FailureAction: 'rollback',
    });
    expect(spec.TaskTemplate!.ContainerSpec!.Image).toBe('x');
    // The first shipment has nothing to roll back to.
    expect(withMounts(service([own]).Spec, mounts, new Set())!.UpdateConfig!.FailureAction).toBe('continue');
    // A service without an update policy still gets one task at a time (the API's default is all at once).
    expect(withMounts({ ...service([]).Spec, UpdateConfig: undefined }, mounts, new Set())!.UpdateConfig).toEqual({
      Parallelism: 1,
      Order: 'stop-first',
      Monitor: 5_000_000_000,
      FailureAction: 'continue',
    });
  });

  it("keeps mailcerts' files at targets it does not mount this time (a certificate whose files could not be read), and owns only its objects by id", () => {
    const other = {
      SecretID: 'o2',
      SecretName: 'mailcerts.b.ecdsa.old.key',
      File: { Name: '/etc/ssl/mail/b/privkey.pem', UID: '0', GID: '0', Mode: 0o600 },
    };
    const foreign = {
      SecretID: 'f1',
      SecretName: 'mailcerts.lookalike',
      File: { Name: '/run/secrets/x', UID: '0', GID: '0', Mode: 0o400 },
    };
    const spec = withMounts(service([other, foreign]).Spec, mounts, new Set(['o2']))!;
    expect(spec.TaskTemplate!.ContainerSpec!.Secrets!.map((r) => r.SecretName)).toEqual([
      'mailcerts.b.ecdsa.old.key',
      'mailcerts.lookalike',
      'mailcerts.m.ecdsa.abc.key',
    ]);
  });

  it('is not made when the service mounts exactly these already', () => {
    const current = {
      SecretID: 'id1',
      SecretName: 'mailcerts.m.ecdsa.abc.key',
      File: { Name: '/etc/ssl/mail/privkey.pem', UID: '0', GID: '0', Mode: 0o600 },
    };
    expect(withMounts(service([current]).Spec, mounts, new Set(['id1']))).toBeUndefined();
  });

  it("a secret of the service's own at a path mailcerts would use is a collision that names it", () => {
    const clash = { SecretID: 'u1', SecretName: 'my_key', File: { Name: '/etc/ssl/mail/privkey.pem' } };
    expect(collisionIn(service([clash]), mounts, new Set())).toMatch(
      /^its secret my_key is mounted at \/etc\/ssl\/mail\/privkey.pem, where mailcerts would mount a certificate file; set mailcerts.secret-target/,
    );
    expect(collisionIn(service([]), mounts, new Set())).toBeUndefined();
    // A name that looks like mailcerts' is not enough: only its own objects (by id) may sit there.
    expect(collisionIn(service([{ ...clash, SecretName: 'mailcerts.fake' }]), mounts, new Set())).toMatch(
      /^its secret mailcerts.fake is mounted at/,
    );
    expect(collisionIn(service([{ ...clash, SecretID: 'o1' }]), mounts, new Set(['o1']))).toBeUndefined();
  });
});

describe('placement: an update whose new tasks could not start is not made', () => {
  const node = (
    id: string,
    o: { role?: string; labels?: Record<string, string>; state?: string; availability?: string } = {},
  ) => ({
    ID: id,
    Description: { Hostname: id },
    Spec: { Role: o.role ?? 'worker', Availability: o.availability ?? 'active', Labels: o.labels ?? {} },
    Status: { State: o.state ?? 'ready', Addr: '198.19.0.1' },
  });
  const nodes = [
    node('n1', { role: 'manager' }),
    node('n2', { labels: { mail: 'yes' } }),
    node('n3', { labels: { mail: 'yes' }, state: 'down' }),
  ];
  it('constraints no ready, active node meets', () => {
    expect(
      unsatisfiable({ TaskTemplate: { Placement: { Constraints: ['node.labels.mail==yes'] } } }, nodes, 1),
    ).toBeUndefined();
    expect(
      unsatisfiable(
        { TaskTemplate: { Placement: { Constraints: ['node.labels.mail==yes', 'node.role!=worker'] } } },
        nodes,
        1,
      ),
    ).toMatch(
      /^no ready, active node satisfies its placement constraints \(node.labels.mail==yes, node.role!=worker\)/,
    );
    expect(unsatisfiable({ TaskTemplate: { Placement: { Constraints: ['node.hostname==n3'] } } }, nodes, 1)).toMatch(
      /^no ready, active node/,
    );
    expect(
      unsatisfiable(
        { TaskTemplate: { Placement: { Constraints: ['node.hostname==n2'] } } },
        [node('n2', { availability: 'pause' })],
        1,
      ),
    ).toMatch(/^no ready, active node/);
  });
  it('more running tasks than the nodes may take back, at most N per node (a node that is down lost its task already)', () => {
    expect(unsatisfiable({ TaskTemplate: { Placement: { MaxReplicas: 1 } } }, nodes, 3)).toMatch(
      /^3 of its tasks run, at most 1 per node, but only 2 ready, active node\(s\)/,
    );
    expect(unsatisfiable({ TaskTemplate: { Placement: { MaxReplicas: 1 } } }, nodes, 2)).toBeUndefined();
  });
});

describe('where a task is probed', () => {
  const task = {
    id: 't',
    name: 'mail_mail.1 on node2',
    labels: {},
    networkMode: 'swarm',
    networks: [{ name: 'mail_mail', id: 'net1', ip: '198.18.129.5' }],
  };
  it('at its address on an overlay network mailcerts shares; never elsewhere', () => {
    const self = {
      id: 's',
      name: 'mc',
      labels: {},
      networkMode: 'swarm',
      networks: [{ name: 'mail_mail', id: 'net1', ip: '198.18.129.2' }],
    };
    expect(reachTask(task, undefined, self)).toEqual({ host: '198.18.129.5' });
    expect(
      reachTask(task, undefined, { ...self, networks: [{ name: 'other', id: 'net2', ip: '198.18.130.2' }] }),
    ).toEqual({ unreachable: expect.stringMatching(/shares no network with mail_mail.1 on node2/) });
    // A host-networked task: its node's address, when mailcerts is on the host's network too.
    const hostTask = { ...task, networkMode: 'host', networks: [] };
    expect(reachTask(hostTask, { ID: 'n2', Status: { Addr: '198.19.255.2' } }, undefined)).toEqual({
      host: '198.19.255.2',
    });
    expect(reachTask(hostTask, { ID: 'n2', Status: { Addr: '198.19.255.2' } }, self)).toEqual({
      unreachable: expect.stringMatching(/uses host networking/),
    });
  });
});

describe('DEPLOY_MODE', () => {
  it('swarm needs reloads on, and a scope when mailcerts runs outside a task', () => {
    const load = (env: Record<string, string>, inContainer: boolean) =>
      loadConfig(env, { yaml, inContainer, parts: CONFIG_PARTS });
    expect(load({ ACME_DOMAINS: 'a.example.com', DEPLOY_MODE: 'swarm' }, true).docker).toMatchObject({
      mode: 'swarm',
      leaseMs: 120_000,
    });
    expect(load({ ACME_DOMAINS: 'a.example.com', DEPLOY_MODE: 'swarm', SWARM_LEASE: '30s' }, true).docker.leaseMs).toBe(
      30_000,
    );
    expect(() => load({ ACME_DOMAINS: 'a.example.com', DEPLOY_MODE: 'swarm', DOCKER_RELOAD: 'false' }, true)).toThrow(
      /DEPLOY_MODE: swarm ships the certificates by updating the labelled services/,
    );
    expect(() => load({ ACME_DOMAINS: 'a.example.com', DEPLOY_MODE: 'swarm' }, false)).toThrow(
      /DOCKER_SCOPE: mailcerts does not run in a Swarm task/,
    );
    expect(() => load({ ACME_DOMAINS: 'a.example.com', DEPLOY_MODE: 'kubernetes' }, true)).toThrow(
      /DEPLOY_MODE: use volume .* or swarm/,
    );
    expect(() => load({ ACME_DOMAINS: 'a.example.com', DEPLOY_MODE: 'swarm', SWARM_LEASE: '1s' }, true)).toThrow(
      /SWARM_LEASE/,
    );
  });
});

describe('a published set as shipped files', () => {
  it('a dual certificate: the plain names hold the first variant, each prefixed name its own; the same content is the same object', async () => {
    const config = await loadConfig(
      { ACME_DOMAINS: 'mail.example.com', ACME_KEY_TYPE: 'ec-256,rsa-2048' },
      { yaml, inContainer: true, parts: CONFIG_PARTS },
    );
    const spec = config.certificates[0]!;
    const ec = makeChain(['mail.example.com']);
    const rsa = makeChain(['mail.example.com'], { leafKey: 'rsa-2048' });
    const bundles = [parseBundle(ec.fullchain, ec.key), parseBundle(rsa.fullchain, rsa.key)];
    const files = shippedFiles(config, spec, { bundle: bundles[0]!, bundles, dual: true, digest: 'x' });
    const byPath = new Map(files.map((f) => [f.path, f]));
    expect([...byPath.keys()]).toEqual(
      expect.arrayContaining([
        'fullchain.pem',
        'privkey-fullchain.pem',
        'ecdsa-privkey.pem',
        'rsa-privkey-fullchain.pem',
        'rsa-chain.pem',
      ]),
    );
    expect(byPath.get('rsa-privkey-fullchain.pem')).toMatchObject({
      secret: true,
      file: 'privkey-fullchain.pem',
      variant: { algorithm: 'rsa', serial: bundles[1]!.serial },
    });
    expect(byPath.get('privkey.pem')!.variant!.algorithm).toBe('ecdsa');
    const name = (path: string) => objectFor(byPath.get(path)!, 'mail').name;
    expect(name('privkey.pem')).toBe(name('ecdsa-privkey.pem'));
    expect(name('rsa-privkey-fullchain.pem')).toMatch(/^mailcerts\.mail\.example\.com\.rsa\.[0-9a-f]{12}\.keychain$/);
    expect(name('rsa-chain.pem')).toMatch(/\.rsa\.[0-9a-f]{12}\.chain$/);
    expect(objectFor(byPath.get('rsa-chain.pem')!, 'mail').kind).toBe('config');
  });
});

describe('mailcerts stack-file', () => {
  it("names, as external objects, what mailcerts mounts in each service now, by the stack file's service names; a docker stack deploy with it keeps them", () => {
    const ref = (kind: 'Secret' | 'Config', id: string, name: string, target: string, mode: number) => ({
      [`${kind}ID`]: id,
      [`${kind}Name`]: name,
      File: { Name: target, UID: '0', GID: '0', Mode: mode },
    });
    const svc = (name: string, secrets: object[], configs: object[]): ServiceView => ({
      ID: name,
      Version: { Index: 1 },
      Spec: {
        Name: name,
        Labels: { 'com.docker.stack.namespace': 'mail' },
        TaskTemplate: { ContainerSpec: { Image: 'x', Secrets: secrets, Configs: configs } },
      },
    });
    const text = stackFile(
      [
        svc(
          'mail_mail',
          [
            ref('Secret', 's1', 'mailcerts.m.ecdsa.abc.key', '/etc/ssl/mail/privkey.pem', 0o600),
            ref('Secret', 'u1', 'db_password', '/run/secrets/db', 0o400),
          ],
          [ref('Config', 'c1', 'mailcerts.m.ecdsa.abc.fullchain', '/etc/ssl/mail/fullchain.pem', 0o644)],
        ),
        svc('mail_new', [], []),
      ],
      new Set(['s1', 'c1']),
      new Date('2026-12-03T00:00:00Z'),
      'mail',
    );
    const doc = yaml.parse(text) as Record<string, Record<string, unknown>>;
    expect(doc.services).toEqual({
      mail: {
        secrets: [
          { source: 'mailcerts.m.ecdsa.abc.key', target: '/etc/ssl/mail/privkey.pem', uid: '0', gid: '0', mode: 0o600 },
        ],
        configs: [
          {
            source: 'mailcerts.m.ecdsa.abc.fullchain',
            target: '/etc/ssl/mail/fullchain.pem',
            uid: '0',
            gid: '0',
            mode: 0o644,
          },
        ],
      },
    });
    // The service's own secrets are the stack file's business; a service with nothing yet is a comment.
    expect(doc.secrets).toEqual({ 'mailcerts.m.ecdsa.abc.key': { external: true } });
    expect(doc.configs).toEqual({ 'mailcerts.m.ecdsa.abc.fullchain': { external: true } });
    expect(text).toContain('# new: mounts no certificate file of mailcerts yet');
    expect(doc.version).toBeUndefined();
    expect((yaml.parse(stackFile([], new Set(), new Date(), 'mail', '3.8')) as { version: string }).version).toBe(
      '3.8',
    );
    // No version of its own: docker stack deploy refuses files whose versions differ. Another stack's services are not named.
    expect(
      yaml.parse(
        stackFile(
          [
            {
              ...svc('other_mail', [], []),
              Spec: { Name: 'other_mail', Labels: { 'com.docker.stack.namespace': 'other' } },
            },
          ],
          new Set(),
          new Date(),
          'mail',
        ),
      ),
    ).toEqual({ services: {} });
  });
});
