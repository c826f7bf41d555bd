import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import * as acme from 'acme-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Pebble, startPebble } from '../../scripts/lib/pebble.mjs';
import { ariCertId } from '../../src/pki/identity.js';
import { logsWith, runCli } from '../helpers/cli.js';
import { freePorts } from '../helpers/ports.js';

const work = join(inject('workDir'), 'ari');
const bin = inject('pebble26');
let pebble: Pebble;

/** A Pebble on five ports of its own (picked free; the same ones again to restart it). */
const start = (
  name: string,
  [acmePort, mgmtPort, httpPort, dnsPort, dnsMgmtPort]: number[],
  env: Record<string, string> = {},
) => startPebble({ dir: join(work, name), bin, acmePort, mgmtPort, httpPort, dnsPort, dnsMgmtPort, env });
const envFor = (p: Pebble, name: string, extra: Record<string, string> = {}) => ({
  ACME_DIRECTORY: p.directoryUrl,
  NODE_EXTRA_CA_CERTS: p.caFile,
  HTTP01_PORT: String(p.httpPort),
  CERTS_DIR: join(work, name, 'certs'),
  STATE_DIR: join(work, name, 'state'),
  DOCKER_RELOAD: 'false',
  ...extra,
});
const statePath = (env: Record<string, string>, cert: string) =>
  join(env.STATE_DIR!, 'certificates', cert, 'state.json');
/** Moves the next renewalInfo check into the past, as if the CA's Retry-After had run out. */
function ariCheckDue(env: Record<string, string>, cert: string) {
  const s = JSON.parse(readFileSync(statePath(env, cert), 'utf8'));
  s.ari.nextCheckAt = new Date(Date.now() - 1000).toISOString();
  writeFileSync(statePath(env, cert), JSON.stringify(s));
}

beforeAll(async () => {
  mkdirSync(work, { recursive: true });
  pebble = await start('pebble26', await freePorts(5));
});
afterAll(() => pebble?.stop());

