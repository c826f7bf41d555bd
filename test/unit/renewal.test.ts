import { describe, expect, it } from 'vitest';
import type { VariantSpec } from '../../src/config/schema.js';
import { backoffDelay, decide, renewalTime } from '../../src/plan/renewal.js';

const DAY = 86_400_000;
const spec: VariantSpec = {
  source: 'acme',
  name: 'mail',
  domains: ['mail.example.com', 'smtp.example.com'],
  keyTypes: ['ec-256'],
  keyType: 'ec-256',
  challenge: 'http-01',
};
const t0 = new Date('2026-01-01T00:00:00Z');
const issued = (days: number) => ({
  names: ['smtp.example.com', 'mail.example.com'],
  keyType: 'ec-256',
  notBefore: t0,
  notAfter: new Date(t0.getTime() + days * DAY),
});
const at = (days: number) => new Date(t0.getTime() + days * DAY);
const ok = { failures: 0 };

describe('renewal plan', () => {
  it('renews 90-day certificates with a third of the lifetime left (day 60), 45-day ones at day 30', () => {
    expect(renewalTime(t0, at(90))).toEqual(at(60));
    expect(renewalTime(t0, at(45))).toEqual(at(30));
    expect(decide({ spec, published: issued(90), state: ok, now: at(59.9) }).action).toBe('keep');
    expect(decide({ spec, published: issued(90), state: ok, now: at(60) })).toMatchObject({
      action: 'issue',
      reason: 'due: 30d left',
    });
  });

  it('renews certificates shorter than 10 days at half their lifetime', () => {
    expect(renewalTime(t0, at(6))).toEqual(at(3));
    expect(decide({ spec, published: issued(6), state: ok, now: at(2.9) }).action).toBe('keep');
    expect(decide({ spec, published: issued(6), state: ok, now: at(3) }).action).toBe('issue');
  });

  it('renews when the names or the key type changed, or nothing is published', () => {
    expect(
      decide({
        spec: { ...spec, domains: ['mail.example.com', 'imap.example.com'] },
        published: issued(90),
        state: ok,
        now: at(1),
      }),
    ).toEqual({ action: 'issue', reason: 'names changed (+imap.example.com -smtp.example.com)' });
    expect(decide({ spec: { ...spec, keyType: 'rsa-2048' }, published: issued(90), state: ok, now: at(1) })).toEqual({
      action: 'issue',
      reason: 'key type changed from ec-256 to rsa-2048',
    });
    expect(decide({ spec, state: ok, now: at(1) })).toEqual({
      action: 'issue',
      reason: 'no certificate published yet',
    });
    expect(decide({ spec, broken: 'the key does not match', state: ok, now: at(1) }).reason).toMatch(
      /unusable: the key does not match/,
    );
  });

  it('backs off 1 min, 10 min, 100 min, then daily, and --force overrides the wait', () => {
    expect([1, 2, 3, 4, 9].map(backoffDelay)).toEqual([60_000, 600_000, 6_000_000, DAY, DAY]);
    const state = { failures: 2, nextAttemptAt: at(1.01).toISOString() };
    expect(decide({ spec, state, now: at(1) })).toMatchObject({ action: 'wait', until: at(1.01) });
    expect(decide({ spec, state, now: at(1.02) }).action).toBe('issue');
    expect(decide({ spec, state, now: at(1), force: true })).toEqual({ action: 'issue', reason: 'forced' });
  });
});

