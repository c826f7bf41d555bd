import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import { makeChain } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { setTimeout as delay } from 'node:timers/promises';
import {
  docker,
  ENDPOINTS,
  type Endpoint,
  MAIL_IMAGE_TRIXIE,
  mailConfig,
  removeTestContainers,
  ROOT,
  servedCertificate,
  startMailStack,
} from '../helpers/mailstack.js';

/**
 * Dual certificates: ECDSA and RSA for each of two certificates, issued from Pebble, published in
 * one set, and served by a real Postfix and Dovecot to clients that offer only one algorithm, on
 * every port, by SNI and without it (the first certificate is the default).
 */
const work = join(inject('workDir'), 'dual');
const ALL: Endpoint[] = ['smtp', 'smtps', 'submission', 'imap', 'imaps', 'pop3', 'pop3s', 'sieve'];
const ALGS = ['ecdsa', 'rsa'] as const;
type Alg = (typeof ALGS)[number];
const NAMES = { a: 'mail.a.test', b: 'mail.b.test' } as const;
const certsDir = join(work, 'certs');
const config = join(work, 'mailcerts.yml');
const env = pebbleEnv(work, { MAILCERTS_CONFIG: config });

const writeConfig = (bKeyTypes: string) =>
  writeFileSync(
    config,
    [
      'certificates:',
      '  - name: a',
      `    domains: [${NAMES.a}]`,
      '    keyType: [ec-256, rsa-2048]',
      '  - name: b',
      `    domains: [${NAMES.b}]`,
      `    keyType: ${bKeyTypes}`,
      '',
    ].join('\n'),
  );

const leafIn = (cert: string, file: string) => new X509Certificate(readFileSync(join(certsDir, cert, file)));
/** The serial a variant's own files hold. */
const serialIn = (cert: string, alg: Alg) => leafIn(cert, `${alg}-cert.pem`).serialNumber;
const kind = (pem: string) => {
  const c = new X509Certificate(pem);
  return `${c.publicKey.asymmetricKeyType === 'ec' ? 'ecdsa' : c.publicKey.asymmetricKeyType}:${c.serialNumber}`;
};
/** What each endpoint serves to each one-algorithm client, for each name and without SNI. */
async function servedTable(opts: { tls12?: boolean; endpoints?: Endpoint[] } = {}): Promise<Record<string, string>> {
  const table: Record<string, string> = {};
  for (const e of opts.endpoints ?? ALL) {
    for (const only of ALGS) {
      for (const [cert, name] of Object.entries(NAMES))
        table[`${e} ${name} ${only}-only`] =
          `${cert}/${kind(await servedCertificate(e, name, { only, tls12: opts.tls12 }))}`;
      table[`${e} (no SNI) ${only}-only`] = `a/${kind(await servedCertificate(e, null, { only, tls12: opts.tls12 }))}`;
    }
  }
  return table;
}
function expectedTable(endpoints: Endpoint[] = ALL): Record<string, string> {
  const table: Record<string, string> = {};
  for (const e of endpoints) {
    for (const only of ALGS) {
      for (const [cert, name] of Object.entries(NAMES))
        table[`${e} ${name} ${only}-only`] = `${cert}/${only}:${serialIn(cert, only)}`;
      table[`${e} (no SNI) ${only}-only`] = `a/${only}:${serialIn('a', only)}`;
    }
  }
  return table;
}

// The default chain (no SNI) is the first certificate's, both variants; the rest comes from the SNI files.
const DEFAULT_CHAINS = '/etc/ssl/mail/ecdsa-privkey-fullchain.pem, /etc/ssl/mail/rsa-privkey-fullchain.pem';
const mainCf = join(work, 'main.cf');
const dovecot23 = join(work, 'dovecot.conf');
const dovecot24 = join(work, 'dovecot24.conf');

