import { X509Certificate } from 'node:crypto';
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { probe } from '../../src/deploy/probe.js';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import {
  containerLogs,
  docker,
  ENDPOINTS,
  type Endpoint,
  MAIL_IMAGE_TRIXIE,
  mailConfigFile,
  removeTestContainers,
  ROOT,
  seedSelfSigned,
  servedCertificate,
  startContainer,
  startMailStack,
  VERIFY_LABELS,
  waitForLog,
  waitForPort,
} from '../helpers/mailstack.js';
import { makeChain } from '../helpers/pki.js';

const dir = join(inject('workDir'), 'verify');
const certs = join(dir, 'certs');
const custom = join(dir, 'custom');
const mainCf = join(dir, 'main.cf');
const masterCf = join(dir, 'master.cf');
const env = pebbleEnv(dir, { ACME_DOMAINS: 'mail.example.test' });
const ALL: Endpoint[] = ['smtp', 'submission', 'smtps', 'imap', 'imaps', 'pop3', 'pop3s', 'sieve'];
const POSTFIX: Endpoint[] = ['smtp', 'submission', 'smtps'];
const published = () => new X509Certificate(readFileSync(join(certs, 'cert.pem')));
const servedSerial = async (e: Endpoint) => new X509Certificate(await servedCertificate(e)).serialNumber;

let stack: { postfix: string; dovecot: string };

beforeAll(async () => {
  mkdirSync(certs, { recursive: true });
  await seedSelfSigned(certs);
  copyFileSync(join(ROOT, 'docker', 'mailstack', 'postfix', 'main.cf'), mainCf);
  copyFileSync(mailConfigFile('postfix/master.cf'), masterCf);
  stack = await startMailStack(certs, { mainCf, masterCf });
  const first = await runCli(['run', '--once'], env);
  expect(first.code, first.stdout).toBe(0);
});
afterAll(removeTestContainers);

describe('verification after reload', () => {
  it('each probe (SMTP, submission, SMTPS, IMAP, IMAPS, POP3, POP3S, ManageSieve) reads what Postfix and Dovecot serve, as openssl does', async () => {
    const leaf = published();
    for (const e of ALL) {
      const served = await probe({ protocol: e, host: '127.0.0.1', port: ENDPOINTS[e].port }, 'mail.example.test');
      expect(served.serial, e).toBe(leaf.serialNumber);
      expect(served.fingerprint256, e).toBe(new X509Certificate(await servedCertificate(e)).fingerprint256);
    }
  });

  it('a run verified every labelled endpoint after the reload', async () => {
    const r = await runCli(['renew', '--force'], env);
    expect(r.code, r.stdout).toBe(0);
    const verified = logsWith(r, { step: 'verify', msg: 'serves the published certificate' });
    expect(verified.map((l) => l.container).sort()).toEqual([stack.dovecot, stack.postfix].sort());
    // Each of the 8 endpoints, asked for the certificate's name by SNI and with no SNI at all.
    const checked = verified.flatMap((l) => l.endpoints as string[]);
    expect(checked.length).toBe(16);
    expect(checked).toContain(`smtp://127.0.0.1:${ENDPOINTS.smtp.port} (mail.example.test, mail.example.test)`);
    expect(checked).toContain(`imaps://127.0.0.1:${ENDPOINTS.imaps.port} (mail.example.test, no SNI)`);
  });

  it('probes fail clearly: no STARTTLS, nothing listening, a plaintext port spoken to as TLS', async () => {
    await expect(probe({ protocol: 'imap', host: '127.0.0.1', port: ENDPOINTS.smtp.port }, 'x')).rejects.toThrow(
      new RegExp(`imap://127.0.0.1:${ENDPOINTS.smtp.port}: no IMAP greeting; the server said: 220`),
    );
    await expect(probe({ protocol: 'smtps', host: '127.0.0.1', port: 1 }, 'x')).rejects.toMatchObject({
      stage: 'connect',
    });
    await expect(probe({ protocol: 'imaps', host: '127.0.0.1', port: ENDPOINTS.imap.port }, 'x')).rejects.toMatchObject(
      { stage: 'handshake' },
    );
  });
});

