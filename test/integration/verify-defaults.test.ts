import { X509Certificate } from 'node:crypto';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { logsWith, runCli } from '../helpers/cli.js';
import { MAIL_IMAGE, mailConfig, ROOT, useMailPorts } from '../helpers/mailstack.js';
import { type NetnsDocker, startNetnsDocker } from '../helpers/netns-docker.js';
import { makeChain } from '../helpers/pki.js';

/**
 * Containers labelled mailcerts.reload and no mailcerts.verify: mailcerts finds what to probe from
 * the preset's default ports the container listens on. Postfix and Dovecot listen on the real
 * default ports (25, 465, 587; 143, 993, 110, 995, 4190), so they run on a Docker engine in a
 * network namespace of this test's own, and mailcerts runs in that namespace too: no port of this
 * machine is taken. The namespace holds 1,000 more listening sockets, as a busy host does: with host
 * networking a container sees all of them. A second Dovecot has no network to be reached on: it
 * cannot be checked, and status says so. Certificates come from CUSTOM_CERTS_DIR (no CA is
 * reachable from the namespace).
 */
const work = join(inject('workDir'), 'verify-defaults');
const custom = join(work, 'custom');
const certs = join(work, 'certs');
const PROJECT = 'defaults';
const CACHE = process.env.MAILCERTS_CACHE ?? '/var/cache/mailcerts';
const NO_ADDRESS = 'it has no network address to reach; set mailcerts.verify=off to silence this';
// The stack's config files, written with the default ports (smtp, submission, smtps, imap, imaps, pop3, pop3s, sieve).
useMailPorts([25, 587, 465, 143, 993, 110, 995, 4190]);
let engine: NetnsDocker;
let busy: ChildProcess | undefined;

const env = () => ({
  ACME_DOMAINS: 'mail.example.test',
  CUSTOM_CERTS_DIR: custom,
  CERTS_DIR: certs,
  STATE_DIR: join(work, 'state'),
  DOCKER_HOST: engine.host,
  DOCKER_SCOPE: PROJECT,
});
const supply = (c: { key: string; fullchain: string }) => {
  writeFileSync(join(custom, 'fullchain.pem'), c.fullchain);
  writeFileSync(join(custom, 'privkey.pem'), c.key, { mode: 0o600 });
};
/** The serial served on a port of the namespace, read with openssl s_client as a mail admin would. */
const servedSerial = async (port: number, starttls?: string) =>
  /serial=(\w+)/.exec(
    await engine.inNetns(
      'sh',
      '-c',
      `openssl s_client -connect 127.0.0.1:${port} ${starttls ? `-starttls ${starttls}` : ''} -servername mail.example.test </dev/null 2>/dev/null | openssl x509 -noout -serial`,
    ),
  )?.[1];

async function start(
  name: string,
  reload: string,
  mounts: string[],
  command: string[],
  network = 'host',
): Promise<string> {
  const id = await engine.docker(
    'run',
    '-d',
    '--name',
    name,
    '--network',
    network,
    '--label',
    `com.docker.compose.project=${PROJECT}`,
    '--label',
    `mailcerts.reload=${reload}`,
    '-v',
    `${certs}:/etc/ssl/mail:ro`,
    ...mounts.flatMap((m) => ['-v', m]),
    MAIL_IMAGE,
    ...command,
  );
  return id.slice(0, 12);
}

async function listening(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ss = await engine.inNetns('ss', '-ltnH', `sport = :${port}`);
    if (ss.trim()) return;
    await delay(100);
  }
  throw new Error(`nothing listens on port ${port} in the test's namespace`);
}

