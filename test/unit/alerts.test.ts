import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { sendWebhook } from '../../src/alerts/deliver.js';
import { notify } from '../../src/alerts/notify.js';
import { currentProblems } from '../../src/alerts/problems.js';
import { spkiOf } from '../../src/pki/identity.js';
import type { StatusRow } from '../../src/report/status.js';
import { captureLog, engineWith, FakeDeployer, FakeIssuer, testConfig } from '../helpers/fakes.js';

const now = new Date('2026-12-03T12:00:00Z');
const row = (over: Partial<StatusRow> = {}): StatusRow => ({
  name: 'mail',
  domains: ['mail.example.com'],
  keyType: 'ec-256',
  source: 'acme',
  serial: 'AB',
  notAfter: '2027-02-01T00:00:00.000Z',
  nextRenewal: '2026-12-04T00:00:00.000Z',
  nextReason: 'backing off',
  deployed: true,
  failures: 0,
  containers: {},
  ...over,
});
const opts = { afterMs: 24 * 3600_000, expiryMs: 14 * 86_400_000 };

describe('what is worth an alert', () => {
  it('a renewal failing for longer than ALERT_AFTER, an expiry within ALERT_EXPIRY, a container serving the wrong certificate, DANE out of step', () => {
    expect(
      currentProblems(
        [row({ failures: 2, failingSince: '2026-12-03T00:00:00.000Z', lastError: 'the CA said no' })],
        opts,
        now,
      ),
    ).toEqual([]);
    const rows = [
      row({
        failures: 3,
        failingSince: '2026-12-02T11:00:00.000Z',
        lastError: 'the CA said no',
        notAfter: '2026-12-10T00:00:00.000Z',
        dane: {
          inStep: false,
          detail: 'the served key 3 1 1 ab is missing',
          checkedAt: '2026-12-03T11:00:00.000Z',
          summary: '',
        },
        containers: {
          postfix: { at: '2026-12-03T11:30:00.000Z', reloaded: true, serves: false, error: 'serves serial CD' },
          dovecot: { at: '2026-12-03T11:30:00.000Z', reloaded: true, serves: true },
        },
      }),
    ];
    expect(currentProblems(rows, opts, now).map((p) => `${p.key} | ${p.summary} | ${p.since}`)).toEqual([
      'renewal:mail:ec-256 | renewal of mail failing | 2026-12-02T11:00:00.000Z',
      'expiry:mail:ec-256 | certificate mail expires in 6.5d | 2026-11-26T00:00:00.000Z',
      'dane:mail:ec-256 | DANE records of mail out of step | 2026-12-03T11:00:00.000Z',
      'container:postfix | container postfix serves the wrong certificate | 2026-12-03T11:30:00.000Z',
    ]);
  });
});

describe('webhook bodies', () => {
  it('json (default), ntfy (plain text with a title) and Slack-compatible ({text})', async () => {
    const got: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        got.push({ headers: req.headers, body });
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
    const m = {
      kind: 'problem' as const,
      key: 'renewal:mail:ec-256',
      subject: '[mailcerts] renewal of mail failing',
      text: 'What is wrong: …',
    };
    for (const format of ['json', 'ntfy', 'slack'] as const)
      await sendWebhook({ url, format }, m, { signal: new AbortController().signal });
    server.close();
    expect(JSON.parse(got[0]!.body)).toEqual({
      event: 'problem',
      problem: 'renewal:mail:ec-256',
      subject: '[mailcerts] renewal of mail failing',
      text: 'What is wrong: …',
    });
    expect(got[1]).toMatchObject({
      body: 'What is wrong: …',
      headers: { title: '[mailcerts] renewal of mail failing', tags: 'warning', priority: 'high' },
    });
    expect(JSON.parse(got[2]!.body)).toEqual({ text: '*[mailcerts] renewal of mail failing*\nWhat is wrong: …' });
    await expect(
      sendWebhook({ url: 'http://127.0.0.1:9/x', format: 'json' }, m, { signal: new AbortController().signal }),
    ).rejects.toThrow();
  });
});

