import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Bind, startBind, tsigKeygen } from '../../scripts/lib/bind.mjs';
import { type Pebble, startPebble } from '../../scripts/lib/pebble.mjs';
import { Rfc2136Dns } from '../../src/dns/providers/rfc2136/rfc2136.js';
import { createLogger } from '../../src/log.js';
import { spkiOf, spkiOfKey } from '../../src/pki/identity.js';
import { logsWith, runCli } from '../helpers/cli.js';
import {
  ENDPOINTS,
  removeTestContainers,
  ROOT,
  servedCertificate,
  startContainer,
  TEST_PROJECT,
  VERIFY_LABELS,
  waitForPort,
} from '../helpers/mailstack.js';
import { freePorts } from '../helpers/ports.js';
import { rfc2136Env } from '../helpers/rfc2136-env.js';

/**
 * DANE's failure paths, with a real BIND: a rollover whose new certificate breaks TLS on a real
 * Postfix (it offers ECDSA-authenticated ciphers only, and the rollover is to an RSA key) keeps
 * both digests and the old key served; DANE_KEY_LIFETIME reached starts a rollover in a daemon
 * that wakes for it; TLSA records someone else wrote at the same owner name are left alone.
 */
const work = join(inject('workDir'), 'dane-failures');
const KEY = 'mailcerts-dane-failures';
const secret = tsigKeygen(KEY);
const TTL = 3; // seconds: the burn-in is 6 s
let bind: Bind;
let pebble: Pebble;

const tlsa = (digest: string) => `3 1 1 ${digest.toUpperCase().replace(/(.{56})/, '$1 ')}`;
const dns = () =>
  new Rfc2136Dns({
    server: { host: '127.0.0.1', port: bind.port },
    key: { name: KEY, algorithm: 'hmac-sha256', secret: Buffer.from(secret, 'base64') },
    log: createLogger('silent'),
  });

function envFor(name: string, domain: string, extra: Record<string, string> = {}) {
  const dir = join(work, name);
  const env = rfc2136Env(
    { pebble, bind, key: KEY, secret, certsDir: join(dir, 'certs'), stateDir: join(dir, 'state') },
    { ACME_DOMAINS: domain, DANE_NAMES: domain, DANE_PORTS: '25', DANE_TTL: `${TTL}s`, ...extra },
  );
  const state = join(dir, 'state', 'certificates', domain);
  return {
    dir,
    env,
    leafKey: () => spkiOfKey(readFileSync(join(dir, 'certs', 'privkey.pem'), 'utf8')),
    nextKey: () => spkiOfKey(readFileSync(join(state, 'dane-next.pem'), 'utf8')),
    danePath: join(state, 'dane.json'),
    records: () => bind.dig(`_25._tcp.${domain}`, 'TLSA').sort(),
  };
}
const waitUntilReady = async (waits: Record<string, unknown>[]) =>
  delay(Math.max(0, Date.parse(String(waits[0]!.readyAt)) - Date.now()) + 200);

beforeAll(async () => {
  mkdirSync(work, { recursive: true });
  const [dnsPort, acmePort, mgmtPort, httpPort] = await freePorts(4);
  bind = await startBind({
    dir: join(work, 'bind'),
    port: dnsPort!,
    keys: [{ name: KEY, secret }],
    zones: [{ name: 'mail.test', policy: `grant ${KEY} zonesub TXT TLSA;` }],
  });
  pebble = await startPebble({ dir: join(work, 'pebble'), dnsServer: bind.address, acmePort, mgmtPort, httpPort });
});
afterAll(async () => {
  await removeTestContainers();
  await pebble?.stop();
  await bind?.stop();
});

