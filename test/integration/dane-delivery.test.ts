import { createHash, createPublicKey, randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Bind, startBind, tsigKeygen } from '../../scripts/lib/bind.mjs';
import { type Pebble, startPebble } from '../../scripts/lib/pebble.mjs';
import { startUnbound, type Unbound } from '../../scripts/lib/unbound.mjs';
import { logsWith, runCli } from '../helpers/cli.js';
import { type DaneSender, startDaneSender } from '../helpers/dane-sender.js';
import { ENDPOINTS, removeTestContainers, seedSelfSigned, startMailStack, TEST_PROJECT } from '../helpers/mailstack.js';
import { freePorts } from '../helpers/ports.js';
import { rfc2136Env } from '../helpers/rfc2136-env.js';

/**
 * DANE end to end, as a validating sender sees it: BIND signs mail.test (DNSSEC) and takes
 * mailcerts' RFC 2136 updates, unbound validates with the zone's key, and a second Postfix with
 * smtp_tls_security_level = dane delivers to the stack's Postfix through that resolver, before,
 * during and after a forced rollover.
 */
const work = join(inject('workDir'), 'dane-delivery');
const KEY = 'mailcerts-dane';
const secret = tsigKeygen(KEY);
const TTL = 3; // the TLSA RRset's TTL, in seconds: the burn-in is 6 s
const MX = 'mx.mail.test';
let bind: Bind;
let unbound: Unbound;
let pebble: Pebble;
let sender: DaneSender;
const certsDir = join(work, 'certs');

function env(): Record<string, string> {
  return rfc2136Env(
    { pebble, bind, key: KEY, secret, certsDir, stateDir: join(work, 'state') },
    {
      ACME_DOMAINS: MX,
      DANE_NAMES: MX,
      DANE_PORTS: String(ENDPOINTS.smtp.port),
      DANE_TTL: `${TTL}s`,
      DOCKER_SCOPE: TEST_PROJECT,
      // The burn-in counts only what the validating resolver answers with the AD bit.
      DANE_RESOLVER: unbound.address,
    },
  );
}

beforeAll(async () => {
  mkdirSync(certsDir, { recursive: true });
  const [dnsPort, acmePort, mgmtPort, httpPort] = await freePorts(4);
  bind = await startBind({
    dir: join(work, 'bind'),
    port: dnsPort!,
    keys: [{ name: KEY, secret }],
    zones: [{ name: 'mail.test', dnssec: true, records: ['mx IN A 127.0.0.1'] }],
  });
  const address = `127.53.${randomInt(1, 255)}.${randomInt(1, 255)}`;
  unbound = await startUnbound({
    dir: join(work, 'unbound'),
    address,
    zone: 'mail.test',
    trustAnchor: await bind.ksk('mail.test'),
    stub: bind.address,
  });
  pebble = await startPebble({ dir: join(work, 'pebble'), dnsServer: bind.address, acmePort, mgmtPort, httpPort });
  await seedSelfSigned(certsDir);
  await startMailStack(certsDir);
  // The sending MTA: DANE through the validating resolver, every message to the stack's Postfix.
  sender = await startDaneSender(work, { name: 'dane-sender', mx: MX, resolver: address, certsDir });
});
afterAll(async () => {
  await removeTestContainers();
  await pebble?.stop();
  await unbound?.stop();
  await bind?.stop();
});

