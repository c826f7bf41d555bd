import { describe, expect, it } from 'vitest';
import { decideRollover, tlsaOwners } from '../../src/dane/plan.js';

const DAY = 86_400_000;
const now = new Date('2026-12-03T10:00:00Z');
const base = { now, ttlSeconds: 3600, keyLifetimeMs: 365 * DAY, keySince: new Date(now.getTime() - 10 * DAY), keyTypeChanged: false };

describe('DANE rollover rules', () => {
  it('a young key stays, whatever the records', () => {
    expect(decideRollover({ ...base, seenSince: new Date(now.getTime() - 30 * DAY) })).toMatchObject({ roll: false, due: false, reason: expect.stringMatching(/^key in use since .*; rollover at 2027-11-23T10:00:00.000Z$/) });
  });

  it('an old key, a key type change or a request makes it due; it rolls only after the next record has been seen for 2 x TTL', () => {
    for (const why of [{ keySince: new Date(now.getTime() - 366 * DAY) }, { keyTypeChanged: true }, { rolloverRequestedAt: now }]) {
      expect(decideRollover({ ...base, ...why })).toMatchObject({ roll: false, due: true, reason: expect.stringMatching(/not yet answered by every authoritative server; the current key stays$/) });
      const early = decideRollover({ ...base, ...why, seenSince: new Date(now.getTime() - 2 * 3600_000 + 1000) });
      expect(early).toMatchObject({ roll: false, due: true, readyAt: new Date(now.getTime() + 1000) });
      expect(decideRollover({ ...base, ...why, seenSince: new Date(now.getTime() - 2 * 3600_000) })).toMatchObject({ roll: true, due: true });
    }
  });

  it('names every record: each DANE name on each port', () => {
    expect(tlsaOwners(['mx.example.com', 'mx2.example.com'], [25, 465])).toEqual(['_25._tcp.mx.example.com', '_465._tcp.mx.example.com', '_25._tcp.mx2.example.com', '_465._tcp.mx2.example.com']);
  });
});
