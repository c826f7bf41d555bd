import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  docker,
  ENDPOINTS,
  MAIL_IMAGE,
  mailConfigFile,
  ROOT,
  servedCertificate,
  TEST_RUN,
  VERIFY_LABELS,
  waitForPort,
} from '../helpers/mailstack.js';
import { makeChain } from '../helpers/pki.js';
import { freePorts } from '../helpers/ports.js';

const run = promisify(execFile);
const pebble = inject('pebble');
const work = join(inject('workDir'), 'compose');
const PROJECT = `mailcerts-compose-test-${TEST_RUN}`; // containers and volumes of this run only
const [proxyPort, statusPort] = await freePorts(2);
const PROXY = `127.0.0.1:${proxyPort}`;
const STATUS = `127.0.0.1:${statusPort}`;
/** The account's directory in STATE_DIR: named by the CA's address. */
const ACCOUNT = `accounts/127.0.0.1_${new URL(pebble.directoryUrl).port}/account.json`;
const files = () => ['-f', join(ROOT, 'compose.example.yml'), '-f', join(work, 'override.yml')];
const compose = async (...args: string[]) =>
  (
    await run(inject('compose'), ['-p', PROJECT, '--project-directory', ROOT, ...files(), ...args], {
      maxBuffer: 32 * 1024 * 1024,
    })
  ).stdout;
const id = async (service: string) => (await compose('ps', '-aq', service)).trim();
const logs = async (service: string) => {
  const { stdout, stderr } = await run(
    inject('compose'),
    ['-p', PROJECT, '--project-directory', ROOT, ...files(), 'logs', '--no-color', '--no-log-prefix', service],
    { maxBuffer: 32 * 1024 * 1024 },
  );
  return stdout + stderr;
};
const health = async () => docker('inspect', '-f', '{{.State.Health.Status}}', await id('mailcerts'));
async function until(what: string, check: () => Promise<boolean>, ms = 90_000) {
  const end = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(500);
  }
}
const volumeFile = async (volume: string, file: string) =>
  readFileSync(join(await docker('volume', 'inspect', '-f', '{{.Mountpoint}}', `${PROJECT}_${volume}`), file), 'utf8');

beforeAll(async () => {
  mkdirSync(join(work, 'secrets'), { recursive: true });
  writeFileSync(join(work, 'secrets', 'cloudflare_token.txt'), 'unused-in-http01-0123456789abcdef\n');
  // The example, made runnable here: the test images, Pebble, and host networking (no bridge on this machine).
  // Each container carries this run's label (what the global setup removes, should this file not get to).
  const RUN_LABEL = `mailcerts.test.run: "${TEST_RUN}"`;
  writeFileSync(
    join(work, 'override.yml'),
    `
services:
  mailcerts:
    networks: !reset []
    image: ${inject('mailcertsImage')}
    network_mode: host
    ports: !reset []
    sysctls: !reset {}
    environment:
      ACME_DIRECTORY: ${pebble.directoryUrl}
      NODE_EXTRA_CA_CERTS: /pebble/ca.pem
      ACME_DOMAINS: mail.example.test
      HTTP01_PORT: "${pebble.httpPort}"
      STATUS_ADDRESS: ${STATUS}
      DOCKER_HOST: tcp://${PROXY}
    volumes:
      - ${pebble.caFile}:/pebble/ca.pem:ro
    healthcheck:
      interval: 1s
      start_period: 60s
    labels: { ${RUN_LABEL} }
  socket-proxy:
    networks: !reset []
    image: ${inject('mailcertsImage')}
    network_mode: host
    environment:
      PROXY_BIND: ${PROXY}
    labels: { ${RUN_LABEL} }
  postfix:
    networks: !reset []
    image: ${MAIL_IMAGE}
    network_mode: host
    command: [postfix, start-fg]
    labels:
      mailcerts.verify: ${VERIFY_LABELS.postfix}
      ${RUN_LABEL}
    volumes:
      - ${join(ROOT, 'docker', 'mailstack', 'postfix', 'main.cf')}:/etc/postfix/main.cf:ro
      - ${mailConfigFile('postfix/master.cf')}:/etc/postfix/master.cf:ro
  dovecot:
    networks: !reset []
    image: ${MAIL_IMAGE}
    network_mode: host
    command: [dovecot, -F]
    labels:
      mailcerts.verify: ${VERIFY_LABELS.dovecot}
      ${RUN_LABEL}
    volumes:
      - ${mailConfigFile('dovecot/dovecot.conf')}:/etc/dovecot/dovecot.conf:ro
secrets:
  cloudflare_token:
    file: ${join(work, 'secrets', 'cloudflare_token.txt')}
`,
  );
  await compose('down', '-v', '--remove-orphans').catch(() => undefined);
  await compose('up', '-d');
}, 180_000);
afterAll(async () => {
  await compose('down', '-v', '--remove-orphans').catch(() => undefined);
});

