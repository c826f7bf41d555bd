import { describe, expect, it } from 'vitest';
import type { CertificateSpec } from '../../src/config/schema.js';
import { backoffDelay, decide, renewalTime } from '../../src/plan/renewal.js';

const DAY = 86_400_000;
const spec: CertificateSpec = { source: 'acme', name: 'mail', domains: ['mail.example.com', 'smtp.example.com'], keyType: 'ec-256', challenge: 'http-01' };
const t0 = new Date('2026-01-01T00:00:00Z');
const issued = (days: number) => ({ names: ['smtp.example.com', 'mail.example.com'], keyType: 'ec-256', notBefore: t0, notAfter: new Date(t0.getTime() + days * DAY) });
const at = (days: number) => new Date(t0.getTime() + days * DAY);
const ok = { failures: 0 };

describe('renewal plan', () => {
  it('renews 90-day certificates with a third of the lifetime left (day 60), 45-day ones at day 30', () => {
    expect(renewalTime(t0, at(90))).toEqual(at(60));
    expect(renewalTime(t0, at(45))).toEqual(at(30));
    expect(decide({ spec, published: issued(90), state: ok, now: at(59.9) }).action).toBe('keep');
    expect(decide({ spec, published: issued(90), state: ok, now: at(60) })).toMatchObject({ action: 'issue', reason: 'due: 30d left' });
  });

  it('renews certificates shorter than 10 days at half their lifetime', () => {
    expect(renewalTime(t0, at(6))).toEqual(at(3));
    expect(decide({ spec, published: issued(6), state: ok, now: at(2.9) }).action).toBe('keep');
    expect(decide({ spec, published: issued(6), state: ok, now: at(3) }).action).toBe('issue');
  });

  it('renews when the names or the key type changed, or nothing is published', () => {
    expect(decide({ spec: { ...spec, domains: ['mail.example.com', 'imap.example.com'] }, published: issued(90), state: ok, now: at(1) }))
      .toEqual({ action: 'issue', reason: 'names changed (+imap.example.com -smtp.example.com)' });
    expect(decide({ spec: { ...spec, keyType: 'rsa-2048' }, published: issued(90), state: ok, now: at(1) }))
      .toEqual({ action: 'issue', reason: 'key type changed from ec-256 to rsa-2048' });
    expect(decide({ spec, state: ok, now: at(1) })).toEqual({ action: 'issue', reason: 'no certificate published yet' });
    expect(decide({ spec, broken: 'the key does not match', state: ok, now: at(1) }).reason).toMatch(/unusable: the key does not match/);
  });

  it('backs off 1 min, 10 min, 100 min, then daily, and --force overrides the wait', () => {
    expect([1, 2, 3, 4, 9].map(backoffDelay)).toEqual([60_000, 600_000, 6_000_000, DAY, DAY]);
    const state = { failures: 2, nextAttemptAt: at(1.01).toISOString() };
    expect(decide({ spec, state, now: at(1) })).toMatchObject({ action: 'wait', until: at(1.01) });
    expect(decide({ spec, state, now: at(1.02) }).action).toBe('issue');
    expect(decide({ spec, state, now: at(1), force: true })).toEqual({ action: 'issue', reason: 'forced' });
  });
});
