import { describe, expect, it } from 'vitest';
import { chooseKey, decideRollover, tlsaOwners } from '../../src/dane/plan.js';

const DAY = 86_400_000;
const now = new Date('2026-12-03T10:00:00Z');
const base = {
  now,
  ttlSeconds: 3600,
  keyLifetimeMs: 365 * DAY,
  keySince: new Date(now.getTime() - 10 * DAY),
  keyTypeChanged: false,
};

describe('DANE rollover rules', () => {
  it('a young key stays, whatever the records', () => {
    expect(decideRollover({ ...base, seenSince: new Date(now.getTime() - 30 * DAY) })).toMatchObject({
      roll: false,
      due: false,
      reason: expect.stringMatching(/^key in use since .*; rollover at 2027-11-23T10:00:00.000Z$/),
    });
  });

  it('an old key, a key type change or a request makes it due; it rolls only after the next record has been seen for 2 x TTL', () => {
    for (const why of [
      { keySince: new Date(now.getTime() - 366 * DAY) },
      { keyTypeChanged: true },
      { rolloverRequestedAt: now },
    ]) {
      expect(decideRollover({ ...base, ...why })).toMatchObject({
        roll: false,
        due: true,
        reason: expect.stringMatching(
          /not yet answered by every authoritative server \(and validating resolver, with DANE_RESOLVER\); the current key stays$/,
        ),
      });
      const early = decideRollover({ ...base, ...why, seenSince: new Date(now.getTime() - 2 * 3600_000 + 1000) });
      expect(early).toMatchObject({ roll: false, due: true, readyAt: new Date(now.getTime() + 1000) });
      expect(decideRollover({ ...base, ...why, seenSince: new Date(now.getTime() - 2 * 3600_000) })).toMatchObject({
        roll: true,
        due: true,
      });
    }
  });

  it('names every record: each DANE name on each port', () => {
    expect(tlsaOwners(['mx.example.com', 'mx2.example.com'], [25, 465])).toEqual([
      '_25._tcp.mx.example.com',
      '_465._tcp.mx.example.com',
      '_25._tcp.mx2.example.com',
      '_465._tcp.mx2.example.com',
    ]);
  });

  describe('which key an order may use, from what DNS answers', () => {
    const facts = {
      keyType: 'ec-256',
      hasCurrent: true,
      currentIsMine: false,
      currentVouched: false,
      noRecords: false,
      cannotWait: false,
      now,
    };
    it('the published key is current when mailcerts made it, or when every server answers its record', () => {
      expect(chooseKey({ ...facts, currentIsMine: true })).toEqual({ use: 'current' });
      expect(chooseKey({ ...facts, currentVouched: true })).toEqual({ use: 'current' });
    });
    it('a key mailcerts did not make and DNS does not name: a fresh key only while no TLSA record exists at all', () => {
      expect(chooseKey({ ...facts, noRecords: true })).toMatchObject({
        use: 'fresh',
        reason: expect.stringMatching(
          /^DANE: the ec-256 key in CERTS_DIR is not one mailcerts made or deployed and no TLSA record exists/,
        ),
      });
      expect(chooseKey({ ...facts, hasCurrent: false, noRecords: true })).toMatchObject({ use: 'fresh' });
    });
    it('with TLSA records that do not name it: the next key, once its record has been seen for 2 x TTL; until then nothing', () => {
      expect(chooseKey(facts)).toMatchObject({
        use: 'wait',
        readyAt: undefined,
        reason: expect.stringMatching(/not yet answered by every authoritative server\)$/),
      });
      const readyAt = new Date(now.getTime() + 1000);
      expect(chooseKey({ ...facts, nextReadyAt: readyAt })).toMatchObject({
        use: 'wait',
        readyAt,
        reason: expect.stringMatching(/: not before 2026-12-03T10:00:01.000Z$/),
      });
      expect(chooseKey({ ...facts, nextReadyAt: now })).toMatchObject({ use: 'next' });
      // The same for a key type that has no certificate yet (dual certificates).
      expect(chooseKey({ ...facts, hasCurrent: false, nextReadyAt: readyAt })).toMatchObject({
        use: 'wait',
        reason: expect.stringMatching(
          /^DANE: the ec-256 key's TLSA record must be answered everywhere for twice the TTL before its first certificate: not before /,
        ),
      });
    });
    it('waiting must not cost the mail server its working certificate: a due certificate, or none at all, takes the announced next key early', () => {
      const readyAt = new Date(now.getTime() + 1000);
      expect(chooseKey({ ...facts, nextReadyAt: readyAt, cannotWait: true })).toMatchObject({
        use: 'next',
        early: true,
        reason: expect.stringMatching(/, but the certificate is due: ordering with the announced next key now/),
      });
      expect(chooseKey({ ...facts, hasCurrent: false, cannotWait: true })).toMatchObject({
        use: 'next',
        early: true,
        reason: expect.stringMatching(/, but no key type of this certificate has one:/),
      });
      // Never for a key that is current: renewals keep it.
      expect(chooseKey({ ...facts, currentIsMine: true, cannotWait: true })).toEqual({ use: 'current' });
    });
  });
});
