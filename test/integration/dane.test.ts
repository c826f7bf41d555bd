import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Bind, startBind, tsigKeygen } from '../../scripts/lib/bind.mjs';
import { type Pebble, startPebble } from '../../scripts/lib/pebble.mjs';
import { Rfc2136Dns } from '../../src/dns/providers/rfc2136/rfc2136.js';
import { createLogger } from '../../src/log.js';
import { type CloudflareDouble, startCloudflareDouble, zoneId } from '../doubles/cloudflare.js';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import { freePorts } from '../helpers/ports.js';
import { rfc2136Env } from '../helpers/rfc2136-env.js';

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
    zones: [
      { name: 'mail.test', policy: `grant ${KEY} zonesub TXT TLSA;` },
      { name: 'txtonly.test', policy: `grant ${KEY} zonesub TXT;` },
    ],
  });
  pebble = await startPebble({ dir: join(work, 'pebble'), dnsServer: bind.address, acmePort, mgmtPort, httpPort });
});
afterAll(async () => {
  await pebble?.stop();
  await bind?.stop();
});

const spki = (pem: string) =>
  createHash('sha256')
    .update(createPublicKey(pem).export({ type: 'spki', format: 'der' }))
    .digest('hex');
const tlsa = (digest: string) => `3 1 1 ${digest.toUpperCase().replace(/(.{56})/, '$1 ')}`;

function envFor(name: string, extra: Record<string, string> = {}) {
  const dir = join(work, name);
  const env = rfc2136Env(
    { pebble, bind, key: KEY, secret, certsDir: join(dir, 'certs'), stateDir: join(dir, 'state') },
    { DOCKER_RELOAD: 'false', DANE_TTL: `${TTL}s`, ...extra },
  );
  const leafKey = () => spki(readFileSync(join(dir, 'certs', 'privkey.pem'), 'utf8'));
  const nextKey = () =>
    spki(readFileSync(join(dir, 'state', 'certificates', env.ACME_DOMAINS!.split(',')[0]!, 'dane-next.pem'), 'utf8'));
  const serial = () => new X509Certificate(readFileSync(join(dir, 'certs', 'cert.pem'))).serialNumber;
  return { dir, env, leafKey, nextKey, serial };
}

