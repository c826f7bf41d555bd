import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ENDPOINTS, MAIL_IMAGE, mailConfig, ROOT, VERIFY_LABELS } from '../helpers/mailstack.js';
import { type NetnsDocker, startNetnsDocker } from '../helpers/netns-docker.js';
import { makeChain } from '../helpers/pki.js';

/**
 * compose.example.yml as written, networks included, on a Docker engine in a network namespace of
 * this test's own: the mail containers on "mail", the socket proxy on the internal "docker-api".
 * Certificates come from CUSTOM_CERTS_DIR (no CA is needed for what is checked here).
 */
const run = promisify(execFile);
const work = join(inject('workDir'), 'isolation');
const PROJECT = 'mailstack';
const custom = join(work, 'custom');
const CACHE = process.env.MAILCERTS_CACHE ?? '/var/cache/mailcerts';
let engine: NetnsDocker;

const compose = async (...args: string[]) =>
  (
    await run(
      inject('compose'),
      [
        '-p',
        PROJECT,
        '--project-directory',
        ROOT,
        '-f',
        join(ROOT, 'compose.example.yml'),
        '-f',
        join(work, 'override.yml'),
        ...args,
      ],
      {
        env: { ...process.env, DOCKER_HOST: engine.host, ENGINE_SOCKET: engine.host.replace('unix://', '') },
        maxBuffer: 32 * 1024 * 1024,
      },
    )
  ).stdout;
const id = async (service: string) => (await compose('ps', '-aq', service)).trim();
const mailcertsLogs = async () => {
  const { stdout, stderr } = await run('docker', ['-H', engine.host, 'logs', await id('mailcerts')], {
    maxBuffer: 32 * 1024 * 1024,
  });
  return (stdout + stderr)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
};
const ipOn = async (container: string, network: string) =>
  engine.docker('inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, container);
async function until(what: string, check: () => Promise<boolean>, ms = 90_000) {
  const end = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(300);
  }
}
/** The serial a TLS endpoint serves, asked with openssl from the namespace's own network, as a client on that host would. */
async function servedSerial(host: string, port: number, starttls?: string): Promise<string> {
  const args = [
    's_client',
    '-connect',
    `${host}:${port}`,
    '-servername',
    'mail.example.test',
    ...(starttls ? ['-starttls', starttls] : []),
  ];
  const { stdout } = await run('sh', [
    '-c',
    `nsenter --net=/run/netns/${engine.netns} openssl ${args.join(' ')} </dev/null 2>/dev/null | openssl x509 -noout -serial`,
  ]);
  return stdout.trim().replace(/^serial=/, '');
}
function supply(chain: { fullchain: string; key: string }) {
  for (const [name, data] of [
    ['fullchain.pem', chain.fullchain],
    ['privkey.pem', chain.key],
  ] as const) {
    writeFileSync(join(custom, `.${name}.tmp`), data);
    renameSync(join(custom, `.${name}.tmp`), join(custom, name));
  }
}
/** Probe a TCP port from inside a container with bash's /dev/tcp: true when the connection completes. */
const connects = async (container: string, host: string, port: number) =>
  engine.docker('exec', container, 'timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`).then(
    () => true,
    () => false,
  );

const first = makeChain(['mail.example.test']);
const serial = (c: { leaf: string }) => new X509Certificate(c.leaf).serialNumber;