describe('the alert outbox', () => {
  it('a problem that ends before it could be told is dropped with its "resolved"; a channel no longer configured is emptied', async () => {
    const { mkdtempSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { notify } = await import('../../src/alerts/notify.js');
    const { captureLog } = await import('../helpers/fakes.js');
    const stateDir = mkdtempSync(join(tmpdir(), 'mailcerts-alerts-'));
    const config = {
      stateDir,
      alerts: {
        webhook: { url: 'http://127.0.0.1:9/hook', format: 'json' as const },
        afterMs: 1000,
        expiryMs: 86_400_000,
      },
    } as unknown as import('../../src/config/schema.js').Config;
    const failing = [row({ failures: 1, failingSince: '2026-12-01T00:00:00.000Z', lastError: 'no' })];
    const first = await notify(config, failing, captureLog().log, now);
    expect(first.undelivered).toBe(1);
    const state = () =>
      JSON.parse(readFileSync(join(stateDir, 'alerts.json'), 'utf8')) as {
        open: Record<string, unknown>;
        outbox: { message: { kind: string } }[];
      };
    expect(state().outbox.map((o) => o.message.kind)).toEqual(['problem']);
    const fixed = await notify(config, [row()], captureLog().log, new Date(now.getTime() + 1000));
    expect(fixed.undelivered).toBe(0);
    expect(state()).toEqual({ open: {}, outbox: [] });
    await notify(config, failing, captureLog().log, now);
    const noWebhook = {
      ...config,
      alerts: {
        ...config.alerts,
        webhook: undefined,
        email: { to: ['a@b.c'], smtp: 'smtp://127.0.0.1:9', from: 'm@b.c', servername: 'b.c' },
      },
    } as typeof config;
    await notify(noWebhook, failing, captureLog().log, now);
    expect(state().outbox.every((o) => (o as unknown as { channel: string }).channel === 'email')).toBe(true);
  });
});

describe('Slack bodies', () => {
  it('server and container text arrives escaped: no <!channel>, no disguised link, & as &amp;', async () => {
    let body = '';
    const server = createServer((req, res) => {
      req.on('data', (d) => (body += d));
      req.on('end', () => res.end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
    const text = 'last error: 220 <!channel> see <https://evil.example|your bank> & <@U123>';
    await sendWebhook(
      { url, format: 'slack' },
      { kind: 'problem', key: 'k', subject: '[mailcerts] <!here> failing', text },
      { signal: new AbortController().signal },
    );
    server.close();
    expect(JSON.parse(body)).toEqual({
      text: '*[mailcerts] &lt;!here&gt; failing*\nlast error: 220 &lt;!channel&gt; see &lt;https://evil.example|your bank&gt; &amp; &lt;@U123&gt;',
    });
  });
});

/** The outbox state file of a test's STATE_DIR. */
const outbox = (stateDir: string) =>
  (
    JSON.parse(readFileSync(join(stateDir, 'alerts.json'), 'utf8')) as {
      outbox: { channel: string; lastError?: string; nextTryAt: string }[];
    }
  ).outbox;

const BOUND_MS = 5_000;

describe('the deadline of one send', () => {
  it('a trickling SMTP server (one EHLO line every 50 ms, for ever): its connection is closed when the deadline fires, no socket stays open', async () => {
    const open = new Set<Socket>();
    let seen = 0;
    let trickled = 0;
    const smtp = createNetServer((s) => {
      seen++;
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => undefined);
      s.write('220 trickle.test ESMTP\r\n');
      s.once('data', () => {
        const t = setInterval(() => s.write(`250-trickle ${trickled++}\r\n`), 50);
        s.on('close', () => clearInterval(t));
      });
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
    const port = (smtp.address() as { port: number }).port;
    const { config } = testConfig([{ name: 'mail', domains: ['mail.example.test'] }], {
      ALERT_EMAIL: 'admin@example.test',
      ALERT_SMTP: `smtp://127.0.0.1:${port}`,
      ALERT_AFTER: '1s',
    });
    const failing = [row({ failures: 1, failingSince: '2026-12-01T00:00:00.000Z', lastError: 'no' })];
    try {
      const started = Date.now();
      // Bounded here, so that a send that is not torn down fails this test instead of timing it out.
      await Promise.race([notify(config, failing, captureLog().log, now, { deadlineMs: 400 }), delay(BOUND_MS)]);
      for (let i = 0; i < 20 && open.size > 0; i++) await delay(25);
      expect(seen).toBe(1);
      // It had begun its endless EHLO answer (and never stops by itself): the deadline ended the send.
      expect(trickled).toBeGreaterThan(0);
      expect(open.size, 'connections the server still has open after the deadline').toBe(0);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(outbox(config.stateDir)[0]).toMatchObject({ channel: 'email', lastError: 'no answer within 0.4 s' });
    } finally {
      for (const s of open) s.destroy();
      smtp.close();
    }
  });
});

describe('alerts beside the passes', () => {
  it('a webhook that answers after 12 s holds neither the pass nor the next one; the round still delivers it', async () => {
    let answer: (() => void) | undefined;
    const requests: string[] = [];
    const hook = createServer((req, res) => {
      req.resume();
      requests.push(req.url ?? '');
      const t = setTimeout(() => res.end('ok'), 12_000);
      answer = () => {
        clearTimeout(t);
        res.end('ok');
      };
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    // A fresh certificate (30 days) expires within ALERT_EXPIRY=60d: the first pass has an alert to send.
    const { config } = testConfig([{ name: 'mail', domains: ['mail.example.test'] }], {
      ALERT_WEBHOOK: `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`,
      ALERT_EXPIRY: '60d',
    });
    const { log, lines } = captureLog();
    const engine = engineWith(config, new FakeIssuer(), new FakeDeployer([]), log);
    const within = <T>(p: Promise<T>) => Promise.race([p, delay(3_000).then(() => 'held' as const)]);
    try {
      const first = await within(engine.pass());
      expect(first, 'the first pass waited for the webhook').not.toBe('held');
      for (let i = 0; i < 100 && requests.length === 0; i++) await delay(20);
      const second = await within(engine.pass());
      expect(second, 'the next pass waited for the webhook').not.toBe('held');
      expect(requests).toHaveLength(1); // sent, not answered yet, while both passes ran
      expect(lines.filter((l) => l.msg === 'alert sent')).toHaveLength(0);
      answer!();
      if (first === 'held' || second === 'held') return;
      expect(await first.alerted).toBeUndefined(); // delivered: nothing to try again
      await engine.idle();
      expect(lines.filter((l) => l.msg === 'alert sent').map((l) => l.channel)).toEqual(['webhook']);
    } finally {
      answer?.();
      hook.close();
    }
  });

  it("a channel that failed is tried again at its first message's backoff, not at once for the messages waiting behind it", async () => {
    const { config } = testConfig([{ name: 'mail', domains: ['mail.example.test'] }], {
      ALERT_WEBHOOK: 'http://127.0.0.1:9/hook',
      ALERT_AFTER: '1s',
    });
    // Two problems at once: the second message waits behind the first, which fails.
    const rows = [
      row({
        failures: 1,
        failingSince: '2026-12-01T00:00:00.000Z',
        lastError: 'no',
        notAfter: '2026-12-04T00:00:00.000Z',
      }),
    ];
    const r = await notify(config, rows, captureLog().log, now);
    expect(r.undelivered).toBe(2);
    expect(outbox(config.stateDir).map((o) => o.nextTryAt)).toEqual([
      new Date(now.getTime() + 60_000).toISOString(),
      now.toISOString(),
    ]);
    expect(r.nextTryAt?.toISOString()).toBe(new Date(now.getTime() + 60_000).toISOString());
  });

  it('the daemon sleeps less when the round, ending during the sleep, has an alert to try again sooner', async () => {
    const { sleepUntil } = await import('../../src/run/daemon.js');
    const started = Date.now();
    const retry = delay(50).then(() => new Date(started + 1_200));
    expect(await sleepUntil(started + 60_000, new AbortController().signal, retry)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_150);
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe("the stack's own Postfix", () => {
  it('is the SMTP server whose certificate name mailcerts publishes: its published leaves are pinned; any other server gets no pin', async () => {
    const { publishedPins } = await import('../../src/alerts/own-server.js');
    const { config, dir } = testConfig([{ name: 'mail', domains: ['mail.example.test'] }], {
      ALERT_EMAIL: 'admin@example.test',
      ALERT_SMTP: 'smtp://postfix:587',
    });
    expect(config.alerts.email?.servername).toBe('mail.example.test');
    expect(await publishedPins(config)).toEqual([]); // nothing published yet
    await engineWith(config, new FakeIssuer(), new FakeDeployer([]), captureLog().log).pass();
    const leaf = new X509Certificate(readFileSync(join(config.certsDir, 'cert.pem')));
    expect(await publishedPins(config)).toEqual([spkiOf(leaf)]);
    const other = testConfig(
      [{ name: 'mail', domains: ['mail.example.test'] }],
      { ALERT_EMAIL: 'admin@example.test', ALERT_SMTP: 'smtp://smtp.provider.test:587' },
      dir,
    ).config;
    expect(await publishedPins(other)).toEqual([]);
  });
});
