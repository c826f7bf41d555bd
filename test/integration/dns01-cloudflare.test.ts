import { X509Certificate } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type CloudflareDouble, startCloudflareDouble, zoneId } from '../doubles/cloudflare.js';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import { removeTestContainers, seedSelfSigned, servedCertificate, startMailStack } from '../helpers/mailstack.js';

const pebble = inject('pebble');
const work = join(inject('workDir'), 'dns01');
const TOKENS = {
  good: 'good-token-0123456789abcdefABCDEF_-xyz',
  readonly: 'readonly-token-0123456789abcdefABCDEF',
  nozone: 'nozone-token-0123456789abcdefABCDEF',
  unlisted: 'unlisted-token-0123456789abcdefABCDEF',
  unknown: 'unknown-token-0123456789abcdefABCDEF',
};
// 55 other zones first, so that with 50 zones a page the ones we need sit on the second page.
const fillers = Array.from({ length: 55 }, (_, i) => ({
  id: zoneId(),
  name: `filler${String(i).padStart(2, '0')}.test`,
}));
const example = { id: zoneId(), name: 'example.test' };
const other = { id: zoneId(), name: 'other.test' };
const euZone = { id: zoneId(), name: 'example.co.test' };

let cf: CloudflareDouble;

function envFor(name: string, extra: Record<string, string> = {}) {
  const dir = join(work, name);
  mkdirSync(join(dir, 'certs'), { recursive: true });
  return {
    dir,
    env: pebbleEnv(dir, {
      ACME_CHALLENGE: 'dns-01',
      CLOUDFLARE_API_TOKEN: TOKENS.good,
      CLOUDFLARE_API_BASE_URL: cf.url,
      DNS01_RESOLVERS: `127.0.0.1:${pebble.dnsPort}`,
      DNS01_PROPAGATION_TIMEOUT: '60s',
      DOCKER_RELOAD: 'false',
      ...extra,
    }),
  };
}

