import { randomInt } from 'node:crypto';
import * as packet from 'dns-packet';
import type { Logger } from '../../../log.js';
import { exchange } from '../../tcp.js';
import { UserError } from '../../../util/errors.js';
import {
  type DnsProvider,
  type DnsRecord,
  type DnsRecordType,
  type DnsZone,
  formatTlsa,
  sameName,
} from '../../provider.js';
import { signMessage, type TsigKey, verifyAnswer } from './tsig.js';
import { CLASS, encodeName, header, OPCODE_UPDATE, rdataOf, resourceRecord, TYPE, u16 } from './wire.js';

export interface Rfc2136Options {
  server: { host: string; port: number };
  key: TsigKey;
  timeoutMs?: number;
  log: Logger;
  /** The clock the signatures carry (a test sets it off to see BADTIME). */
  now?: () => number;
}

const RCODES: Record<number, string> = {
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  6: 'YXDOMAIN',
  7: 'YXRRSET',
  8: 'NXRRSET',
  9: 'NOTAUTH',
  10: 'NOTZONE',
};

/** A record id: RFC 2136 has none, so the record itself is its id. */
const idOf = (r: Pick<DnsRecord, 'type' | 'name' | 'value'>) => JSON.stringify([r.type, r.name, r.value]);
function recordOfId(id: string): Pick<DnsRecord, 'type' | 'name' | 'value'> {
  const [type, name, value] = JSON.parse(id) as [DnsRecordType, string, string];
  return { type, name, value };
}

/**
 * Dynamic updates (RFC 2136) signed with TSIG (RFC 8945), as BIND, Knot, PowerDNS and Technitium
 * accept them: records are added and deleted one by one on the primary server, and read back from
 * it. Every message is signed and every answer's signature checked, queries included.
 */
export class Rfc2136Dns implements DnsProvider {
  readonly name = 'rfc2136';
  private readonly server: { host: string; port: number };
  private readonly key: TsigKey;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private readonly zones = new Map<string, DnsZone>();
  private readonly now: () => number;

  constructor(opts: Rfc2136Options) {
    this.server = opts.server;
    this.key = opts.key;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.log = opts.log.child({ provider: 'rfc2136' });
    this.now = opts.now ?? Date.now;
  }

  private get where(): string {
    return `${this.server.host}:${this.server.port}`;
  }

