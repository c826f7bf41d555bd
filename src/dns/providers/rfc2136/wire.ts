/**
 * The few pieces of DNS wire format that RFC 2136 updates and RFC 8945 signatures need byte for
 * byte: dns-packet decodes the answers, but it cannot write class NONE (a deletion), and a TSIG
 * MAC covers the exact bytes sent, so the messages are written here.
 */
import { type TlsaFields, parseTlsa } from '../../provider.js';

export const TYPE = { SOA: 6, TXT: 16, TLSA: 52, TSIG: 250 } as const;
export const CLASS = { IN: 1, NONE: 254, ANY: 255 } as const;
export const OPCODE_UPDATE = 5;

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
export { u16, u32 };

/** A name in wire format, uncompressed; `canonical` lower-cases it (RFC 4034 §6.2, as TSIG wants). */
export function encodeName(name: string, canonical = false): Buffer {
  const bare = name.replace(/\.$/, '');
  const parts: Buffer[] = [];
  for (const label of bare ? bare.split('.') : []) {
    const bytes = Buffer.from(canonical ? label.toLowerCase() : label, 'ascii');
    if (bytes.length === 0 || bytes.length > 63) throw new Error(`"${name}" has an empty or over-long label`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** Reads a (possibly compressed) name; returns it and the offset just past it in the record. */
export function readName(buf: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let at = offset;
  let end = -1;
  for (let hops = 0; hops < 128; hops++) {
    if (at >= buf.length) throw new Error('truncated name');
    const len = buf[at]!;
    if (len === 0) {
      return { name: labels.join('.'), end: end === -1 ? at + 1 : end };
    }
    if ((len & 0xc0) === 0xc0) {
      if (at + 1 >= buf.length) throw new Error('truncated name pointer');
      if (end === -1) end = at + 2;
      at = ((len & 0x3f) << 8) | buf[at + 1]!;
      continue;
    }
    if (len > 63 || at + 1 + len > buf.length) throw new Error('bad label');
    labels.push(buf.subarray(at + 1, at + 1 + len).toString('ascii'));
    at += 1 + len;
  }
  throw new Error('name compression loop');
}

export function header(id: number, flags: number, counts: [number, number, number, number]): Buffer {
  return Buffer.concat([u16(id), u16(flags), ...counts.map(u16)]);
}

export function resourceRecord(name: string, type: number, klass: number, ttl: number, rdata: Buffer): Buffer {
  return Buffer.concat([encodeName(name), u16(type), u16(klass), u32(ttl), u16(rdata.length), rdata]);
}

/** The rdata of a TXT (character-strings of at most 255 bytes) or TLSA record. */
export function rdataOf(type: 'TXT' | 'TLSA', value: string): Buffer {
  if (type === 'TXT') {
    const bytes = Buffer.from(value, 'utf8');
    const parts: Buffer[] = [];
    for (let i = 0; i === 0 || i < bytes.length; i += 255) {
      const chunk = bytes.subarray(i, i + 255);
      parts.push(Buffer.from([chunk.length]), chunk);
    }
    return Buffer.concat(parts);
  }
  const f: TlsaFields | undefined = parseTlsa(value);
  if (!f) throw new Error(`not a TLSA value: "${value}" (usage selector matching-type hex)`);
  return Buffer.concat([Buffer.from([f.usage, f.selector, f.matchingType]), Buffer.from(f.data, 'hex')]);
}

export interface RecordAt {
  start: number;
  name: string;
  type: number;
  klass: number;
  ttl: number;
  rdataStart: number;
  rdataEnd: number;
}

/** Walks a message: the offsets of every resource record after the question section. */
export function recordsOf(buf: Buffer): { counts: [number, number, number, number]; records: RecordAt[] } {
  if (buf.length < 12) throw new Error('message shorter than its header');
  const counts = [buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)] as [
    number,
    number,
    number,
    number,
  ];
  let at = 12;
  for (let i = 0; i < counts[0]; i++) at = readName(buf, at).end + 4;
  const records: RecordAt[] = [];
  const total = counts[1] + counts[2] + counts[3];
  for (let i = 0; i < total; i++) {
    const start = at;
    const { name, end } = readName(buf, at);
    if (end + 10 > buf.length) throw new Error('truncated record');
    const rdlength = buf.readUInt16BE(end + 8);
    const rec = {
      start,
      name,
      type: buf.readUInt16BE(end),
      klass: buf.readUInt16BE(end + 2),
      ttl: buf.readUInt32BE(end + 4),
      rdataStart: end + 10,
      rdataEnd: end + 10 + rdlength,
    };
    if (rec.rdataEnd > buf.length) throw new Error('truncated rdata');
    records.push(rec);
    at = rec.rdataEnd;
  }
  return { counts, records };
}