describe('the image built from the local Node 24 base', () => {
  it('runs as mailcerts, checks its health, starts "run", holds a bundle and no node_modules, and adds little to its base', async () => {
    const image = inject('mailcertsImage');
    const config = JSON.parse(await docker('image', 'inspect', '-f', '{{json .Config}}', image));
    expect(config.User).toBe('mailcerts');
    expect(config.Entrypoint).toEqual([
      'node',
      '--max-semi-space-size=1',
      '--max-opt=0',
      '--regexp-interpret-all',
      '/app/mailcerts.mjs',
    ]); // a smaller young generation, V8's interpreter only: see the README's Speed and footprint
    expect(config.Cmd).toEqual(['run']);
    expect(config.Healthcheck.Test).toEqual(['CMD', 'node', '/app/mailcerts.mjs', 'healthcheck']);
    expect(config.Env.join(' ')).not.toContain('STATUS_ADDRESS'); // loopback by default, in the image too
    const { stdout } = await run('docker', [
      'run',
      '--rm',
      '--network',
      'none',
      '--entrypoint',
      'sh',
      image,
      '-c',
      'node --version; id -u; ls /app | wc -l; test -e /app/node_modules && echo has-node-modules || echo no-node-modules',
    ]);
    const [nodeVersion, uid, files, modules] = stdout.trim().split('\n');
    expect(nodeVersion).toMatch(/^v24\./);
    expect(uid).toBe('10001');
    expect(Number(files)).toBeGreaterThan(5);
    expect(modules).toBe('no-node-modules');
    const size = async (name: string) => Number(await docker('image', 'inspect', '-f', '{{.Size}}', name));
    const base = process.env.MAILCERTS_BASE_IMAGE ?? 'mailcerts-node24-base:local'; // made by scripts/image.sh
    const added = (await size(image)) - (await size(base));
    expect(added).toBeLessThan(10_000_000);
    console.log(`image: ${image} adds ${(added / 1e6).toFixed(1)} MB to ${base}`);
  });

  it('an idle daemon in the image loads none of the builtins it does not use', async () => {
    // The footprint of the README's "Speed and footprint", as Node reports it: the daemon of the
    // image, with one valid certificate and the CA's directory fetched, holding still.
    const dir = join(work, 'idle');
    for (const d of ['certs', 'state', 'probe']) mkdirSync(join(dir, d), { recursive: true, mode: 0o777 });
    const chain = makeChain(['idle.example.test']);
    writeFileSync(join(dir, 'certs', 'fullchain.pem'), chain.fullchain);
    writeFileSync(join(dir, 'certs', 'privkey.pem'), chain.key, { mode: 0o644 });
    writeFileSync(
      join(dir, 'probe', 'dump.cjs'),
      "process.on('SIGUSR2', () => require('fs').writeFileSync('/probe/modules.txt', process.moduleLoadList.join('\\n')));\n",
    );
    await run('chmod', ['-R', 'a+rwX', dir]);
    const image = inject('mailcertsImage');
    const { Entrypoint: entry } = JSON.parse(await docker('image', 'inspect', '-f', '{{json .Config}}', image)) as {
      Entrypoint: string[];
    };
    const name = `mailcerts-idle-${TEST_RUN}`;
    await run('docker', [
      'run',
      '-d',
      '--name',
      name,
      '--label',
      `mailcerts.test.run=${TEST_RUN}`,
      '--network',
      'host',
      '-v',
      `${join(dir, 'certs')}:/etc/ssl/mail`,
      '-v',
      `${join(dir, 'state')}:/var/lib/mailcerts`,
      '-v',
      `${join(dir, 'probe')}:/probe`,
      '-v',
      `${pebble.caFile}:/pebble/ca.pem:ro`,
      '-e',
      `ACME_DIRECTORY=${pebble.directoryUrl}`,
      '-e',
      'NODE_EXTRA_CA_CERTS=/pebble/ca.pem',
      '-e',
      'ACME_DOMAINS=idle.example.test',
      '-e',
      'DOCKER_RELOAD=false',
      '-e',
      'STATUS_ADDRESS=off',
      '--entrypoint',
      entry[0]!,
      image,
      ...entry.slice(1, -1),
      '-r',
      '/probe/dump.cjs',
      entry.at(-1)!,
      'run',
    ]);
    try {
      await until(
        'the idle daemon',
        async () => /"msg":"waiting for the next pass"/.test((await run('docker', ['logs', name])).stdout),
        30_000,
      );
      await docker('kill', '-s', 'USR2', name);
      await until(
        'the module list',
        async () => readFileSync(join(dir, 'probe', 'modules.txt'), 'utf8').length > 0,
        10_000,
      );
      const loaded = readFileSync(join(dir, 'probe', 'modules.txt'), 'utf8')
        .split('\n')
        .map((m) => m.replace(/^NativeModule /, ''));
      expect(loaded).toContain('crypto'); // the list is the daemon's: it read a certificate
      expect(loaded).toContain('tls'); // and asked the CA over HTTPS
      // Loaded only when used: fetch (undici) by an ESM import of node:http, perf_hooks by a read of
      // the global performance, the parser of compressed and HTTP/2 bodies.
      for (const unused of ['internal/deps/undici/undici', 'perf_hooks', 'http2', 'zlib'])
        expect(loaded).not.toContain(unused);
    } finally {
      await docker('rm', '-f', name).catch(() => undefined);
    }
  });
});

