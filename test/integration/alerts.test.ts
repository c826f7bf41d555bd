import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import { type AlertMx, startAlertMx } from '../helpers/alert-mx.js';
import { containerLogs, removeTestContainers } from '../helpers/mailstack.js';
import { makeExpired, writePublished } from '../helpers/pki.js';
import { freePorts } from '../helpers/ports.js';

/**
 * Alerts reach the admin: a renewal failing for longer than ALERT_AFTER sends one e-mail, through
 * SMTP submission with STARTTLS to a real Postfix that delivers it to a mailbox this test reads,
 * and one webhook; the fix sends one "resolved" each; restarts in between send nothing twice. The
 * same Postfix, by SNI, plays the stack's own one serving the expired certificate mailcerts published.
 */
const work = join(inject('workDir'), 'alerts');
const HOOK_TOKEN = 'hook-token-secret-0123456789';
let smtpPort = 0;
let hookPort = 0;
let hook: Server;
const hooks: { path: string; body: Record<string, unknown> }[] = [];
let mx: AlertMx;

function env(extra: Record<string, string> = {}) {
  const dir = join(work, 'mailcerts');
  return pebbleEnv(dir, {
    ACME_DOMAINS: 'alert.example.test',
    DOCKER_RELOAD: 'false',
    ALERT_EMAIL: 'admin@alerts.test',
    ALERT_SMTP: `smtp://127.0.0.1:${smtpPort}?servername=alerts.test`,
    ALERT_WEBHOOK: `http://127.0.0.1:${hookPort}/hook?token=${HOOK_TOKEN}`,
    ALERT_AFTER: '1s',
    NODE_EXTRA_CA_CERTS: mx.caBundle,
    ...extra,
  });
}
/** The CA is unreachable: every renewal fails. */
const broken = { ACME_DIRECTORY: 'https://127.0.0.1:9/dir', ACME_TIMEOUT: '2s' };

/**
 * The stack's own Postfix in the expiry case: the same Postfix serves, to SNI mail.own.test, an
 * expired certificate that a mailcerts published into its CERTS_DIR (the directory Postfix mounts).
 */
const OWN = 'mail.own.test';
const served = makeExpired(OWN, { san: true });
const ownCerts = join(work, 'own', 'certs');
beforeAll(async () => {
  [smtpPort, hookPort] = (await freePorts(2)) as [number, number];
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      hooks.push({ path: req.url ?? '', body: JSON.parse(body) as Record<string, unknown> });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(hookPort, '127.0.0.1', r));
  writePublished(ownCerts, served);
  mx = await startAlertMx(work, {
    name: 'alert-mx',
    ports: { starttls: smtpPort },
    sniMap: `${OWN} /etc/ssl/own/privkey-fullchain.pem\n`,
    volumes: [`${ownCerts}:/etc/ssl/own:ro`],
  });
});
afterAll(async () => {
  await removeTestContainers();
  hook?.close();
});

describe('alerts by e-mail and webhook', () => {
  it('a renewal failing for longer than ALERT_AFTER: one e-mail and one webhook, nothing twice across restarts, one "resolved" each after the fix', async () => {
    const first = await runCli(['run', '--once'], env(broken));
    expect(first.code).toBe(1);
    expect(logsWith(first, { step: 'alert' })).toHaveLength(0); // failing for less than ALERT_AFTER
    await delay(1_200);
    const second = await runCli(['run', '--once'], env(broken));
    expect(
      logsWith(second, { step: 'alert', msg: 'alert sent' })
        .map((l) => l.channel)
        .sort(),
    ).toEqual(['email', 'webhook']);
    const mails = await mx.mailboxHas(1);
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatch(/^Subject: \[mailcerts\] renewal of alert\.example\.test failing$/m);
    expect(mails[0]).toMatch(
      /What is wrong: renewal of alert\.example\.test failing: 1 failed attempt\(s\); last error: /,
    );
    expect(mails[0]).toMatch(/^Since: \d{4}-\d\d-\d\dT/m);
    expect(mails[0]).toMatch(/^Next: next attempt at /m);
    expect(mails[0]).toContain('See more: docker compose exec mailcerts node /app/mailcerts.mjs status');
    // Sent with STARTTLS, the server's certificate checked (alerts.test, by the test CA).
    expect(await containerLogs(mx.container)).toMatch(
      /TLS connection established from localhost\[127\.0\.0\.1\]: TLSv1\.[23]/,
    );
    expect(mails[0]).toMatch(/\(using TLSv1\.[23] with cipher /);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]!.body).toMatchObject({
      event: 'problem',
      problem: 'renewal:alert.example.test:ec-256',
      subject: '[mailcerts] renewal of alert.example.test failing',
    });

    for (let i = 0; i < 2; i++) {
      const again = await runCli(['run', '--once'], env(broken)); // a restart: the alert is remembered
      expect(logsWith(again, { step: 'alert', msg: 'alert sent' })).toHaveLength(0);
    }
    const fixed = await runCli(['renew', '--force'], env());
    expect(fixed.code, fixed.stdout).toBe(0);
    expect(
      logsWith(fixed, { step: 'alert', msg: 'alert sent' })
        .map((l) => `${l.channel} ${l.kind}`)
        .sort(),
    ).toEqual(['email resolved', 'webhook resolved']);
    const after = await runCli(['run', '--once'], env());
    expect(logsWith(after, { step: 'alert', msg: 'alert sent' })).toHaveLength(0);
    expect(await mx.mailboxHas(2)).toHaveLength(2);
    expect(mx.mailbox()[1]).toMatch(/^Subject: \[mailcerts\] resolved: renewal of alert\.example\.test failing$/m);
    expect(hooks.map((h) => h.body.event)).toEqual(['problem', 'resolved']);
    for (const r of [first, second, fixed, after])
      expect(r.stdout.includes(HOOK_TOKEN), 'webhook token in the logs').toBe(false);
  });

  it('an alert target that cannot be reached is retried with backoff and shown in status (a slow one: alerts-failing.test.ts)', async () => {
    const closed = (await freePorts(1))[0]!;
    const dir = join(work, 'unreachable');
    const e = pebbleEnv(dir, {
      ACME_DOMAINS: 'alert2.example.test',
      DOCKER_RELOAD: 'false',
      ALERT_WEBHOOK: `http://127.0.0.1:${closed}/hook`,
      ALERT_AFTER: '1s',
      ...broken,
    });
    await runCli(['run', '--once'], e);
    await delay(1_200);
    const r = await runCli(['run', '--once'], e);
    expect(logsWith(r, { step: 'alert', msg: 'could not send an alert; retrying later' })).toHaveLength(1);
    expect(logsWith(r, { step: 'report' }).length + logsWith(r, { step: 'plan' }).length).toBeGreaterThan(0); // the pass itself ran as usual
    const status = await runCli(['status'], e);
    expect(status.stdout).toMatch(/alerts not delivered yet: 1 by webhook \(last error: .*; next try \d{4}-/);
    const again = await runCli(['run', '--once'], e); // within the backoff: not tried again yet
    expect(logsWith(again, { step: 'alert' })).toHaveLength(0);
  });
});

