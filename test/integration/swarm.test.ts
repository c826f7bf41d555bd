import { X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startPebble } from '../../scripts/lib/pebble.mjs';
import { MAIL_IMAGE, ROOT } from '../../scripts/lib/mailstack.mjs';
import { makeChain } from '../helpers/pki.js';
import { type Swarm, type SwarmNode, startSwarm } from '../helpers/swarm-netns.js';

/**
 * DEPLOY_MODE=swarm on a real two-node Swarm (two dockerds in network namespaces of this test's
 * own), with stack.example.yml deployed as written plus an override for the test images: Pebble
 * as the CA, inside the manager's namespace; one Postfix + Dovecot service with a replica on each
 * node. Every check asks the servers themselves, on each node's published ports.
 */
const run = promisify(execFile);
const work = join(inject('workDir'), 'swarm');
const CACHE = process.env.MAILCERTS_CACHE ?? '/var/cache/mailcerts';
const STACK = 'mail';
const DOMAIN = 'mail.example.test';
const PORTS = { smtps: 465, imaps: 993 };
let swarm: Swarm;
let manager: SwarmNode;
let pebble: Awaited<ReturnType<typeof startPebble>>;

async function until<T>(what: string, check: () => Promise<T | undefined | false>, ms = 180_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await check().catch((err: unknown) => ((last = err), undefined));
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await delay(500);
  }
}

/** What a node serves on a port, asked from inside its namespace as a client would: the leaf's SHA-256, or why not. */
async function served(node: SwarmNode, port: number): Promise<{ fp?: string; refused?: boolean; error?: string }> {
  const script = `out=$(openssl s_client -connect ${node.address}:${port} -servername ${DOMAIN} </dev/null 2>&1); printf '%s' "$out" >&2; printf '%s' "$out" | openssl x509 -noout -fingerprint -sha256`;
  const r = await run('nsenter', [`--net=/run/netns/${node.netns}`, 'timeout', '10', 'bash', '-c', script]).then(
    (ok) => ({ stdout: ok.stdout, stderr: ok.stderr, code: 0 }),
    (err: { stdout?: string; stderr?: string; code?: number }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '', code: err.code ?? 1 }),
  );
  const fp = /Fingerprint=([0-9A-F:]+)/.exec(r.stdout)?.[1];
  // A whole handshake names its cipher; a key that does not match its certificate fails after the certificate was sent.
  if (fp) return /Cipher is (?!\(NONE\))/.test(r.stderr) ? { fp } : { fp, error: `the handshake failed after the certificate: ${r.stderr.slice(-300)}` };
  // Refused, or accepted by Docker's port proxy with no task behind it (closed before any handshake).
  if (/errno=111|Connection refused|Cipher is \(NONE\)/.test(r.stderr)) return { refused: true };
  return { error: r.stderr.slice(-400) };
}

const mailcertsContainer = () => manager.docker('ps', '-q', '--filter', `label=com.docker.swarm.service.name=${STACK}_mailcerts`).then((s) => s.split('\n')[0] || undefined);
const mailcerts = async (...args: string[]) => {
  const id = await mailcertsContainer();
  if (!id) throw new Error('no running mailcerts task');
  return run('docker', ['-H', manager.host, 'exec', id, 'node', '/app/mailcerts.mjs', ...args], { maxBuffer: 16 * 1024 * 1024 }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (err: { stdout?: string; stderr?: string; code?: number }) => ({ code: err.code ?? 1, out: (err.stdout ?? '') + (err.stderr ?? '') }),
  );
};
const publishedFp = async () => {
  const id = await mailcertsContainer();
  return new X509Certificate(await manager.docker('exec', id!, 'cat', '/etc/ssl/mail/cert.pem')).fingerprint256;
};
const secrets = async () => (await manager.docker('secret', 'ls', '--format', '{{.Name}}')).split('\n').filter((n) => n.startsWith('mailcerts.')).sort();
const updateState = async (service = `${STACK}_mail`) => manager.docker('service', 'inspect', '-f', '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}', service);
const logsOf = async (service: string) => {
  const { stdout, stderr } = await run('docker', ['-H', manager.host, 'service', 'logs', '--raw', service], { maxBuffer: 64 * 1024 * 1024 });
  return (stdout + stderr).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
};
const bothServe = async (fp: string) => {
  for (const node of swarm.nodes) for (const port of Object.values(PORTS)) if ((await served(node, port)).fp !== fp) return false;
  return true;
};

/** Probes both nodes again and again until stopped: every answered handshake must give one of the known certificates. */
function watchServed() {
  const seen: { node: string; port: number; fp?: string; refused?: boolean; error?: string }[] = [];
  let on = true;
  const loop = (async () => {
    while (on) for (const node of swarm.nodes) for (const port of Object.values(PORTS)) seen.push({ node: node.name, port, ...(await served(node, port)) });
  })();
  return { seen, stop: async () => ((on = false), await loop, seen) };
}

