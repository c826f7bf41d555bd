import { X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startPebble } from '../../scripts/lib/pebble.mjs';
import { MAIL_IMAGE, ROOT } from '../../scripts/lib/mailstack.mjs';
import { SIGALGS } from '../../src/deploy/probe.js';
import { makeChain } from '../helpers/pki.js';
import { type Swarm, type SwarmNode, startSwarm } from '../helpers/swarm-netns.js';

/**
 * DEPLOY_MODE=swarm on a real three-node Swarm, all three managers (three dockerds in network
 * namespaces of this test's own), with stack.example.yml deployed as written plus an override for
 * the test images: Pebble as the CA, inside node1's namespace; mailcerts pinned to node1 and its
 * socket proxy to node2, so that the engine mailcerts talks to is not its own; one Postfix +
 * Dovecot service with a replica on node1 and one on node2. Every check asks the servers
 * themselves, on each node's published ports.
 */
const run = promisify(execFile);
const work = join(inject('workDir'), 'swarm');
const CACHE = process.env.MAILCERTS_CACHE ?? '/var/cache/mailcerts';
const STACK = 'mail';
const DOMAIN = 'mail.example.test';
const PORTS = { smtps: 465, imaps: 993 };
let swarm: Swarm;
let manager: SwarmNode;
/** The nodes that run the mail service's tasks (node3 runs none). */
let mailNodes: SwarmNode[];
const LEASE = `mailcerts.lease.${STACK}`;
const leaseLabel = (label: string) =>
  manager.docker('config', 'inspect', '-f', `{{index .Spec.Labels "${label}"}}`, LEASE);
let pebble: Awaited<ReturnType<typeof startPebble>>;

async function until<T>(what: string, check: () => Promise<T | undefined | false>, ms = 180_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await check().catch((err: unknown) => ((last = err), undefined));
    if (v) return v;
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await delay(500);
  }
}

/** What a node serves on a port, asked from inside its namespace as a client would: the leaf's SHA-256, or why not. */
async function served(
  node: SwarmNode,
  port: number,
  sigalgs?: string,
): Promise<{ fp?: string; refused?: boolean; error?: string }> {
  const script = `out=$(openssl s_client -connect ${node.address}:${port} -servername ${DOMAIN}${sigalgs ? ` -sigalgs '${sigalgs}'` : ''} </dev/null 2>&1); printf '%s' "$out" >&2; printf '%s' "$out" | openssl x509 -noout -fingerprint -sha256`;
  const r = await run('nsenter', [`--net=/run/netns/${node.netns}`, 'timeout', '10', 'bash', '-c', script]).then(
    (ok) => ({ stdout: ok.stdout, stderr: ok.stderr, code: 0 }),
    (err: { stdout?: string; stderr?: string; code?: number }) => ({
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
      code: err.code ?? 1,
    }),
  );
  const fp = /Fingerprint=([0-9A-F:]+)/.exec(r.stdout)?.[1];
  // A whole handshake names its cipher; a key that does not match its certificate fails after the certificate was sent.
  if (fp)
    return /Cipher is (?!\(NONE\))/.test(r.stderr)
      ? { fp }
      : { fp, error: `the handshake failed after the certificate: ${r.stderr.slice(-300)}` };
  // Refused, or accepted by Docker's port proxy with no task behind it (closed before any handshake).
  if (/errno=111|Connection refused|Cipher is \(NONE\)/.test(r.stderr)) return { refused: true };
  return { error: r.stderr.slice(-400) };
}

const mailcertsContainer = () =>
  manager
    .docker('ps', '-q', '--filter', `label=com.docker.swarm.service.name=${STACK}_mailcerts`)
    .then((s) => s.split('\n')[0] || undefined);
const mailcerts = async (...args: string[]) => {
  const id = await mailcertsContainer();
  if (!id) throw new Error('no running mailcerts task');
  return run('docker', ['-H', manager.host, 'exec', id, 'node', '/app/mailcerts.mjs', ...args], {
    maxBuffer: 16 * 1024 * 1024,
  }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (err: { stdout?: string; stderr?: string; code?: number }) => ({
      code: err.code ?? 1,
      out: (err.stdout ?? '') + (err.stderr ?? ''),
    }),
  );
};
const publishedFp = async () => {
  const id = await mailcertsContainer();
  return new X509Certificate(await manager.docker('exec', id!, 'cat', '/etc/ssl/mail/cert.pem')).fingerprint256;
};
const secrets = async () =>
  (await manager.docker('secret', 'ls', '--format', '{{.Name}}'))
    .split('\n')
    .filter((n) => n.startsWith('mailcerts.'))
    .sort();
const updateState = async (service = `${STACK}_mail`) =>
  manager.docker('service', 'inspect', '-f', '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}', service);
/**
 * What a service's containers on the manager wrote, the gone ones too (mailcerts runs there).
 * Not docker service logs: it shows nothing of a task until it is healthy, and can hang.
 */
const containerLogs = async (service: string, node = manager) => {
  const ids = (await node.docker('ps', '-aq', '--filter', `label=com.docker.swarm.service.name=${service}`))
    .split('\n')
    .filter(Boolean);
  const out = await Promise.all(
    ids.map((id) =>
      run('docker', ['-H', node.host, 'logs', id], { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }).then(
        (r) => r.stdout + r.stderr,
      ),
    ),
  );
  return out
    .join('\n')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
};
const bothServe = async (fp: string) => {
  for (const node of mailNodes)
    for (const port of Object.values(PORTS)) if ((await served(node, port)).fp !== fp) return false;
  return true;
};

/** Probes both nodes again and again until stopped: every answered handshake must give one of the known certificates. */
function watchServed() {
  const seen: { node: string; port: number; fp?: string; refused?: boolean; error?: string }[] = [];
  let on = true;
  const loop = (async () => {
    while (on)
      for (const node of mailNodes)
        for (const port of Object.values(PORTS)) seen.push({ node: node.name, port, ...(await served(node, port)) });
  })();
  return { seen, stop: async () => ((on = false), await loop, seen) };
}