describe("the stack's own Postfix, serving the expired certificate mailcerts published", () => {
  const ownEnv = (dir: string, certsDir: string) =>
    pebbleEnv(dir, {
      ACME_DOMAINS: OWN,
      DOCKER_RELOAD: 'false',
      CERTS_DIR: certsDir,
      ALERT_EMAIL: 'ops@alerts.test',
      // By address: the certificate is checked against the first name, mail.own.test, which mailcerts publishes.
      ALERT_SMTP: `smtp://127.0.0.1:${smtpPort}`,
      NODE_EXTRA_CA_CERTS: mx.caBundle,
      ...broken,
    });

  it('carries the "certificate expired" mail into the mailbox: that leaf is accepted by its key, nothing else', async () => {
    // What Postfix serves to that name: the expired leaf mailcerts published, nothing newer.
    const stdout = execFileSync(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${smtpPort}`, '-starttls', 'smtp', '-servername', OWN],
      { input: '', timeout: 15_000, encoding: 'utf8', stdio: 'pipe' },
    );
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(stdout)?.[0];
    expect(new X509Certificate(pem ?? '').fingerprint256).toBe(new X509Certificate(served.cert).fingerprint256);
    expect(Date.parse(new X509Certificate(served.cert).validTo)).toBeLessThan(Date.now());

    const r = await runCli(['run', '--once'], ownEnv(join(work, 'own'), ownCerts));
    expect(
      logsWith(r, { step: 'alert', msg: 'alert sent' }).map((l) => `${l.channel} ${l.problem}`),
      r.stdout,
    ).toEqual([`email expiry:${OWN}:ec-256`]);
    const mails = await mx.mailboxHas(1, 'ops');
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatch(/^Subject: \[mailcerts\] certificate mail\.own\.test expired$/m);
    expect(mails[0]).toMatch(/\(using TLSv1\.[23] with cipher /);

    // Another mailcerts, whose published certificate for the same name is another one (also
    // expired, self-signed): what the server presents is not its own, so nothing is sent.
    const otherDir = join(work, 'own-other');
    writePublished(join(otherDir, 'certs'), makeExpired(OWN, { san: true }));
    const refused = await runCli(['run', '--once'], ownEnv(otherDir, join(otherDir, 'certs')));
    const failed = logsWith(refused, { step: 'alert', msg: 'could not send an alert; retrying later' });
    expect(
      failed.map((l) => l.channel),
      refused.stdout,
    ).toEqual(['email']);
    expect(String(failed[0]!.error)).toMatch(
      /^the SMTP server's certificate cannot be trusted for mail\.own\.test \(.+\), and it is not the certificate mailcerts published for mail\.own\.test; nothing was sent$/,
    );
    await delay(500);
    expect(mx.mailbox('ops')).toHaveLength(1);
  });
});

describe('LOG_FORMAT=text', () => {
  it('the same failing run, one short line per event for people; the error reads the same as in JSON', async () => {
    const dir = join(work, 'logformat');
    const base = pebbleEnv(dir, { ACME_DOMAINS: 'log.example.test', DOCKER_RELOAD: 'false', ...broken });
    const json = await runCli(['run', '--once'], base);
    const jsonError = String(json.logs.find((l) => l.msg === 'issuance failed')?.error);
    const text = await runCli(['run', '--once'], { ...base, LOG_FORMAT: 'text', STATE_DIR: join(dir, 'state-text') });
    const lines = text.stdout.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(2);
    for (const l of lines) expect(l).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) /);
    const failed = lines.find((l) => / ERROR log\.example\.test report: issuance failed {2}/.test(l));
    expect(failed).toBeDefined();
    expect(failed).toContain(`error=${JSON.stringify(jsonError)}`);
  });
});
