import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, get } from 'node:https';
import { join } from 'node:path';
import * as acme from 'acme-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Pebble, startPebble } from '../../scripts/lib/pebble.mjs';
import { createLogger } from '../../src/log.js';
import { configureAcmeHttp } from '../../src/obtain/acme-http.js';
import { orderCertificate } from '../../src/obtain/order.js';
import { StandaloneHttp01 } from '../../src/obtain/solvers/http01-standalone.js';
import { logsWith, runCli } from '../helpers/cli.js';
import { freePorts } from '../helpers/ports.js';

const work = join(inject('workDir'), 'ca-options');
const bin = inject('pebble26');
const EAB = { kid: 'kid-1', hmac: 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W' };
let pebble: Pebble;
let strict: Pebble;

const envFor = (p: Pebble, name: string, extra: Record<string, string> = {}) => ({
  ACME_DIRECTORY: p.directoryUrl,
  NODE_EXTRA_CA_CERTS: p.caFile,
  HTTP01_PORT: String(p.httpPort),
  CERTS_DIR: join(work, name, 'certs'),
  STATE_DIR: join(work, name, 'state'),
  DOCKER_RELOAD: 'false',
  ...extra,
});
const cn = (pem: string) => /CN=([^\n,]+)/.exec(new X509Certificate(pem).subject)?.[1];
const chainOf = (file: string) =>
  readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;

beforeAll(async () => {
  mkdirSync(work, { recursive: true });
  pebble = await start('pebble', { env: { PEBBLE_ALTERNATE_ROOTS: '1' } });
  strict = await start('strict', {
    pebbleConfig: { externalAccountBindingRequired: true, externalAccountMACKeys: { [EAB.kid]: EAB.hmac } },
  });
});
afterAll(async () => {
  await pebble?.stop();
  await strict?.stop();
});
function httpsText(url: string, caFile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { ca: readFileSync(caFile) }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}
async function start(name: string, o: { env?: Record<string, string>; pebbleConfig?: Record<string, unknown> } = {}) {
  const [acmePort, mgmtPort, httpPort, dnsPort, dnsMgmtPort] = await freePorts(5);
  return startPebble({ dir: join(work, name), bin, acmePort, mgmtPort, httpPort, dnsPort, dnsMgmtPort, ...o });
}

describe('CA options', () => {
  it('external account binding: refused without it, with a hint; issued with it; the HMAC key never shown', async () => {
    const without = await runCli(['run', '--once'], envFor(strict, 'eab-none', { ACME_DOMAINS: 'eab.example.test' }));
    expect(without.code).toBe(1);
    expect(without.logs.find((l) => l.msg === 'issuance failed')?.error).toMatch(
      /^the ACME account: account failed: the CA said: .*\(externalAccountRequired.*\)\. This CA needs external account binding/,
    );
    mkdirSync(join(work, 'secrets'), { recursive: true });
    writeFileSync(join(work, 'secrets', 'eab'), `${EAB.hmac}\n`);
    const withEab = await runCli(
      ['run', '--once'],
      envFor(strict, 'eab', {
        ACME_DOMAINS: 'eab.example.test',
        ACME_EAB_KID: EAB.kid,
        ACME_EAB_HMAC_KEY_FILE: join(work, 'secrets', 'eab'),
      }),
    );
    expect(withEab.code, withEab.stdout).toBe(0);
    expect(withEab.stdout + withEab.stderr).not.toContain(EAB.hmac);
  });

  it("a preferred chain picks the alternate root's chain", async () => {
    const altName = cn(await httpsText(`https://127.0.0.1:${pebble.mgmtPort}/roots/1`, pebble.caFile))!;
    const env = envFor(pebble, 'chain', { ACME_DOMAINS: 'chain.example.test' });
    expect((await runCli(['run', '--once'], env)).code).toBe(0);
    const defaultTop = new X509Certificate(chainOf(join(env.CERTS_DIR, 'fullchain.pem')).at(-1)!).issuer;
    expect(defaultTop).not.toContain(altName);
    const r = await runCli(['renew', '--force'], { ...env, ACME_PREFERRED_CHAIN: altName });
    expect(r.code, r.stdout).toBe(0);
    expect(new X509Certificate(chainOf(join(env.CERTS_DIR, 'fullchain.pem')).at(-1)!).issuer).toBe(`CN=${altName}`);
  });

  it('ACME_REUSE_KEY keeps the private key across renewals (DANE 3 1 1 stays valid)', async () => {
    const env = envFor(pebble, 'reuse', { ACME_DOMAINS: 'dane.example.test' });
    expect((await runCli(['run', '--once'], env)).code).toBe(0);
    const key = readFileSync(join(env.CERTS_DIR, 'privkey.pem'), 'utf8');
    const serial = new X509Certificate(readFileSync(join(env.CERTS_DIR, 'cert.pem'))).serialNumber;
    const r = await runCli(['renew', '--force'], { ...env, ACME_REUSE_KEY: 'true' });
    expect(r.code).toBe(0);
    expect(logsWith(r, { msg: 'reusing the published private key (ACME_REUSE_KEY)' })).toHaveLength(1);
    expect(readFileSync(join(env.CERTS_DIR, 'privkey.pem'), 'utf8')).toBe(key);
    expect(new X509Certificate(readFileSync(join(env.CERTS_DIR, 'cert.pem'))).serialNumber).not.toBe(serial);
    expect((await runCli(['renew', '--force'], env)).code).toBe(0);
    expect(readFileSync(join(env.CERTS_DIR, 'privkey.pem'), 'utf8')).not.toBe(key); // without the option, a fresh key
  });

  it('a change of ACME_PROFILE renews the certificate', async () => {
    const env = envFor(pebble, 'profile', { ACME_DOMAINS: 'profile.example.test' });
    expect((await runCli(['run', '--once'], env)).code).toBe(0);
    const r = await runCli(['run', '--once'], { ...env, ACME_PROFILE: 'shortlived' });
    expect(r.code, r.stdout).toBe(0);
    expect(logsWith(r, { step: 'plan', reason: 'profile changed from (none) to shortlived' })).toHaveLength(1);
    expect(logsWith(r, { msg: 'the CA lists no profiles; sending ACME_PROFILE anyway' })).toHaveLength(1);
    const again = await runCli(['run', '--once'], { ...env, ACME_PROFILE: 'shortlived' });
    expect(logsWith(again, { step: 'plan', decision: 'keep' })).toHaveLength(1);
  });

  it('the newOrder request carries profile and replaces (the signed payload, as sent)', async () => {
    acme.axios.defaults.httpsAgent = new Agent({ ca: readFileSync(pebble.caFile) });
    configureAcmeHttp({ timeoutMs: 10_000, retries: 1, retryAfterCapMs: 5_000 });
    const payloads: Record<string, unknown>[] = [];
    const hook = acme.axios.interceptors.request.use((config) => {
      if (String(config.url).endsWith('/order-plz')) {
        const jws = (typeof config.data === 'string' ? JSON.parse(config.data) : config.data) as { payload: string };
        payloads.push(JSON.parse(Buffer.from(jws.payload, 'base64url').toString()));
      }
      return config;
    });
    try {
      const client = new acme.Client({
        directoryUrl: pebble.directoryUrl,
        accountKey: await acme.crypto.createPrivateEcdsaKey(),
      });
      await client.createAccount({ termsOfServiceAgreed: true });
      const log = createLogger('silent');
      const solver = new StandaloneHttp01({ port: pebble.httpPort, log });
      await orderCertificate({
        client,
        spec: {
          source: 'acme',
          name: 'wire',
          domains: ['wire.example.test'],
          keyTypes: ['ec-256'],
          keyType: 'ec-256',
          challenge: 'http-01',
        },
        solver,
        log,
        profile: 'tlsserver',
        replaces: 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE',
      });
    } finally {
      acme.axios.interceptors.request.eject(hook);
    }
    expect(payloads[0]).toEqual({
      identifiers: [{ type: 'dns', value: 'wire.example.test' }],
      profile: 'tlsserver',
      replaces: 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE',
    });
  });
});