beforeAll(async () => {
  mkdirSync(work, { recursive: true });
  swarm = await startSwarm(
    'sw',
    work,
    { fromCache: { [MAIL_IMAGE]: join(CACHE, 'mailstack-bookworm-3.tar') }, fromHost: [inject('mailcertsImage')] },
    { nodes: 3, join: 'manager' },
  );
  manager = swarm.nodes[0]!;
  mailNodes = swarm.nodes.slice(0, 2);
  // The CA in the manager's namespace, at its link address: mailcerts' overlay containers reach it
  // through their gateway bridge. What it validates is not under test here (HTTP-01 has its own
  // suites), so Pebble takes every challenge as valid.
  pebble = await startPebble({
    dir: join(work, 'pebble'),
    netns: manager.netns,
    host: manager.address,
    env: { PEBBLE_VA_ALWAYS_VALID: '1' },
  });
  chmodSync(pebble.caFile, 0o644);
  // The test image's configs, listening on every address of the task (not only loopback), on the
  // standard ports (each node has its own), as stack.example.yml expects them.
  const STANDARD: Record<string, string> = {
    10025: '25',
    10587: '587',
    10465: '465',
    10143: '143',
    10993: '993',
    10110: '110',
    10995: '995',
    14190: '4190',
  };
  const conf = (file: string, edit: (s: string) => string) => {
    const path = join(work, file.replace(/\//g, '_'));
    const text = readFileSync(join(ROOT, 'docker', 'mailstack', file), 'utf8').replace(
      /\b1[04]\d{3}\b/g,
      (p) => STANDARD[p] ?? p,
    );
    writeFileSync(path, edit(text));
    return path;
  };
  // No name server answers inside the namespaces: Postfix must not wait for the client's name.
  const mainCf = conf(
    'postfix/main.cf',
    (s) => `${s.replace('inet_interfaces = loopback-only', 'inet_interfaces = all')}\nsmtpd_peername_lookup = no\n`,
  );
  const masterCf = conf('postfix/master.cf', (s) => s.replace(/^127\.0\.0\.1:/gm, ''));
  const dovecot = conf('dovecot/dovecot.conf', (s) => s.replace(/^listen = .*$/m, 'listen = *'));
  writeFileSync(
    join(work, 'override.yml'),
    `
services:
  mailcerts:
    image: ${inject('mailcertsImage')}
    environment:
      ACME_DIRECTORY: ${pebble.directoryUrl}
      NODE_EXTRA_CA_CERTS: /pebble-ca.pem
      ACME_DOMAINS: ${DOMAIN}
      HTTP01_PORT: "5002"
      RENEW_CHECK_INTERVAL: 10s
      SWARM_LEASE: 20s
    ports:
      - { target: 5002, published: 5002, protocol: tcp, mode: host }
    configs:
      - source: pebble_ca
        target: /pebble-ca.pem
    deploy:
      placement:
        constraints: [node.hostname == node1]
  socket-proxy:
    image: ${inject('mailcertsImage')}
    deploy:
      placement:
        constraints: [node.hostname == node2]
  mail:
    image: ${MAIL_IMAGE}
    command: [sh, -c, "dovecot && exec postfix start-fg"]
    healthcheck:
      interval: 2s
      retries: 2
    configs:
      - { source: main_cf, target: /etc/postfix/main.cf }
      - { source: master_cf, target: /etc/postfix/master.cf }
      - { source: dovecot_conf, target: /etc/dovecot/dovecot.conf }
    cap_drop: [NET_RAW] # kept through every update: an old API version must not make the engine drop it
    deploy:
      placement:
        constraints: [node.hostname != node3]
      update_config:
        monitor: 8s
configs:
  pebble_ca: { file: ${pebble.caFile} }
  main_cf: { file: ${mainCf} }
  master_cf: { file: ${masterCf} }
  dovecot_conf: { file: ${dovecot} }
`,
  );
  await run(
    'docker',
    [
      '-H',
      manager.host,
      'stack',
      'deploy',
      '-c',
      join(ROOT, 'stack.example.yml'),
      '-c',
      join(work, 'override.yml'),
      STACK,
    ],
    { cwd: ROOT },
  );
}, 600_000);

afterAll(async () => {
  if (process.env.SWARM_TEST_KEEP === '1') return; // debugging: leaves the swarm running
  await pebble?.stop();
  await swarm?.stop();
}, 180_000);

describe('DEPLOY_MODE=swarm on a swarm of three managers', () => {
  let first = '';

  it('issues a certificate, ships it as secrets and configs, and both nodes serve it', async () => {
    first = await until('a published certificate', async () => publishedFp().catch(() => undefined));
    await until('both nodes serving the published certificate', () => bothServe(first));
    const issuer = new X509Certificate(
      await manager.docker('exec', (await mailcertsContainer())!, 'cat', '/etc/ssl/mail/cert.pem'),
    ).issuer;
    expect(issuer).toMatch(/Pebble/);
    const fp12 = first.replace(/:/g, '').toLowerCase().slice(0, 12);
    expect(await secrets()).toEqual([
      `mailcerts.${DOMAIN}.ecdsa.${fp12}.key`,
      `mailcerts.${DOMAIN}.ecdsa.${fp12}.keychain`,
    ]);
    const labels = JSON.parse(
      await manager.docker('secret', 'inspect', '-f', '{{json .Spec.Labels}}', `mailcerts.${DOMAIN}.ecdsa.${fp12}.key`),
    ) as Record<string, string>;
    expect(labels['mailcerts.certificate']).toBe(DOMAIN);
    expect(labels['mailcerts.serial']).toMatch(/^[0-9A-F]+$/);
    // The SNI files are configs of their own, mounted with the rest.
    const configs = (await manager.docker('config', 'ls', '--format', '{{.Name}}'))
      .split('\n')
      .filter((n) => n.startsWith('mailcerts.'));
    expect(
      configs
        .filter((n) => n.startsWith('mailcerts.sni.'))
        .map((n) => n.replace(/^mailcerts\.sni\.[0-9a-f]{12}\./, ''))
        .sort(),
    ).toEqual(['dovecot.conf', 'dovecot24.conf', 'postfix.map']);
    expect(configs.filter((n) => n.includes(fp12)).sort()).toEqual(
      ['cert', 'chain', 'fullchain'].map((f) => `mailcerts.${DOMAIN}.ecdsa.${fp12}.${f}`),
    );
    const task = (
      await manager.docker('ps', '-q', '--filter', `label=com.docker.swarm.service.name=${STACK}_mail`)
    ).split('\n')[0]!;
    expect(
      await manager.docker(
        'exec',
        task,
        'sh',
        '-c',
        'cd /etc/ssl/mail && ls sni && cat sni/postfix.map | grep -v "^#"',
      ),
    ).toBe(`dovecot.conf\ndovecot24.conf\npostfix.map\n${DOMAIN} /etc/ssl/mail/privkey-fullchain.pem`);
    // The tasks run on both nodes, one each.
    const nodesOfTasks = (
      await manager.docker('service', 'ps', '-f', 'desired-state=running', '--format', '{{.Node}}', `${STACK}_mail`)
    )
      .split('\n')
      .sort();
    expect(nodesOfTasks).toEqual(['node1', 'node2']);
    // mailcerts on node1 talks to the engine of node2 (its proxy's), and still knows its own task,
    // holds the lease (a config, not its service's labels) and verified every task.
    const nodeOf = async (service: string) =>
      manager.docker('service', 'ps', '-f', 'desired-state=running', '--format', '{{.Node}}', service);
    expect([await nodeOf(`${STACK}_mailcerts`), await nodeOf(`${STACK}_socket-proxy`)]).toEqual(['node1', 'node2']);
    const ownTask = await manager.docker('service', 'ps', '-q', '-f', 'desired-state=running', `${STACK}_mailcerts`);
    expect(await leaseLabel('mailcerts.lease.holder')).toBe(ownTask);
    expect(
      await manager.docker('service', 'inspect', '-f', '{{json .Spec.Labels}}', `${STACK}_mailcerts`),
    ).not.toContain('mailcerts.lease');
    await until(
      'both tasks verified',
      async () =>
        (await containerLogs(`${STACK}_mailcerts`)).filter((l) => l.msg === 'task serves the published certificate')
          .length >= 2,
      60_000,
    );
    expect((await containerLogs(`${STACK}_mailcerts`)).filter((l) => l.problem === 'unreachable')).toEqual([]);
  }, 420_000);

  it('renew --force rolls the new certificate through both nodes, every handshake meanwhile giving the old or the new one; the objects of old versions go', async () => {
    const versions = [first];
    for (let round = 0; round < 2; round++) {
      const watch = watchServed();
      const r = await mailcerts('renew', '--force');
      const seen = await watch.stop();
      expect(r.code, r.out).toBe(0);
      const now = await publishedFp();
      expect(versions).not.toContain(now);
      expect(await bothServe(now)).toBe(true);
      expect(await updateState()).toBe('completed');
      // Each node was asked while Swarm replaced its task: answered handshakes only ever gave a whole, known pair.
      const answered = seen.filter((s) => s.fp);
      expect(answered.length).toBeGreaterThan(4);
      expect(answered.filter((s) => s.fp !== versions.at(-1) && s.fp !== now)).toEqual([]);
      expect(answered.filter((s) => s.error)).toEqual([]);
      // The rest found no server at that moment (its task being replaced), never a broken one.
      expect(seen.filter((s) => !s.fp && !s.refused)).toEqual([]);
      expect(new Set(answered.filter((s) => s.fp === now).map((s) => s.node))).toEqual(new Set(['node1', 'node2']));
      // Task by task: one node served the new certificate while the other still served the old one.
      const firstNew = (node: string) => seen.findIndex((s) => s.node === node && s.fp === now);
      const [early, late] = ['node1', 'node2'].sort((a, b) => firstNew(a) - firstNew(b)) as [string, string];
      expect(
        seen.slice(firstNew(early), firstNew(late)).some((s) => s.node === late && s.fp === versions.at(-1)),
        'both tasks were replaced at once',
      ).toBe(true);
      // mailcerts then verified each of the two replicas on its own node.
      const verified = r.out
        .split('\n')
        .filter((l) => l.includes('"task serves the published certificate"'))
        .map((l) => String((JSON.parse(l) as { container: string }).container));
      expect(verified).toHaveLength(2);
      for (const v of verified) expect(v).toMatch(new RegExp(`^${STACK}_mail\\.[12] on node[12]$`));
      expect(new Set(verified.map((v) => v.slice(-5)))).toEqual(new Set(['node1', 'node2']));
      expect(new Set(verified.map((v) => v.split(' ')[0]))).toHaveProperty('size', 2);
      versions.push(now);
    }
    const fp12 = (fp: string) => fp.replace(/:/g, '').toLowerCase().slice(0, 12);
    // The version in use and the one before it stay (a rollback needs it); the first is gone.
    const names = await secrets();
    expect(names.some((n) => n.includes(fp12(versions[0]!)))).toBe(false);
    expect(names.filter((n) => n.includes(fp12(versions[1]!)))).toHaveLength(2);
    expect(names.filter((n) => n.includes(fp12(versions[2]!)))).toHaveLength(2);
    first = versions[2]!;
  }, 600_000);

  it("a second stack by mistake, with its own proxy on node3, sees the first one's lease and stays passive; a mailcerts that cannot say which task it is never leads", async () => {
    const holder = await leaseLabel('mailcerts.lease.holder');
    expect(holder).toMatch(/^[a-z0-9]{25}$/);
    const node3 = swarm.nodes[2]!;
    const mailcerts2 = (extra: string) => `
    image: ${inject('mailcertsImage')}
    environment:
      DEPLOY_MODE: swarm
      ACME_DOMAINS: ${DOMAIN}
      ACME_DIRECTORY: ${pebble.directoryUrl}
      NODE_EXTRA_CA_CERTS: /pebble-ca.pem
      DOCKER_HOST: tcp://socket-proxy:2375
      SWARM_LEASE: 10s${extra}
    configs: [{ source: pebble_ca, target: /pebble-ca.pem }]
    networks: [docker-api]
    deploy: { placement: { constraints: [node.hostname == node3] } }`;
    writeFileSync(
      join(work, 'mail2.yml'),
      `
services:
  mailcerts:${mailcerts2('\n      MAILCERTS_TASK_ID: "{{.Task.ID}}"')}
  anonymous:${mailcerts2('')}
  socket-proxy:
    image: ${inject('mailcertsImage')}
    command: [proxy]
    user: root
    environment: { PROXY_BIND: 0.0.0.0:2375, PROXY_SWARM: "yes" }
    networks: [docker-api]
    volumes: [/var/run/docker.sock:/var/run/docker.sock:ro]
    deploy: { endpoint_mode: dnsrr, placement: { constraints: [node.hostname == node3] } }
networks:
  docker-api: { driver: overlay, internal: true }
configs:
  pebble_ca: { file: ${pebble.caFile} }
`,
    );
    await manager.docker('stack', 'deploy', '-c', join(work, 'mail2.yml'), 'mail2');
    try {
      // The default check interval (12h): a passive mailcerts looks at the lease again within half a SWARM_LEASE all the same.
      const passive = await until('the second mailcerts saying it is passive', async () =>
        (await containerLogs('mail2_mailcerts', node3)).find(
          (l) =>
            typeof l.why === 'string' &&
            l.why.startsWith(
              `the mailcerts of stack ${STACK} (${holder}) holds the lease for some of the same names (config ${LEASE})`,
            ),
        ),
      );
      expect(passive.msg).toBe('passive: another mailcerts issues and deploys; checking again at the next pass');
      await until(
        'the second mailcerts looking at the lease again, 5 s later',
        async () =>
          (await containerLogs('mail2_mailcerts', node3)).filter((l) => l.step === 'lease' && l.why).length >= 2,
        30_000,
      );
      // Without MAILCERTS_TASK_ID it cannot tell which task it is: it does nothing, and says what to set.
      const anonymous = await until('the anonymous mailcerts refusing to lead', async () =>
        (await containerLogs('mail2_anonymous', node3)).find(
          (l) =>
            l.msg === 'cannot tell whether another mailcerts holds the lease; nothing was done' &&
            String(l.error).includes('MAILCERTS_TASK_ID'),
        ),
      );
      expect(String(anonymous.error)).toContain(
        'MAILCERTS_TASK_ID is not set: set MAILCERTS_TASK_ID: "{{.Task.ID}}" in the environment of the mailcerts service',
      );
      // They ordered and published nothing, and the first one keeps (and renews) its lease.
      for (const service of ['mail2_mailcerts', 'mail2_anonymous'])
        expect(
          (await containerLogs(service, node3)).filter((l) => ['order created', 'published'].includes(String(l.msg))),
        ).toEqual([]);
      expect(
        (await manager.docker('config', 'ls', '--format', '{{.Name}}'))
          .split('\n')
          .filter((n) => n.startsWith('mailcerts.lease.')),
      ).toEqual([LEASE]);
      const renewed = await leaseLabel('mailcerts.lease.renewed');
      await until('the lease renewed', async () => (await leaseLabel('mailcerts.lease.renewed')) > renewed, 30_000);
      expect(await leaseLabel('mailcerts.lease.holder')).toBe(holder);
    } finally {
      await manager.docker('stack', 'rm', 'mail2');
    }
  }, 300_000);

  it('a mailcerts killed in the middle of a rolling update: the next one finishes it, and nothing is lost', async () => {
    const before = await publishedFp();
    const killedTask = await mailcertsContainer();
    const renewing = mailcerts('renew', '--force');
    await until(
      'the mail service in the middle of its update',
      async () => (await updateState()) === 'updating',
      120_000,
    );
    await manager.docker('kill', killedTask!);
    const r = await renewing;
    expect(r.code).not.toBe(0); // it was killed
    const now = await until(
      'a new mailcerts task, and a newly published certificate on both nodes',
      async () => {
        const id = await mailcertsContainer();
        if (!id || id === killedTask) return undefined;
        const fp = await publishedFp();
        return fp !== before && (await bothServe(fp)) ? fp : undefined;
      },
      300_000,
    );
    await until('the update completed', async () => (await updateState()) === 'completed', 120_000);
    const serial = new X509Certificate(
      await manager.docker('exec', (await mailcertsContainer())!, 'cat', '/etc/ssl/mail/cert.pem'),
    ).serialNumber;
    // The new task took the lease at once (the holder's task was gone) and recorded the deploy itself.
    await until('the new task recording the certificate as deployed', async () =>
      (await containerLogs(`${STACK}_mailcerts`)).some((l) => l.msg === 'deployed' && l.serial === serial),
    );
    expect(now).not.toBe(before);
  }, 600_000);

  it('bad services are named and left alone: a path taken by a secret of their own, a hostile target label, tasks that could not start again', async () => {
    await run('bash', ['-c', `echo not-a-key | docker -H ${manager.host} secret create clash_key -`]);
    const common = [
      '--label',
      `com.docker.stack.namespace=${STACK}`,
      '--label',
      'mailcerts.reload=postfix',
      '--label',
      'mailcerts.verify=off',
      '--network',
      `${STACK}_mail`,
    ];
    await manager.docker(
      'service',
      'create',
      '-d',
      '--name',
      `${STACK}_clash`,
      ...common,
      '--label',
      'mailcerts.secret-target=/etc/ssl/mail',
      '--secret',
      'source=clash_key,target=/etc/ssl/mail/privkey.pem',
      MAIL_IMAGE,
      'sleep',
      'infinity',
    );
    await manager.docker(
      'service',
      'create',
      '-d',
      '--name',
      `${STACK}_pinned`,
      ...common,
      '--constraint',
      'node.hostname==node2',
      MAIL_IMAGE,
      'sleep',
      'infinity',
    );
    await manager.docker(
      'service',
      'create',
      '-d',
      '--name',
      `${STACK}_hostile`,
      ...common,
      '--label',
      'mailcerts.secret-target=/etc/../root',
      MAIL_IMAGE,
      'sleep',
      'infinity',
    );
    const names = ['clash', 'pinned', 'hostile', 'mail'].map((n) => `${STACK}_${n}`);
    const running = async () =>
      Promise.all(
        names.map(async (n) =>
          (await manager.docker('service', 'ps', '-q', '-f', 'desired-state=running', n))
            .split('\n')
            .filter(Boolean)
            .sort(),
        ),
      );
    const versions = async () =>
      Promise.all(names.map((n) => manager.docker('service', 'inspect', '-f', '{{.Version.Index}}', n)));
    await until(
      'the new services running',
      async () =>
        (await running()).every((t) => t.length > 0) &&
        (
          await manager.docker(
            'service',
            'ps',
            '-f',
            'desired-state=running',
            '--format',
            '{{.CurrentState}}',
            ...names,
          )
        )
          .split('\n')
          .every((l) => l.startsWith('Running')),
    );
    // The daemon's next pass ships the files to the one that may have them (pinned); let it settle.
    await until(
      'the pinned service shipped and settled',
      async () =>
        (
          await manager.docker(
            'service',
            'inspect',
            '-f',
            '{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}',
            `${STACK}_pinned`,
          )
        ).includes('mailcerts.') && (await updateState(`${STACK}_pinned`)) === 'completed',
      120_000,
    );
    // node2 paused: its tasks go on running, but no new task may start there, so a replaced task
    // of a service pinned to it (or of the mail service, one per node) could not start anywhere.
    await manager.docker('node', 'update', '--availability', 'pause', 'node2');
    const before = {
      tasks: await running(),
      versions: await versions(),
      served: await publishedFp(),
      secrets: await secrets(),
    };
    try {
      const r = await mailcerts('renew', '--force');
      expect(r.code, r.out).toBe(1);
      const out = r.out.replace(/\\"/g, '"'); // the JSON log's quotes
      expect(out).toContain(
        `container ${STACK}_clash: service ${STACK}_clash not updated: its secret clash_key is mounted at /etc/ssl/mail/privkey.pem, where mailcerts would mount a certificate file; set mailcerts.secret-target to another directory`,
      );
      expect(out).toContain(
        `container ${STACK}_pinned: service ${STACK}_pinned not updated: no ready, active node satisfies its placement constraints (node.hostname==node2), so its new tasks could not start`,
      );
      expect(out).toContain(
        `container ${STACK}_mail: service ${STACK}_mail not updated: 2 of its tasks run, at most 1 per node, but only 1 ready, active node(s) satisfy its constraints; a replaced task could not start again`,
      );
      expect(out).toContain(
        `container ${STACK}_hostile: label mailcerts.secret-target "/etc/../root" is not an absolute directory`,
      );
      // Untouched: the same spec versions, the same running tasks, the old certificate served, no object removed.
      expect(await versions()).toEqual(before.versions);
      expect(await running()).toEqual(before.tasks);
      expect(await bothServe(before.served)).toBe(true);
      expect((await secrets()).filter((n) => before.secrets.includes(n))).toEqual(before.secrets);
    } finally {
      await manager.docker('node', 'update', '--availability', 'active', 'node2');
      await manager.docker('service', 'rm', `${STACK}_clash`, `${STACK}_pinned`, `${STACK}_hostile`);
    }
    // The next pass deploys what was published.
    const now = await publishedFp();
    expect(now).not.toBe(before.served);
    await until('both nodes serving the certificate published meanwhile', () => bothServe(now), 300_000);
  }, 600_000);

  it('the socket proxy on another manager judges what it forwards: hostile updates, creates, deletes and reads are refused, and nothing changes', async () => {
    const id = (await mailcertsContainer())!;
    /** A call from inside mailcerts' container, as mailcerts makes it: the status and the proxy's word. */
    const call = async (method: string, path: string, body?: unknown) =>
      JSON.parse(
        await manager.docker(
          'exec',
          id,
          'node',
          '-e',
          `fetch('http://socket-proxy:2375${path}', { method: '${method}', ${body !== undefined ? `body: ${JSON.stringify(typeof body === 'string' ? body : JSON.stringify(body))}, headers: { 'content-type': 'application/json' }` : ''} }).then(async (r) => console.log(JSON.stringify({ status: r.status, text: await r.text() })))`,
        ),
      ) as { status: number; text: string };
    await run('bash', ['-c', `echo hunter2 | docker -H ${manager.host} secret create db_root_password -`]);
    await manager.docker(
      'service',
      'create',
      '-d',
      '--name',
      'outsider',
      '--label',
      'mailcerts.reload=postfix',
      '--env',
      'DB_PASSWORD=hunter2',
      '--constraint',
      'node.hostname==node3',
      MAIL_IMAGE,
      'sleep',
      'infinity',
    );
    try {
      // Read as mailcerts reads them, from the API (the CLI's inspect output spells some fields otherwise).
      const readService = async (name: string) =>
        JSON.parse(
          (
            await call(
              'GET',
              `/v1.41/services/${(await manager.docker('service', 'inspect', '-f', '{{.ID}}', name)).trim()}`,
            )
          ).text,
        ) as { ID: string; Version: { Index: number }; Spec: Record<string, any> };
      const mail = await readService(`${STACK}_mail`);
      const snapshot = async () => ({
        versions: await Promise.all(
          [`${STACK}_mail`, 'outsider', `${STACK}_mailcerts`].map((n) =>
            manager.docker('service', 'inspect', '-f', '{{.Version.Index}}', n),
          ),
        ),
        secrets: await manager.docker('secret', 'ls', '--format', '{{.Name}}'),
        configs: await manager.docker('config', 'ls', '--format', '{{.Name}}'),
      });
      const before = await snapshot();
      const update = (edit: (spec: Record<string, any>) => void, service = mail) => {
        const spec = structuredClone(service.Spec);
        edit(spec);
        return call('POST', `/v1.41/services/${service.ID}/update?version=${service.Version.Index}`, spec);
      };
      const refused = (r: { status: number; text: string }, why: string) => {
        expect(r.status).toBe(403);
        expect(JSON.parse(r.text).message).toContain(why);
      };
      // Any other spec: another image, a bind mount of /, every capability.
      refused(
        await update((s) => (s.TaskTemplate.ContainerSpec.Image = 'evil:latest')),
        'changes TaskTemplate.ContainerSpec.Image',
      );
      refused(
        await update((s) => (s.TaskTemplate.ContainerSpec.Mounts = [{ Type: 'bind', Source: '/', Target: '/host' }])),
        'changes TaskTemplate.ContainerSpec.Mounts',
      );
      refused(
        await update((s) => (s.TaskTemplate.ContainerSpec.CapabilityAdd = ['ALL'])),
        'changes TaskTemplate.ContainerSpec.CapabilityAdd',
      );
      // A foreign secret mounted into the mail service, and a service outside the stack.
      const foreign = (await manager.docker('secret', 'inspect', '-f', '{{.ID}}', 'db_root_password')).trim();
      refused(
        await update((s) =>
          s.TaskTemplate.ContainerSpec.Secrets.push({
            File: { Name: '/etc/ssl/mail/x', UID: '0', GID: '0', Mode: 292 },
            SecretID: foreign,
            SecretName: 'db_root_password',
          }),
        ),
        'db_root_password was not made by mailcerts for mail',
      );
      const outsider = JSON.parse(await manager.docker('service', 'inspect', 'outsider'))[0] as typeof mail;
      refused(await call('GET', `/v1.41/services/${outsider.ID}`), 'that service is not of this stack');
      refused(await update(() => undefined, outsider), 'service outsider is not part of mail');
      // Creates: a second Name (Docker would keep the last), a case variant, another stack's label.
      refused(
        await call(
          'POST',
          '/v1.41/secrets/create',
          `{"Name":"mailcerts.x","Labels":{"mailcerts.managed-by":"${STACK}"},"Data":"eA==","Name":"db_root_password"}`,
        ),
        'the key "Name" appears twice',
      );
      refused(
        await call(
          'POST',
          '/v1.41/secrets/create',
          `{"Name":"mailcerts.x","Labels":{"mailcerts.managed-by":"${STACK}"},"Data":"eA==","name":"db_password"}`,
        ),
        'differ only in case',
      );
      refused(
        await call('POST', '/v1.41/configs/create', {
          Name: 'mailcerts.x',
          Labels: { 'mailcerts.managed-by': 'other' },
          Data: 'eA==',
        }),
        'must carry mailcerts.managed-by=mail',
      );
      // Deletes of what mailcerts did not make: a secret, and a config of the stack itself.
      refused(await call('DELETE', `/v1.41/secrets/${foreign}`), 'was not made by mailcerts for mail');
      const mainCf = (await manager.docker('config', 'inspect', '-f', '{{.ID}}', `${STACK}_main_cf`)).trim();
      refused(await call('DELETE', `/v1.41/configs/${mainCf}`), 'was not made by mailcerts for mail');
      // Reads: configs (their data) and tasks (their environment) outside what mailcerts needs.
      const configs = await call('GET', '/v1.41/configs');
      expect(configs.status).toBe(200);
      const listed = (JSON.parse(configs.text) as { Spec: { Name: string } }[]).map((c) => c.Spec.Name);
      expect(listed).toContain(LEASE);
      expect(listed.every((n) => n.startsWith('mailcerts.'))).toBe(true);
      refused(await call('GET', `/v1.41/configs/${mainCf}`), 'that config is not of this stack');
      const tasks = await call('GET', '/v1.41/tasks');
      expect(tasks.status).toBe(200);
      expect(tasks.text).not.toContain('hunter2');
      expect(tasks.text).toContain(mail.ID);
      refused(await call('GET', `/v1.41/secrets/${foreign}`), 'not a call mailcerts makes');
      refused(await call('POST', '/v1.41/services/create', { Name: 'evil' }), 'not a call mailcerts makes');
      refused(await call('POST', '/v1.41/swarm/leave?force=1'), 'not a call mailcerts makes');
      expect(await snapshot()).toEqual(before);
      expect(
        await manager.docker('service', 'inspect', '-f', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', `${STACK}_mail`),
      ).toBe(MAIL_IMAGE);
      // The service as the proxy shows it has no environment; an update sent under an old API
      // version (which has the engine drop the fields it did not know, CapabilityDrop among them)
      // is forwarded as the engine's own version: the spec it judged unchanged stays unchanged.
      expect(mail.Spec.TaskTemplate.ContainerSpec.Env).toBeUndefined();
      const drop = mail.Spec.TaskTemplate.ContainerSpec.CapabilityDrop as string[];
      expect(JSON.stringify(drop)).toMatch(/NET_RAW/);
      const same = await call('POST', `/v1.40/services/${mail.ID}/update?version=${mail.Version.Index}`, mail.Spec);
      expect(same.status, same.text).toBe(200);
      expect(
        JSON.parse(
          await manager.docker(
            'service',
            'inspect',
            '-f',
            '{{json .Spec.TaskTemplate.ContainerSpec.CapabilityDrop}}',
            `${STACK}_mail`,
          ),
        ),
      ).toEqual(drop);
      expect(
        await until('the no-op update settled', async () => !['updating'].includes(await updateState()), 60_000),
      ).toBe(true);
    } finally {
      await manager.docker('service', 'rm', 'outsider');
      await manager.docker('secret', 'rm', 'db_root_password');
    }
  }, 180_000);

  it("an upgrade of mailcerts' image can be rolled back with docker service rollback: renewing the lease never touches its service", async () => {
    const image = inject('mailcertsImage');
    for (const n of swarm.nodes) await n.docker('tag', image, 'mailcerts:next');
    const imageOf = () =>
      manager.docker('service', 'inspect', '-f', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', `${STACK}_mailcerts`);
    const runningImage = async () => {
      const id = await mailcertsContainer();
      return id ? manager.docker('inspect', '-f', '{{.Config.Image}}', id) : undefined;
    };
    await manager.docker(
      'service',
      'update',
      '-d',
      '--no-resolve-image',
      '--image',
      'mailcerts:next',
      `${STACK}_mailcerts`,
    );
    await until(
      'mailcerts:next running and holding the lease',
      async () =>
        (await runningImage()) === 'mailcerts:next' &&
        (await leaseLabel('mailcerts.lease.holder')) ===
          (await manager.docker('service', 'ps', '-q', '-f', 'desired-state=running', `${STACK}_mailcerts`)),
      180_000,
    );
    // Renewals, every third of SWARM_LEASE (20 s): the service spec stays as the upgrade left it.
    const version = await manager.docker('service', 'inspect', '-f', '{{.Version.Index}}', `${STACK}_mailcerts`);
    const renewed = await leaseLabel('mailcerts.lease.renewed');
    await until(
      'two renewals of the lease',
      async () =>
        (await leaseLabel('mailcerts.lease.renewed')) > renewed &&
        (await delay(7_000), (await leaseLabel('mailcerts.lease.renewed')) > renewed),
      60_000,
    );
    expect(await manager.docker('service', 'inspect', '-f', '{{.Version.Index}}', `${STACK}_mailcerts`)).toBe(version);
    await manager.docker('service', 'rollback', '-d', `${STACK}_mailcerts`);
    expect(await imageOf()).toBe(image);
    await until(
      'the previous image running again and holding the lease',
      async () =>
        (await runningImage()) === image &&
        (await leaseLabel('mailcerts.lease.holder')) ===
          (await manager.docker('service', 'ps', '-q', '-f', 'desired-state=running', `${STACK}_mailcerts`)),
      180_000,
    );
  }, 420_000);

  it('docker stack deploy with mailcerts stack-file keeps the certificate files; a service that lost them gets them back at the next pass', async () => {
    const fp = await publishedFp();
    const mailSecrets = () =>
      manager.docker(
        'service',
        'inspect',
        '-f',
        '{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}}@{{.File.Name}} {{end}}',
        `${STACK}_mail`,
      );
    const before = await mailSecrets();
    expect(before).toContain('mailcerts.');
    // As the README says: the file made just before, merged after the stack's own.
    const made = await run('docker', [
      '-H',
      manager.host,
      'exec',
      (await mailcertsContainer())!,
      'node',
      '/app/mailcerts.mjs',
      'stack-file',
    ]);
    const file = join(work, 'mailcerts.yml');
    writeFileSync(file, made.stdout);
    expect(made.stdout).toContain(`services:\n  "mail":\n    secrets:\n`);
    const deployed = new Date().toISOString();
    await run(
      'docker',
      [
        '-H',
        manager.host,
        'stack',
        'deploy',
        '-c',
        join(ROOT, 'stack.example.yml'),
        '-c',
        join(work, 'override.yml'),
        '-c',
        file,
        STACK,
      ],
      { cwd: ROOT },
    );
    expect((await mailSecrets()).split(' ').sort()).toEqual(before.split(' ').sort());
    await until(
      'the mail service settled after the stack deploy',
      async () => !['updating', 'rollback_started'].includes(await updateState()),
      120_000,
    );
    expect(await updateState()).not.toMatch(/rollback/);
    expect(await bothServe(fp)).toBe(true);
    // Nothing for mailcerts to repair.
    await delay(12_000);
    expect(
      (await containerLogs(`${STACK}_mailcerts`)).filter(
        (l) => String(l.time) > deployed && l.msg === 'updating the service to the new secrets and configs',
      ),
    ).toEqual([]);

    // The key files taken away by hand (as a stack deploy without the file does), and the update
    // let through although the tasks fail: the next pass mounts them again.
    const keys = before
      .split(' ')
      .filter((r) => r.startsWith('mailcerts.'))
      .map((r) => r.split('@')[0]!);
    const lost = new Date().toISOString();
    await manager.docker(
      'service',
      'update',
      '-d',
      '--update-failure-action',
      'continue',
      ...keys.flatMap((k) => ['--secret-rm', k]),
      `${STACK}_mail`,
    );
    await until(
      'mailcerts mounting the files again',
      async () =>
        (await containerLogs(`${STACK}_mailcerts`)).some(
          (l) =>
            String(l.time) > lost &&
            l.msg === 'updating the service to the new secrets and configs' &&
            l.service === `${STACK}_mail`,
        ),
      120_000,
    );
    await until(
      'both nodes serving the certificate again, every task verified',
      async () =>
        (await updateState()) === 'completed' &&
        (await bothServe(fp)) &&
        (await containerLogs(`${STACK}_mailcerts`)).filter(
          (l) => String(l.time) > lost && l.msg === 'task serves the published certificate',
        ).length >= 2,
      240_000,
    );
    expect((await mailSecrets()).split(' ').sort()).toEqual(before.split(' ').sort());
  }, 500_000);

  it('a new certificate that breaks the mail server: Swarm rolls the update back, the old one is still served, mailcerts reports it and rolls its own copy back', async () => {
    const good = await publishedFp();
    const custom = join(work, 'custom');
    mkdirSync(custom, { recursive: true, mode: 0o755 });
    // Passes mailcerts' own checks; Dovecot refuses a 1024-bit RSA key, so the task's health check fails.
    const weak = makeChain([DOMAIN], { leafKey: 'rsa-1024' });
    writeFileSync(join(custom, 'fullchain.pem'), weak.fullchain, { mode: 0o644 });
    writeFileSync(join(custom, 'privkey.pem'), weak.key, { mode: 0o644 });
    const since = new Date().toISOString();
    await manager.docker(
      'service',
      'update',
      '-d',
      '--env-add',
      'CUSTOM_CERTS_DIR=/custom',
      '--mount-add',
      `type=bind,source=${custom},target=/custom,readonly`,
      `${STACK}_mailcerts`,
    );
    try {
      const reported = await until(
        'mailcerts reporting the rollback',
        async () =>
          (await containerLogs(`${STACK}_mailcerts`)).find(
            (l) => String(l.time) > since && l.msg === 'new certificate rolled back',
          ),
        400_000,
      );
      expect(String(reported.error)).toMatch(
        new RegExp(
          `^serial ${new X509Certificate(weak.leaf).serialNumber} was rolled back to .* because container ${STACK}_mail: Swarm rolled the update of ${STACK}_mail back: .*; the previous certificate is served again$`,
        ),
      );
      expect(await updateState()).toBe('rollback_completed');
      expect(await publishedFp()).toBe(good);
      expect(await bothServe(good)).toBe(true);
      // Retried through the backoff, not at the next pass: nothing else is rolled out meanwhile.
      // Present first: a missing one would compare as 'undefined', which sorts after every date.
      expect(reported.nextAttemptAt).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(String(reported.nextAttemptAt) > new Date(Date.now() + 30_000).toISOString()).toBe(true);
      await delay(15_000);
      expect(await updateState()).toBe('rollback_completed');
    } finally {
      await manager.docker(
        'service',
        'update',
        '--env-rm',
        'CUSTOM_CERTS_DIR',
        '--mount-rm',
        '/custom',
        `${STACK}_mailcerts`,
      );
    }
  }, 600_000);

  it("a dual certificate (ECDSA and RSA): each variant's files are shipped, and every task gives each one to a client that offers only its algorithm", async () => {
    // The mail service goes, and one configured for both variants comes (as a stack would).
    await manager.docker('service', 'rm', `${STACK}_mail`);
    const since = new Date().toISOString();
    const before = await mailcertsContainer();
    await manager.docker('service', 'update', '-d', '--env-add', 'ACME_KEY_TYPE=ec-256,rsa-2048', `${STACK}_mailcerts`);
    await until('the new mailcerts task', async () => ((await mailcertsContainer()) ?? before) !== before, 120_000);
    // Now, not after the backoff that the broken certificate before left.
    const r = await until(
      'renew --force in the new task',
      async () => {
        const out = await mailcerts('renew', '--force').catch(() => undefined);
        return out && !/no running mailcerts task|is not running/.test(out.out) ? out : undefined;
      },
      120_000,
    );
    expect(r.code, r.out).toBe(0);
    const dual = await until(
      'the dual set published',
      async () => {
        const id = await mailcertsContainer();
        const pem = id
          ? await manager
              .docker(
                'exec',
                id,
                'sh',
                '-c',
                'cat /etc/ssl/mail/ecdsa-cert.pem && echo === && cat /etc/ssl/mail/rsa-cert.pem',
              )
              .catch(() => '')
          : '';
        const [ec, rsa] = pem.split('===');
        return ec && rsa
          ? { ecdsa: new X509Certificate(ec).fingerprint256, rsa: new X509Certificate(rsa).fingerprint256 }
          : undefined;
      },
      180_000,
    );
    const chains = '/etc/ssl/mail/ecdsa-privkey-fullchain.pem, /etc/ssl/mail/rsa-privkey-fullchain.pem';
    const mainCf = join(work, 'dual_main.cf');
    writeFileSync(
      mainCf,
      readFileSync(join(work, 'postfix_main.cf'), 'utf8').replace(
        /^smtpd_tls_chain_files = .*$/m,
        `smtpd_tls_chain_files = ${chains}`,
      ),
    );
    const dovecot = join(work, 'dual_dovecot.conf');
    writeFileSync(
      dovecot,
      readFileSync(join(work, 'dovecot_dovecot.conf'), 'utf8')
        .replace('ssl_cert = </etc/ssl/mail/fullchain.pem', 'ssl_cert = </etc/ssl/mail/ecdsa-privkey-fullchain.pem')
        .replace(
          'ssl_key = </etc/ssl/mail/privkey.pem',
          'ssl_key = </etc/ssl/mail/ecdsa-privkey-fullchain.pem\nssl_alt_cert = </etc/ssl/mail/rsa-privkey-fullchain.pem\nssl_alt_key = </etc/ssl/mail/rsa-privkey-fullchain.pem',
        ),
    );
    for (const [name, path] of [
      ['dual_main_cf', mainCf],
      ['dual_master_cf', join(work, 'postfix_master.cf')],
      ['dual_dovecot', dovecot],
    ] as const)
      await manager.docker('config', 'create', name, path);
    // Its tasks fail until mailcerts has shipped the files: the next pass does (a service it has not served yet).
    await manager.docker(
      'service',
      'create',
      '-d',
      '--name',
      `${STACK}_dual`,
      '--replicas',
      '2',
      '--replicas-max-per-node',
      '1',
      '--constraint',
      'node.hostname!=node3',
      '--network',
      `${STACK}_mail`,
      '--label',
      `com.docker.stack.namespace=${STACK}`,
      '--label',
      'mailcerts.reload=postfix',
      '--label',
      'mailcerts.secret-target=/etc/ssl/mail',
      ...Object.values(PORTS).flatMap((p) => ['--publish', `mode=host,target=${p},published=${p}`]),
      '--config',
      'source=dual_main_cf,target=/etc/postfix/main.cf',
      '--config',
      'source=dual_master_cf,target=/etc/postfix/master.cf',
      '--config',
      'source=dual_dovecot,target=/etc/dovecot/dovecot.conf',
      MAIL_IMAGE,
      'sh',
      '-c',
      'dovecot && exec postfix start-fg',
    );
    const servesEach = async () => {
      for (const node of mailNodes)
        for (const port of Object.values(PORTS))
          for (const alg of ['ecdsa', 'rsa'] as const)
            if ((await served(node, port, SIGALGS[alg])).fp !== dual[alg]) return false;
      return true;
    };
    await until('both nodes giving each variant to a client that offers only its algorithm', servesEach, 300_000);
    // mailcerts verified each variant on each task, offering only that algorithm, as for containers.
    await until(
      'mailcerts verifying both tasks',
      async () =>
        (await containerLogs(`${STACK}_mailcerts`)).filter(
          (l) =>
            String(l.time) > since &&
            l.msg === 'task serves the published certificate' &&
            String(l.container).startsWith(`${STACK}_dual.`),
        ).length >= 2,
      120_000,
    );
    const fp12 = (fp: string) => fp.replace(/:/g, '').toLowerCase().slice(0, 12);
    const names = await secrets();
    expect(names).toEqual(
      expect.arrayContaining([
        `mailcerts.${DOMAIN}.ecdsa.${fp12(dual.ecdsa)}.key`,
        `mailcerts.${DOMAIN}.rsa.${fp12(dual.rsa)}.key`,
        `mailcerts.${DOMAIN}.rsa.${fp12(dual.rsa)}.keychain`,
      ]),
    );
    const mounted = await manager.docker(
      'service',
      'inspect',
      '-f',
      '{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.File.Name}} {{end}}',
      `${STACK}_dual`,
    );
    expect(mounted.split(' ').filter(Boolean).sort()).toEqual(
      [
        'ecdsa-privkey-fullchain.pem',
        'ecdsa-privkey.pem',
        'privkey-fullchain.pem',
        'privkey.pem',
        'rsa-privkey-fullchain.pem',
        'rsa-privkey.pem',
      ].map((f) => `/etc/ssl/mail/${f}`),
    );
  }, 600_000);
});

describe('DEPLOY_MODE=swarm: bad input', () => {
  it('on an engine that is a worker, not a manager: a clear error, nothing done', async () => {
    await manager.docker('node', 'demote', 'node3');
    await until(
      'node3 a worker',
      async () => (await swarm.nodes[2]!.docker('info', '-f', '{{.Swarm.ControlAvailable}}')) === 'false',
      60_000,
    );
    const certs = join(work, 'worker-certs');
    mkdirSync(certs, { recursive: true });
    const { runCli } = await import('../helpers/cli.js');
    const r = await runCli(['run', '--once'], {
      ACME_DOMAINS: DOMAIN,
      DEPLOY_MODE: 'swarm',
      DOCKER_HOST: swarm.nodes[2]!.host,
      DOCKER_SCOPE: STACK,
      CERTS_DIR: certs,
      STATE_DIR: join(work, 'worker-state'),
      STATUS_ADDRESS: 'off',
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'DEPLOY_MODE=swarm, but this Docker engine is a worker, not a manager: only a manager can manage secrets and services; constrain the mailcerts service with node.role == manager',
    );
    expect(readdirSync(certs)).toEqual([]);
  }, 120_000);

  it("on an engine that is in no swarm (this machine's own): a clear error, nothing done", async () => {
    const certs = join(work, 'noswarm-certs');
    mkdirSync(certs, { recursive: true });
    const { runCli } = await import('../helpers/cli.js');
    const r = await runCli(['run', '--once'], {
      ACME_DOMAINS: DOMAIN,
      DEPLOY_MODE: 'swarm',
      DOCKER_SCOPE: STACK,
      CERTS_DIR: certs,
      STATE_DIR: join(work, 'noswarm-state'),
      STATUS_ADDRESS: 'off',
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'DEPLOY_MODE=swarm, but this Docker engine is not part of a swarm (docker swarm init); use DEPLOY_MODE=volume on a single host',
    );
    expect(readdirSync(certs)).toEqual([]);
  }, 120_000);
});
