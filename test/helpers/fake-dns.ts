import type { TlsaView } from '../../src/dane/records.js';
import {
  type DnsProvider,
  type DnsRecord,
  type DnsRecordType,
  type DnsZone,
  normalizeValue,
  sameName,
  zoneOf,
} from '../../src/dns/provider.js';

/**
 * A DNS provider in memory: zones, records created, listed and deleted as a real one does (an
 * identical record counts as created, a missing one as deleted). For the unit lane; the real
 * providers are tested against BIND in the integration lane.
 */
export class FakeDnsProvider implements DnsProvider {
  readonly name = 'fake';
  readonly records = new Map<string, { zone: string; record: DnsRecord }>();
  private nextId = 1;

  private readonly zones: DnsZone[];

  constructor(zones: DnsZone[]) {
    this.zones = zones;
  }

  async preflight(names: string[]): Promise<{ zones: DnsZone[]; proven: string }> {
    for (const n of names) await this.zoneFor(n);
    return { zones: this.zones, proven: 'the fake provider holds every zone' };
  }

  async zoneFor(name: string): Promise<DnsZone> {
    const zone = zoneOf(name, this.zones);
    if (!zone) throw new Error(`no zone holds ${name}`);
    return zone;
  }

  async create(zone: DnsZone, record: DnsRecord): Promise<string> {
    const value = normalizeValue(record.type, record.value);
    const same = (await this.list(zone, record.type, record.name)).find((r) => r.record.value === value);
    if (same) return same.id;
    const id = `r${this.nextId++}`;
    this.records.set(id, { zone: zone.id, record: { ...record, value } });
    return id;
  }

  async delete(_zone: DnsZone, id: string): Promise<void> {
    this.records.delete(id);
  }

  async list(zone: DnsZone, type: DnsRecordType, name: string): Promise<{ id: string; record: DnsRecord }[]> {
    return [...this.records]
      .filter(([, r]) => r.zone === zone.id && r.record.type === type && sameName(r.record.name, name))
      .map(([id, r]) => ({ id, record: r.record }));
  }

  /** The TLSA values at each owner name, sorted: what an authoritative server loaded from it answers. */
  snapshot(owners: string[]): Map<string, string[]> {
    const values = (owner: string) =>
      [...this.records.values()]
        .filter((r) => r.record.type === 'TLSA' && sameName(r.record.name, owner))
        .map((r) => r.record.value)
        .sort();
    return new Map(owners.map((o) => [o, values(o)]));
  }
}

/**
 * What DANE's checks see when each named server answers its snapshot of the records (signed,
 * no validating resolver): a server that lags behind answers an older snapshot.
 */
export function tlsaView(servers: Record<string, Map<string, string[]>>, zone: string): TlsaView {
  const owners = new Set(Object.values(servers).flatMap((s) => [...s.keys()]));
  const answers = new Map(
    [...owners].map((o) => [o, new Map(Object.entries(servers).map(([server, s]) => [server, s.get(o) ?? []]))]),
  );
  return { answers, validated: new Map(), zones: new Map([[zone, 'signed']]), resolvers: [] };
}