describe('DANE: TLSA records in step with the key (BIND, RFC 2136)', () => {
  const t = () =>
    envFor('mx', { ACME_DOMAINS: 'mx.mail.test,mail.test', DANE_NAMES: 'mx.mail.test', DANE_PORTS: '25,465' });

  it("the first certificate is served first, then its record and the next key's are published", async () => {
    const { env, leafKey, nextKey } = t();
    expect(bind.dig('_25._tcp.mx.mail.test', 'TLSA')).toEqual([]);
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(
      logsWith(r, { step: 'dane', msg: 'DANE: no certificate served yet; its TLSA records are published once it is' }),
    ).toHaveLength(1);
    const want = [tlsa(leafKey()), tlsa(nextKey())].sort();
    expect(leafKey()).not.toBe(nextKey());
    for (const port of [25, 465])
      expect(bind.dig(`_${port}._tcp.mx.mail.test`, 'TLSA').sort(), String(port)).toEqual(want);
    expect(logsWith(r, { step: 'dane', msg: 'TLSA records in step with the served key' })).toHaveLength(1);
    expect(readFileSync(join(env.STATE_DIR!, 'certificates', 'mx.mail.test', 'dane-next.pem')).length).toBeGreaterThan(
      100,
    );
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

  it("a rollover asked for waits until the next key's record has been seen for twice the TTL, then swaps keys and retires the old digest", async () => {
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
    expect(waits[0]!.reason).toMatch(
      /^rollover due \(a rollover was asked for at .*\); the next key's record has been seen since .*, and must be for twice the TTL \(8s\): not before /,
    );
    expect(leafKey()).toBe(old.current);
    const status = await runCli(['dane'], env);
    expect(status.stdout).toMatch(
      /mx\.mail\.test \(ec-256\), records written by rfc2136: in step; next published since /,
    );
    expect(status.stdout).toContain(
      `_25._tcp.mx.mail.test. ${TTL} IN TLSA 3 1 1 ${old.next}   ; next, answered by 1 of 1 servers`,
    );

    const readyAt = Date.parse(String(waits[0]!.readyAt));
    await delay(Math.max(0, readyAt - Date.now()) + 200);
    const roll = await runCli(['run', '--once'], env);
    expect(roll.code, roll.stdout).toBe(0);
    expect(
      logsWith(roll, {
        step: 'order',
        msg: 'ordering with the next key, whose TLSA record is published (DANE rollover)',
      }),
    ).toHaveLength(1);
    expect(leafKey()).toBe(old.next);
    expect(nextKey()).not.toBe(old.next);
    expect(bind.dig('_25._tcp.mx.mail.test', 'TLSA').sort()).toEqual([tlsa(old.next), tlsa(nextKey())].sort());
    expect(logsWith(roll, { step: 'dane', msg: 'TLSA record of a retired key deleted' })).toHaveLength(2); // ports 25 and 465
    const after = await runCli(['dane'], env);
    expect(after.stdout).not.toContain(old.current);
  });

  it('a next-key record deleted by hand is written again, and the wait starts over', async () => {
    const { env, nextKey, leafKey } = t();
    const dns = new Rfc2136Dns({
      server: { host: '127.0.0.1', port: bind.port },
      key: { name: KEY, algorithm: 'hmac-sha256', secret: Buffer.from(secret, 'base64') },
      log: createLogger('silent'),
    });
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

describe('DANE: a key type change is a rollover too', () => {
  it('ec-256 → rsa-2048: an RSA next key is announced first; the RSA certificate comes only after 2 x TTL, with that key', async () => {
    const { env, leafKey, nextKey } = envFor('mx', {
      ACME_DOMAINS: 'mx.mail.test,mail.test',
      DANE_NAMES: 'mx.mail.test',
      DANE_PORTS: '25,465',
      ACME_KEY_TYPE: 'rsa-2048',
    });
    const ecKey = leafKey();
    const first = await runCli(['run', '--once'], env);
    expect(first.code, first.stdout).toBe(0);
    expect(leafKey()).toBe(ecKey); // still the ECDSA key: the RSA one is not announced long enough
    expect(logsWith(first, { msg: 'plan: issue' })[0]?.reason).toBe('key type changed from ec-256 to rsa-2048');
    const waits = logsWith(first, { step: 'dane', msg: 'DANE rollover waits' });
    expect(waits[0]?.reason).toMatch(/^rollover due \(the key type changed\)/);
    const rsaNext = nextKey();
    expect(bind.dig('_25._tcp.mx.mail.test', 'TLSA')).toContain(tlsa(rsaNext));
    await delay(Math.max(0, Date.parse(String(waits[0]!.readyAt)) - Date.now()) + 200);
    const roll = await runCli(['run', '--once'], env);
    expect(roll.code, roll.stdout).toBe(0);
    expect(leafKey()).toBe(rsaNext);
    expect(new X509Certificate(readFileSync(join(work, 'mx', 'certs', 'cert.pem'))).publicKey.asymmetricKeyType).toBe(
      'rsa',
    );
    expect(bind.dig('_25._tcp.mx.mail.test', 'TLSA')).not.toContain(tlsa(ecKey));
  });
});

describe('DANE with dual certificates', () => {
  it('a key type added to a DANE certificate waits until its key is announced for 2 x TTL, then gets its first certificate with that key', async () => {
    const one = envFor('dual', { ACME_DOMAINS: 'mx3.mail.test', DANE_NAMES: 'mx3.mail.test' });
    expect((await runCli(['run', '--once'], one.env)).code).toBe(0);
    const ecKey = one.leafKey();
    const two = envFor('dual', {
      ACME_DOMAINS: 'mx3.mail.test',
      DANE_NAMES: 'mx3.mail.test',
      ACME_KEY_TYPE: 'ec-256,rsa-2048',
    });
    const first = await runCli(['run', '--once'], two.env);
    expect(first.code, first.stdout).toBe(0);
    const waits = logsWith(first, { step: 'dane', msg: 'DANE rollover waits', keyType: 'rsa-2048' });
    expect(waits[0]?.reason).toMatch(
      /^DANE: the rsa-2048 key's TLSA record must be answered everywhere for twice the TTL before its first certificate: not before /,
    );
    expect(existsSync(join(two.dir, 'certs', 'rsa-fullchain.pem'))).toBe(false);
    const rsaNext = spki(
      readFileSync(join(two.dir, 'state', 'certificates', 'mx3.mail.test', 'rsa-2048', 'dane-next.pem'), 'utf8'),
    );
    expect(bind.dig('_25._tcp.mx3.mail.test', 'TLSA')).toContain(tlsa(rsaNext));
    await delay(Math.max(0, Date.parse(String(waits[0]!.readyAt)) - Date.now()) + 200);
    const second = await runCli(['run', '--once'], two.env);
    expect(second.code, second.stdout).toBe(0);
    expect(spki(readFileSync(join(two.dir, 'certs', 'rsa-privkey.pem'), 'utf8'))).toBe(rsaNext);
    expect(two.leafKey()).toBe(ecKey);
    const rrset = bind.dig('_25._tcp.mx3.mail.test', 'TLSA');
    expect(rrset).toContain(tlsa(ecKey));
    expect(rrset).toContain(tlsa(rsaNext));
    expect(rrset).toHaveLength(4); // each variant's served key and its next one
  });
});

describe('DANE when the records cannot be written', () => {
  it('a provider that refuses TLSA: the certificate is served, the missing record reported at once, no rollover ever happens', async () => {
    const { env, leafKey } = envFor('txtonly', { ACME_DOMAINS: 'mx.txtonly.test', DANE_NAMES: 'mx.txtonly.test' });
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(
      logsWith(r, { step: 'dane', msg: 'DANE: the served key has no TLSA record; validating senders will defer mail' }),
    ).toHaveLength(1);
    expect(r.stdout).toContain('could not update the TLSA records; retried at the next pass');
    const key = leafKey();
    await runCli(['dane', 'rollover'], env);
    await delay(2 * TTL * 1000 + 200);
    const again = await runCli(['run', '--once'], env);
    expect(
      logsWith(again, { step: 'dane', msg: 'could not write the TLSA records; the current key stays' }),
    ).toHaveLength(1);
    expect(logsWith(again, { step: 'dane', msg: 'DANE rollover waits' })[0]?.reason).toMatch(
      /not yet answered by every authoritative server \(and validating resolver, with DANE_RESOLVER\); the current key stays$/,
    );
    expect(leafKey()).toBe(key);
    const shown = await runCli(['dane'], env);
    expect(shown.code).toBe(1);
    expect(shown.stdout).toContain('OUT OF STEP');
    const rows = JSON.parse((await runCli(['status', '--json'], env)).stdout) as {
      dane?: { inStep?: boolean; names?: Record<string, boolean>; summary: string };
    }[];
    expect(rows[0]!.dane).toMatchObject({
      inStep: false,
      names: { '_25._tcp.mx.txtonly.test': false },
      summary: expect.stringMatching(
        /^OUT OF STEP: the served key 3 1 1 [0-9a-f]{64} is missing: _25\._tcp\.mx\.txtonly\.test on /,
      ),
    });
    expect((await runCli(['status'], env)).stdout).toMatch(/DANE\s+LAST ERROR/);
  });

  it('DANE_PROVIDER=none: mailcerts prints the records to publish and writes none', async () => {
    const { env, dir } = envFor('manual', {
      ACME_DOMAINS: 'mx2.mail.test',
      DANE_NAMES: 'mx2.mail.test',
      DANE_PROVIDER: 'none',
    });
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(bind.dig('_25._tcp.mx2.mail.test', 'TLSA')).toEqual([]);
    const shown = await runCli(['dane'], env);
    expect(shown.stdout).toMatch(
      /^mx2\.mail\.test \(ec-256\), records written by you \(DANE_PROVIDER=none\): publish these: /,
    );
    expect(
      shown.stdout.match(
        /_25\._tcp\.mx2\.mail\.test\. 4 IN TLSA 3 1 1 [0-9a-f]{64} {3}; (current|next), answered by 0 of 1 servers/g,
      ),
    ).toHaveLength(2);
    expect(
      existsSync(join(dir, 'state', 'dns-records.json'))
        ? JSON.parse(readFileSync(join(dir, 'state', 'dns-records.json'), 'utf8')).records
        : [],
    ).toEqual([]);
  });

  it('a damaged next key in STATE_DIR does not stop renewals: it is replaced and announced again', async () => {
    const { env, dir, leafKey } = envFor('manual', {
      ACME_DOMAINS: 'mx2.mail.test',
      DANE_NAMES: 'mx2.mail.test',
      DANE_PROVIDER: 'none',
    });
    const path = join(dir, 'state', 'certificates', 'mx2.mail.test', 'dane-next.pem');
    writeFileSync(path, '-----BEGIN PRIVATE KEY-----\ntruncated\n');
    const key = leafKey();
    const r = await runCli(['renew', '--force'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(
      logsWith(r, { step: 'dane', msg: 'the next key in STATE_DIR cannot be read; a new one is made and announced' }),
    ).toHaveLength(1);
    expect(leafKey()).toBe(key); // the renewal kept the served key
    expect(spki(readFileSync(path, 'utf8'))).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('DANE and a key mailcerts did not make (found in CERTS_DIR)', () => {
  /** A certificate in CERTS_DIR from "another tool": the same CA, no DANE, a STATE_DIR of its own. */
  async function adopted(name: string, domain: string, extra: Record<string, string> = {}) {
    const t = envFor(name, { ACME_DOMAINS: domain, DANE_NAMES: domain, ...extra });
    const { DANE_NAMES: _n, ...other } = t.env;
    const first = await runCli(['run', '--once'], { ...other, STATE_DIR: join(t.dir, 'other-tool') });
    expect(first.code, first.stdout).toBe(0);
    return t;
  }

  it("no TLSA record at the name: the key is neither announced nor reused; a certificate with a key of mailcerts' own is ordered at once", async () => {
    const { env, leafKey } = await adopted('adopted', 'mx5.mail.test');
    const theirs = leafKey();
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(
      logsWith(r, {
        step: 'dane',
        msg: 'DANE: no certificate served yet; its TLSA records are published once it is',
      })[0]?.reason,
    ).toMatch(/^DANE: the ec-256 key in CERTS_DIR is not one mailcerts made or deployed and no TLSA record exists/);
    expect(
      logsWith(r, {
        step: 'order',
        msg: "ordering with a new key of mailcerts' own (DANE: no TLSA record exists yet)",
      }),
    ).toHaveLength(1);
    expect(leafKey()).not.toBe(theirs);
    const rrset = bind.dig('_25._tcp.mx5.mail.test', 'TLSA');
    expect(rrset).not.toContain(tlsa(theirs));
    expect(rrset).toContain(tlsa(leafKey()));
    expect(logsWith(r, { step: 'dane', msg: 'TLSA records in step with the served key' })).toHaveLength(1);
  });

  it('TLSA records that do not name it: it is not announced; renew --force waits until the next key has been answered for 2 x TTL, then orders with that key', async () => {
    const { env, leafKey, nextKey } = await adopted('adopted2', 'mx6.mail.test', { DANE_TTL: '2s' });
    const theirs = leafKey();
    const dns = new Rfc2136Dns({
      server: { host: '127.0.0.1', port: bind.port },
      key: { name: KEY, algorithm: 'hmac-sha256', secret: Buffer.from(secret, 'base64') },
      log: createLogger('silent'),
    });
    const someoneElses = createHash('sha256').update('a key of a previous setup').digest('hex');
    await dns.create(await dns.zoneFor('mail.test'), {
      type: 'TLSA',
      name: '_25._tcp.mx6.mail.test',
      value: `3 1 1 ${someoneElses}`,
      ttl: 2,
    });
    const forced = await runCli(['renew', '--force'], env);
    expect(forced.code, forced.stdout).toBe(0);
    const waits = logsWith(forced, { step: 'dane', msg: 'DANE rollover waits' });
    expect(waits[0]?.reason).toMatch(
      /^DANE: the ec-256 key in CERTS_DIR is not one mailcerts made or deployed, and no TLSA record names it: .*: not before /,
    );
    expect(leafKey()).toBe(theirs); // nothing better may be served yet
    expect(logsWith(forced, { step: 'order' })).toEqual([]);
    const rrset = bind.dig('_25._tcp.mx6.mail.test', 'TLSA');
    expect(rrset).not.toContain(tlsa(theirs));
    expect(rrset).toContain(tlsa(nextKey()));
    const shown = await runCli(['dane'], env);
    expect(shown.stdout).toContain(
      `3 1 1 ${someoneElses}   ; not a key of mailcerts (left alone), answered by 1 of 1 servers`,
    );

    await delay(Math.max(0, Date.parse(String(waits[0]!.readyAt)) - Date.now()) + 200);
    const next = nextKey();
    const roll = await runCli(['run', '--once'], env);
    expect(roll.code, roll.stdout).toBe(0);
    expect(
      logsWith(roll, {
        step: 'order',
        msg: 'ordering with the next key, whose TLSA record is published (DANE rollover)',
      }),
    ).toHaveLength(1);
    expect(leafKey()).toBe(next);
    expect(bind.dig('_25._tcp.mx6.mail.test', 'TLSA')).toContain(tlsa(next));
    expect(bind.dig('_25._tcp.mx6.mail.test', 'TLSA')).toContain(tlsa(someoneElses)); // not mailcerts' to delete
  });
  it('nothing served at all, but TLSA records at the name: the announced next key is used at once rather than leave the server without a certificate', async () => {
    const { env, leafKey, nextKey } = envFor('no-cert', { ACME_DOMAINS: 'mx8.mail.test', DANE_NAMES: 'mx8.mail.test' });
    const dns = new Rfc2136Dns({
      server: { host: '127.0.0.1', port: bind.port },
      key: { name: KEY, algorithm: 'hmac-sha256', secret: Buffer.from(secret, 'base64') },
      log: createLogger('silent'),
    });
    await dns.create(await dns.zoneFor('mail.test'), {
      type: 'TLSA',
      name: '_25._tcp.mx8.mail.test',
      value: `3 1 1 ${createHash('sha256').update('an old setup').digest('hex')}`,
      ttl: TTL,
    });
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(
      logsWith(r, { step: 'dane', msg: 'DANE: ordering with the next key before its burn-in ends' })[0]?.reason,
    ).toMatch(/, but no key type of this certificate has one: ordering with the announced next key now/);
    const used = leafKey();
    expect(bind.dig('_25._tcp.mx8.mail.test', 'TLSA')).toContain(tlsa(used)); // announced before the order
    expect(nextKey()).not.toBe(used); // and the rollover is done: a new next key
  });
});

describe('DANE and DNSSEC (this zone is not signed)', () => {
  it('check and dane warn that DANE is void; with DANE_RESOLVER, a resolver that gives no AD bit holds the rollover', async () => {
    const { env } = envFor('unsigned', { ACME_DOMAINS: 'mx7.mail.test', DANE_NAMES: 'mx7.mail.test' });
    expect((await runCli(['run', '--once'], env)).code).toBe(0);
    const warning =
      'the zone mail.test is not DNSSEC-signed (its name servers answer without RRSIG): validating senders ignore TLSA records there, so DANE is void until the zone is signed';
    const check = await runCli(['check'], env);
    expect(check.stdout).toContain(`DANE for mx7.mail.test: WARNING: ${warning}`);
    expect((await runCli(['dane'], env)).stdout).toContain(`  DNSSEC WARNING: ${warning}`);

    // The zone's own server as the "validating resolver": it answers, but never with the AD bit.
    const validating = { ...env, DANE_RESOLVER: bind.address };
    await runCli(['dane', 'rollover'], validating);
    for (let i = 0; i < 2; i++) {
      const r = await runCli(['run', '--once'], validating);
      expect(r.code, r.stdout).toBe(0);
      expect(
        JSON.stringify(logsWith(r, { step: 'dane', msg: 'TLSA records not yet answered everywhere' })[0]?.missing),
      ).toContain(
        `_25._tcp.mx7.mail.test on ${bind.address} (validating resolver) (answered without the AD bit: not validated by DNSSEC)`,
      );
      const waits = logsWith(r, { step: 'dane', msg: 'DANE rollover waits' });
      expect(waits[0]?.reason).toMatch(
        /not yet answered by every authoritative server \(and validating resolver, with DANE_RESOLVER\); the current key stays$/,
      );
      expect(waits[0]?.readyAt).toBeUndefined();
    }
    expect((await runCli(['dane'], validating)).stdout).toMatch(
      /; current, answered by 1 of 1 servers, validated by 0 of 1 resolvers/,
    );
  });
});

describe('DANE over Cloudflare (the official SDK against the double; its DNS is a BIND zone)', () => {
  const TOKEN = 'dane-token-0123456789abcdefABCDEF_-xyz';
  const zone = { id: zoneId(), name: 'cf.test' };
  let cf: CloudflareDouble;
  let cfBind: Bind;

  beforeAll(async () => {
    const [port] = await freePorts(1);
    cfBind = await startBind({
      dir: join(work, 'cf-bind'),
      port: port!,
      keys: [{ name: KEY, secret }],
      zones: [{ name: 'cf.test' }],
    });
    const dns = new Rfc2136Dns({
      server: { host: '127.0.0.1', port: cfBind.port },
      key: { name: KEY, algorithm: 'hmac-sha256', secret: Buffer.from(secret, 'base64') },
      log: createLogger('silent'),
    });
    cf = await startCloudflareDouble({
      zones: [zone],
      tokens: { [TOKEN]: { zones: '*', permissions: ['#zone:read', '#dns_records:read', '#dns_records:edit'] } },
      challtestsrv: `http://127.0.0.1:${inject('pebble').dnsMgmtPort}`,
      visibleAfterMs: 300,
      // What Cloudflare's name servers would answer: the visible TLSA records, each name's whole RRset.
      tlsaDns: async (name, values, ttl) => {
        const z = await dns.zoneFor(name);
        const present = await dns.list(z, 'TLSA', name);
        for (const p of present) if (!values.includes(p.record.value)) await dns.delete(z, p.id);
        for (const v of values)
          if (!present.some((p) => p.record.value === v)) await dns.create(z, { type: 'TLSA', name, value: v, ttl });
      },
    });
  });
  afterAll(async () => {
    await cf?.stop();
    await cfBind?.stop();
  });

  it('writes the TLSA records with their TTL through the SDK, keeps them across a renewal, and retires the old one after a rollover', async () => {
    const dir = join(work, 'cloudflare');
    const env = pebbleEnv(dir, {
      ACME_DOMAINS: 'mx.cf.test',
      DANE_NAMES: 'mx.cf.test',
      DANE_PROVIDER: 'cloudflare',
      DANE_TTL: '60s',
      CLOUDFLARE_API_TOKEN: TOKEN,
      CLOUDFLARE_API_BASE_URL: cf.url,
      DNS01_RESOLVERS: cfBind.address,
      DOCKER_RELOAD: 'false',
    });
    const leafKey = () => spki(readFileSync(join(dir, 'certs', 'privkey.pem'), 'utf8'));
    const nextKey = () => spki(readFileSync(join(dir, 'state', 'certificates', 'mx.cf.test', 'dane-next.pem'), 'utf8'));
    const tlsaAtCf = () =>
      [...cf.records.values()]
        .filter((r) => r.type === 'TLSA')
        .map((r) => `${r.name} ${r.ttl} ${r.content} ${r.comment}`)
        .sort();

    const first = await runCli(['run', '--once'], env);
    expect(first.code, first.stdout).toBe(0);
    const old = { current: leafKey(), next: nextKey() };
    expect(tlsaAtCf()).toEqual(
      [
        `_25._tcp.mx.cf.test 60 3 1 1 ${old.current} mailcerts DANE`,
        `_25._tcp.mx.cf.test 60 3 1 1 ${old.next} mailcerts DANE`,
      ].sort(),
    );
    expect([...cf.records.values()].find((r) => r.type === 'TLSA')?.data).toMatchObject({
      usage: 3,
      selector: 1,
      matching_type: 1,
    });
    expect(cfBind.dig('_25._tcp.mx.cf.test', 'TLSA').sort()).toEqual([tlsa(old.current), tlsa(old.next)].sort());
    expect(logsWith(first, { step: 'dane', msg: 'TLSA records in step with the served key' })).toHaveLength(1);

    expect((await runCli(['renew', '--force'], env)).code).toBe(0);
    expect(leafKey()).toBe(old.current);
    await runCli(['dane', 'rollover'], env);
    const early = await runCli(['run', '--once'], env);
    expect(logsWith(early, { step: 'dane', msg: 'DANE rollover waits' })[0]?.reason).toMatch(
      /must be for twice the TTL \(2m\)/,
    );
    // Two minutes pass: the DANE state says the records were seen that long ago.
    const statePath = join(dir, 'state', 'certificates', 'mx.cf.test', 'dane.json');
    const st = JSON.parse(readFileSync(statePath, 'utf8'));
    st.seenSince = new Date(Date.now() - 121_000).toISOString();
    writeFileSync(statePath, JSON.stringify(st));
    const deletes = cf.requests.filter((q) => q.method === 'DELETE').length;
    const roll = await runCli(['run', '--once'], env);
    expect(roll.code, roll.stdout).toBe(0);
    expect(leafKey()).toBe(old.next);
    expect(tlsaAtCf()).toEqual(
      [
        `_25._tcp.mx.cf.test 60 3 1 1 ${old.next} mailcerts DANE`,
        `_25._tcp.mx.cf.test 60 3 1 1 ${nextKey()} mailcerts DANE`,
      ].sort(),
    );
    expect(cf.requests.filter((q) => q.method === 'DELETE').length - deletes).toBe(1);
    expect(cfBind.dig('_25._tcp.mx.cf.test', 'TLSA').sort()).toEqual([tlsa(old.next), tlsa(nextKey())].sort());
    const status = JSON.parse((await runCli(['status', '--json'], env)).stdout) as {
      dane?: { inStep?: boolean; names?: Record<string, boolean>; summary: string };
    }[];
    expect(status[0]!.dane).toMatchObject({
      inStep: true,
      names: { '_25._tcp.mx.cf.test': true },
      summary: expect.stringMatching(/^in step; next not yet answered everywhere; rollover due /),
    });
  });

  it("a TTL below Cloudflare's minimum is refused: the burn-in would be counted in a TTL that is not the real one", async () => {
    const r = await runCli(
      ['run', '--once'],
      pebbleEnv(join(work, 'cf-ttl'), {
        ACME_DOMAINS: 'mx.cf.test',
        DANE_NAMES: 'mx.cf.test',
        DANE_PROVIDER: 'cloudflare',
        DANE_TTL: '10s',
        CLOUDFLARE_API_TOKEN: TOKEN,
      }),
    );
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(
      'DANE_TTL: cloudflare takes no TTL below 60 s, and the rollover waits twice the real TTL: set DANE_TTL to 60s or more',
    );
  });
});
