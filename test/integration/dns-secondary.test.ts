import { execFile } from 'node:child_process';
import { randomInt, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Bind, startBind, tsigKeygen } from '../../scripts/lib/bind.mjs';
import { type Pebble, startPebble } from '../../scripts/lib/pebble.mjs';
import { runCli } from '../helpers/cli.js';
import { freePorts } from '../helpers/ports.js';
import { rfc2136Env } from '../helpers/rfc2136-env.js';

/**
 * The default DNS path, with no DNS01_RESOLVERS: mailcerts finds the zone's name servers through
 * the system's resolver (a resolv.conf of the test's own, naming the primary) and asks each of
 * them. A BIND primary and a BIND secondary serve lag.test on port 53 of two loopback addresses;
 * the secondary lags (no NOTIFY, a refresh of an hour) until the test releases it with rndc. The
 * CA resolves through the secondary only, so an order that went ahead before the secondary had the
 * record would fail its validation.
 */
const run = promisify(execFile);
const work = join(inject('workDir'), 'dns-secondary');
const KEY = 'mailcerts-lag';
const secret = tsigKeygen(KEY);
const ZONE = 'lag.test';
// Addresses of this run's own: port 53 there is free whatever else the machine runs.
const net = `127.54.${randomInt(1, 255)}`;
const PRIMARY = `${net}.1`;
const SECONDARY = `${net}.2`;
let primary: Bind;
let secondary: Bind;
let pebble: Pebble;
const resolvConf = join(work, 'resolv.conf');

/** BIND listens only on the addresses of an interface: these two are put on lo for the test, and taken off after. */
const onLo = (op: 'add' | 'del', address: string) =>
  run('ip', ['addr', op, `${address}/32`, 'dev', 'lo']).catch((err: unknown) => {
    if (op === 'add') throw err;
  });

beforeAll(async () => {
  mkdirSync(work, { recursive: true });
  for (const a of [PRIMARY, SECONDARY]) await onLo('add', a);
  const [rndcPort, acmePort, mgmtPort, httpPort] = await freePorts(4);
  primary = await startBind({
    dir: join(work, 'primary'),
    address: PRIMARY,
    port: 53,
    querylog: true,
    keys: [{ name: KEY, secret }],
    zones: [
      {
        name: ZONE,
        nameServers: [
          { name: 'ns1', address: PRIMARY },
          { name: 'ns2', address: SECONDARY },
        ],
        refresh: 3600,
        transferTo: [SECONDARY],
        records: ['mail IN A 127.0.0.1'],
      },
    ],
  });
  secondary = await startBind({
    dir: join(work, 'secondary'),
    address: SECONDARY,
    port: 53,
    rndcPort,
    keys: [],
    zones: [{ name: ZONE, secondaryOf: `${PRIMARY}:53` }],
  });
  pebble = await startPebble({ dir: join(work, 'pebble'), dnsServer: `${SECONDARY}:53`, acmePort, mgmtPort, httpPort });
  writeFileSync(resolvConf, `nameserver ${PRIMARY}\n`);
}, 120_000);
afterAll(async () => {
  await pebble?.stop();
  await secondary?.stop();
  await primary?.stop();
  for (const a of [PRIMARY, SECONDARY]) await onLo('del', a);
});

describe('a primary and a lagging secondary, found from the NS records (no DNS01_RESOLVERS)', () => {
  it('a DNS-01 order waits until the secondary has the TXT record, then succeeds', async () => {
    const env = rfc2136Env(
      {
        pebble,
        bind: primary,
        key: KEY,
        secret,
        certsDir: join(work, 'certs'),
        stateDir: join(work, 'state'),
      },
      { ACME_DOMAINS: `mail.${ZONE}`, DOCKER_RELOAD: 'false', DNS01_PROPAGATION_TIMEOUT: '60s' },
    );
    delete env.DNS01_RESOLVERS;
    expect(secondary.dig(`_acme-challenge.mail.${ZONE}`, 'TXT')).toEqual([]);
    let releasedAt = 0;
    let waits: Record<string, unknown>[] = [];
    const r = await runCli(['run', '--once'], env, {
      resolvConf,
      onLine: (line) => {
        if (line.msg !== 'waiting for the TXT records to propagate') return;
        waits.push(line);
        // Released only once mailcerts has waited on the secondary for three seconds.
        if (
          !releasedAt &&
          waits.length > 1 &&
          Date.parse(String(line.time)) - Date.parse(String(waits[0]!.time)) >= 3_000
        ) {
          releasedAt = Date.now();
          secondary.rndc('retransfer', ZONE);
        }
      },
    });
    expect(r.code, r.stdout).toBe(0);
    expect(releasedAt, 'mailcerts never waited on the secondary').toBeGreaterThan(0);
    // What it waited for: the record on the secondary, found from the NS records; never the primary.
    const missing = waits.flatMap((w) => w.waiting as string[]);
    expect(missing.length).toBeGreaterThan(0);
    for (const m of missing) expect(m).toBe(`_acme-challenge.mail.${ZONE} on ${SECONDARY} (1 of 1 values missing)`);
    const visible = r.logs.find((l) => l.msg === 'TXT records visible on every name server');
    expect(Date.parse(String(visible?.time))).toBeGreaterThanOrEqual(releasedAt - 100);
    // The primary was asked too (the CA asks only the secondary): every server of the NS set counts.
    expect(readFileSync(join(primary.dir, 'named.log'), 'utf8')).toMatch(
      /query: _acme-challenge\.mail\.lag\.test IN TXT/,
    );
    const leaf = new X509Certificate(readFileSync(join(work, 'certs', 'cert.pem')));
    expect(leaf.subjectAltName).toBe(`DNS:mail.${ZONE}`);
    waits = [];
  });
});