describe('compose.example.yml with Docker Compose v2', () => {
  it('issues and publishes; the container becomes healthy; Postfix and Dovecot start after it and serve the certificate', async () => {
    await until('mailcerts healthy', async () => (await health()) === 'healthy');
    const cert = await volumeFile('certs', 'cert.pem');
    expect(new X509Certificate(cert).issuer).toMatch(/Pebble Intermediate CA/);
    for (const e of ['smtp', 'imaps'] as const) await waitForPort(ENDPOINTS[e].port, 60_000);
    for (const e of ['smtp', 'submission', 'imaps', 'pop3s'] as const) expect(await servedCertificate(e)).toBe(cert);
    expect(await docker('inspect', '-f', '{{.Config.User}}', await id('mailcerts'))).toBe('mailcerts');
  });

  it('reloads through the socket proxy, which refuses every call outside the allowlist', async () => {
    const before = new X509Certificate(await volumeFile('certs', 'cert.pem')).serialNumber;
    const { stdout } = await run('docker', [
      'exec',
      await id('mailcerts'),
      'node',
      '/app/mailcerts.mjs',
      'renew',
      '--force',
    ]);
    expect(stdout).toMatch(/"msg":"certificate ok"/);
    const after = await volumeFile('certs', 'cert.pem');
    expect(new X509Certificate(after).serialNumber).not.toBe(before);
    for (const e of ['smtp', 'imaps'] as const) expect(await servedCertificate(e)).toBe(after);
    const proxyLog = await logs('socket-proxy');
    expect(proxyLog).toMatch(
      /"method":"POST","path":"[^"]*\/containers\/[0-9a-f]{64}\/exec","status":201,"msg":"forwarded"/,
    );
    expect(proxyLog).toMatch(
      /"method":"POST","path":"[^"]*\/exec\/[0-9a-f]{64}\/start","status":200,"msg":"forwarded"/,
    );
    // What the proxy refuses: creating containers, images, volumes, deleting.
    const status = async (method: string, path: string) => (await fetch(`http://${PROXY}${path}`, { method })).status;
    expect(await status('POST', '/containers/create')).toBe(403);
    expect(await status('GET', '/images/json')).toBe(403);
    expect(await status('DELETE', `/containers/${await id('postfix')}`)).toBe(403);
    expect(await status('POST', `/containers/${await id('postfix')}/stop`)).toBe(403);
    // Inspect would hand out every container's environment: mailcerts does not need it.
    expect(await status('GET', `/containers/${await id('postfix')}/json`)).toBe(403);
    expect(await status('GET', '/containers/json')).toBe(200);
    // The proxy runs from the mailcerts image, whose HEALTHCHECK then asks the proxy.
    expect(
      (
        await run('docker', ['exec', await id('socket-proxy'), 'node', '/app/mailcerts.mjs', 'healthcheck'])
      ).stdout.trim(),
    ).toBe('healthy (socket proxy)');
  });

  it('the image reads a YAML MAILCERTS_CONFIG (the parser it loads only for one), and names a broken one', async () => {
    const state = await docker('volume', 'inspect', '-f', '{{.Mountpoint}}', `${PROJECT}_state`);
    writeFileSync(
      join(state, 'certificates.yml'),
      '# the same certificate as ACME_DOMAINS gives\ncertificates:\n  - domains: [mail.example.test]\n',
      { mode: 0o644 },
    );
    writeFileSync(join(state, 'broken.yml'), 'certificates:\n  - domains: [mail.example.test\n', { mode: 0o644 });
    const container = await id('mailcerts');
    const withConfig = (file: string) => [
      'exec',
      '-e',
      'ACME_DOMAINS=',
      '-e',
      `MAILCERTS_CONFIG=/var/lib/mailcerts/${file}`,
      container,
      'node',
      '/app/mailcerts.mjs',
      'status',
      '--json',
    ];
    const { stdout } = await run('docker', withConfig('certificates.yml'));
    const [status] = JSON.parse(stdout) as { name: string; domains: string[]; serial: string }[];
    expect(status).toMatchObject({
      name: 'mail.example.test',
      domains: ['mail.example.test'],
      serial: new X509Certificate(await volumeFile('certs', 'cert.pem')).serialNumber,
    });
    const broken = await run('docker', withConfig('broken.yml')).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(broken?.code).toBe(78);
    expect(broken?.stderr).toMatch(/MAILCERTS_CONFIG \(\/var\/lib\/mailcerts\/broken\.yml\): not valid YAML: /);
    for (const f of ['certificates.yml', 'broken.yml']) rmSync(join(state, f));
  });

  it('docker compose stop ends mailcerts cleanly within seconds; a restart reuses the account and issues nothing new', async () => {
    const account = await volumeFile('state', ACCOUNT);
    const started = Date.now();
    await compose('stop', 'mailcerts');
    const took = Date.now() - started;
    expect(took).toBeLessThan(5_000);
    expect(await docker('inspect', '-f', '{{.State.ExitCode}}', await id('mailcerts'))).toBe('0');
    expect(await logs('mailcerts')).toMatch(/"msg":"mailcerts stopped"/);

    const cert = await volumeFile('certs', 'cert.pem');
    await compose('start', 'mailcerts');
    await until(
      'the restarted pass',
      async () =>
        (await logs('mailcerts')).split('"msg":"mailcerts started"').length > 2 &&
        /"msg":"waiting for the next pass"[\s\S]*$/.test(
          (await logs('mailcerts')).split('"msg":"mailcerts started"').at(-1)!,
        ),
    );
    const second = (await logs('mailcerts')).split('"msg":"mailcerts started"').at(-1)!;
    expect(second).toMatch(/"decision":"keep"/);
    expect(second).not.toMatch(/"msg":"order created"/);
    expect(await volumeFile('certs', 'cert.pem')).toBe(cert);
    expect(await volumeFile('state', ACCOUNT)).toBe(account);
    await until('healthy again', async () => (await health()) === 'healthy');
  });
});