describe('Postfix configuration broken on purpose', () => {
  it("postconf -n fails (main.cf): no reload, the previous certificate is still served, the error shows Postfix's words", async () => {
    const before = published().serialNumber;
    for (const e of POSTFIX) expect(await servedSerial(e)).toBe(before); // idle smtpd processes hold the current certificate
    appendFileSync(mainCf, 'this line is broken\n');
    const r = await runCli(['renew', '--force'], env);
    expect(r.code).toBe(1);
    const refused = logsWith(r, { container: stack.postfix, msg: 'container not deployed' });
    expect(refused[0]?.error).toMatch(
      /^validation failed, not reloaded: "postconf -n" exited with 1:\npostconf: fatal: \/etc\/postfix\/main.cf, line \d+: missing '=' after attribute name: "this line is broken"/,
    );
    expect(logsWith(r, { container: stack.postfix, command: 'postfix reload' })).toHaveLength(0);
    const fresh = published().serialNumber;
    expect(fresh).not.toBe(before);
    for (const e of POSTFIX) expect(await servedSerial(e), e).toBe(before);
    expect(
      logsWith(r, { step: 'verify', container: stack.dovecot, msg: 'serves the published certificate' }),
    ).toHaveLength(1);

    // The admin fixes main.cf; the next pass deploys what is pending.
    copyFileSync(join(ROOT, 'docker', 'mailstack', 'postfix', 'main.cf'), mainCf);
    const fixed = await runCli(['run', '--once'], env);
    expect(fixed.code, fixed.stdout).toBe(0);
    for (const e of POSTFIX) expect(await servedSerial(e), e).toBe(fresh);
  });

  it("postconf -n fails on master.cf too, which a reload would make the master read: no reload, the error shows Postfix's words", async () => {
    const before = published().serialNumber;
    for (const e of POSTFIX) expect(await servedSerial(e)).toBe(before);
    const good = readFileSync(masterCf);
    appendFileSync(masterCf, 'broken-service inet\n');
    try {
      const r = await runCli(['renew', '--force'], env);
      expect(r.code).toBe(1);
      const refused = logsWith(r, { container: stack.postfix, msg: 'container not deployed' });
      expect(refused[0]?.error).toMatch(
        /^validation failed, not reloaded: "postconf -n" exited with 1:\npostconf: fatal: file \/etc\/postfix\/master.cf: line \d+: bad field count/,
      );
      expect(logsWith(r, { container: stack.postfix, command: 'postfix reload' })).toHaveLength(0);
      for (const e of POSTFIX) expect(await servedSerial(e), e).toBe(before);
    } finally {
      writeFileSync(masterCf, good); // the tests after this one need a working Postfix
    }
    const fixed = await runCli(['run', '--once'], env);
    expect(fixed.code, fixed.stdout).toBe(0);
    for (const e of POSTFIX) expect(await servedSerial(e), e).toBe(published().serialNumber);
  });

  it("postfix check fails where postconf -n passes (master.cf without postlog, maillog_file set): no reload, no restart, the old certificate served, Postfix's words (3.7 and 3.10)", async () => {
    const before = published().serialNumber;
    for (const e of POSTFIX) expect(await servedSerial(e)).toBe(before);
    // Postfix 3.10 beside 3.7, in its own network namespace, reading the same master.cf.
    const trixie = await startContainer({
      name: 'postfix-trixie',
      role: 'postfix',
      image: MAIL_IMAGE_TRIXIE,
      network: 'none',
      certsDir: certs,
      mainCf,
      masterCf,
      reload: 'postfix',
    });
    await waitForLog(trixie, /postfix\/master\[\d+\]: daemon started/);
    const containers = [stack.postfix, trixie];
    const state = (c: string) => docker('inspect', '-f', '{{.State.StartedAt}} {{.RestartCount}} {{.State.Status}}', c);
    const reloads = async (c: string) => (await containerLogs(c)).match(/postfix\/master\[\d+\]: reload/g)?.length ?? 0;
    const was = await Promise.all(containers.map(async (c) => ({ state: await state(c), reloads: await reloads(c) })));
    const good = readFileSync(masterCf);
    writeFileSync(masterCf, good.toString('utf8').replace(/^postlog\s.*\n/m, ''));
    try {
      expect(readFileSync(masterCf, 'utf8')).not.toMatch(/^postlog/m);
      for (const c of containers) await docker('exec', c, 'postconf', '-n'); // passes: it alone would have let the reload through
      const r = await runCli(['renew', '--force'], env);
      expect(r.code).toBe(1);
      for (const c of containers) {
        const refused = logsWith(r, { container: c, msg: 'container not deployed' });
        expect(refused[0]?.error, c).toMatch(
          /^validation failed, not reloaded: "postfix check" exited with 1:\npostfix\/postfix-script: fatal: missing 'postlog' service in master\.cf - run 'postfix upgrade-configuration'/,
        );
        expect(logsWith(r, { container: c, command: 'postconf -n', exitCode: 0 }), c).toHaveLength(1);
        expect(logsWith(r, { container: c, command: 'postfix reload' }), c).toHaveLength(0);
      }
      expect(
        logsWith(r, { msg: 'still serving an old certificate after reload: restarting the container' }),
      ).toHaveLength(0);
      expect(published().serialNumber).not.toBe(before);
      for (const e of POSTFIX) expect(await servedSerial(e), e).toBe(before);
      // Neither reloaded (the master logs each reload) nor restarted.
      expect(
        await Promise.all(containers.map(async (c) => ({ state: await state(c), reloads: await reloads(c) }))),
      ).toEqual(was);
    } finally {
      writeFileSync(masterCf, good); // the tests after this one need a working Postfix
      await docker('rm', '-f', trixie);
    }
    const fixed = await runCli(['run', '--once'], env);
    expect(fixed.code, fixed.stdout).toBe(0);
    for (const e of POSTFIX) expect(await servedSerial(e), e).toBe(published().serialNumber);
  });
});