describe('a DANE-validating Postfix delivers to the stack before, during and after a rollover', () => {
  it('without TLSA records the sender cannot authenticate the server (the control)', async () => {
    expect(unbound.dig(MX, 'A')).toMatch(/flags: qr rd ra ad;/);
    const attempt = await sender.deliver();
    expect(attempt).not.toMatch(/Verified TLS connection established/);
    expect(attempt).toMatch(/(Untrusted|Anonymous) TLS connection established to mx\.mail\.test/);
  });

  it('after mailcerts publishes the certificate and its TLSA records: "Verified TLS connection established"', async () => {
    const seedKey = readFileSync(join(certsDir, 'privkey.pem'), 'utf8');
    const r = await runCli(['run', '--once'], env());
    expect(r.code, r.stdout).toBe(0);
    // The seed's key, found in CERTS_DIR, is neither reused nor announced.
    expect(readFileSync(join(certsDir, 'privkey.pem'), 'utf8')).not.toBe(seedKey);
    expect(bind.dig(`_${ENDPOINTS.smtp.port}._tcp.${MX}`, 'TLSA')).toHaveLength(2);
    expect(logsWith(r, { step: 'dane', msg: 'TLSA records in step with the served key' })).toHaveLength(1);
    expect(unbound.dig(`_${ENDPOINTS.smtp.port}._tcp.${MX}`, 'TLSA')).toMatch(/flags: qr rd ra ad;/);
    // The resolver may still answer from what it held before the records came (for up to their TTL).
    let shown = await runCli(['dane'], env());
    for (
      const end = Date.now() + 2 * TTL * 1000;
      !/validated by 1 of 1 resolvers/.test(shown.stdout) && Date.now() < end;
    ) {
      await delay(500);
      shown = await runCli(['dane'], env());
    }
    expect(shown.stdout).toMatch(/; current, answered by 1 of 1 servers, validated by 1 of 1 resolvers/);
    expect(shown.stdout).toContain(`  DNSSEC: signed; validated by ${unbound.address} (AD bit required)`);
    expect((await runCli(['check'], env())).stdout).toContain(
      `DANE for ${MX}: DNSSEC ok (validated by ${unbound.address} (AD bit required))`,
    );
    await delay(TTL * 1000 + 500); // the resolver may hold the empty answer for the negative TTL
    const attempt = await sender.deliver();
    expect(attempt).toMatch(
      new RegExp(`Verified TLS connection established to mx\\.mail\\.test\\[127\\.0\\.0\\.1\\]:${ENDPOINTS.smtp.port}`),
    );
    expect(attempt).toMatch(/status=sent/);
  });

  it('a forced rollover waits for twice the TTL (mail still verified meanwhile), then swaps the key; mail is verified after it', async () => {
    const keyOf = () => readFileSync(join(certsDir, 'privkey.pem'), 'utf8');
    const before = keyOf();
    expect((await runCli(['dane', 'rollover'], env())).code).toBe(0);
    await runCli(['run', '--once'], env()); // records seen now: the clock starts
    const early = await runCli(['run', '--once'], env());
    const waits = logsWith(early, { step: 'dane', msg: 'DANE rollover waits' });
    expect(waits, early.stdout).toHaveLength(1);
    expect(keyOf()).toBe(before);
    expect(await sender.deliver()).toMatch(/Verified TLS connection established/);

    const readyAt = Date.parse(String(waits[0]!.readyAt));
    const seenSince = Date.parse(/seen since (\S+),/.exec(String(waits[0]!.reason))![1]!);
    expect(readyAt - seenSince).toBe(2 * TTL * 1000);
    await delay(Math.max(0, readyAt - Date.now()) + 200);
    const roll = await runCli(['run', '--once'], env());
    expect(roll.code, roll.stdout).toBe(0);
    expect(
      logsWith(roll, {
        step: 'order',
        msg: 'ordering with the next key, whose TLSA record is published (DANE rollover)',
      }),
    ).toHaveLength(1);
    expect(logsWith(roll, { msg: 'serves the published certificate' }).length).toBeGreaterThan(0);
    expect(keyOf()).not.toBe(before);
    const attempt = await sender.deliver();
    expect(attempt).toMatch(/Verified TLS connection established/);
    expect(attempt).toMatch(/status=sent/);
  });
});

describe('mailcerts loses its state: DNS says which key may be served, and the sender never defers', () => {
  const stateDir = join(work, 'state');
  const keyOf = () => readFileSync(join(certsDir, 'privkey.pem'), 'utf8');
  const spki = (pem: string) =>
    createHash('sha256')
      .update(createPublicKey(pem).export({ type: 'spki', format: 'der' }))
      .digest('hex');
  const tlsaName = `_${ENDPOINTS.smtp.port}._tcp.${MX}`;

  it('state.json damaged (mailcerts moves it aside), then renew --force: the served key is kept', async () => {
    const before = keyOf();
    writeFileSync(join(stateDir, 'certificates', MX, 'state.json'), '{"deployedDigest": "trunc');
    const r = await runCli(['renew', '--force'], env());
    expect(r.code, r.stdout).toBe(0);
    const attempt = await sender.deliver();
    expect(attempt).toMatch(/Verified TLS connection established/);
    expect(attempt).toMatch(/status=sent/);
    expect(
      logsWith(r, { msg: 'a state file was damaged; it was moved aside and mailcerts starts afresh for it' }),
    ).toHaveLength(1);
    expect(logsWith(r, { step: 'order', msg: 'reusing the published private key (DANE)' })).toHaveLength(1);
    expect(keyOf()).toBe(before);
  });

  it('STATE_DIR recreated empty, then renew --force: the served key is kept (every server answers its record), a new next key is announced', async () => {
    const before = keyOf();
    rmSync(stateDir, { recursive: true, force: true });
    mkdirSync(stateDir);
    const r = await runCli(['renew', '--force'], env());
    expect(r.code, r.stdout).toBe(0);
    const attempt = await sender.deliver();
    expect(attempt).toMatch(/Verified TLS connection established/);
    expect(attempt).toMatch(/status=sent/);
    expect(logsWith(r, { step: 'order', msg: 'reusing the published private key (DANE)' })).toHaveLength(1);
    expect(keyOf()).toBe(before);
    const next = spki(readFileSync(join(stateDir, 'certificates', MX, 'dane-next.pem'), 'utf8'));
    expect(bind.dig(tlsaName, 'TLSA').map((v) => v.replace(/\s/g, '').toLowerCase())).toContain(`311${next}`);
  });
});