describe('DANE when the new certificate cannot be deployed', () => {
  it('a rollover whose certificate breaks TLS is rolled back: both digests stay published, the old key is served', async () => {
    const t = envFor('rollback', 'mx.mail.test', { DOCKER_SCOPE: TEST_PROJECT });
    const mainCf = join(work, 'main.cf');
    writeFileSync(
      mainCf,
      [
        readFileSync(join(ROOT, 'docker', 'mailstack', 'postfix', 'main.cf'), 'utf8').trimEnd(),
        // ECDSA-authenticated ciphers only, TLS 1.2 at most: an RSA certificate cannot be used.
        'smtpd_tls_protocols = !SSLv2, !SSLv3, !TLSv1, !TLSv1.1, !TLSv1.3',
        'smtpd_tls_mandatory_protocols = !SSLv2, !SSLv3, !TLSv1, !TLSv1.1, !TLSv1.3',
        'smtpd_tls_ciphers = high',
        'smtpd_tls_mandatory_ciphers = high',
        'tls_high_cipherlist = aECDSA:!aNULL:!eNULL',
        '',
      ].join('\n'),
    );
    const first = await runCli(['run', '--once'], t.env);
    expect(first.code, first.stdout).toBe(0);
    await startContainer({
      name: 'postfix-dane',
      role: 'postfix',
      certsDir: join(t.dir, 'certs'),
      mainCf,
      reload: 'postfix',
      labels: { 'mailcerts.verify': VERIFY_LABELS.postfix },
    });
    await waitForPort(ENDPOINTS.smtp.port);
    const served = async () => spkiOf(new X509Certificate(await servedCertificate('smtp', 'mx.mail.test')));
    const ecKey = t.leafKey();
    expect(await served()).toBe(ecKey);

    // The admin switches to RSA: the RSA next key is announced and seen for 2 x TTL first.
    const rsa = { ...t.env, ACME_KEY_TYPE: 'rsa-2048' };
    const announce = await runCli(['run', '--once'], rsa);
    const waits = logsWith(announce, { step: 'dane', msg: 'DANE rollover waits' });
    expect(waits).toHaveLength(1);
    const rsaNext = t.nextKey();
    await waitUntilReady(waits);
    const roll = await runCli(['run', '--once'], rsa);
    expect(roll.code).toBe(1);
    expect(
      logsWith(roll, {
        step: 'order',
        msg: 'ordering with the next key, whose TLSA record is published (DANE rollover)',
      }),
    ).toHaveLength(1);
    expect(logsWith(roll, { step: 'rollback', msg: 'rolled back to the previous certificate' })).toHaveLength(1);
    // The ECDSA key is served again; its digest and the RSA key's are both still published.
    expect(t.leafKey()).toBe(ecKey);
    expect(await served()).toBe(ecKey);
    expect(t.records()).toEqual(expect.arrayContaining([tlsa(ecKey), tlsa(rsaNext)]));
    expect(logsWith(roll, { step: 'dane', msg: 'TLSA record of a retired key deleted' })).toHaveLength(0);
    await removeTestContainers();
  });
});

describe('DANE_KEY_LIFETIME and records of others', () => {
  it('a key past DANE_KEY_LIFETIME is rolled over by the daemon, which wakes for it; a TLSA record someone else wrote stays', async () => {
    const t = envFor('lifetime', 'smtp.mail.test', {
      DOCKER_RELOAD: 'false',
      DANE_KEY_LIFETIME: '1d',
      STATUS_ADDRESS: 'off',
    });
    // Someone else's record at the same owner name (another key, another mail host's).
    const foreign = `3 1 1 ${randomBytes(32).toString('hex')}`;
    const provider = dns();
    await provider.create(await provider.zoneFor('mail.test'), {
      type: 'TLSA',
      name: '_25._tcp.smtp.mail.test',
      value: foreign,
      ttl: TTL,
    });
    const first = await runCli(['run', '--once'], t.env);
    expect(first.code, first.stdout).toBe(0);
    const old = { current: t.leafKey(), next: t.nextKey() };
    const foreignRecord = tlsa(foreign.slice(6));
    expect(t.records()).toEqual([tlsa(old.current), tlsa(old.next), foreignRecord].sort());

    // Two days pass (the key's start is moved back; the lifetime's minimum is a day).
    const dane = JSON.parse(readFileSync(t.danePath, 'utf8')) as { keySince: string };
    writeFileSync(
      t.danePath,
      JSON.stringify({ ...dane, keySince: new Date(Date.now() - 2 * 86_400_000).toISOString() }),
    );

    const lines: { at: number; line: Record<string, unknown> }[] = [];
    let pid = 0;
    const daemon = runCli(['run'], t.env, {
      onLine: (line, p) => {
        lines.push({ at: Date.now(), line });
        pid = p;
      },
    });
    const seen = async (msg: string, ms: number) => {
      for (const end = Date.now() + ms; Date.now() < end; await delay(100)) {
        const hit = lines.find((l) => l.line.msg === msg);
        if (hit) return hit;
      }
      throw new Error(
        `the daemon did not log "${msg}" within ${ms / 1000}s:\n${lines.map((l) => JSON.stringify(l.line)).join('\n')}`,
      );
    };
    try {
      const wait = await seen('DANE rollover waits', 20_000);
      expect(String(wait.line.reason)).toMatch(/^rollover due \(the key is 2d old \(DANE_KEY_LIFETIME 24h\)\)/);
      // Not the 12 h RENEW_CHECK_INTERVAL: the next pass is when the next key's record is ready.
      const next = await seen('waiting for the next pass', 10_000);
      expect(Date.parse(String(next.line.nextPassAt)) - Date.parse(String(wait.line.readyAt))).toBeLessThan(5_000);
      await seen('ordering with the next key, whose TLSA record is published (DANE rollover)', 30_000);
      await seen('TLSA record of a retired key deleted', 20_000);
    } finally {
      process.kill(pid, 'SIGTERM');
      await daemon;
    }
    expect(t.leafKey()).toBe(old.next);
    expect(t.records()).toEqual([tlsa(old.next), tlsa(t.nextKey()), foreignRecord].sort());
    expect(new X509Certificate(readFileSync(join(t.dir, 'certs', 'cert.pem'))).publicKey.asymmetricKeyType).toBe('ec');
  });
});