describe('escalation', () => {
  it('a reload that does nothing (exec:true): verification sees the old certificate, restarts the container, then the new one is served', async () => {
    await docker('rm', '-f', stack.postfix);
    const lazy = await startContainer({
      name: 'postfix-lazy',
      role: 'postfix',
      certsDir: certs,
      mainCf,
      reload: 'exec:true',
      labels: { 'mailcerts.verify': VERIFY_LABELS.postfix },
    });
    for (const e of POSTFIX) await waitForPort(ENDPOINTS[e].port);
    const old = published().serialNumber;
    for (const e of POSTFIX) expect(await servedSerial(e)).toBe(old); // leaves idle smtpd processes with the old certificate
    const startedAt = await docker('inspect', '-f', '{{.State.StartedAt}}', lazy);

    const r = await runCli(['renew', '--force'], env);
    expect(r.code, r.stdout).toBe(0);
    const fresh = published().serialNumber;
    expect(logsWith(r, { container: lazy, msg: 'not yet serving the published certificate' }).length).toBeGreaterThan(
      0,
    );
    expect(
      logsWith(r, { container: lazy, msg: 'still serving an old certificate after reload: restarting the container' }),
    ).toHaveLength(1);
    expect(logsWith(r, { step: 'verify', container: lazy, msg: 'serves the published certificate' })).toHaveLength(1);
    expect(await docker('inspect', '-f', '{{.State.StartedAt}}', lazy)).not.toBe(startedAt);
    for (const e of POSTFIX) expect(await servedSerial(e), e).toBe(fresh);
  });

  it('mailcerts.escalate=none reports the stale container with endpoint and fingerprint instead of restarting it', async () => {
    await removeTestContainers();
    // One smtpd process per service, so that every probe meets the process holding the old
    // certificate (with more, a probe may make the master spawn one that reads the new files).
    const oneSmtpd = join(dir, 'master-one-smtpd.cf');
    writeFileSync(
      oneSmtpd,
      readFileSync(masterCf, 'utf8').replace(
        /^(\S+\s+inet(?:\s+\S+){4}\s+)-(\s+smtpd\b)/gm,
        (_, head, tail) => `${head}1${tail}`,
      ),
    );
    expect(readFileSync(oneSmtpd, 'utf8').match(/ inet .* 1 +smtpd/g)).toHaveLength(3);
    stack = await startMailStack(certs, {
      mainCf,
      masterCf: oneSmtpd,
      postfixLabels: { 'mailcerts.reload': 'exec:true', 'mailcerts.escalate': 'none' },
    });
    try {
      const old = published().serialNumber;
      for (const e of POSTFIX) expect(await servedSerial(e)).toBe(old);
      const r = await runCli(['renew', '--force'], env);
      expect(r.code).toBe(1);
      const fresh = published().serialNumber;
      const failed = logsWith(r, { container: stack.postfix, msg: 'container not deployed' })[0];
      expect(failed?.error).toMatch(/^still serves an old certificate after reload: /);
      for (const e of POSTFIX) {
        for (const name of ['mail.example.test', 'a client without SNI']) {
          expect(failed?.error).toMatch(
            new RegExp(
              `${e}://127.0.0.1:${ENDPOINTS[e].port} serves serial ${old} \\(SHA-256 [0-9A-F:]{95}\\) instead of ${fresh} for ${name}(;|$)`,
            ),
          );
        }
      }
      expect(
        logsWith(r, { msg: 'still serving an old certificate after reload: restarting the container' }),
      ).toHaveLength(0);
    } finally {
      // The tests after this one need a stack that reloads for real, whatever happened here.
      await removeTestContainers();
      stack = await startMailStack(certs, { mainCf });
    }
    expect((await runCli(['run', '--once'], env)).code).toBe(0); // deploys what was pending
  });
});

