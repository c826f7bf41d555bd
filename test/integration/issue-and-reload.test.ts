import { createPrivateKey, X509Certificate } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import {
  containerLogs,
  type Endpoint,
  removeTestContainers,
  seedSelfSigned,
  servedCertificate,
  startMailStack,
} from '../helpers/mailstack.js';

const pebble = inject('pebble');
const dir = join(inject('workDir'), 'main');
const certs = join(dir, 'certs');
const state = join(dir, 'state');
const env = pebbleEnv(dir, {
  ACME_DOMAINS: 'mail.example.test,smtp.example.test',
  ACME_EMAIL: 'postmaster@example.test',
});
// The endpoints the issue names: Postfix on SMTP STARTTLS and submission, Dovecot on IMAPS and POP3S.
const ENDPOINTS: Endpoint[] = ['smtp', 'submission', 'imaps', 'pop3s'];
const published = () => readFileSync(join(certs, 'cert.pem'), 'utf8');
const serial = (pem: string) => new X509Certificate(pem).serialNumber;
const reloadCounts = async (stack: { postfix: string; dovecot: string }) => ({
  postfix: (await containerLogs(stack.postfix)).match(/postfix\/master\[\d+\]: reload/g)?.length ?? 0,
  dovecot: (await containerLogs(stack.dovecot)).match(/SIGHUP received - reloading configuration/g)?.length ?? 0,
});

let stack: { postfix: string; dovecot: string };
let firstAccountUrl: string;
let firstAccountKey: Buffer;

beforeAll(async () => {
  mkdirSync(certs, { recursive: true });
  await seedSelfSigned(certs);
  stack = await startMailStack(certs);
});
afterAll(removeTestContainers);

