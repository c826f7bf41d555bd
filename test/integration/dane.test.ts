import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Bind, startBind, tsigKeygen } from '../../scripts/lib/bind.mjs';
import { type Pebble, startPebble } from '../../scripts/lib/pebble.mjs';
import { Rfc2136Dns } from '../../src/dns/providers/rfc2136/rfc2136.js';
import { createLogger } from '../../src/log.js';
import { logsWith, runCli } from '../helpers/cli.js';
import { freePorts } from '../helpers/ports.js';

/**
 * DANE with a real BIND: mailcerts keeps the TLSA RRset at _25._tcp.mx.mail.test holding the
 * served key and the next one, renews with the same key, and rolls over only after the next
 * key's record has been answered for twice the TTL.
 */
const work = join(inject('workDir'), 'dane');
const KEY = 'mailcerts-dane';
const secret = tsigKeygen(KEY);
const TTL = 4; // seconds: the burn-in is 8 s
let bind: Bind;
let pebble: Pebble;

beforeAll(async () => {
  mkdirSync(work, { recursive: true });
  const [dnsPort, acmePort, mgmtPort, httpPort] = await freePorts(4);
  bind = await startBind({
    dir: join(work, 'bind'),
    port: dnsPort!,
    keys: [{ name: KEY, secret }],
    zones: [{ name: 'mail.test', policy: `grant ${KEY} zonesub TXT TLSA;` }, { name: 'txtonly.test', policy: `grant ${KEY} zonesub TXT;` }],
  });
  pebble = await startPebble({ dir: join(work, 'pebble'), dnsServer: bind.address, acmePort, mgmtPort, httpPort });
});
afterAll(async () => {
  await pebble?.stop();
  await bind?.stop();
});

const spki = (pem: string) => createHash('sha256').update(createPublicKey(pem).export({ type: 'spki', format: 'der' })).digest('hex');
const tlsa = (digest: string) => `3 1 1 ${digest.toUpperCase().replace(/(.{56})/, '$1 ')}`;

function envFor(name: string, extra: Record<string, string> = {}) {
  const dir = join(work, name);
  const env: Record<string, string> = {
    ACME_DIRECTORY: pebble.directoryUrl,
    NODE_EXTRA_CA_CERTS: pebble.caFile,
    CERTS_DIR: join(dir, 'certs'),
    STATE_DIR: join(dir, 'state'),
    ACME_CHALLENGE: 'dns-01',
    ACME_DNS_PROVIDER: 'rfc2136',
    RFC2136_SERVER: bind.address,
    RFC2136_TSIG_KEY: KEY,
    RFC2136_TSIG_SECRET: secret,
    DNS01_RESOLVERS: bind.address,
    DNS01_PROPAGATION_TIMEOUT: '30s',
    DOCKER_RELOAD: 'false',
    DANE_TTL: `${TTL}s`,
    ...extra,
  };
  const leafKey = () => spki(readFileSync(join(dir, 'certs', 'privkey.pem'), 'utf8'));
  const nextKey = () => spki(readFileSync(join(dir, 'state', 'certificates', env.ACME_DOMAINS!.split(',')[0]!, 'dane-next.pem'), 'utf8'));
  const serial = () => new X509Certificate(readFileSync(join(dir, 'certs', 'cert.pem'))).serialNumber;
  return { dir, env, leafKey, nextKey, serial };
}