beforeAll(async () => {
  mkdirSync(join(work, 'secrets'), { recursive: true });
  mkdirSync(custom, { recursive: true });
  writeFileSync(join(work, 'secrets', 'cloudflare_token.txt'), 'unused-here-0123456789abcdef\n');
  // The test configs listen on loopback (they also run with host networking): here, on the container's network.
  // Their ports are those of ENDPOINTS (and VERIFY_LABELS), as for the containers on host networking.
  writeFileSync(
    join(work, 'main.cf'),
    mailConfig('postfix/main.cf').replace('inet_interfaces = loopback-only', 'inet_interfaces = all'),
  );
  writeFileSync(join(work, 'master.cf'), mailConfig('postfix/master.cf').replace(/^127\.0\.0\.1:/gm, ''));
  writeFileSync(
    join(work, 'dovecot.conf'),
    mailConfig('dovecot/dovecot.conf').replace('listen = 127.0.0.1', 'listen = *'),
  );
  supply(first);
  writeFileSync(
    join(work, 'override.yml'),
    `
services:
  mailcerts:
    image: ${inject('mailcertsImage')}
    environment:
      ACME_DOMAINS: mail.example.test
      CUSTOM_CERTS_DIR: /custom
    volumes:
      - ${custom}:/custom:ro
    healthcheck:
      interval: 1s
      start_period: 60s
  socket-proxy:
    image: ${inject('mailcertsImage')}
    hostname: docker-api-proxy # not its short id: the proxy still knows which container is its own
    volumes:
      - ${'$'}{ENGINE_SOCKET}:/var/run/docker.sock:ro
  postfix:
    image: ${MAIL_IMAGE}
    command: [postfix, start-fg]
    labels:
      mailcerts.verify: ${VERIFY_LABELS.postfix}
    volumes:
      - ${join(work, 'main.cf')}:/etc/postfix/main.cf:ro
      - ${join(work, 'master.cf')}:/etc/postfix/master.cf:ro
  dovecot:
    image: ${MAIL_IMAGE}
    command: [dovecot, -F]
    labels:
      mailcerts.verify: ${VERIFY_LABELS.dovecot}
    volumes:
      - ${join(work, 'dovecot.conf')}:/etc/dovecot/dovecot.conf:ro
secrets:
  cloudflare_token:
    file: ${join(work, 'secrets', 'cloudflare_token.txt')}
`,
  );
  engine = await startNetnsDocker('iso', work, {
    fromCache: { [MAIL_IMAGE]: join(CACHE, 'mailstack-bookworm-3.tar') },
    fromHost: [inject('mailcertsImage')],
  });
  await compose('up', '-d');
  await until(
    'mailcerts healthy',
    async () => (await engine.docker('inspect', '-f', '{{.State.Health.Status}}', await id('mailcerts'))) === 'healthy',
  );
}, 300_000);

afterAll(async () => {
  if (!engine) return;
  await compose('down', '-v', '--remove-orphans').catch(() => undefined);
  await engine.stop();
}, 120_000);

