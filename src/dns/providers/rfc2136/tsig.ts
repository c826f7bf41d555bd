/**
 * TSIG (RFC 8945): HMAC signatures on DNS messages with a shared secret. No maintained Node
 * package signs TSIG; the scheme is small: the MAC covers the message as sent plus a few fields
 * of the TSIG record, and the answer's MAC also covers the request's MAC.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TsigAlgorithm } from './algorithms.js';
import { encodeName, readName, recordsOf, resourceRecord, TYPE, CLASS, u16, u32 } from './wire.js';

export type { TsigAlgorithm };
export const TSIG_ALGORITHMS: Record<TsigAlgorithm, { wire: string; hash: string }> = {
  'hmac-sha256': { wire: 'hmac-sha256', hash: 'sha256' },
  'hmac-sha384': { wire: 'hmac-sha384', hash: 'sha384' },
  'hmac-sha512': { wire: 'hmac-sha512', hash: 'sha512' },
  'hmac-sha224': { wire: 'hmac-sha224', hash: 'sha224' },
  'hmac-sha1': { wire: 'hmac-sha1', hash: 'sha1' },
  'hmac-md5': { wire: 'hmac-md5.sig-alg.reg.int', hash: 'md5' },
};

export interface TsigKey {
  /** The key's name, as the server knows it (BIND: key "NAME" { … }). */
  name: string;
  algorithm: TsigAlgorithm;
  secret: Buffer;
}

/** RFC 8945 §5.3: the time signed may differ from the receiver's clock by this much. */
export const FUDGE_SECONDS = 300;

/** Error codes a TSIG record carries, and what each means to the user. */
export const TSIG_ERRORS: Record<number, string> = {
  16: "BADSIG: the signature does not match; the secret (RFC2136_TSIG_SECRET) differs from the server's",
  17: 'BADKEY: the server knows no key of this name and algorithm; check RFC2136_TSIG_KEY and RFC2136_TSIG_ALGORITHM',
  18: 'BADTIME: the clocks of this host and the server differ by more than 5 minutes; fix the time (NTP) on both',
  22: 'BADTRUNC: the server refused a truncated MAC',
};

const u48 = (seconds: number) => Buffer.concat([u16(Math.floor(seconds / 2 ** 32) & 0xffff), u32(seconds >>> 0)]);

/** The TSIG variables of RFC 8945 §4.3.3: what the MAC covers besides the message. */
function variables(key: TsigKey, timeSigned: number, fudge: number, error: number, other: Buffer): Buffer {
  return Buffer.concat([
    encodeName(key.name, true),
    u16(CLASS.ANY),
    u32(0),
    encodeName(TSIG_ALGORITHMS[key.algorithm].wire, true),
    u48(timeSigned),
    u16(fudge),
    u16(error),
    u16(other.length),
    other,
  ]);
}

function hmac(key: TsigKey, ...parts: Buffer[]): Buffer {
  const h = createHmac(TSIG_ALGORITHMS[key.algorithm].hash, key.secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Appends a TSIG record to a message (ARCOUNT + 1); returns the signed bytes and the MAC, which the answer's MAC covers. */
export function signMessage(message: Buffer, key: TsigKey, now = Date.now()): { signed: Buffer; mac: Buffer } {
  const timeSigned = Math.floor(now / 1000);
  const mac = hmac(key, message, variables(key, timeSigned, FUDGE_SECONDS, 0, Buffer.alloc(0)));
  const rdata = Buffer.concat([
    encodeName(TSIG_ALGORITHMS[key.algorithm].wire, true),
    u48(timeSigned),
    u16(FUDGE_SECONDS),
    u16(mac.length),
    mac,
    message.subarray(0, 2),
    u16(0),
    u16(0),
  ]);
  const signed = Buffer.concat([message, resourceRecord(key.name.toLowerCase(), TYPE.TSIG, CLASS.ANY, 0, rdata)]);
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { signed, mac };
}

export type TsigVerdict =
  | { ok: true }
  /** The server reported a TSIG error (its answer then carries no MAC to check). */
  | { ok: false; error: number; reason: string }
  /** The answer is not what the key would sign: unsigned, another key, a wrong MAC, an old time. */
  | { ok: false; error?: undefined; reason: string };

/**
 * Checks the TSIG record that must end a signed message (RFC 8945 §5.3): an answer's MAC also
 * covers the request's (`requestMac`); a request's covers no earlier one.
 */
export function verifyAnswer(
  answer: Buffer,
  key: TsigKey,
  requestMac: Buffer | undefined,
  now = Date.now(),
): TsigVerdict {
  let walked: ReturnType<typeof recordsOf>;
  try {
    walked = recordsOf(answer);
  } catch (err) {
    return { ok: false, reason: `the answer cannot be read (${(err as Error).message})` };
  }
  const last = walked.records.at(-1);
  if (!last || last.type !== TYPE.TSIG || walked.counts[3] === 0)
    return { ok: false, reason: 'the answer is not signed' };
  if (last.name.toLowerCase().replace(/\.$/, '') !== key.name.toLowerCase().replace(/\.$/, '')) {
    return { ok: false, reason: `the answer is signed with another key (${last.name})` };
  }
  const r = answer;
  let at = last.rdataStart;
  let alg: { name: string; end: number };
  try {
    alg = readName(r, at);
  } catch (err) {
    return { ok: false, reason: `the answer's TSIG record cannot be read (${(err as Error).message})` };
  }
  at = alg.end;
  if (at + 10 > last.rdataEnd) return { ok: false, reason: "the answer's TSIG record is truncated" };
  const timeSigned = r.readUInt16BE(at) * 2 ** 32 + r.readUInt32BE(at + 2);
  const fudge = r.readUInt16BE(at + 6);
  const macSize = r.readUInt16BE(at + 8);
  at += 10;
  const mac = r.subarray(at, at + macSize);
  at += macSize;
  if (at + 6 > last.rdataEnd) return { ok: false, reason: "the answer's TSIG record is truncated" };
  const originalId = r.readUInt16BE(at);
  const error = r.readUInt16BE(at + 2);
  const otherLen = r.readUInt16BE(at + 4);
  if (at + 6 + otherLen > last.rdataEnd) return { ok: false, reason: "the answer's TSIG record is truncated" };
  const other = r.subarray(at + 6, at + 6 + otherLen);
  if (error !== 0) return { ok: false, error, reason: TSIG_ERRORS[error] ?? `TSIG error ${error}` };
  if (alg.name.toLowerCase() !== TSIG_ALGORITHMS[key.algorithm].wire)
    return { ok: false, reason: `the answer is signed with another algorithm (${alg.name})` };
  // The MAC covers the answer as it was before the TSIG record was added, with its original id.
  const unsigned = Buffer.from(r.subarray(0, last.start));
  unsigned.writeUInt16BE(walked.counts[3] - 1, 10);
  unsigned.writeUInt16BE(originalId, 0);
  const prior = requestMac ? [u16(requestMac.length), requestMac] : [];
  const expected = hmac(key, ...prior, unsigned, variables(key, timeSigned, fudge, error, other));
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected))
    return { ok: false, reason: "the answer's signature does not match the key" };
  if (Math.abs(now / 1000 - timeSigned) > fudge)
    return {
      ok: false,
      reason: `the answer was signed at ${new Date(timeSigned * 1000).toISOString()}, outside the ${fudge} s allowed`,
    };
  return { ok: true };
}
