import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { sendWebhook } from '../../src/alerts/deliver.js';
import { currentProblems } from '../../src/alerts/problems.js';
import type { StatusRow } from '../../src/report/status.js';

const now = new Date('2026-12-03T12:00:00Z');
const row = (over: Partial<StatusRow> = {}): StatusRow => ({
  name: 'mail', domains: ['mail.example.com'], keyType: 'ec-256', source: 'acme', serial: 'AB', notAfter: '2027-02-01T00:00:00.000Z',
  nextRenewal: '2026-12-04T00:00:00.000Z', nextReason: 'backing off', deployed: true, failures: 0, containers: {}, ...over,
});
const opts = { afterMs: 24 * 3600_000, expiryMs: 14 * 86_400_000 };

describe('what is worth an alert', () => {
  it('a renewal failing for longer than ALERT_AFTER, an expiry within ALERT_EXPIRY, a container serving the wrong certificate, DANE out of step', () => {
    expect(currentProblems([row({ failures: 2, failingSince: '2026-12-03T00:00:00.000Z', lastError: 'the CA said no' })], opts, now)).toEqual([]);
    const rows = [row({
      failures: 3, failingSince: '2026-12-02T11:00:00.000Z', lastError: 'the CA said no', notAfter: '2026-12-10T00:00:00.000Z',
      dane: { inStep: false, detail: 'the served key 3 1 1 ab is missing', checkedAt: '2026-12-03T11:00:00.000Z', summary: '' },
      containers: { postfix: { at: '2026-12-03T11:30:00.000Z', reloaded: true, serves: false, error: 'serves serial CD' }, dovecot: { at: '2026-12-03T11:30:00.000Z', reloaded: true, serves: true } },
    })];
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
    const m = { kind: 'problem' as const, key: 'renewal:mail:ec-256', subject: '[mailcerts] renewal of mail failing', text: 'What is wrong: …' };
    for (const format of ['json', 'ntfy', 'slack'] as const) await sendWebhook({ url, format }, m);
    server.close();
    expect(JSON.parse(got[0]!.body)).toEqual({ event: 'problem', problem: 'renewal:mail:ec-256', subject: '[mailcerts] renewal of mail failing', text: 'What is wrong: …' });
    expect(got[1]).toMatchObject({ body: 'What is wrong: …', headers: { title: '[mailcerts] renewal of mail failing', tags: 'warning', priority: 'high' } });
    expect(JSON.parse(got[2]!.body)).toEqual({ text: '*[mailcerts] renewal of mail failing*\nWhat is wrong: …' });
    await expect(sendWebhook({ url: 'http://127.0.0.1:9/x', format: 'json' }, m)).rejects.toThrow();
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
    const config = { stateDir, alerts: { webhook: { url: 'http://127.0.0.1:9/hook', format: 'json' as const }, afterMs: 1000, expiryMs: 86_400_000 } } as unknown as import('../../src/config/schema.js').Config;
    const failing = [row({ failures: 1, failingSince: '2026-12-01T00:00:00.000Z', lastError: 'no' })];
    const first = await notify(config, failing, captureLog().log, now);
    expect(first.undelivered).toBe(1);
    const state = () => JSON.parse(readFileSync(join(stateDir, 'alerts.json'), 'utf8')) as { open: Record<string, unknown>; outbox: { message: { kind: string } }[] };
    expect(state().outbox.map((o) => o.message.kind)).toEqual(['problem']);
    const fixed = await notify(config, [row()], captureLog().log, new Date(now.getTime() + 1000));
    expect(fixed.undelivered).toBe(0);
    expect(state()).toEqual({ open: {}, outbox: [] });
    await notify(config, failing, captureLog().log, now);
    const noWebhook = { ...config, alerts: { ...config.alerts, webhook: undefined, email: { to: ['a@b.c'], smtp: 'smtp://127.0.0.1:9', from: 'm@b.c', servername: 'b.c' } } } as typeof config;
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
    await sendWebhook({ url, format: 'slack' }, { kind: 'problem', key: 'k', subject: '[mailcerts] <!here> failing', text });
    server.close();
    expect(JSON.parse(body)).toEqual({ text: '*[mailcerts] &lt;!here&gt; failing*\nlast error: 220 &lt;!channel&gt; see &lt;https://evil.example|your bank&gt; &amp; &lt;@U123&gt;' });
  });
});
