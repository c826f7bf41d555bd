import { describe, expect, it } from 'vitest';
import {
  signMessage,
  TSIG_ALGORITHMS,
  type TsigAlgorithm,
  type TsigKey,
  verifyAnswer,
} from '../../src/dns/providers/rfc2136/tsig.js';
import { CLASS, encodeName, header, recordsOf, TYPE, u16 } from '../../src/dns/providers/rfc2136/wire.js';

/**
 * TSIG as mailcerts signs and checks it. RFC 8945 gives no test vectors: the known answers come
 * from BIND itself in test/integration/rfc2136.test.ts (dig's signed query verifies here, and
 * named accepts what is signed here). These tests pin the rules around the MAC.
 */
const key = (algorithm: TsigAlgorithm = 'hmac-sha256'): TsigKey => ({
  name: 'mailcerts-key',
  algorithm,
  secret: Buffer.from('c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0', 'base64'),
});
const query = (id = 0x1234) =>
  Buffer.concat([
    header(id, 0, [1, 0, 0, 0]),
    encodeName('_acme-challenge.mail.example.test'),
    u16(TYPE.TXT),
    u16(CLASS.IN),
  ]);

describe('TSIG signatures (RFC 8945)', () => {
  it('signs with every algorithm BIND offers, and the signed message checks out with the same key', () => {
    for (const algorithm of Object.keys(TSIG_ALGORITHMS) as TsigAlgorithm[]) {
      const { signed, mac } = signMessage(query(), key(algorithm));
      const { counts, records } = recordsOf(signed);
      expect(counts[3], algorithm).toBe(1);
      expect(records.at(-1)).toMatchObject({ type: TYPE.TSIG, klass: CLASS.ANY, ttl: 0, name: 'mailcerts-key' });
      expect(mac.length, algorithm).toBe(
        { md5: 16, sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 }[TSIG_ALGORITHMS[algorithm].hash],
      );
      expect(verifyAnswer(signed, key(algorithm), undefined), algorithm).toEqual({ ok: true });
    }
  });

  it("an answer must sign the request's MAC too: the same bytes under another request MAC fail", () => {
    const request = signMessage(query(), key());
    const answer = signMessage(query(), key()); // stands in for a server's answer, signed without the request MAC
    expect(verifyAnswer(answer.signed, key(), request.mac)).toMatchObject({
      ok: false,
      reason: "the answer's signature does not match the key",
    });
  });

  it('refuses a changed byte, another secret, another key name, an unsigned answer and an old signature', () => {
    const { signed } = signMessage(query(), key());
    const flipped = Buffer.from(signed);
    flipped[20]! ^= 1;
    expect(verifyAnswer(flipped, key(), undefined)).toMatchObject({
      ok: false,
      reason: "the answer's signature does not match the key",
    });
    expect(verifyAnswer(signed, { ...key(), secret: Buffer.from('other') }, undefined)).toMatchObject({ ok: false });
    expect(verifyAnswer(signed, { ...key(), name: 'another-key' }, undefined)).toMatchObject({
      ok: false,
      reason: 'the answer is signed with another key (mailcerts-key)',
    });
    expect(verifyAnswer(query(), key(), undefined)).toMatchObject({ ok: false, reason: 'the answer is not signed' });
    const old = signMessage(query(), key(), Date.now() - 301_000).signed;
    expect(verifyAnswer(old, key(), undefined)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/outside the 300 s allowed$/),
    });
    expect(verifyAnswer(Buffer.from([1, 2, 3]), key(), undefined)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^the answer cannot be read/),
    });
  });

  it("reads a server's TSIG error (BADSIG, BADKEY, BADTIME) and says what to change", () => {
    for (const [error, text] of [
      [16, /^BADSIG: .*RFC2136_TSIG_SECRET/],
      [17, /^BADKEY: .*RFC2136_TSIG_KEY/],
      [18, /^BADTIME: .*clocks/],
    ] as const) {
      const { signed } = signMessage(query(), key());
      // The error field sits 4 bytes before the end (error, other length): set it as a server would.
      signed.writeUInt16BE(error, signed.length - 4);
      expect(verifyAnswer(signed, key(), undefined)).toMatchObject({
        ok: false,
        error,
        reason: expect.stringMatching(text),
      });
    }
  });
});

describe('the weak TSIG algorithms', () => {
  it('hmac-md5 and hmac-sha1 still work, with a warning that says what RFC 8945 §6 says and what to use; the others do not warn', async () => {
    const { rfc2136 } = await import('../../src/dns/providers/rfc2136/index.js');
    const { captureLog } = await import('../helpers/fakes.js');
    for (const [algorithm, says] of [
      ['hmac-md5', 'hmac-md5 MUST NOT be used'],
      ['hmac-sha1', 'hmac-sha1 is NOT RECOMMENDED'],
      ['hmac-sha256', undefined],
      ['hmac-sha512', undefined],
    ] as const) {
      const { log, lines } = captureLog();
      await rfc2136.create(
        { server: { host: '127.0.0.1', port: 53 }, keyName: 'k', algorithm, secret: Buffer.from('secret') },
        log,
      );
      const warned = lines.filter((l) => l.level === 'warn').map((l) => l.msg);
      expect(warned, algorithm).toEqual(
        says
          ? [
              `RFC2136_TSIG_ALGORITHM=${algorithm}: RFC 8945 §6 says ${says}; make a new key with tsig-keygen -a hmac-sha256 and set RFC2136_TSIG_ALGORITHM=hmac-sha256`,
            ]
          : [],
      );
    }
  });
});