beforeAll(async () => {
  mkdirSync(work, { recursive: true });
  swarm = await startSwarm('sw', work, { fromCache: { [MAIL_IMAGE]: join(CACHE, 'mailstack-bookworm-3.tar') }, fromHost: [inject('mailcertsImage')] });
  manager = swarm.nodes[0]!;
  // The CA in the manager's namespace, at its link address: mailcerts' overlay containers reach it
  // through their gateway bridge. What it validates is not under test here (HTTP-01 has its own
  // suites), so Pebble takes every challenge as valid.
  pebble = await startPebble({ dir: join(work, 'pebble'), netns: manager.netns, host: manager.address, env: { PEBBLE_VA_ALWAYS_VALID: '1' } });
  chmodSync(pebble.caFile, 0o644);
  // The test image's configs, listening on every address of the task (not only loopback), on the
  // standard ports (each node has its own), as stack.example.yml expects them.
  const STANDARD: Record<string, string> = { 10025: '25', 10587: '587', 10465: '465', 10143: '143', 10993: '993', 10110: '110', 10995: '995', 14190: '4190' };
  const conf = (file: string, edit: (s: string) => string) => {
    const path = join(work, file.replace(/\//g, '_'));
    const text = readFileSync(join(ROOT, 'docker', 'mailstack', file), 'utf8').replace(/\b1[04]\d{3}\b/g, (p) => STANDARD[p] ?? p);
    writeFileSync(path, edit(text));
    return path;
  };
  // No name server answers inside the namespaces: Postfix must not wait for the client's name.
  const mainCf = conf('postfix/main.cf', (s) => `${s.replace('inet_interfaces = loopback-only', 'inet_interfaces = all')}\nsmtpd_peername_lookup = no\n`);
  const masterCf = conf('postfix/master.cf', (s) => s.replace(/^127\.0\.0\.1:/gm, ''));
  const dovecot = conf('dovecot/dovecot.conf', (s) => s.replace(/^listen = .*$/m, 'listen = *'));
  writeFileSync(join(work, 'override.yml'), `
version: "3.8"
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
  socket-proxy:
    image: ${MAIL_IMAGE}
    command: [haproxy, -db, -f, /usr/local/etc/haproxy/haproxy.cfg]
    volumes:
      - ${manager.host.replace('unix://', '')}:/var/run/docker.sock:ro
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
    deploy:
      update_config:
        monitor: 8s
configs:
  pebble_ca: { file: ${pebble.caFile} }
  main_cf: { file: ${mainCf} }
  master_cf: { file: ${masterCf} }
  dovecot_conf: { file: ${dovecot} }
`);
  await run('docker', ['-H', manager.host, 'stack', 'deploy', '-c', join(ROOT, 'stack.example.yml'), '-c', join(work, 'override.yml'), STACK], { cwd: ROOT });
}, 600_000);

afterAll(async () => {
  if (process.env.SWARM_TEST_KEEP === '1') return; // debugging: leaves the swarm running
  await pebble?.stop();
  await swarm?.stop();
}, 180_000);

describe('DEPLOY_MODE=swarm on a two-node swarm', () => {
  let first = '';

  it('issues a certificate, ships it as secrets and configs, and both nodes serve it', async () => {
    first = await until('a published certificate', async () => publishedFp().catch(() => undefined));
    await until('both nodes serving the published certificate', () => bothServe(first));
    const issuer = new X509Certificate(await manager.docker('exec', (await mailcertsContainer())!, 'cat', '/etc/ssl/mail/cert.pem')).issuer;
    expect(issuer).toMatch(/Pebble/);
    const fp12 = first.replace(/:/g, '').toLowerCase().slice(0, 12);
    expect(await secrets()).toEqual([`mailcerts.${DOMAIN}.ecdsa.${fp12}.key`, `mailcerts.${DOMAIN}.ecdsa.${fp12}.keychain`]);
    const labels = JSON.parse(await manager.docker('secret', 'inspect', '-f', '{{json .Spec.Labels}}', `mailcerts.${DOMAIN}.ecdsa.${fp12}.key`)) as Record<string, string>;
    expect(labels['mailcerts.certificate']).toBe(DOMAIN);
    expect(labels['mailcerts.serial']).toMatch(/^[0-9A-F]+$/);
    // The tasks run on both nodes, one each.
    const nodesOfTasks = (await manager.docker('service', 'ps', '-f', 'desired-state=running', '--format', '{{.Node}}', `${STACK}_mail`)).split('\n').sort();
    expect(nodesOfTasks).toEqual(['node1', 'node2']);
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
});