beforeAll(async () => {
  mkdirSync(certsDir, { recursive: true });
  writeConfig('[rsa-2048, ec-384]');
  writeFileSync(
    mainCf,
    `${readFileSync(join(ROOT, 'docker', 'mailstack', 'postfix', 'main.cf'), 'utf8').replace(/^smtpd_tls_chain_files = .*$/m, `smtpd_tls_chain_files = ${DEFAULT_CHAINS}`)}tls_server_sni_maps = texthash:/etc/ssl/mail/sni/postfix.map\n`,
  );
  writeFileSync(
    dovecot23,
    mailConfig('dovecot/dovecot.conf')
      .replace('ssl_cert = </etc/ssl/mail/fullchain.pem', 'ssl_cert = </etc/ssl/mail/ecdsa-privkey-fullchain.pem')
      .replace(
        'ssl_key = </etc/ssl/mail/privkey.pem',
        'ssl_key = </etc/ssl/mail/ecdsa-privkey-fullchain.pem\nssl_alt_cert = </etc/ssl/mail/rsa-privkey-fullchain.pem\nssl_alt_key = </etc/ssl/mail/rsa-privkey-fullchain.pem',
      ),
  );
  writeFileSync(
    dovecot24,
    mailConfig('dovecot24/dovecot.conf')
      .replace(/^ssl_server_cert_file = .*$/m, 'ssl_server_cert_file = /etc/ssl/mail/ecdsa-privkey-fullchain.pem')
      .replace(
        /^ssl_server_key_file = .*$/m,
        'ssl_server_key_file = /etc/ssl/mail/ecdsa-privkey-fullchain.pem\nssl_server_alt_cert_file = /etc/ssl/mail/rsa-privkey-fullchain.pem\nssl_server_alt_key_file = /etc/ssl/mail/rsa-privkey-fullchain.pem',
      ),
  );
  // The first issuance, before the mail servers start (as compose's depends_on: service_healthy does).
  const first = await runCli(['run', '--once'], env);
  expect(first.code, first.stdout).toBe(0);
}, 180_000);
afterAll(removeTestContainers);