beforeAll(async () => {
  mkdirSync(custom, { recursive: true });
  mkdirSync(certs, { recursive: true });
  supply(makeChain(['mail.example.test']));
  writeFileSync(join(work, 'master.cf'), mailConfig('postfix/master.cf'));
  writeFileSync(join(work, 'dovecot.conf'), mailConfig('dovecot/dovecot.conf'));
  engine = await startNetnsDocker('defaults', work, {
    fromCache: { [MAIL_IMAGE]: join(CACHE, 'mailstack-bookworm-3.tar') },
  });
  // The first publish comes before the servers start: they need a certificate to start with.
  const first = await runCli(['run', '--once'], env(), { netns: engine.netns });
  expect(first.code, first.stdout).toBe(0);
  await start(
    'postfix',
    'postfix',
    [
      `${join(ROOT, 'docker', 'mailstack', 'postfix', 'main.cf')}:/etc/postfix/main.cf:ro`,
      `${join(work, 'master.cf')}:/etc/postfix/master.cf:ro`,
    ],
    ['postfix', 'start-fg'],
  );
  await start('dovecot', 'dovecot', [`${join(work, 'dovecot.conf')}:/etc/dovecot/dovecot.conf:ro`], ['dovecot', '-F']);
  await start(
    'dovecot-unreachable',
    'dovecot',
    [`${join(work, 'dovecot.conf')}:/etc/dovecot/dovecot.conf:ro`],
    ['dovecot', '-F'],
    'none',
  );
  // 1,000 sockets on ten addresses (so that the kernel's table scatters them among the mail
  // ports, whose lines would otherwise all come first or all last): /proc/net/tcp runs to 150 KB.
  busy = spawn(
    'nsenter',
    [
      `--net=/run/netns/${engine.netns}`,
      process.execPath,
      '-e',
      "for (let a = 2; a < 12; a++) for (let p = 20000; p < 20100; p++) require('node:net').createServer().listen(p, '127.0.0.' + a)",
    ],
    { stdio: 'ignore' },
  );
  for (const port of [25, 465, 587, 143, 993, 110, 995, 4190, 20099]) await listening(port);
}, 180_000);

afterAll(async () => {
  busy?.kill();
  await engine?.stop();
}, 120_000);

describe('default verification endpoints (no mailcerts.verify label)', () => {
  it("Postfix and Dovecot are probed on each default port they listen on; one with no network is reported as 'could not verify'", async () => {
    const next = makeChain(['mail.example.test']);
    supply(next);
    const r = await runCli(['run', '--once'], env(), { netns: engine.netns });
    expect(r.code, r.stdout).toBe(0);
    const serial = new X509Certificate(next.fullchain).serialNumber;
    const probed = (c: string) =>
      logsWith(r, { step: 'verify', container: c, msg: 'serves the published certificate' }).flatMap(
        (l) => l.endpoints as string[],
      );
    const ports = (c: string) => [...new Set(probed(c).map((e) => /^(\w+:\/\/127\.0\.0\.1:\d+) /.exec(e)?.[1]))].sort();
    expect(ports('postfix')).toEqual([
      'smtp://127.0.0.1:25',
      'submission://127.0.0.1:587',
      'submissions://127.0.0.1:465',
    ]);
    expect(ports('dovecot')).toEqual([
      'imap://127.0.0.1:143',
      'imaps://127.0.0.1:993',
      'pop3://127.0.0.1:110',
      'pop3s://127.0.0.1:995',
      'sieve://127.0.0.1:4190',
    ]);
    // Each endpoint by SNI and without.
    expect(probed('postfix')).toHaveLength(6);
    expect(probed('dovecot')).toHaveLength(10);
    // What a client is served there, asked by openssl.
    expect(await servedSerial(25, 'smtp')).toBe(serial);
    expect(await servedSerial(465)).toBe(serial);
    expect(await servedSerial(993)).toBe(serial);
    expect(await servedSerial(4190, 'sieve')).toBe(serial);

    const unreachable = logsWith(r, { step: 'verify', container: 'dovecot-unreachable', msg: 'could not verify' });
    expect(unreachable).toHaveLength(1);
    expect(unreachable[0]).toMatchObject({ level: 'warn', reason: NO_ADDRESS });
    const status = await runCli(['status'], env(), { netns: engine.netns });
    const row = (c: string) => status.stdout.split('\n').find((l) => l.startsWith(`${c} `)) ?? '';
    expect(row('postfix')).toMatch(/^postfix\s+yes\s+all 2\s/);
    expect(row('dovecot')).toMatch(/^dovecot\s+yes\s+all 2\s/);
    expect(row('dovecot-unreachable')).toMatch(
      /^dovecot-unreachable\s+could not verify\s+-\s+\S+ \S+\s+could not verify: /,
    );
    expect(row('dovecot-unreachable')).toContain(NO_ADDRESS);
    const json = JSON.parse((await runCli(['status', '--json'], env(), { netns: engine.netns })).stdout) as {
      containers: Record<string, { serves: boolean | null; unverified?: string }>;
    }[];
    expect(json[0]!.containers['dovecot-unreachable']).toMatchObject({ serves: null, unverified: expect.any(String) });
    expect(json[0]!.containers.postfix).toMatchObject({ serves: true });
  });
});
