import { createServer, type Server } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type AlertMx, startAlertMx } from '../helpers/alert-mx.js';
import { logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import { containerLogs, removeTestContainers } from '../helpers/mailstack.js';
import { freePorts } from '../helpers/ports.js';

/**
 * Alerts that cannot, or must not, be delivered: a real Postfix that offers no STARTTLS, one whose
 * certificate mailcerts cannot trust, and a webhook that takes 12 s to answer. The first two are
 * refused before any mail is sent and shown in status; the slow webhook holds up neither the pass
 * that renews nor the one that follows.
 */
const work = join(inject('workDir'), 'alerts-failing');
let ports: { starttls: number; plain: number; hook: number };
let mx: AlertMx;
let hook: Server;
/** How long the webhook takes to answer, and when each request came. */
let hookDelayMs = 0;
const hookCalls: { at: number; body: Record<string, unknown> }[] = [];
/** The CA is unreachable: every renewal fails. */
const broken = { ACME_DIRECTORY: 'https://127.0.0.1:9/dir', ACME_TIMEOUT: '2s' };

/** A mailcerts whose renewal has failed for longer than ALERT_AFTER, alerting only by e-mail through `smtp`. */
async function failingWithEmail(name: string, smtp: string, caBundle: string) {
  const env = pebbleEnv(join(work, name), {
    ACME_DOMAINS: `${name}.example.test`,
    DOCKER_RELOAD: 'false',
    ALERT_EMAIL: 'admin@alerts.test',
    ALERT_SMTP: smtp,
    ALERT_AFTER: '1s',
    NODE_EXTRA_CA_CERTS: caBundle,
    ...broken,
  });
  await runCli(['run', '--once'], env);
  await delay(1_200);
  const r = await runCli(['run', '--once'], env);
  return { env, r };
}

/** What Postfix's smtpd says the session held: the commands it was given, counted (e.g. "ehlo=1 quit=1 commands=2"). */
async function sessionsSince(before: string): Promise<string[]> {
  const log = (await containerLogs(mx.container)).slice(before.length);
  return [...log.matchAll(/disconnect from localhost\[127\.0\.0\.1\] (.+)/g)].map((m) => m[1]!.trim());
}

beforeAll(async () => {
  const [starttls, plain, hookPort] = (await freePorts(3)) as [number, number, number];
  ports = { starttls, plain, hook: hookPort };
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      hookCalls.push({ at: Date.now(), body: JSON.parse(body) as Record<string, unknown> });
      setTimeout(() => res.end('ok'), hookDelayMs);
    });
  });
  await new Promise<void>((r) => hook.listen(ports.hook, '127.0.0.1', r));
  mx = await startAlertMx(work, { name: 'alert-mx-failing', ports: { starttls, plain } });
});
afterAll(async () => {
  await removeTestContainers();
  hook?.closeAllConnections();
  hook?.close();
});

/**
 * A mailcerts alerting through `smtp` (trusting `caBundle`) is refused for `why`: the server saw
 * a greeting and an EHLO, never a MAIL FROM, a RCPT TO or DATA; nothing was delivered; status says why.
 */
async function expectRefused(name: string, smtp: string, caBundle: string, why: RegExp) {
  const before = await containerLogs(mx.container);
  const { env, r } = await failingWithEmail(name, smtp, caBundle);
  const failed = logsWith(r, { step: 'alert', msg: 'could not send an alert; retrying later' });
  expect(failed.map((l) => l.channel)).toEqual(['email']);
  expect(String(failed[0]!.error)).toMatch(why);
  const sessions = await sessionsSince(before);
  expect(sessions.length).toBeGreaterThan(0);
  for (const s of sessions) expect(s).not.toMatch(/mail=|rcpt=|data=|auth=/);
  await delay(500);
  expect(mx.mailbox()).toHaveLength(0);
  const status = await runCli(['status'], env);
  expect(status.stdout).toMatch(
    new RegExp(`alerts not delivered yet: 1 by email \\(last error: .*${why.source}.*; next try \\d{4}-`, why.flags),
  );
}