describe('ec-256 + rsa-2048: one setting, two orders, one published set', () => {
  it('publishes each variant under its own names, the first one under the plain names too', () => {
    expect(leafIn('a', 'cert.pem').serialNumber).toBe(serialIn('a', 'ecdsa'));
    expect(leafIn('b', 'cert.pem').serialNumber).toBe(serialIn('b', 'rsa')); // b lists RSA first
    expect(leafIn('a', 'rsa-cert.pem').publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(leafIn('b', 'ecdsa-cert.pem').publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    expect(serialIn('a', 'ecdsa')).not.toBe(serialIn('a', 'rsa'));
    // Each file holds its own key first (Postfix reads key, leaf, chain).
    expect(readFileSync(join(certsDir, 'a', 'rsa-privkey-fullchain.pem'), 'utf8')).toBe(
      readFileSync(join(certsDir, 'a', 'rsa-privkey.pem'), 'utf8') +
        readFileSync(join(certsDir, 'a', 'rsa-fullchain.pem'), 'utf8'),
    );
    const map = readFileSync(join(certsDir, 'sni', 'postfix.map'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    expect(map).toEqual([
      'mail.a.test /etc/ssl/mail/a/ecdsa-privkey-fullchain.pem,/etc/ssl/mail/a/rsa-privkey-fullchain.pem',
      'mail.b.test /etc/ssl/mail/b/rsa-privkey-fullchain.pem,/etc/ssl/mail/b/ecdsa-privkey-fullchain.pem',
    ]);
    expect(readFileSync(join(certsDir, 'sni', 'dovecot.conf'), 'utf8')).toContain(
      'local_name mail.b.test {\n  ssl_cert = </etc/ssl/mail/b/rsa-privkey-fullchain.pem\n  ssl_key = </etc/ssl/mail/b/rsa-privkey-fullchain.pem\n  ssl_alt_cert = </etc/ssl/mail/b/ecdsa-privkey-fullchain.pem\n  ssl_alt_key = </etc/ssl/mail/b/ecdsa-privkey-fullchain.pem\n}',
    );
    expect(readFileSync(join(certsDir, 'sni', 'dovecot24.conf'), 'utf8')).toContain(
      'local_name mail.a.test {\n  ssl_server_cert_file = /etc/ssl/mail/a/ecdsa-privkey-fullchain.pem\n  ssl_server_key_file = /etc/ssl/mail/a/ecdsa-privkey-fullchain.pem\n  ssl_server_alt_cert_file = /etc/ssl/mail/a/rsa-privkey-fullchain.pem\n  ssl_server_alt_key_file = /etc/ssl/mail/a/rsa-privkey-fullchain.pem\n}',
    );
  });

  it('status shows each variant: key type, serial, expiry, next renewal', async () => {
    const rows = JSON.parse((await runCli(['status', '--json'], env)).stdout) as {
      name: string;
      keyType: string;
      serial: string;
      notAfter: string;
      nextRenewal: string;
    }[];
    expect(rows.map((r) => `${r.name} ${r.keyType} ${r.serial}`)).toEqual([
      `a ec-256 ${serialIn('a', 'ecdsa')}`,
      `a rsa-2048 ${serialIn('a', 'rsa')}`,
      `b rsa-2048 ${serialIn('b', 'rsa')}`,
      `b ec-384 ${serialIn('b', 'ecdsa')}`,
    ]);
    for (const r of rows) expect(Date.parse(r.nextRenewal)).toBeLessThan(Date.parse(r.notAfter));
  });
});

describe('/status and /metrics of the daemon', () => {
  it('carry one entry per variant: a key_type label on every certificate series', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    let pid = 0;
    let ready = false;
    const daemon = runCli(
      ['run'],
      { ...env, STATUS_ADDRESS: address, DOCKER_RELOAD: 'false' },
      {
        onLine: (l, p) => {
          pid = p;
          if (l.msg === 'waiting for the next pass') ready = true;
        },
      },
    );
    try {
      while (!ready) await delay(100);
      const status = (await (await fetch(`http://${address}/status`)).json()) as {
        name: string;
        keyType: string;
        serial: string;
      }[];
      expect(status.map((r) => `${r.name} ${r.keyType} ${r.serial}`)).toEqual([
        `a ec-256 ${serialIn('a', 'ecdsa')}`,
        `a rsa-2048 ${serialIn('a', 'rsa')}`,
        `b rsa-2048 ${serialIn('b', 'rsa')}`,
        `b ec-384 ${serialIn('b', 'ecdsa')}`,
      ]);
      const families = parsePrometheusTextFormat(await (await fetch(`http://${address}/metrics`)).text()) as {
        name: string;
        metrics: { value: string; labels?: Record<string, string> }[];
      }[];
      const expiry = families.find((f) => f.name === 'mailcerts_certificate_expiry_timestamp_seconds')!.metrics;
      expect(expiry.map((m) => `${m.labels?.certificate} ${m.labels?.key_type} ${m.value}`).sort()).toEqual([
        `a ec-256 ${Date.parse(leafIn('a', 'ecdsa-cert.pem').validTo) / 1000}`,
        `a rsa-2048 ${Date.parse(leafIn('a', 'rsa-cert.pem').validTo) / 1000}`,
        `b ec-384 ${Date.parse(leafIn('b', 'ecdsa-cert.pem').validTo) / 1000}`,
        `b rsa-2048 ${Date.parse(leafIn('b', 'rsa-cert.pem').validTo) / 1000}`,
      ]);
    } finally {
      if (pid) process.kill(pid, 'SIGTERM');
      await daemon;
    }
  });
});

describe('Postfix 3.7 and Dovecot 2.3 serve each client the variant it can use', () => {
  it('an RSA-only and an ECDSA-only client get their own certificate on every port, by SNI for both names and without SNI', async () => {
    await startMailStack(certsDir, {
      mainCf,
      dovecotConf: dovecot23,
      labels: { 'mailcerts.certificates': '*' },
    });
    expect(await servedTable()).toEqual(expectedTable());
    // TLS 1.2 with only aRSA or only aECDSA cipher suites, as older clients do.
    expect(await servedTable({ tls12: true, endpoints: ['smtp', 'imaps', 'pop3'] })).toEqual(
      expectedTable(['smtp', 'imaps', 'pop3']),
    );
  });

  it('mailcerts itself probes every endpoint once per variant, offering only that algorithm', async () => {
    const r = await runCli(['renew', '--force', 'b'], env);
    expect(r.code, r.stdout).toBe(0);
    const checked = logsWith(r, { step: 'verify', msg: 'serves the published certificate' }).flatMap(
      (l) => l.endpoints as string[],
    );
    for (const alg of ALGS) {
      expect(checked).toContain(`smtp://127.0.0.1:${ENDPOINTS.smtp.port} (b, mail.b.test, ${alg})`);
      expect(checked).toContain(`imaps://127.0.0.1:${ENDPOINTS.imaps.port} (a, no SNI, ${alg})`);
    }
    expect(await servedTable()).toEqual(expectedTable());
  });

  it('renewing one variant changes only its serial, everywhere, after one publish and one reload', async () => {
    const before = {
      aE: serialIn('a', 'ecdsa'),
      aR: serialIn('a', 'rsa'),
      bE: serialIn('b', 'ecdsa'),
      bR: serialIn('b', 'rsa'),
    };
    const r = await runCli(['renew', '--force', '--key-type', 'rsa-2048', 'a'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(logsWith(r, { step: 'validate', msg: 'new certificate checked' })).toHaveLength(1);
    expect(logsWith(r, { step: 'publish', msg: 'published' })).toHaveLength(1);
    expect(serialIn('a', 'rsa')).not.toBe(before.aR);
    expect([serialIn('a', 'ecdsa'), serialIn('b', 'ecdsa'), serialIn('b', 'rsa')]).toEqual([
      before.aE,
      before.bE,
      before.bR,
    ]);
    expect(await servedTable()).toEqual(expectedTable());
  });

  it('removing a key type from the list stops it being served: its files go, the other variant stays', async () => {
    const kept = serialIn('b', 'ecdsa');
    const bRsa = serialIn('b', 'rsa');
    writeConfig('ec-384');
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(logsWith(r, { step: 'validate', msg: 'new certificate checked' })).toHaveLength(0);
    expect(existsSync(join(certsDir, 'b', 'rsa-privkey-fullchain.pem'))).toBe(false);
    expect(leafIn('b', 'cert.pem').serialNumber).toBe(kept); // no new order: the ECDSA certificate it had
    expect(readFileSync(join(certsDir, 'sni', 'postfix.map'), 'utf8')).toContain(
      'mail.b.test /etc/ssl/mail/b/privkey-fullchain.pem\n',
    );
    for (const e of ALL) {
      expect(kind(await servedCertificate(e, NAMES.b, { only: 'ecdsa' })), e).toBe(`ecdsa:${kept}`);
      // An RSA-only client can no longer get b's RSA certificate (Dovecot falls back to the default's RSA one).
      const rsa = await servedCertificate(e, NAMES.b, { only: 'rsa' }).catch(() => 'none');
      expect(rsa === 'none' ? 'none' : new X509Certificate(rsa).serialNumber, e).not.toBe(bRsa);
    }
    const rows = JSON.parse((await runCli(['status', '--json'], env)).stdout) as { name: string; keyType: string }[];
    expect(rows.map((row) => `${row.name} ${row.keyType}`)).toEqual(['a ec-256', 'a rsa-2048', 'b ec-384']);
    writeConfig('[rsa-2048, ec-384]');
    const back = await runCli(['run', '--once'], env);
    expect(back.code, back.stdout).toBe(0);
    expect(serialIn('b', 'ecdsa')).toBe(kept);
    expect(serialIn('b', 'rsa')).not.toBe(bRsa); // a new RSA order: the old one was dropped
    expect(await servedTable()).toEqual(expectedTable());
  });
});

describe('Postfix 3.10 and Dovecot 2.4 (Debian trixie)', () => {
  it('serve the same variants from the same files, Dovecot 2.4 through ssl_server_alt_cert_file in each local_name', async () => {
    await removeTestContainers();
    const stack = await startMailStack(certsDir, {
      mainCf,
      dovecotConf: dovecot24,
      image: MAIL_IMAGE_TRIXIE,
      labels: { 'mailcerts.certificates': '*' },
    });
    expect(await docker('exec', stack.dovecot, 'dovecot', '--version')).toMatch(/^2\.4\./);
    expect(await servedTable()).toEqual(expectedTable());
    const r = await runCli(['renew', '--force', '--key-type', 'ec-256', 'a'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(logsWith(r, { container: stack.dovecot, msg: 'serves the published certificate' })).toHaveLength(1);
    expect(await servedTable()).toEqual(expectedTable());
  });
});

describe('a server that serves only one of the variants', () => {
  it("fails the other algorithm's probe: reported as broken and the set rolled back, the working variant still served", async () => {
    await removeTestContainers();
    // Postfix with the ECDSA file only, and no SNI map: an RSA-only client cannot be served.
    const ecOnly = join(work, 'main-ec-only.cf');
    writeFileSync(
      ecOnly,
      readFileSync(join(ROOT, 'docker', 'mailstack', 'postfix', 'main.cf'), 'utf8').replace(
        /^smtpd_tls_chain_files = .*$/m,
        'smtpd_tls_chain_files = /etc/ssl/mail/ecdsa-privkey-fullchain.pem',
      ),
    );
    const stack = await startMailStack(certsDir, { mainCf: ecOnly, dovecotConf: dovecot23 });
    const before = { ecdsa: serialIn('a', 'ecdsa'), rsa: serialIn('a', 'rsa') };
    const r = await runCli(['renew', '--force', '--key-type', 'rsa-2048', 'a'], env);
    expect(r.code).toBe(1);
    const failed = logsWith(r, { container: stack.postfix, msg: 'TLS broken with the published certificate' })[0];
    expect(failed, r.stdout).toMatchObject({ problem: 'broken' });
    expect(failed?.error).toMatch(/only RSA offered\)/);
    expect(logsWith(r, { step: 'rollback', msg: 'rolled back to the previous certificate' })).toHaveLength(1);
    expect(serialIn('a', 'rsa')).toBe(before.rsa); // the previous set is published again
    expect(serialIn('a', 'ecdsa')).toBe(before.ecdsa);
    expect(kind(await servedCertificate('smtp', null, { only: 'ecdsa' }))).toBe(`ecdsa:${before.ecdsa}`);
    const rows = JSON.parse((await runCli(['status', '--json'], env)).stdout) as {
      name: string;
      keyType: string;
      lastError?: string;
    }[];
    expect(rows.find((row) => row.name === 'a' && row.keyType === 'rsa-2048')?.lastError).toMatch(/was rolled back to/);
    // The ECDSA variant did not change: it is not the one rolled back (the container's failure is still reported on it).
    expect(rows.find((row) => row.name === 'a' && row.keyType === 'ec-256')?.lastError).not.toMatch(/rolled back/);
  });
});

describe('a supplied dual certificate (CUSTOM_CERTS_DIR)', () => {
  const dir = join(work, 'supplied');
  const custom = join(dir, 'custom');
  const supplied = {
    ACME_DOMAINS: 'mail.s.test',
    CUSTOM_CERTS_DIR: custom,
    CERTS_DIR: join(dir, 'certs'),
    STATE_DIR: join(dir, 'state'),
    DOCKER_RELOAD: 'false',
  };
  const ec = makeChain(['mail.s.test']);
  const rsa = makeChain(['mail.s.test'], { leafKey: 'rsa-2048' });
  const published = (f: string) => readFileSync(join(dir, 'certs', f), 'utf8');

  it('publishes both pairs: fullchain.pem + privkey.pem, and rsa-fullchain.pem + rsa-privkey.pem', async () => {
    mkdirSync(custom, { recursive: true });
    writeFileSync(join(custom, 'fullchain.pem'), ec.fullchain);
    writeFileSync(join(custom, 'privkey.pem'), ec.key);
    writeFileSync(join(custom, 'rsa-fullchain.pem'), rsa.fullchain);
    writeFileSync(join(custom, 'rsa-privkey.pem'), rsa.key);
    const r = await runCli(['run', '--once'], supplied);
    expect(r.code, r.stdout).toBe(0);
    expect(published('rsa-privkey-fullchain.pem')).toBe(rsa.key + rsa.fullchain);
    expect(published('ecdsa-privkey-fullchain.pem')).toBe(ec.key + ec.fullchain);
    expect(published('privkey-fullchain.pem')).toBe(ec.key + ec.fullchain);
    const rows = JSON.parse((await runCli(['status', '--json'], supplied)).stdout) as { keyType: string }[];
    expect(rows.map((row) => row.keyType)).toEqual(['ec-256', 'rsa-2048']);
  });

  it('an RSA pair whose key does not match, or a second ECDSA pair, is refused and nothing is published', async () => {
    const before = published('rsa-privkey-fullchain.pem');
    writeFileSync(join(custom, 'rsa-privkey.pem'), makeChain(['mail.s.test'], { leafKey: 'rsa-2048' }).key);
    const r = await runCli(['run', '--once'], supplied);
    expect(r.code).toBe(1);
    expect(logsWith(r, { msg: 'supplied certificate refused' })[0]?.error).toMatch(
      /the supplied rsa-fullchain\.pem in .+: the private key does not match the certificate; nothing was published/,
    );
    expect(published('rsa-privkey-fullchain.pem')).toBe(before);
    writeFileSync(join(custom, 'rsa-fullchain.pem'), ec.fullchain);
    writeFileSync(join(custom, 'rsa-privkey.pem'), ec.key);
    const r2 = await runCli(['run', '--once'], supplied);
    expect(r2.code).toBe(1);
    expect(logsWith(r2, { msg: 'supplied certificate refused' })[0]?.error).toMatch(
      /holds a ec-256 certificate, not RSA; nothing was published/,
    );
    expect(published('rsa-privkey-fullchain.pem')).toBe(before);
  });
});
