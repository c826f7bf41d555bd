import { randomInt } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { tsigKeygen } from '../../scripts/lib/bind.mjs';
import { type Pebble, startPebble } from '../../scripts/lib/pebble.mjs';
import { startUnbound, type Unbound } from '../../scripts/lib/unbound.mjs';
import { spkiOfKey } from '../../src/pki/identity.js';
import { type LaggingPair, startLaggingPair } from '../helpers/bind-pair.js';
import { type CliRun, logsWith, runCli } from '../helpers/cli.js';
import { type DaneSender, startDaneSender } from '../helpers/dane-sender.js';
import { ENDPOINTS, removeTestContainers, seedSelfSigned, startMailStack, TEST_PROJECT } from '../helpers/mailstack.js';
import { freePorts } from '../helpers/ports.js';
import { rfc2136Env } from '../helpers/rfc2136-env.js';

/**
 * DANE with a lagging secondary and no DNS01_RESOLVERS: dlag.test is signed on a BIND primary
 * and transferred, signed, to a BIND secondary that lags until the test releases it. The
 * validating resolver the sending Postfix uses asks only the secondary; mailcerts is given none
 * (no DANE_RESOLVER), so only its asking every server of the NS set can hold a rollover. A rollover
 * waits until the secondary answers the next key (for twice the TTL), never deploying before; the
 * sender, which sees only what the secondary serves, never defers.
 */
const work = join(inject('workDir'), 'dane-secondary');
const KEY = 'mailcerts-dane-lag';
const secret = tsigKeygen(KEY);
const ZONE = 'dlag.test';
const MX = `mx.${ZONE}`;
const TTL = 3; // seconds: the burn-in is 6 s
const certsDir = join(work, 'certs');
let pair: LaggingPair;
let unbound: Unbound;
let pebble: Pebble;
let sender: DaneSender;
const attempts: string[] = [];

const leafKey = () => spkiOfKey(readFileSync(join(certsDir, 'privkey.pem'), 'utf8'));
const nextKey = () => spkiOfKey(readFileSync(join(work, 'state', 'certificates', MX, 'dane-next.pem'), 'utf8'));
const owner = `_${ENDPOINTS.smtp.port}._tcp.${MX}`;
const onSecondary = () => pair.secondary.dig(owner, 'TLSA').map((r) => r.replace(/\s+/g, '').slice(3).toLowerCase());
function env(): Record<string, string> {
  const e = rfc2136Env(
    { pebble, bind: pair.primary, key: KEY, secret, certsDir, stateDir: join(work, 'state') },
    {
      ACME_DOMAINS: MX,
      ACME_CHALLENGE: 'http-01',
      HTTP01_PORT: String(pebble.httpPort),
      DANE_NAMES: MX,
      DANE_PROVIDER: 'rfc2136',
      DANE_PORTS: String(ENDPOINTS.smtp.port),
      DANE_TTL: `${TTL}s`,
      DOCKER_SCOPE: TEST_PROJECT,
      // New records are waited for this long, then the pass goes on (the secondary may lag for hours).
      DNS01_PROPAGATION_TIMEOUT: '5s',
    },
  );
  delete e.DNS01_RESOLVERS;
  return e;
}
const mailcerts = (...args: string[]): Promise<CliRun> => runCli(args, env(), { resolvConf: pair.resolvConf });
/** One message through the sender; every attempt is kept, to show none was deferred. */
async function deliver(): Promise<string> {
  const attempt = await sender.deliver();
  attempts.push(attempt);
  return attempt;
}
async function rolloverWaits(): Promise<Record<string, unknown>> {
  expect((await mailcerts('dane', 'rollover')).code).toBe(0);
  const r = await mailcerts('run', '--once');
  expect(r.code, r.stdout + r.stderr).toBe(0);
  const waits = logsWith(r, { step: 'dane', msg: 'DANE rollover waits' });
  expect(waits, r.stdout).toHaveLength(1);
  return waits[0]!;
}