describe("compose.example.yml with its networks: the socket proxy is out of the mail servers' reach", () => {
  it('publishes, reloads through the proxy and verifies each server on the network it shares with mailcerts', async () => {
    const postfixIp = await ipOn(await id('postfix'), `${PROJECT}_mail`);
    const dovecotIp = await ipOn(await id('dovecot'), `${PROJECT}_mail`);
    // Postfix and Dovecot started after the first publish (they wait for a healthy mailcerts).
    await until(
      'Postfix serving the first certificate',
      async () => (await servedSerial(postfixIp, ENDPOINTS.smtp.port, 'smtp')) === serial(first),
      60_000,
    );
    const before = (await mailcertsLogs()).length;
    const second = makeChain(['mail.example.test']);
    supply(second); // the daemon's watcher picks it up
    await until(
      'the deploy of the second certificate',
      async () =>
        (await mailcertsLogs()).slice(before).some((l) => l.msg === 'deployed' || l.msg === 'deployment failed'),
      60_000,
    );
    const pass = (await mailcertsLogs()).slice(before);
    expect(pass.filter((l) => l.msg === 'deployed')).toHaveLength(1);
    expect(await servedSerial(postfixIp, ENDPOINTS.smtp.port, 'smtp')).toBe(serial(second));
    expect(await servedSerial(dovecotIp, ENDPOINTS.imaps.port)).toBe(serial(second));
    const verified = pass
      .filter((l) => l.msg === 'serves the published certificate')
      .flatMap((l) => l.endpoints as string[]);
    expect(verified).toContain(`smtp://${postfixIp}:${ENDPOINTS.smtp.port} (mail.example.test, mail.example.test)`);
    expect(verified).toContain(`imaps://${dovecotIp}:${ENDPOINTS.imaps.port} (mail.example.test, no SNI)`);
  });

  it('from inside Postfix the proxy cannot be reached, by name or by address; from mailcerts it can', async () => {
    const proxyIp = await ipOn(await id('socket-proxy'), `${PROJECT}_docker-api`);
    expect(proxyIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const postfix = await id('postfix');
    expect(await connects(postfix, proxyIp, 2375)).toBe(false);
    expect(await connects(postfix, 'socket-proxy', 2375)).toBe(false);
    const ping = await engine.docker(
      'exec',
      await id('mailcerts'),
      'node',
      '-e',
      "fetch('http://socket-proxy:2375/_ping').then(async (r) => console.log(r.status, await r.text()))",
    );
    expect(ping).toBe('200 OK');
  });

  it('even where the proxy can be reached, it refuses a privileged exec, a foreign user or environment, and container inspect', async () => {
    const target = await id('postfix');
    const post = (body: object) =>
      `fetch('http://socket-proxy:2375/containers/${target}/exec', { method: 'POST', headers: { 'content-type': 'application/json' }, body: ${JSON.stringify(JSON.stringify(body))} }).then((r) => console.log(r.status))`;
    const status = async (script: string) => engine.docker('exec', await id('mailcerts'), 'node', '-e', script);
    const exec = { Cmd: ['postconf', '-n'], AttachStdout: true, AttachStderr: true, Tty: false };
    expect(await status(post({ ...exec, User: 'root', Privileged: true }))).toBe('403');
    expect(await status(post({ Cmd: ['id'], User: '0', AttachStdout: true, AttachStderr: true, Tty: false }))).toBe(
      '403',
    );
    expect(await status(post({ ...exec, Env: ['LD_PRELOAD=/tmp/x.so'] }))).toBe('403');
    expect(await status(post(exec))).toBe('201'); // what mailcerts itself sends
    // Only the commands the container's own labels ask for (mailcerts.reload=postfix): no shell to read the mail.
    expect(await status(post({ ...exec, Cmd: ['sh', '-c', 'cat /var/mail/*'] }))).toBe('403');
    expect(await status(post({ ...exec, Cmd: ['id', '-u'] }))).toBe('403');
    // One exec on a terminal, postfix check (Postfix 3.7 prints its failure only there), and only it.
    const onTty = (Cmd: string[]) => post({ Cmd, AttachStdout: true, AttachStderr: true, Tty: true });
    expect(await status(onTty(['postfix', 'check']))).toBe('201');
    expect(await status(onTty(['postfix', 'check', '-v']))).toBe('403');
    expect(await status(onTty(['sh']))).toBe('403');
    // The proxy holds the socket: no exec into it, no kill or restart of it, whatever the body.
    const proxy = await id('socket-proxy');
    const intoProxy = `fetch('http://socket-proxy:2375/containers/${proxy}/exec', { method: 'POST', headers: { 'content-type': 'application/json' }, body: ${JSON.stringify(JSON.stringify(exec))} }).then((r) => console.log(r.status))`;
    const said = (script: string) =>
      script.replace('console.log(r.status)', 'r.text().then((t) => console.log(r.status, t))');
    expect(await status(said(intoProxy))).toBe(
      '403 {"message":"mailcerts proxy: that container is the proxy itself, which holds the Docker socket"}',
    );
    expect(
      await status(
        `fetch('http://socket-proxy:2375/v1.41/containers/${proxy}/kill?signal=SIGKILL', { method: 'POST' }).then((r) => console.log(r.status))`,
      ),
    ).toBe('403');
    // Bodies are parsed, not matched: a second key that Docker would take instead is refused.
    expect(await status(post({ ...exec, Tty: false, tty: true }))).toBe('403');
    // Only the labelled containers of its own project: not the other compose project's, even by id.
    const outsider = await engine.docker(
      'run',
      '-d',
      '--label',
      'com.docker.compose.project=elsewhere',
      '--label',
      'mailcerts.reload=exec:true',
      MAIL_IMAGE,
      'sleep',
      '60',
    );
    try {
      expect(await status(said(post(exec).replace(target, outsider)))).toBe(
        `403 {"message":"mailcerts proxy: that container is not part of ${PROJECT}, the stack or compose project this proxy serves"}`,
      );
    } finally {
      await engine.docker('rm', '-f', outsider);
    }
    // Only full ids: a short prefix would slip past that check.
    expect(
      await status(
        `fetch('http://socket-proxy:2375/containers/${target.slice(0, 12)}/exec', { method: 'POST', headers: { 'content-type': 'application/json' }, body: ${JSON.stringify(JSON.stringify(exec))} }).then((r) => console.log(r.status))`,
      ),
    ).toBe('403');
    expect(
      await status(`fetch('http://socket-proxy:2375/containers/${target}/json').then((r) => console.log(r.status))`),
    ).toBe('403');
  });
});

describe('labels are untrusted input', () => {
  it('another project is left alone, a label naming a foreign host is refused, a blackholed address is unreachable: nothing is rolled back', async () => {
    const mailNet = `${PROJECT}_mail`;
    // Another compose project on the same engine, labelled as if it wanted mailcerts' attention.
    await engine.docker('network', 'create', 'other_default');
    const other = await engine.docker(
      'run',
      '-d',
      '--name',
      'other-postfix',
      '--network',
      'other_default',
      '--label',
      'com.docker.compose.project=other',
      '--label',
      'mailcerts.reload=exec:touch /tmp/pwned',
      '--label',
      'mailcerts.verify=smtps://:10465',
      MAIL_IMAGE,
      'sleep',
      '600',
    );
    const otherStarted = await engine.docker('inspect', '-f', '{{.State.StartedAt}}', other);
    const otherIp = await ipOn(other, 'other_default');
    // In this project: one container whose label sends the probe to another host...
    await engine.docker(
      'run',
      '-d',
      '--name',
      'rogue',
      '--network',
      mailNet,
      '--label',
      `com.docker.compose.project=${PROJECT}`,
      '--label',
      'mailcerts.reload=exec:true',
      '--label',
      `mailcerts.verify=smtps://${otherIp}:10465`,
      MAIL_IMAGE,
      'sleep',
      '600',
    );
    // ...and one whose address swallows mailcerts' packets (a blackhole route back to mailcerts).
    const hole = await engine.docker(
      'run',
      '-d',
      '--name',
      'blackholed',
      '--network',
      mailNet,
      '--label',
      `com.docker.compose.project=${PROJECT}`,
      '--label',
      'mailcerts.reload=exec:true',
      '--label',
      'mailcerts.verify=smtps://:10465',
      MAIL_IMAGE,
      'sleep',
      '600',
    );
    const mailcertsIp = await ipOn(await id('mailcerts'), mailNet);
    const pid = await engine.docker('inspect', '-f', '{{.State.Pid}}', hole);
    await run('nsenter', ['-t', pid, '-n', 'ip', 'route', 'add', 'blackhole', `${mailcertsIp}/32`]);

    const before = (await mailcertsLogs()).length;
    const next = makeChain(['mail.example.test']);
    supply(next); // the daemon's watcher picks it up
    await until(
      'the pass over the new certificate',
      async () =>
        (await mailcertsLogs()).slice(before).some((l) => l.msg === 'deployment failed' || l.msg === 'deployed'),
      120_000,
    );
    const pass = (await mailcertsLogs()).slice(before);

    // The new certificate stays: Postfix and Dovecot serve it; nothing was rolled back.
    expect(pass.filter((l) => l.step === 'rollback')).toEqual([]);
    const postfixIp = await ipOn(await id('postfix'), mailNet);
    expect(await servedSerial(postfixIp, ENDPOINTS.smtp.port, 'smtp')).toBe(serial(next));
    expect(await servedSerial(await ipOn(await id('dovecot'), mailNet), ENDPOINTS.imaps.port)).toBe(serial(next));
    // The other project: never reloaded, probed, restarted or even named.
    expect(JSON.stringify(pass)).not.toContain('other-postfix');
    expect(await engine.docker('exec', other, 'sh', '-c', 'test -e /tmp/pwned && echo pwned || echo untouched')).toBe(
      'untouched',
    );
    expect(await engine.docker('inspect', '-f', '{{.State.StartedAt}}', other)).toBe(otherStarted);
    // The rogue label is refused; the blackholed container is unreachable, not "broken".
    const failed = pass.filter((l) => l.msg === 'container not deployed');
    expect(failed.find((l) => l.container === 'rogue')).toMatchObject({
      problem: 'label',
      error: expect.stringMatching(
        new RegExp(`names ${otherIp.replace(/\./g, '\\.')}, which is not an address of rogue`),
      ),
    });
    expect(failed.find((l) => l.container === 'blackholed')).toMatchObject({
      problem: 'unreachable',
      error: expect.stringMatching(
        /^unreachable after reload, so not verified \(not the certificate's fault\): smtps:\/\/[\d.]+:10465: the TCP connection did not complete within 5s/,
      ),
    });
    expect(
      pass.filter((l) => l.msg === 'still serving an old certificate after reload: restarting the container'),
    ).toEqual([]);
  }, 240_000);
});