describe('DANE: TLSA records in step with the key (BIND, RFC 2136)', () => {
  const t = () => envFor('mx', { ACME_DOMAINS: 'mx.mail.test,mail.test', DANE_NAMES: 'mx.mail.test', DANE_PORTS: '25,465' });

  it('the first certificate is served first, then its record and the next key\'s are published', async () => {
    const { env, leafKey, nextKey } = t();
    expect(bind.dig('_25._tcp.mx.mail.test', 'TLSA')).toEqual([]);
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(logsWith(r, { step: 'dane', msg: 'DANE: no certificate served yet; its TLSA records are published once it is' })).toHaveLength(1);
    const want = [tlsa(leafKey()), tlsa(nextKey())].sort();
    expect(leafKey()).not.toBe(nextKey());
    for (const port of [25, 465]) expect(bind.dig(`_${port}._tcp.mx.mail.test`, 'TLSA').sort(), String(port)).toEqual(want);
    expect(logsWith(r, { step: 'dane', msg: 'TLSA records in step with the served key' })).toHaveLength(1);
    expect(readFileSync(join(env.STATE_DIR!, 'certificates', 'mx.mail.test', 'dane-next.pem')).length).toBeGreaterThan(100);
  });

  it('a renewal keeps the key, so the records stay valid', async () => {
    const { env, leafKey, serial } = t();
    const before = { key: leafKey(), serial: serial(), tlsa: bind.dig('_25._tcp.mx.mail.test', 'TLSA').sort() };
    const r = await runCli(['renew', '--force'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(serial()).not.toBe(before.serial);
    expect(leafKey()).toBe(before.key);
    expect(logsWith(r, { step: 'order', msg: 'reusing the published private key (DANE)' })).toHaveLength(1);
    expect(bind.dig('_25._tcp.mx.mail.test', 'TLSA').sort()).toEqual(before.tlsa);
  });

  it('a rollover asked for waits until the next key\'s record has been seen for twice the TTL, then swaps keys and retires the old digest', async () => {
    const { env, leafKey, nextKey } = t();
    const old = { current: leafKey(), next: nextKey() };
    const asked = await runCli(['dane', 'rollover'], env);
    expect(asked.code, asked.stderr).toBe(0);
    expect(asked.stdout).toContain('rollover asked for: mx.mail.test (ec-256)');
    // Seen only since the last pass, a few seconds ago: refused, the key stays.
    const early = await runCli(['run', '--once'], env);
    expect(early.code, early.stdout).toBe(0);
    const waits = logsWith(early, { step: 'dane', msg: 'DANE rollover waits' });
    expect(waits).toHaveLength(1);
    expect(waits[0]!.reason).toMatch(/^rollover due \(a rollover was asked for at .*\); the next key's record has been seen since .*, and must be for twice the TTL \(8s\): not before /);
    expect(leafKey()).toBe(old.current);
    const status = await runCli(['dane'], env);
    expect(status.stdout).toMatch(/mx\.mail\.test \(ec-256\), records written by rfc2136: in step; next published since /);
    expect(status.stdout).toContain(`_25._tcp.mx.mail.test. ${TTL} IN TLSA 3 1 1 ${old.next}   ; next, answered by 1 of 1 servers`);

    const readyAt = Date.parse(String(waits[0]!.readyAt));
    await delay(Math.max(0, readyAt - Date.now()) + 200);
    const roll = await runCli(['run', '--once'], env);
    expect(roll.code, roll.stdout).toBe(0);
    expect(logsWith(roll, { step: 'order', msg: 'ordering with the next key, whose TLSA record is published (DANE rollover)' })).toHaveLength(1);
    expect(leafKey()).toBe(old.next);
    expect(nextKey()).not.toBe(old.next);
    expect(bind.dig('_25._tcp.mx.mail.test', 'TLSA').sort()).toEqual([tlsa(old.next), tlsa(nextKey())].sort());
    expect(logsWith(roll, { step: 'dane', msg: 'TLSA record of a retired key deleted' })).toHaveLength(2); // ports 25 and 465
    const after = await runCli(['dane'], env);
    expect(after.stdout).not.toContain(old.current);
  });

  it('a next-key record deleted by hand is written again, and the wait starts over', async () => {
    const { env, nextKey, leafKey } = t();
    const dns = new Rfc2136Dns({ server: { host: '127.0.0.1', port: bind.port }, key: { name: KEY, algorithm: 'hmac-sha256', secret: Buffer.from(secret, 'base64') }, log: createLogger('silent') });
    const zone = await dns.zoneFor('mail.test');
    await dns.delete(zone, JSON.stringify(['TLSA', '_25._tcp.mx.mail.test', `3 1 1 ${nextKey()}`]));
    expect(bind.dig('_25._tcp.mx.mail.test', 'TLSA')).toEqual([tlsa(leafKey())]);
    await runCli(['dane', 'rollover', 'mx.mail.test'], env);
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(logsWith(r, { step: 'dane', msg: 'TLSA record created' })).toHaveLength(1);
    const waits = logsWith(r, { step: 'dane', msg: 'DANE rollover waits' });
    expect(Date.parse(String(waits[0]!.readyAt)) - Date.now()).toBeGreaterThan(6_000); // seen again only now
  });
});

describe('DANE when the records cannot be written', () => {
  it('a provider that refuses TLSA: the certificate is served, the missing record reported at once, no rollover ever happens', async () => {
    const { env, leafKey } = envFor('txtonly', { ACME_DOMAINS: 'mx.txtonly.test', DANE_NAMES: 'mx.txtonly.test' });
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(logsWith(r, { step: 'dane', msg: 'DANE: the served key has no TLSA record; validating senders will defer mail' })).toHaveLength(1);
    expect(r.stdout).toContain('could not update the TLSA records; retried at the next pass');
    const key = leafKey();
    await runCli(['dane', 'rollover'], env);
    await delay(2 * TTL * 1000 + 200);
    const again = await runCli(['run', '--once'], env);
    expect(logsWith(again, { step: 'dane', msg: 'could not write the TLSA records; the current key stays' })).toHaveLength(1);
    expect(logsWith(again, { step: 'dane', msg: 'DANE rollover waits' })[0]?.reason).toMatch(/not yet answered by every authoritative server; the current key stays$/);
    expect(leafKey()).toBe(key);
    const shown = await runCli(['dane'], env);
    expect(shown.code).toBe(1);
    expect(shown.stdout).toContain('OUT OF STEP');
  });

  it('DANE_PROVIDER=none: mailcerts prints the records to publish and writes none', async () => {
    const { env, dir } = envFor('manual', { ACME_DOMAINS: 'mx2.mail.test', DANE_NAMES: 'mx2.mail.test', DANE_PROVIDER: 'none' });
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(bind.dig('_25._tcp.mx2.mail.test', 'TLSA')).toEqual([]);
    const shown = await runCli(['dane'], env);
    expect(shown.stdout).toMatch(/^mx2\.mail\.test \(ec-256\), records written by you \(DANE_PROVIDER=none\): publish these: /);
    expect(shown.stdout.match(/_25\._tcp\.mx2\.mail\.test\. 4 IN TLSA 3 1 1 [0-9a-f]{64}   ; (current|next), answered by 0 of 1 servers/g)).toHaveLength(2);
    expect(existsSync(join(dir, 'state', 'dns-records.json')) ? JSON.parse(readFileSync(join(dir, 'state', 'dns-records.json'), 'utf8')).records : []).toEqual([]);
  });
});