describe('rollback', () => {
  it('a published certificate that breaks the handshake is rolled back; the previous one is served again; the failure is reported', async () => {
    const good = published();
    const goodVersion = readlinkSync(join(certs, '..data'));
    mkdirSync(custom, { recursive: true });
    const weak = makeChain(['mail.example.test'], { leafKey: 'rsa-1024' }); // passes mailcerts' checks; Dovecot refuses 1024-bit keys
    writeFileSync(join(custom, 'fullchain.pem'), weak.fullchain);
    writeFileSync(join(custom, 'privkey.pem'), weak.key);
    const customEnv = { ...env, CUSTOM_CERTS_DIR: custom };

    const r = await runCli(['run', '--once'], customEnv);
    expect(r.code).toBe(1);
    expect(logsWith(r, { msg: 'published the supplied certificate' })).toHaveLength(1);
    expect(
      logsWith(r, { step: 'verify', container: stack.dovecot, msg: 'TLS broken with the published certificate' })[0]
        ?.error,
    ).toMatch(
      new RegExp(
        `^TLS fails with the published certificate after reload: .*imaps://127.0.0.1:${ENDPOINTS.imaps.port}: (read ECONNRESET|Client network socket disconnected)`,
      ),
    );
    expect(logsWith(r, { step: 'rollback', msg: 'rolled back to the previous certificate' })).toHaveLength(1);
    const report = logsWith(r, { msg: 'new certificate rolled back' })[0];
    expect(report?.error).toMatch(
      new RegExp(
        `^serial ${new X509Certificate(weak.leaf).serialNumber} was rolled back to ${good.serialNumber} because container ${stack.dovecot}: TLS fails .*; the previous certificate is served again$`,
      ),
    );

    expect(readlinkSync(join(certs, '..data'))).toBe(goodVersion);
    for (const e of ALL) expect(await servedSerial(e), e).toBe(good.serialNumber);
    const status = JSON.parse((await runCli(['status', '--json'], customEnv)).stdout)[0];
    expect(status.lastError).toMatch(/was rolled back/);
    expect(status.deployed).toBe(true);

    // The same files are not published again; new files are.
    const again = await runCli(['run', '--once'], customEnv);
    expect(again.code).toBe(1);
    expect(logsWith(again, { step: 'publish' })).toHaveLength(0);
  });

  it('supplied certificates are deployed and verified exactly as issued ones', async () => {
    const chain = makeChain(['mail.example.test']);
    writeFileSync(join(custom, 'fullchain.pem'), chain.fullchain);
    writeFileSync(join(custom, 'privkey.pem'), chain.key);
    const r = await runCli(['run', '--once'], { ...env, CUSTOM_CERTS_DIR: custom });
    expect(r.code, r.stdout).toBe(0);
    expect(logsWith(r, { step: 'verify', msg: 'serves the published certificate' })).toHaveLength(2);
    const serial = new X509Certificate(chain.leaf).serialNumber;
    for (const e of ALL) expect(await servedSerial(e), e).toBe(serial);
    const status = JSON.parse((await runCli(['status', '--json'], { ...env, CUSTOM_CERTS_DIR: custom })).stdout)[0];
    expect(status).toMatchObject({ source: 'custom', serial, deployed: true, daysLeft: 9 });
    expect(status.nextReason).toMatch(/^supplied in .*custom: nothing renews it, replace it before \d{4}-\d\d-\d\d$/);
    rmSync(custom, { recursive: true });
  });
});
