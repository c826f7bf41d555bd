import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import {
  ENDPOINTS,
  type Endpoint,
  removeTestContainers,
  ROOT,
  servedCertificate,
  startContainer,
  VERIFY_LABELS,
  waitForPort,
} from '../helpers/mailstack.js';
import { makeExpired, writePublished } from '../helpers/pki.js';

/**
 * Rollbacks end to end, on one real Postfix serving two certificates by SNI (texthash map). The
 * break is the server's: an admin switches a certificate to ECDSA while Postfix only offers
 * RSA-authenticated ciphers (TLS 1.2 at most), so the new certificate's handshake fails and only
 * that one is rolled back. After the admin fixes Postfix, the kept certificate is published again
 * without a new order, as Pebble's own log shows. A rollback never goes back to an expired
 * certificate.
 */
const work = join(inject('workDir'), 'sni-rollback');
const certsDir = join(work, 'certs');
const config = join(work, 'mailcerts.yml');
const mainCf = join(work, 'main.cf');
const POSTFIX: Endpoint[] = ['smtp', 'submission', 'smtps'];
const env = pebbleEnv(work, { MAILCERTS_CONFIG: config });
const pebbleLog = join(inject('workDir'), 'pebble', 'pebble.log');
const issued = () => readFileSync(pebbleLog, 'utf8').match(/Issued certificate serial/g)?.length ?? 0;
const serialIn = (name: string) => new X509Certificate(readFileSync(join(certsDir, name, 'cert.pem'))).serialNumber;
const servedSerial = async (e: Endpoint, sni: string) =>
  new X509Certificate(await servedCertificate(e, sni)).serialNumber;
const keyTypeOf = (name: string) =>
  new X509Certificate(readFileSync(join(certsDir, name, 'cert.pem'))).publicKey.asymmetricKeyType;

function writeConfig(keyTypes: { a: string; b: string }) {
  writeFileSync(
    config,
    [
      'certificates:',
      '  - name: a',
      '    domains: [mail.a.test]',
      `    keyType: ${keyTypes.a}`,
      '  - name: b',
      '    domains: [mail.b.test]',
      `    keyType: ${keyTypes.b}`,
      '',
    ].join('\n'),
  );
}
/** The stack's Postfix with the SNI map; `rsaOnly`: TLS 1.2 at most, RSA-authenticated ciphers only. */
function writeMainCf(rsaOnly: boolean) {
  const base = readFileSync(join(ROOT, 'docker', 'mailstack', 'postfix', 'main.cf'), 'utf8');
  const strict = [
    'smtpd_tls_protocols = !SSLv2, !SSLv3, !TLSv1, !TLSv1.1, !TLSv1.3',
    'smtpd_tls_mandatory_protocols = !SSLv2, !SSLv3, !TLSv1, !TLSv1.1, !TLSv1.3',
    'smtpd_tls_ciphers = high',
    'smtpd_tls_mandatory_ciphers = high',
    'tls_high_cipherlist = aRSA:!aNULL:!eNULL',
  ];
  writeFileSync(
    mainCf,
    [
      base.trimEnd(),
      'tls_server_sni_maps = texthash:/etc/ssl/mail/sni/postfix.map',
      ...(rsaOnly ? strict : []),
      '',
    ].join('\n'),
  );
}

beforeAll(async () => {
  mkdirSync(certsDir, { recursive: true });
  writeConfig({ a: 'rsa-2048', b: 'rsa-2048' });
  writeMainCf(true);
  const first = await runCli(['run', '--once'], env);
  expect(first.code, first.stdout).toBe(0);
  await startContainer({
    name: 'postfix-sni',
    role: 'postfix',
    certsDir,
    mainCf,
    reload: 'postfix',
    labels: { 'mailcerts.verify': VERIFY_LABELS.postfix, 'mailcerts.certificates': '*' },
  });
  for (const e of POSTFIX) await waitForPort(ENDPOINTS[e].port);
}, 120_000);
afterAll(removeTestContainers);