  /** Signs, sends, checks the answer's signature; returns the decoded answer and its rcode. */
  private async send(message: Buffer, what: string): Promise<{ rcode: number; answer: packet.Packet }> {
    const { signed, mac } = signMessage(message, this.key, this.now());
    let raw: Buffer;
    try {
      raw = await exchange(this.server, signed, this.timeoutMs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new UserError(
        `RFC 2136: ${what}: cannot reach ${this.where} (${code}); check RFC2136_SERVER and that the server accepts TCP on that port`,
        { cause: err },
      );
    }
    // An answer to this very message: same id, the response bit set, the same opcode.
    const isAnswer =
      raw.length >= 12 &&
      raw.readUInt16BE(0) === message.readUInt16BE(0) &&
      (raw[2]! & 0x80) !== 0 &&
      (raw[2]! & 0x78) === (message[2]! & 0x78);
    if (!isAnswer) throw new UserError(`RFC 2136: ${what}: ${this.where} answered another message; refusing it`);
    const rcode = raw.readUInt16BE(2) & 0xf;
    const verdict = verifyAnswer(raw, this.key, mac, this.now());
    if (!verdict.ok) {
      if (verdict.error !== undefined || rcode === 9) {
        throw new UserError(
          `RFC 2136: ${what}: ${this.where} did not accept the key "${this.key.name}" (${this.key.algorithm}): ${verdict.reason}`,
        );
      }
      // An unsigned REFUSED is what a server says to a key it has no use for (or to no key).
      if (rcode !== 0) throw this.rcodeError(what, rcode);
      throw new UserError(`RFC 2136: ${what}: the answer from ${this.where} cannot be trusted: ${verdict.reason}`);
    }
    return { rcode, answer: packet.decode(raw) };
  }

  private rcodeError(what: string, rcode: number, type: DnsRecordType = 'TXT'): UserError {
    const name = RCODES[rcode] ?? `rcode ${rcode}`;
    const hint =
      rcode === 5
        ? `: allow the key "${this.key.name}" to write ${type} records in the zone (BIND: update-policy { grant ${this.key.name} zonesub ${type}; }; or allow-update { key ${this.key.name}; };)`
        : rcode === 9
          ? ': the server is not authoritative (primary) for this zone; point RFC2136_SERVER at the primary'
          : rcode === 10
            ? ': the name is not in this zone'
            : rcode === 2
              ? ': the server failed; mailcerts tries again later'
              : '';
    return new UserError(`RFC 2136: ${what}: ${this.where} answered ${name}${hint}`);
  }

  private query(name: string, type: 'SOA' | 'TXT' | 'TLSA'): Buffer {
    return Buffer.concat([
      header(randomInt(0, 0x10000), 0, [1, 0, 0, 0]),
      encodeName(name),
      u16(TYPE[type]),
      u16(CLASS.IN),
    ]);
  }

  private update(zone: string, records: Buffer[]): Buffer {
    return Buffer.concat([
      header(randomInt(0, 0x10000), OPCODE_UPDATE << 11, [1, 0, records.length, 0]),
      encodeName(zone),
      u16(TYPE.SOA),
      u16(CLASS.IN),
      ...records,
    ]);
  }

  /** The zone is the owner of the SOA the server gives for the name: in the answer at an apex, in the authority section below it. */
  async zoneFor(name: string): Promise<DnsZone> {
    const bare = name.replace(/^\*\./, '').replace(/\.$/, '').toLowerCase();
    const known = this.zones.get(bare);
    if (known) return known;
    const { rcode, answer } = await this.send(this.query(bare, 'SOA'), `finding the zone of ${bare}`);
    const soa = [...(answer.answers ?? []), ...(answer.authorities ?? [])].find((r) => r.type === 'SOA');
    if (
      rcode === 5 ||
      (rcode !== 0 && rcode !== 3) ||
      !soa ||
      !(sameName(soa.name, bare) || bare.endsWith(`.${soa.name.toLowerCase()}`))
    ) {
      throw new UserError(
        `RFC 2136: ${this.where} serves no zone that holds ${bare} (${RCODES[rcode] ?? 'no SOA in the answer'}); point RFC2136_SERVER at the primary server of that zone`,
      );
    }
    const zone = { id: soa.name.toLowerCase(), name: soa.name.toLowerCase() };
    this.zones.set(bare, zone);
    return zone;
  }

  async preflight(names: string[]): Promise<{ zones: DnsZone[]; proven: string }> {
    this.zones.clear();
    const zones = new Map<string, DnsZone>();
    // Per name, one update that adds a TXT record at its _acme-challenge name and deletes it again:
    // the server checks the signature and the key's right to write exactly that (BIND's
    // update-policy grants per name and type), and the zone's data ends as it was.
    for (const n of new Set(names.map((d) => d.replace(/^\*\./, '').toLowerCase()))) {
      const z = await this.zoneFor(n);
      zones.set(z.name, z);
      const probe = {
        type: 'TXT' as const,
        name: `_acme-challenge.${n}`,
        value: 'mailcerts permission check',
        ttl: 60,
      };
      const rdata = rdataOf(probe.type, probe.value);
      const what = `checking the right to update ${probe.name} in ${z.name}`;
      const { rcode } = await this.send(
        this.update(z.name, [
          resourceRecord(probe.name, TYPE.TXT, CLASS.IN, probe.ttl, rdata),
          resourceRecord(probe.name, TYPE.TXT, CLASS.NONE, 0, rdata),
        ]),
        what,
      );
      if (rcode !== 0) throw this.rcodeError(what, rcode);
    }
    const list = [...zones.keys()].join(', ');
    this.log.info({ step: 'dns-01', zones: [...zones.keys()], server: this.where }, 'TSIG key and zones checked');
    return {
      zones: [...zones.values()],
      proven: `key "${this.key.name}" accepted by ${this.where}; TXT updates allowed in ${list}`,
    };
  }

  async create(zone: DnsZone, record: DnsRecord): Promise<string> {
    const rr = resourceRecord(record.name, TYPE[record.type], CLASS.IN, record.ttl, rdataOf(record.type, record.value));
    // Adding a record that exists already changes nothing (RFC 2136 §3.4.2.2): a retry is harmless.
    const what = `adding ${record.type} ${record.name} in ${zone.name}`;
    const { rcode } = await this.send(this.update(zone.name, [rr]), what);
    if (rcode !== 0) throw this.rcodeError(what, rcode, record.type);
    return idOf(record);
  }

  async delete(zone: DnsZone, id: string): Promise<void> {
    const record = recordOfId(id);
    // Class NONE, TTL 0: delete this one record; one that is gone already is no error.
    const rr = resourceRecord(record.name, TYPE[record.type], CLASS.NONE, 0, rdataOf(record.type, record.value));
    const what = `deleting ${record.type} ${record.name} in ${zone.name}`;
    const { rcode } = await this.send(this.update(zone.name, [rr]), what);
    if (rcode !== 0) throw this.rcodeError(what, rcode, record.type);
  }

  /** Read from the server itself: the primary answers with what the zone holds now. */
  async list(_zone: DnsZone, type: DnsRecordType, name: string): Promise<{ id: string; record: DnsRecord }[]> {
    const what = `reading ${type} ${name}`;
    const { rcode, answer } = await this.send(this.query(name, type), what);
    if (rcode === 3) return [];
    if (rcode !== 0) throw this.rcodeError(what, rcode);
    const out: { id: string; record: DnsRecord }[] = [];
    for (const a of answer.answers ?? []) {
      if (a.type !== type || !sameName(a.name, name)) continue;
      const value =
        a.type === 'TXT'
          ? (Array.isArray(a.data) ? a.data : [a.data])
              .map((c) => (Buffer.isBuffer(c) ? c.toString('utf8') : String(c)))
              .join('')
          : a.type === 'TLSA'
            ? formatTlsa({
                usage: a.data.usage,
                selector: a.data.selector,
                matchingType: a.data.matchingType,
                data: a.data.certificate.toString('hex'),
              })
            : undefined;
      if (value === undefined) continue;
      const record: DnsRecord = { type, name: a.name, value, ttl: a.ttl ?? 0 };
      out.push({ id: idOf({ type, name, value }), record });
    }
    return out;
  }
}