describe('renewal plan with ARI', () => {
  const ari = (start: number, end: number, selected: number) => ({
    certId: 'x.y',
    start: at(start).toISOString(),
    end: at(end).toISOString(),
    selected: at(selected).toISOString(),
    fetchedAt: at(0).toISOString(),
    nextCheckAt: at(1).toISOString(),
  });

  it('renews at the moment picked in the CA window, not by the lifetime rule', () => {
    expect(decide({ spec, published: issued(90), state: ok, now: at(40), ari: ari(40, 42, 41) })).toEqual({
      action: 'keep',
      renewAt: at(41),
      reason: 'ARI window',
    });
    expect(decide({ spec, published: issued(90), state: ok, now: at(41), ari: ari(40, 42, 41) }).action).toBe('issue');
    // A window later than the lifetime rule's day 60 is honoured too (the CA knows best)...
    expect(decide({ spec, published: issued(90), state: ok, now: at(65), ari: ari(70, 72, 71) }).action).toBe('keep');
  });

  it('...but the emergency rule renews with under a tenth of the lifetime left, whatever the window', () => {
    expect(decide({ spec, published: issued(90), state: ok, now: at(81.1), ari: ari(85, 86, 85.5) })).toMatchObject({
      action: 'issue',
      reason: expect.stringMatching(/^emergency: only/),
    });
    expect(decide({ spec, published: issued(6), state: ok, now: at(5.5), ari: ari(5.8, 5.9, 5.85) }).action).toBe(
      'issue',
    );
  });

  it('picks a random moment inside the window once, and again only when the window moves', async () => {
    const { pickInWindow } = await import('../../src/plan/ari.js');
    const w = { start: at(10), end: at(12) };
    const first = pickInWindow(w, undefined, () => 0.5);
    expect(first).toEqual({ selected: at(11), moved: false });
    const kept = { ...ari(10, 12, 11) };
    expect(pickInWindow(w, kept, () => 0.9)).toEqual({ selected: at(11), moved: false });
    const revoked = pickInWindow({ start: at(1), end: at(1.5) }, kept, () => 0);
    expect(revoked).toEqual({ selected: at(1), moved: true });
  });

  it("a rateLimited answer's Retry-After moves the next attempt beyond the backoff step, never before it", async () => {
    const { nextAttemptAt } = await import('../../src/plan/renewal.js');
    expect(nextAttemptAt(1, at(0))).toEqual(new Date(at(0).getTime() + 60_000));
    expect(nextAttemptAt(1, at(0), 3 * 3_600_000)).toEqual(new Date(at(0).getTime() + 3 * 3_600_000));
    expect(nextAttemptAt(4, at(0), 5_000)).toEqual(at(1)); // daily step wins over a short Retry-After
  });

  it('backoff survives a restart: the state on disk keeps the wait', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { readCertState, writeCertState } = await import('../../src/state/cert-state.js');
    const dir = mkdtempSync(join(tmpdir(), 'mailcerts-state-'));
    await writeCertState(dir, 'mail', {
      failures: 3,
      failedStep: 'obtain',
      lastError: 'rateLimited',
      nextAttemptAt: at(1 + backoffDelay(3) / DAY).toISOString(),
    });
    const reloaded = await readCertState(dir, 'mail'); // a new process
    expect(decide({ spec, published: issued(90), state: reloaded, now: at(61) }).action).toBe('issue'); // wait is over long ago
    expect(decide({ spec, published: issued(90), state: reloaded, now: at(1.05) })).toMatchObject({
      action: 'wait',
      until: at(1 + 6_000_000 / DAY),
    });
  });
});

describe('stored times are not trusted', () => {
  it('an expired certificate never waits more than an hour on a stored retry time, however far it is', () => {
    const state = { failures: 9, failedAt: at(90).toISOString(), nextAttemptAt: at(490).toISOString() }; // 400 days out
    const d = decide({ spec, published: issued(90), state, now: at(90.01) });
    expect(d).toMatchObject({ action: 'wait', until: new Date(at(90).getTime() + 3_600_000) });
    expect(decide({ spec, published: issued(90), state, now: at(90.05) }).action).toBe('issue');
    // In the emergency tenth of its lifetime too.
    expect(
      decide({ spec, published: issued(90), state: { ...state, failedAt: at(82).toISOString() }, now: at(82.1) })
        .action,
    ).toBe('issue');
  });

  it('a certificate that is not urgent waits at most a day from the failure; a failure stamped in the future counts as now', () => {
    expect(
      decide({
        spec,
        published: issued(90),
        state: { failures: 2, failedAt: at(61).toISOString(), nextAttemptAt: at(500).toISOString() },
        now: at(61.5),
      }),
    ).toMatchObject({ action: 'wait', until: at(62) });
    const ahead = { failures: 1, failedAt: at(300).toISOString(), nextAttemptAt: at(300.01).toISOString() }; // a clock that ran ahead
    expect(decide({ spec, published: issued(90), state: ahead, now: at(61) })).toMatchObject({
      action: 'wait',
      until: at(62),
    });
  });

  it('a CA Retry-After is capped at a day', async () => {
    const { nextAttemptAt } = await import('../../src/plan/renewal.js');
    expect(nextAttemptAt(1, at(0), 30 * DAY)).toEqual(at(1));
  });

  it('a stored ARI pick beyond the window is not believed: the window end is', () => {
    const ari = {
      certId: 'x.y',
      start: at(40).toISOString(),
      end: at(42).toISOString(),
      selected: at(400).toISOString(),
      fetchedAt: at(0).toISOString(),
      nextCheckAt: at(1).toISOString(),
    };
    expect(decide({ spec, published: issued(90), state: ok, now: at(41), ari })).toEqual({
      action: 'keep',
      renewAt: at(42),
      reason: 'ARI window',
    });
    expect(decide({ spec, published: issued(90), state: ok, now: at(42), ari }).action).toBe('issue');
  });

  it('failed validations stamped by a clock that ran ahead do not block orders', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { validationPause } = await import('../../src/state/identifiers.js');
    const dir = mkdtempSync(join(tmpdir(), 'mailcerts-ids-'));
    const future = [1, 2, 3].map((h) => new Date(at(10).getTime() + h * 3_600_000).toISOString());
    writeFileSync(join(dir, 'identifiers.json'), JSON.stringify({ 'mail.example.com': future }));
    expect(await validationPause(dir, ['mail.example.com'], at(10))).toBeUndefined();
    const recent = [1, 2, 3].map((m) => new Date(at(10).getTime() - m * 60_000).toISOString());
    writeFileSync(join(dir, 'identifiers.json'), JSON.stringify({ 'mail.example.com': recent }));
    expect(await validationPause(dir, ['mail.example.com'], at(10))).toMatchObject({
      count: 3,
      until: new Date(at(10).getTime() - 3 * 60_000 + 3_600_000),
    });
  });
});