describe('rollback of one of two certificates served by SNI', () => {
  let rolledBackSerial = '';

  it('only the certificate whose TLS breaks is rolled back; the other stays new; the SNI map names the right files', async () => {
    const before = { a: serialIn('a'), b: serialIn('b') };
    for (const e of POSTFIX) expect(await servedSerial(e, 'mail.a.test'), e).toBe(before.a);
    const orders = issued();
    writeConfig({ a: 'ec-256', b: 'rsa-2048' });
    const r = await runCli(['renew', '--force'], env);
    expect(r.code).toBe(1);
    expect(issued() - orders).toBe(2); // a (now ECDSA) and b
    const rolled = logsWith(r, { step: 'rollback', msg: 'rolled back to the previous certificate' });
    expect(rolled.map((l) => l.cert)).toEqual(['a']);
    const report = logsWith(r, { msg: 'new certificate rolled back' });
    expect(report.map((l) => l.cert)).toEqual(['a']);
    rolledBackSerial = /^serial (\w+) was rolled back/.exec(String(report[0]?.error))?.[1] ?? '';
    expect(rolledBackSerial).not.toBe('');

    // a is its old RSA certificate again, on disk and on every endpoint; b is its new one.
    expect(serialIn('a')).toBe(before.a);
    expect(keyTypeOf('a')).toBe('rsa');
    const after = serialIn('b');
    expect(after).not.toBe(before.b);
    for (const e of POSTFIX) {
      expect(await servedSerial(e, 'mail.a.test'), e).toBe(before.a);
      expect(await servedSerial(e, 'mail.b.test'), e).toBe(after);
    }
    const map = readFileSync(join(certsDir, 'sni', 'postfix.map'), 'utf8');
    expect(map.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'mail.a.test /etc/ssl/mail/a/privkey-fullchain.pem',
      'mail.b.test /etc/ssl/mail/b/privkey-fullchain.pem',
    ]);
    const status = JSON.parse((await runCli(['status', '--json'], env)).stdout) as {
      name: string;
      lastError?: string;
    }[];
    expect(status.find((s) => s.name === 'a')?.lastError).toMatch(/was rolled back/);
    expect(status.find((s) => s.name === 'b')?.lastError).toBeUndefined();
  });

  it('never rolls back to an expired certificate: the one that becomes ..previous has expired', async () => {
    // b's live files are replaced by an expired certificate for its name, as if it had expired
    // while mailcerts was down; the next publish makes that version ..previous.
    const bDir = join(certsDir, 'b');
    const live = readlinkSync(join(bDir, '..data'));
    writePublished(join(bDir, live), makeExpired('mail.b.test', { san: true }));

    writeConfig({ a: 'ec-256', b: 'ec-256' });
    const r = await runCli(['renew', '--force', 'b'], env);
    expect(r.code).toBe(1);
    expect(readlinkSync(join(bDir, '..previous'))).toBe(live);
    const refused = logsWith(r, { cert: 'b', step: 'rollback' });
    expect(refused.map((l) => l.msg)).toEqual([
      expect.stringMatching(/^not rolled back: the previous certificate expired on /),
    ]);
    // The new certificate stays published, never the expired one.
    expect(readlinkSync(join(bDir, '..data'))).not.toBe(live);
    expect(keyTypeOf('b')).toBe('ec');
    expect(Date.parse(new X509Certificate(readFileSync(join(bDir, 'cert.pem'))).validTo)).toBeGreaterThan(Date.now());
    // a was not touched: its old RSA certificate is still served.
    for (const e of POSTFIX) expect(await servedSerial(e, 'mail.a.test'), e).not.toBe(rolledBackSerial);
  });

  it('once Postfix is fixed, the rolled-back certificate is published again without a new order, and b is deployed', async () => {
    expect(rolledBackSerial).not.toBe('');
    writeMainCf(false);
    // The rollback counted as a failure: a's next attempt is a minute away. That minute is skipped
    // by moving the attempt time the state holds into the past, as the daemon would find it then.
    const statePath = join(work, 'state', 'certificates', 'a', 'state.json');
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as { nextAttemptAt?: string };
    expect(Date.parse(state.nextAttemptAt ?? '')).toBeGreaterThan(Date.now());
    writeFileSync(statePath, JSON.stringify({ ...state, nextAttemptAt: new Date(Date.now() - 1_000).toISOString() }));
    const orders = issued();
    const r = await runCli(['run', '--once'], env);
    expect(r.code, r.stdout).toBe(0);
    expect(issued()).toBe(orders); // Pebble issued nothing
    expect(logsWith(r, { step: 'order' })).toHaveLength(0);
    expect(logsWith(r, { cert: 'a', step: 'plan', decision: 'republish' })).toHaveLength(1);
    expect(serialIn('a')).toBe(rolledBackSerial);
    expect(keyTypeOf('a')).toBe('ec');
    for (const e of POSTFIX) {
      expect(await servedSerial(e, 'mail.a.test'), e).toBe(rolledBackSerial);
      expect(await servedSerial(e, 'mail.b.test'), e).toBe(serialIn('b'));
    }
  });
});