beforeAll(async () => {
  mkdirSync(certsDir, { recursive: true });
  pair = await startLaggingPair(join(work, 'dns'), {
    zone: ZONE,
    key: { name: KEY, secret },
    dnssec: true,
    records: ['mx IN A 127.0.0.1'],
  });
  unbound = await startUnbound({
    dir: join(work, 'unbound'),
    address: `127.53.${randomInt(1, 255)}.${randomInt(1, 255)}`,
    zone: ZONE,
    trustAnchor: await pair.primary.ksk(ZONE),
    stub: pair.secondary.address,
  });
  const [acmePort, mgmtPort, httpPort] = await freePorts(3);
  pebble = await startPebble({
    dir: join(work, 'pebble'),
    dnsServer: pair.secondary.address,
    acmePort,
    mgmtPort,
    httpPort,
  });
  await seedSelfSigned(certsDir);
  await startMailStack(certsDir);
  sender = await startDaneSender(work, { name: 'dane-lag-sender', mx: MX, resolver: unbound.address, certsDir });
}, 180_000);
afterAll(async () => {
  await removeTestContainers();
  await pebble?.stop();
  await unbound?.stop();
  await pair?.stop();
});

describe('DANE with a lagging secondary (no DNS01_RESOLVERS)', () => {
  it('the first certificate: its records reach the secondary once it is released; the sender then verifies the server', async () => {
    const r = await mailcerts('run', '--once');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(logsWith(r, { step: 'dane', msg: 'the new TLSA records are not visible everywhere yet' })).toHaveLength(1);
    expect(onSecondary()).toEqual([]);
    pair.release();
    for (let i = 0; i < 50 && !onSecondary().includes(leafKey()); i++) await delay(100);
    expect(onSecondary()).toContain(leafKey());
    await delay((TTL + 1) * 1000); // the resolver's cached "no TLSA" answer expires
    expect(await deliver()).toMatch(/Verified TLS connection established/);
  });

  it("a rollover waits while the secondary lacks the next key's record, and for twice the TTL after it has it; mail is verified throughout", async () => {
    // A first rollover: its next key was released to the secondary with the first records.
    const first = await rolloverWaits();
    await delay(Math.max(0, Date.parse(String(first.readyAt)) - Date.now()) + 200);
    const rolled = await mailcerts('run', '--once');
    expect(
      logsWith(rolled, {
        step: 'dane',
        msg: 'DANE rollover done: the next key is served; a new next key is announced and the old digest retired',
      }),
    ).toHaveLength(1);
    const served = leafKey();
    expect(onSecondary()).toContain(served); // the key it serves was already on the secondary
    expect(await deliver()).toMatch(/Verified TLS connection established/);

    // The new next key is on the primary only: a second rollover asked for waits, pass after pass.
    const early = await rolloverWaits();
    expect(String(early.reason)).toMatch(/not yet answered by every authoritative server/);
    await delay(2 * TTL * 1000 + 500);
    const still = await rolloverWaits();
    expect(String(still.reason)).toMatch(/not yet answered by every authoritative server/);
    expect(leafKey()).toBe(served);
    expect(await deliver()).toMatch(/Verified TLS connection established/);

    // Released: the next key is answered everywhere, and the burn-in starts only now.
    pair.release();
    for (let i = 0; i < 50 && !onSecondary().includes(nextKey()); i++) await delay(100);
    expect(onSecondary()).toContain(nextKey());
    const burnIn = await rolloverWaits();
    expect(String(burnIn.reason)).toMatch(/must be for twice the TTL \(6s\)/);
    expect(Date.parse(String(burnIn.readyAt)) - Date.now()).toBeGreaterThan(3_000);
    expect(leafKey()).toBe(served);
    await delay(Math.max(0, Date.parse(String(burnIn.readyAt)) - Date.now()) + 200);
    const second = await mailcerts('run', '--once');
    expect(second.code, second.stdout).toBe(0);
    expect(leafKey()).not.toBe(served);
    expect(onSecondary()).toContain(leafKey());
    expect(await deliver()).toMatch(/Verified TLS connection established/);
    // The sender never deferred a message.
    for (const a of attempts) expect(a).not.toMatch(/status=deferred/);
  });
});