describe('alerts that must not be sent', () => {
  it('an SMTP server that offers no STARTTLS: nothing is sent in clear, and status shows why', async () => {
    await expectRefused(
      'no-starttls',
      `smtp://127.0.0.1:${ports.plain}?servername=alerts.test`,
      mx.caBundle,
      /STARTTLS/,
    );
  });

  it('a server whose certificate is not trusted: refused after STARTTLS, before any mail, and shown in status', async () => {
    // Pebble's CA only: the test root that signed alerts.test is not trusted.
    const untrusted = `smtp://127.0.0.1:${ports.starttls}?servername=alerts.test`;
    await expectRefused('untrusted', untrusted, inject('pebble').caFile, /certificate/i);
  });
});

describe('a webhook that takes 12 s to answer', () => {
  it('holds up neither the pass that renews nor the next one; the alert is sent when it answers', async () => {
    const dir = join(work, 'slow-hook');
    const base = pebbleEnv(dir, {
      DOCKER_RELOAD: 'false',
      ALERT_WEBHOOK: `http://127.0.0.1:${ports.hook}/hook`,
      ALERT_AFTER: '1s',
      RENEW_CHECK_INTERVAL: '10s',
      STATUS_ADDRESS: 'off',
    });
    // One certificate's renewal fails (the CA is unreachable for it) …
    const failing = await runCli(['run', '--once'], { ...base, ...broken, ACME_DOMAINS: 'failing.example.test' });
    expect(failing.code).toBe(1);
    await delay(1_200);
    // … then the daemon, with the CA back, issues a second one in its first pass, while the first
    // (backing off) has been failing for longer than ALERT_AFTER: its alert goes to the webhook,
    // which now takes 12 s to answer.
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'mailcerts.json'),
      JSON.stringify({
        certificates: [
          { name: 'failing.example.test', domains: ['failing.example.test'] },
          { name: 'renewed.example.test', domains: ['renewed.example.test'] },
        ],
      }),
    );
    const env = { ...base, MAILCERTS_CONFIG: join(dir, 'mailcerts.json') };
    hookDelayMs = 12_000;
    const lines: { at: number; line: Record<string, unknown> }[] = [];
    let pid = 0;
    const daemon = runCli(['run'], env, {
      onLine: (line, p) => {
        lines.push({ at: Date.now(), line });
        pid = p;
      },
    });
    const when = async (pred: (l: Record<string, unknown>) => boolean, ms: number) => {
      for (const end = Date.now() + ms; Date.now() < end; await delay(50)) {
        const hit = lines.find((l) => pred(l.line));
        if (hit) return hit.at;
      }
      throw new Error(
        `the daemon did not log that within ${ms / 1000}s:\n${lines.map((l) => JSON.stringify(l.line)).join('\n')}`,
      );
    };
    try {
      const started = await when((l) => l.msg === 'mailcerts started', 20_000);
      const passDone = await when((l) => l.msg === 'waiting for the next pass', 30_000);
      const hookAt = await when(() => hookCalls.length === 1, 20_000).then(() => hookCalls[0]!.at);
      expect(hookCalls[0]!.body).toMatchObject({ event: 'problem', problem: 'renewal:failing.example.test:ec-256' });
      const sent = await when((l) => l.msg === 'alert sent', 20_000);
      // The pass issued and published the second certificate, and ended before the webhook answered.
      const published = lines.find((l) => l.line.cert === 'renewed.example.test' && l.line.step === 'publish');
      expect(published, 'the second certificate was published in the first pass').toBeDefined();
      expect(published!.at).toBeLessThan(passDone + 1);
      expect(passDone).toBeLessThan(hookAt + 12_000);
      expect(sent - hookAt).toBeGreaterThanOrEqual(11_900);
      // The next pass (RENEW_CHECK_INTERVAL 10 s) ran while the webhook was still answering.
      const secondPass = lines.filter((l) => l.line.msg === 'waiting for the next pass')[1]?.at;
      expect(secondPass).toBeDefined();
      expect(secondPass!).toBeLessThan(hookAt + 12_000);
      console.info(
        `pass with a 12 s webhook: ${((passDone - started) / 1000).toFixed(2)} s; the next pass ended ${((secondPass! - passDone) / 1000).toFixed(2)} s later; the webhook answered ${((sent - hookAt) / 1000).toFixed(2)} s after its request`,
      );
    } finally {
      process.kill(pid, 'SIGTERM');
      await daemon;
    }
  });
});