describe('ARI (RFC 9773) against Pebble 2.6', () => {
  const env = () => envFor(pebble, 'window', { ACME_DOMAINS: 'ari.example.test' });

  it('a certificate whose window is in the future is left alone', async () => {
    expect((await runCli(['run', '--once'], env())).code).toBe(0);
    const r = await runCli(['run', '--once'], env());
    expect(r.code).toBe(0);
    const window = logsWith(r, { step: 'ari', msg: 'renewal window from the CA' })[0]?.window as string[];
    expect(new Date(window[0]!).getTime()).toBeGreaterThan(Date.now());
    expect(logsWith(r, { step: 'plan', decision: 'keep', reason: 'ARI window' })).toHaveLength(1);
    expect(logsWith(r, { step: 'order' })).toHaveLength(0);
    const status = JSON.parse((await runCli(['status', '--json'], env())).stdout)[0];
    expect(status.nextReason).toBe('ARI window');
    expect(status.ariWindow).toEqual({ start: window[0], end: window[1] });
    expect(new Date(status.nextRenewal).getTime()).toBeGreaterThanOrEqual(new Date(window[0]!).getTime());
    expect(new Date(status.nextRenewal).getTime()).toBeLessThan(new Date(window[1]!).getTime());
  });

  it('a certificate whose window is open (the CA revoked it) is renewed, and the newOrder carries replaces', async () => {
    const e = env();
    const certPem = readFileSync(join(e.CERTS_DIR, 'cert.pem'), 'utf8');
    const accountDir = join(e.STATE_DIR, 'accounts', new URL(pebble.directoryUrl).host.replace(':', '_'));
    process.env.NODE_EXTRA_CA_CERTS = pebble.caFile; // not read by this process: trust Pebble explicitly below
    const client = new acme.Client({
      directoryUrl: pebble.directoryUrl,
      accountKey: readFileSync(join(accountDir, 'account.key')),
    });
    const { Agent } = await import('node:https');
    acme.axios.defaults.httpsAgent = new Agent({ ca: readFileSync(pebble.caFile) });
    await (client as unknown as { api: { createAccount(d: unknown): Promise<unknown> } }).api.createAccount({
      onlyReturnExisting: true,
    });
    await client.revokeCertificate(certPem, { reason: 4 });
    ariCheckDue(e, 'ari.example.test');

    const r = await runCli(['run', '--once'], e);
    expect(r.code, r.stdout).toBe(0);
    expect(logsWith(r, { step: 'ari', msg: 'the CA moved the renewal window; picked a new moment' })).toHaveLength(1);
    expect(String(logsWith(r, { step: 'plan' })[0]?.reason)).toMatch(/^ARI window open \(/);
    const order = logsWith(r, { step: 'order', msg: 'order created' })[0];
    expect(order?.replaces).toBe(ariCertId(certPem)); // as echoed by the CA in the order object
    expect(readFileSync(join(e.CERTS_DIR, 'cert.pem'), 'utf8')).not.toBe(certPem);
  });
});

describe('a difficult CA', () => {
  it('Pebble rejecting 50% of nonces still issues, three times in a row', async () => {
    const flaky = await start('nonce50', await freePorts(5), { PEBBLE_WFE_NONCEREJECT: '50' });
    try {
      const env = envFor(flaky, 'nonce50', { ACME_DOMAINS: 'nonce.example.test,nonce2.example.test' });
      for (let i = 0; i < 3; i++) {
        const r = await runCli(['renew', '--force'], env);
        expect(r.code, r.stdout).toBe(0);
      }
    } finally {
      await flaky.stop();
    }
  });

  it('the CA unreachable at start: the old certificate stays, the backoff is written, the next attempt after the CA returns succeeds', async () => {
    const ports = await freePorts(5);
    let ca = await start('outage', ports);
    const env = envFor(ca, 'outage', { ACME_DOMAINS: 'outage.example.test' });
    expect((await runCli(['run', '--once'], env)).code).toBe(0);
    const before = readFileSync(join(env.CERTS_DIR, 'fullchain.pem'), 'utf8');
    await ca.stop();

    // A new name needs a new certificate while the CA is down; the daemon keeps running.
    const lines: Record<string, unknown>[] = [];
    let pid = 0;
    const daemon = runCli(
      ['run'],
      { ...env, ACME_DOMAINS: 'outage.example.test,more.example.test', ACME_TIMEOUT: '3s' },
      {
        onLine: (l, p) => {
          lines.push(l);
          pid = p;
        },
      },
    );
    while (!lines.some((l) => l.msg === 'issuance failed')) await delay(100);
    const failed = lines.find((l) => l.msg === 'issuance failed')!;
    expect(failed.error).toMatch(/no answer from the CA \(ECONNREFUSED\)/);
    expect(readFileSync(join(env.CERTS_DIR, 'fullchain.pem'), 'utf8')).toBe(before);
    // The state is written when the pass ends, a moment after the failure is logged.
    const readState = () => JSON.parse(readFileSync(statePath(env, 'outage.example.test'), 'utf8'));
    for (const until = Date.now() + 10_000; readState().failures === 0 && Date.now() < until; ) await delay(50);
    const state = readState();
    expect(state).toMatchObject({ failures: 1, failedStep: 'obtain' });
    expect(new Date(state.nextAttemptAt).getTime() - Date.now()).toBeGreaterThan(30_000); // the 1-minute step

    ca = await start('outage', ports); // the CA returns (same address and TLS certificate; Pebble forgets its accounts)
    try {
      const until = Date.now() + 100_000;
      while (!lines.some((l) => l.msg === 'published') && Date.now() < until) await delay(250);
      process.kill(pid, 'SIGTERM');
      const r = await daemon;
      expect(logsWith(r, { msg: 'published' })).toHaveLength(1);
      expect(readFileSync(join(env.CERTS_DIR, 'fullchain.pem'), 'utf8')).not.toBe(before);
      expect(JSON.parse(readFileSync(statePath(env, 'outage.example.test'), 'utf8'))).toMatchObject({ failures: 0 });
    } finally {
      await ca.stop();
    }
  }, 180_000);
});