async function txt(name: string): Promise<string[]> {
  const r = new Resolver();
  r.setServers([`127.0.0.1:${pebble.dnsPort}`]);
  return (await r.resolveTxt(name).catch(() => [] as string[][])).map((c) => c.join(''));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** The token must not appear in any output or state file. */
function expectNoToken(outputs: string[], stateDir: string) {
  for (const o of outputs) for (const t of Object.values(TOKENS)) expect(o.includes(t), 'token in output').toBe(false);
  if (existsSync(stateDir))
    for (const f of filesUnder(stateDir))
      for (const t of Object.values(TOKENS)) expect(readFileSync(f, 'utf8').includes(t), `token in ${f}`).toBe(false);
}

beforeAll(async () => {
  cf = await startCloudflareDouble({
    zones: [...fillers, example, other, euZone],
    tokens: {
      [TOKENS.good]: { zones: '*', permissions: ['#zone:read', '#dns_records:read', '#dns_records:edit'] },
      [TOKENS.readonly]: { zones: '*', permissions: ['#zone:read', '#dns_records:read'] },
      [TOKENS.nozone]: { zones: '*', permissions: ['#dns_records:edit'] },
      // Scoped to one zone, and Cloudflare lists no permissions in the zone object for it.
      [TOKENS.unlisted]: {
        zones: [example.id],
        permissions: ['#zone:read', '#dns_records:read', '#dns_records:edit'],
        listsPermissions: false,
      },
    },
    challtestsrv: `http://127.0.0.1:${pebble.dnsMgmtPort}`,
    visibleAfterMs: 1200, // records reach DNS only after a while, as at Cloudflare
  });
});
afterAll(async () => {
  await removeTestContainers();
  await cf?.stop();
});

describe('DNS-01 through Cloudflare (the official SDK against the local double)', () => {
  it('issues example.test + *.example.test; Postfix and Dovecot serve it; no challenge record remains', async () => {
    const { dir, env } = envFor('wildcard', { ACME_DOMAINS: 'example.test,*.example.test', DOCKER_RELOAD: 'true' });
    await seedSelfSigned(env.CERTS_DIR!);
    await startMailStack(env.CERTS_DIR!);
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);

    const leaf = new X509Certificate(readFileSync(join(env.CERTS_DIR!, 'cert.pem')));
    expect(leaf.subjectAltName).toBe('DNS:example.test, DNS:*.example.test');
    for (const e of ['smtp', 'submission', 'imaps', 'pop3s'] as const) {
      expect(new X509Certificate(await servedCertificate(e, 'example.test')).serialNumber, e).toBe(leaf.serialNumber);
    }
    expect(logsWith(r, { step: 'reload', msg: 'container reloaded' })).toHaveLength(2);

    // Apex and wildcard values lived together under one name, with a short TTL; mailcerts waited for DNS.
    expect(cf.maxConcurrent.get('_acme-challenge.example.test')).toBe(2);
    const creates = cf.requests.filter((q) => q.method === 'POST');
    expect(creates).toHaveLength(2);
    expect(logsWith(r, { step: 'dns-01', msg: 'waiting for the TXT records to propagate' }).length).toBeGreaterThan(0);
    expect(logsWith(r, { step: 'dns-01', msg: 'TXT records visible on every name server' })).toHaveLength(1);
    // The zone was found on the second page of the zone list; the SDK stops at the empty third page.
    const pages = cf.requests.filter((q) => q.path.endsWith('/zones')).map((q) => q.query.page ?? '1');
    expect(pages.slice(0, 3)).toEqual(['1', '2', '3']);

    expect([...cf.records.values()]).toEqual([]);
    expect(await txt('_acme-challenge.example.test')).toEqual([]);
    expect(logsWith(r, { step: 'dns-01', msg: 'TXT record deleted' })).toHaveLength(2);
    expect(JSON.parse(readFileSync(join(dir, 'state', 'dns-records.json'), 'utf8'))).toEqual({ records: [] });
    expectNoToken([r.stdout, r.stderr], join(dir, 'state'));
    await removeTestContainers();
  });

  it('one certificate across two zones; the deepest zone wins (mail.eu.example.co.test → example.co.test)', async () => {
    const { env } = envFor('two-zones', { ACME_DOMAINS: 'mail.example.test,mx.other.test,mail.eu.example.co.test' });
    // Only this run's requests: the log holds the earlier tests' writes to example.test too.
    const before = cf.requests.length;
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    const posts = cf.requests.slice(before).filter((q) => q.method === 'POST');
    expect(posts).toHaveLength(3);
    const zonesWritten = new Set(posts.map((q) => q.path.split('/')[4]));
    expect(zonesWritten).toContain(example.id);
    expect(zonesWritten).toContain(other.id);
    expect(zonesWritten).toContain(euZone.id);
    const created = logsWith(r, { msg: 'TXT record created' }).map((l) => [l.record, l.zone]);
    expect(created).toEqual(
      expect.arrayContaining([
        ['_acme-challenge.mail.eu.example.co.test', 'example.co.test'],
        ['_acme-challenge.mx.other.test', 'other.test'],
      ]),
    );
    expect([...cf.records.values()]).toEqual([]);
  });

  it('a bad token: a clear error, no order placed, the token nowhere', async () => {
    const { dir, env } = envFor('bad-token', {
      ACME_DOMAINS: 'mail.example.test',
      CLOUDFLARE_API_TOKEN: TOKENS.unknown,
    });
    const posts = cf.requests.filter((q) => q.method === 'POST').length;
    const r = await runCli(['run', '--once'], env);
    expect(r.code).toBe(1);
    expect(r.logs.find((l) => l.msg === 'issuance failed')?.error).toBe(
      'Cloudflare: verifying the API token: the API token is not valid (code 1000: Invalid API Token); check CLOUDFLARE_API_TOKEN (an API token, not the Global API Key)',
    );
    expect(logsWith(r, { step: 'order' })).toHaveLength(0);
    expect(logsWith(r, { step: 'account' })).toHaveLength(0);
    expect(cf.requests.filter((q) => q.method === 'POST').length).toBe(posts);
    expectNoToken([r.stdout, r.stderr], join(dir, 'state'));
  });

  it('CLOUDFLARE_ZONE_ID with a token whose zone lists no permissions: the zone is read by its id, DNS:Edit is proven by the first record', async () => {
    const { env } = envFor('zone-id', {
      ACME_DOMAINS: 'zoneid.example.test',
      CLOUDFLARE_API_TOKEN: TOKENS.unlisted,
      CLOUDFLARE_ZONE_ID: example.id,
    });
    const before = cf.requests.length;
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(
      logsWith(r, {
        step: 'dns-01',
        msg: "Cloudflare did not list the token's permissions; DNS:Edit is proven at the first record",
      }),
    ).toHaveLength(1);
    const seen = cf.requests
      .slice(before)
      .map((q) => `${q.method} ${q.path.replace(cf.url.replace(/^http:\/\/[^/]+/, ''), '')}`);
    expect(seen).toContain(`GET /zones/${example.id}`);
    expect(seen).not.toContain('GET /zones'); // never listed
    expect(seen.filter((q) => q === `POST /zones/${example.id}/dns_records`)).toHaveLength(1);
    expect(new X509Certificate(readFileSync(join(env.CERTS_DIR!, 'cert.pem'))).subjectAltName).toBe(
      'DNS:zoneid.example.test',
    );

    // A name outside that zone: the error says which zone CLOUDFLARE_ZONE_ID names; no order placed.
    const outside = await runCli(
      ['run', '--once'],
      envFor('zone-id-outside', {
        ACME_DOMAINS: 'mail.other.test',
        CLOUDFLARE_API_TOKEN: TOKENS.unlisted,
        CLOUDFLARE_ZONE_ID: example.id,
      }).env,
    );
    expect(outside.code).toBe(1);
    expect(outside.logs.find((l) => l.msg === 'issuance failed')?.error).toBe(
      'Cloudflare: mail.other.test is not in the zone example.test (CLOUDFLARE_ZONE_ID); unset CLOUDFLARE_ZONE_ID or use the zone that holds the name',
    );
    expect(logsWith(outside, { step: 'order' })).toHaveLength(0);
  });

  it('a token without DNS:Edit, or without Zone:Read: the error names the missing permission and the zone; no order placed', async () => {
    const ro = await runCli(
      ['run', '--once'],
      envFor('readonly', { ACME_DOMAINS: 'mail.example.test', CLOUDFLARE_API_TOKEN: TOKENS.readonly }).env,
    );
    expect(ro.code).toBe(1);
    expect(ro.logs.find((l) => l.msg === 'issuance failed')?.error).toBe(
      'Cloudflare: the API token lacks DNS:Edit on the zone example.test; edit the token and add Zone → DNS → Edit for it',
    );
    expect(logsWith(ro, { step: 'order' })).toHaveLength(0);

    const nz = await runCli(
      ['run', '--once'],
      envFor('nozone', { ACME_DOMAINS: 'mail.example.test', CLOUDFLARE_API_TOKEN: TOKENS.nozone }).env,
    );
    expect(nz.code).toBe(1);
    expect(nz.logs.find((l) => l.msg === 'issuance failed')?.error).toMatch(
      /^Cloudflare: listing zones: the API token is not allowed to do this \(code 9109: Unauthorized to access requested resource\); give it Zone:Read and DNS:Edit/,
    );
    expect(logsWith(nz, { step: 'order' })).toHaveLength(0);

    const check = await runCli(
      ['check'],
      envFor('readonly', { ACME_DOMAINS: 'mail.example.test', CLOUDFLARE_API_TOKEN: TOKENS.readonly }).env,
    );
    expect(check.code).toBe(1);
    expect(check.stdout).toContain(
      'DNS-01 (cloudflare) for mail.example.test: FAILED: Cloudflare: the API token lacks DNS:Edit on the zone example.test',
    );
    expectNoToken([ro.stdout, nz.stdout, check.stdout, check.stderr], join(work, 'readonly', 'state'));
  });

  it('check verifies the token, the zones and DNS:Edit', async () => {
    const r = await runCli(
      ['check'],
      envFor('check', { ACME_DOMAINS: 'example.test,*.example.test,mx.other.test' }).env,
    );
    expect(r.stdout).toContain(
      'DNS-01 (cloudflare) for example.test: ok (token active; zones example.test, other.test with DNS:Edit)',
    );
  });

  it('rate limits (429 with Retry-After) and 5xx are retried within the order', async () => {
    const { env } = envFor('transient', { ACME_DOMAINS: 'retry.example.test' });
    cf.failNext(1, {
      status: 429,
      code: 971,
      message: 'Please wait and consider throttling your request speed',
      retryAfter: 1,
    });
    cf.failNext(1, { status: 502, code: 10000, message: 'Bad gateway' });
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    const retries = logsWith(r, { msg: 'Cloudflare call failed; retrying' });
    expect(retries.map((l) => l.status)).toEqual([429, 502]);
    expect(retries[0]!.retryIn).toBe(1000);
  });

  it('a create whose answer was lost is retried, and "identical record already exists" counts as success', async () => {
    const { env } = envFor('lost-answer', { ACME_DOMAINS: 'lost.example.test' });
    cf.loseNextCreateResponse();
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    const creates = cf.requests.filter((q) => q.method === 'POST' && q.path.includes('/dns_records')).slice(-2);
    expect(creates.map((q) => q.status)).toEqual([0, 400]); // the lost one, then 81058
    expect(logsWith(r, { msg: 'TXT record already existed; using it' })).toHaveLength(1);
    expect([...cf.records.values()]).toEqual([]);
  });

  it('a permanent Cloudflare error is reported as such, not retried', async () => {
    const { env } = envFor('permanent', { ACME_DOMAINS: 'perm.example.test' });
    cf.failNext(1, { status: 400, code: 1004, message: 'DNS Validation Error' }); // hits the first call, the token check
    const before = cf.requests.length;
    const r = await runCli(['run', '--once'], env);
    expect(r.code).toBe(1);
    expect(cf.requests.length - before).toBe(1);
    expect(r.logs.find((l) => l.msg === 'issuance failed')?.error).toBe(
      'Cloudflare: verifying the API token: code 1004: DNS Validation Error',
    );
    expect(logsWith(r, { msg: 'Cloudflare call failed; retrying' })).toHaveLength(0);
  });

  it('a process killed between creating the record and cleaning up: the next run removes the stale record', async () => {
    const { dir, env } = envFor('killed', { ACME_DOMAINS: 'killed.example.test' });
    cf.visibleAfterMs = 60_000; // the record never shows up in time: mailcerts waits in the propagation check
    const first = await runCli(['run', '--once'], env, {
      onLine: (line, pid) => {
        if (line.msg === 'TXT record created') process.kill(pid, 'SIGKILL');
      },
    });
    expect(first.code).toBe(null); // killed
    expect([...cf.records.values()].map((r) => r.name)).toEqual(['_acme-challenge.killed.example.test']);
    const journal = JSON.parse(readFileSync(join(dir, 'state', 'dns-records.json'), 'utf8'));
    expect(journal.records).toHaveLength(1);
    expect(statSync(join(dir, 'state', 'dns-records.json')).mode & 0o777).toBe(0o600);

    cf.visibleAfterMs = 300;
    const next = await runCli(['run', '--once'], env);
    expect(next.code, next.stdout).toBe(0);
    expect(
      logsWith(next, {
        msg: 'removing a TXT record left by an earlier run',
        record: '_acme-challenge.killed.example.test',
      }),
    ).toHaveLength(1);
    expect([...cf.records.values()]).toEqual([]);
    expect(JSON.parse(readFileSync(join(dir, 'state', 'dns-records.json'), 'utf8'))).toEqual({ records: [] });
  });
});
