import { X509Certificate } from 'node:crypto';
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import {
  containerLogs,
  type Endpoint,
  ENDPOINTS,
  MAIL_IMAGE_TRIXIE,
  mailConfigFile,
  removeTestContainers,
  seedSelfSigned,
  servedCertificate,
  startContainer,
  VERIFY_LABELS,
  waitForLog,
  waitForPort,
} from '../helpers/mailstack.js';

/**
 * A broken dovecot.conf: `doveconf -n` fails, so mailcerts does not reload Dovecot, which goes on
 * serving the certificate it had, and the error carries Dovecot's own words. Dovecot 2.3 (bookworm,
 * on loopback, probed as a client would) and 2.4 (trixie, in a network of its own) side by side.
 */
const dir = join(inject('workDir'), 'dovecot-check');
const certs = join(dir, 'certs');
const conf23 = join(dir, 'dovecot23.conf');
const conf24 = join(dir, 'dovecot24.conf');
const env = pebbleEnv(dir, { ACME_DOMAINS: 'mail.example.test' });
const DOVECOT: Endpoint[] = ['imap', 'imaps', 'pop3', 'pop3s', 'sieve'];
const published = () => new X509Certificate(readFileSync(join(certs, 'cert.pem'))).serialNumber;
const servedSerial = async (e: Endpoint) => new X509Certificate(await servedCertificate(e)).serialNumber;
/** Dovecot's master logs each configuration reload it does. */
const reloads = async (c: string) =>
  (await containerLogs(c)).match(/SIGHUP received - reloading configuration/g)?.length ?? 0;
let dovecot23: string;
let dovecot24: string;

beforeAll(async () => {
  mkdirSync(certs, { recursive: true });
  await seedSelfSigned(certs);
  copyFileSync(mailConfigFile('dovecot/dovecot.conf'), conf23);
  copyFileSync(mailConfigFile('dovecot24/dovecot.conf'), conf24);
  dovecot23 = await startContainer({
    name: 'dovecot23',
    role: 'dovecot',
    certsDir: certs,
    dovecotConf: conf23,
    reload: 'dovecot',
    labels: { 'mailcerts.verify': VERIFY_LABELS.dovecot },
  });
  dovecot24 = await startContainer({
    name: 'dovecot24',
    role: 'dovecot',
    image: MAIL_IMAGE_TRIXIE,
    network: 'none',
    certsDir: certs,
    dovecotConf: conf24,
    reload: 'dovecot',
  });
  for (const e of DOVECOT) await waitForPort(ENDPOINTS[e].port);
  await waitForLog(dovecot24, /starting up/);
  const first = await runCli(['run', '--once'], env);
  expect(first.code, first.stdout).toBe(0);
});
afterAll(removeTestContainers);

describe('Dovecot configuration broken on purpose', () => {
  it("doveconf -n fails: no reload, the previous certificate is still served, the error shows Dovecot's words (2.3 and 2.4)", async () => {
    const before = published();
    for (const e of DOVECOT) expect(await servedSerial(e), e).toBe(before);
    const was = { [dovecot23]: await reloads(dovecot23), [dovecot24]: await reloads(dovecot24) };
    const good = { [conf23]: readFileSync(conf23), [conf24]: readFileSync(conf24) };
    for (const c of [conf23, conf24]) appendFileSync(c, 'this line is broken\n');

    const r = await runCli(['renew', '--force'], env);
    expect(r.code).toBe(1);
    for (const c of [dovecot23, dovecot24]) {
      const refused = logsWith(r, { container: c, msg: 'container not deployed' });
      expect(refused[0]?.error, c).toMatch(/^validation failed, not reloaded: "doveconf -n" exited with \d+:\n/);
      // Dovecot's words, wherever its version comments fall among them (stdout and stderr interleave).
      expect(refused[0]?.error, c).toMatch(
        /^doveconf: Fatal: Error in configuration file \/etc\/dovecot\/dovecot\.conf line \d+: (?:.*this line is broken|Expecting )/m,
      );
      expect(logsWith(r, { container: c, command: 'doveadm reload' }), c).toHaveLength(0);
      expect(await reloads(c), c).toBe(was[c]);
    }
    const fresh = published();
    expect(fresh).not.toBe(before);
    for (const e of DOVECOT) expect(await servedSerial(e), e).toBe(before);

    // The admin fixes dovecot.conf; the next pass deploys what is pending.
    for (const c of [conf23, conf24]) writeFileSync(c, good[c]!);
    const fixed = await runCli(['run', '--once'], env);
    expect(fixed.code, fixed.stdout).toBe(0);
    for (const e of DOVECOT) expect(await servedSerial(e), e).toBe(fresh);
    for (const c of [dovecot23, dovecot24]) {
      expect(logsWith(fixed, { container: c, command: 'doveadm reload', exitCode: 0 }), c).toHaveLength(1);
      expect(await reloads(c), c).toBe(was[c]! + 1);
    }
  });
});