describe('the main path: issue over HTTP-01, publish into the volume, reload Postfix and Dovecot', () => {
  it('starts from the seed certificate', async () => {
    for (const e of ENDPOINTS) expect(new X509Certificate(await servedCertificate(e)).subject).toBe('CN=seed.invalid');
  });

  it('first run --once: every endpoint serves the new Pebble certificate, byte-equal to the volume', async () => {
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);

    const leafPem = published();
    const leaf = new X509Certificate(leafPem);
    expect(leaf.subjectAltName).toBe('DNS:mail.example.test, DNS:smtp.example.test');
    expect(leaf.issuer).toMatch(/Pebble Intermediate CA/);
    const [, intermediatePem] = readFileSync(join(certs, 'fullchain.pem'), 'utf8').match(
      /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g,
    )!;
    const intermediate = new X509Certificate(intermediatePem!);
    expect(leaf.verify(intermediate.publicKey)).toBe(true);
    expect(intermediate.verify(new X509Certificate(pebble.root).publicKey)).toBe(true);

    for (const e of ENDPOINTS) expect(await servedCertificate(e), `served on ${e}`).toBe(leafPem);

    expect(logsWith(r, { step: 'reload', container: stack.postfix, msg: 'container reloaded' })).toHaveLength(1);
    expect(logsWith(r, { step: 'reload', container: stack.dovecot, msg: 'container reloaded' })).toHaveLength(1);
    const account = JSON.parse(
      readFileSync(
        join(state, 'accounts', new URL(pebble.directoryUrl).host.replace(':', '_'), 'account.json'),
        'utf8',
      ),
    );
    firstAccountUrl = account.url;
    firstAccountKey = readFileSync(
      join(state, 'accounts', new URL(pebble.directoryUrl).host.replace(':', '_'), 'account.key'),
    );
    expect(logsWith(r, { step: 'account', reused: false })).toHaveLength(1);
  });

  it('publishes through one ..data link, with the key 0600 and the certificates 0644', () => {
    const target = readlinkSync(join(certs, '..data'));
    expect(target).toMatch(/^\.\.\d{8}_\d{6}\.\d{3}_[0-9a-f]{6}$/);
    for (const f of ['fullchain.pem', 'cert.pem', 'chain.pem', 'privkey.pem', 'privkey-fullchain.pem']) {
      expect(lstatSync(join(certs, f)).isSymbolicLink(), f).toBe(true);
      expect(readlinkSync(join(certs, f))).toBe(`..data/${f}`);
    }
    expect(statSync(join(certs, 'privkey.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(join(certs, 'privkey-fullchain.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(join(certs, 'fullchain.pem')).mode & 0o777).toBe(0o644);
    const key = readFileSync(join(certs, 'privkey.pem'), 'utf8');
    expect(readFileSync(join(certs, 'privkey-fullchain.pem'), 'utf8')).toBe(
      key + readFileSync(join(certs, 'fullchain.pem'), 'utf8'),
    );
  });

  it('a second run --once publishes nothing and reloads nothing', async () => {
    const before = { link: readlinkSync(join(certs, '..data')), reloads: await reloadCounts(stack) };
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(logsWith(r, { step: 'plan', decision: 'keep' })).toHaveLength(1);
    expect(logsWith(r, { step: 'publish' })).toHaveLength(0);
    expect(logsWith(r, { step: 'reload' })).toHaveLength(0);
    expect(readlinkSync(join(certs, '..data'))).toBe(before.link);
    expect(await reloadCounts(stack)).toEqual(before.reloads);
  });

  it('renew --force: Postfix and Dovecot serve the new serial; the restart reused the account', async () => {
    const old = serial(published());
    const before = await reloadCounts(stack);
    const r = await runCli(['renew', '--force'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const now = published();
    expect(serial(now)).not.toBe(old);
    for (const e of ENDPOINTS) expect(serial(await servedCertificate(e)), `served on ${e}`).toBe(serial(now));
    const after = await reloadCounts(stack);
    expect(after.postfix).toBe(before.postfix + 1);
    expect(after.dovecot).toBe(before.dovecot + 1);

    expect(logsWith(r, { step: 'account', reused: true, account: firstAccountUrl })).toHaveLength(1);
    expect(
      readFileSync(join(state, 'accounts', new URL(pebble.directoryUrl).host.replace(':', '_'), 'account.key')).equals(
        firstAccountKey,
      ),
    ).toBe(true);
  });

  it('keeps the previous version for rollback and prunes older ones', async () => {
    const r = await runCli(['renew', '--force'], env);
    expect(r.code).toBe(0);
    const versions = (await import('node:fs')).readdirSync(certs).filter((e) => /^\.\.\d{8}_/.test(e));
    expect(versions).toHaveLength(2);
    expect(versions).toContain(readlinkSync(join(certs, '..data')));
  });

  it('a publish made while Docker was unreachable is deployed by the next start', async () => {
    const old = serial(published());
    const r = await runCli(['renew', '--force'], { ...env, DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/cannot reach the Docker API at unix:\/\/\/nonexistent\/docker.sock/);
    const fresh = serial(published());
    expect(fresh).not.toBe(old);
    const pending = JSON.parse((await runCli(['status', '--json'], env)).stdout)[0];
    expect(pending.deployed).toBe(false);
    expect(pending.lastError).toMatch(/cannot reach the Docker API/);

    const before = await reloadCounts(stack);
    const next = await runCli(['run', '--once'], env);
    expect(next.code, next.stdout).toBe(0);
    expect(logsWith(next, { step: 'publish' })).toHaveLength(0);
    expect(logsWith(next, { step: 'reload', msg: 'container reloaded' })).toHaveLength(2);
    const after = await reloadCounts(stack);
    expect(after).toEqual({ postfix: before.postfix + 1, dovecot: before.dovecot + 1 });
    for (const e of ENDPOINTS) expect(serial(await servedCertificate(e)), `served on ${e}`).toBe(fresh);
  });

  it('status shows names, expiry, next renewal and no error, as a table and as JSON', async () => {
    const table = await runCli(['status'], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^CERTIFICATE\s+NAMES\s+KEY\s+SERIAL\s+EXPIRES\s+DAYS\s+NEXT RENEWAL/);
    expect(table.stdout).toMatch(/mail\.example\.test\s+mail\.example\.test,smtp\.example\.test/);
    const json = await runCli(['status', '--json'], env);
    const [row] = JSON.parse(json.stdout);
    expect(row).toMatchObject({
      name: 'mail.example.test',
      keyType: 'ec-256',
      deployed: true,
      failures: 0,
      nextReason: 'lifetime rule',
    });
    expect(row.serial).toBe(serial(published()));
    expect(new Date(row.nextRenewal).getTime()).toBeLessThan(new Date(row.notAfter).getTime());
    expect(row.lastError).toBeUndefined();
  });

  it('no key ever reaches the logs', async () => {
    const runs = [await runCli(['renew', '--force'], env), await runCli(['status'], env), await runCli(['check'], env)];
    const body = (pem: Buffer | string) =>
      pem
        .toString()
        .replace(/-----[A-Z ]+-----/g, '')
        .replace(/\s+/g, '');
    // Each key as the PEM's base64 body, its DER in hex, and its private scalar (JWK d) in
    // base64url and hex: a key logged as a Buffer, a hex dump or a JWK is found too.
    const forms = (pem: Buffer | string) => {
      const key = createPrivateKey(pem);
      const d = String(key.export({ format: 'jwk' }).d);
      return [
        body(pem),
        key.export({ type: 'pkcs8', format: 'der' }).toString('hex'),
        d,
        Buffer.from(d, 'base64url').toString('hex'),
      ];
    };
    const secrets = [...forms(readFileSync(join(certs, 'privkey.pem'))), ...forms(firstAccountKey)];
    for (const r of runs) {
      const out = (r.stdout + r.stderr).replace(/\s+/g, '');
      for (const s of secrets) {
        expect(s.length).toBeGreaterThanOrEqual(40);
        expect(out.includes(s.slice(0, 40)) || out.toLowerCase().includes(s.slice(-40).toLowerCase())).toBe(false);
      }
    }
  });

  it('check reaches the CA and lists the containers it would reload and how', async () => {
    const r = await runCli(['check'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`CA directory: ok (${pebble.directoryUrl})`);
    expect(r.stdout).toContain(`${stack.postfix}: postconf -n, postfix check, then postfix reload`);
    expect(r.stdout).toContain(`${stack.dovecot}: doveconf -n, then doveadm reload`);
  });
});
