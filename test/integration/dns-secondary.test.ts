import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Bind, tsigKeygen } from '../../scripts/lib/bind.mjs';
import { type Pebble, startPebble } from '../../scripts/lib/pebble.mjs';
import { type LaggingPair, startLaggingPair } from '../helpers/bind-pair.js';
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
const work = join(inject('workDir'), 'dns-secondary');
const KEY = 'mailcerts-lag';
const secret = tsigKeygen(KEY);
const ZONE = 'lag.test';
let pair: LaggingPair;
let pebble: Pebble;
const host = (b: Bind) => b.address.replace(/:53$/, '');

beforeAll(async () => {
  pair = await startLaggingPair(work, { zone: ZONE, key: { name: KEY, secret }, records: ['mail IN A 127.0.0.1'] });
  const [acmePort, mgmtPort, httpPort] = await freePorts(3);
  const dnsServer = pair.secondary.address;
  pebble = await startPebble({ dir: join(work, 'pebble'), dnsServer, acmePort, mgmtPort, httpPort });
}, 120_000);
afterAll(async () => {
  await pebble?.stop();
  await pair?.stop();
});

describe('a primary and a lagging secondary, found from the NS records (no DNS01_RESOLVERS)', () => {
  it('a DNS-01 order waits until the secondary has the TXT record, then succeeds', async () => {
    const env = rfc2136Env(
      {
        pebble,
        bind: pair.primary,
        key: KEY,
        secret,
        certsDir: join(work, 'certs'),
        stateDir: join(work, 'state'),
      },
      { ACME_DOMAINS: `mail.${ZONE}`, DOCKER_RELOAD: 'false', DNS01_PROPAGATION_TIMEOUT: '60s' },
    );
    delete env.DNS01_RESOLVERS;
    expect(pair.secondary.dig(`_acme-challenge.mail.${ZONE}`, 'TXT')).toEqual([]);
    let releasedAt = 0;
    let waits: Record<string, unknown>[] = [];
    const r = await runCli(['run', '--once'], env, {
      resolvConf: pair.resolvConf,
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
          pair.release();
        }
      },
    });
    expect(r.code, r.stdout).toBe(0);
    expect(releasedAt, 'mailcerts never waited on the secondary').toBeGreaterThan(0);
    // What it waited for: the record on the secondary, found from the NS records; never the primary.
    const missing = waits.flatMap((w) => w.waiting as string[]);
    expect(missing.length).toBeGreaterThan(0);
    for (const m of missing)
      expect(m).toBe(`_acme-challenge.mail.${ZONE} on ${host(pair.secondary)} (1 of 1 values missing)`);
    const visible = r.logs.find((l) => l.msg === 'TXT records visible on every name server');
    expect(Date.parse(String(visible?.time))).toBeGreaterThanOrEqual(releasedAt - 100);
    // The primary was asked too (the CA asks only the secondary): every server of the NS set counts.
    expect(readFileSync(join(pair.primary.dir, 'named.log'), 'utf8')).toMatch(
      /query: _acme-challenge\.mail\.lag\.test IN TXT/,
    );
    const leaf = new X509Certificate(readFileSync(join(work, 'certs', 'cert.pem')));
    expect(leaf.subjectAltName).toBe(`DNS:mail.${ZONE}`);
    waits = [];
  });
});
