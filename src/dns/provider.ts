/** A DNS zone as the provider knows it. */
export interface DnsZone {
  id: string;
  name: string;
}

export type DnsRecordType = 'TXT' | 'TLSA';

/**
 * One record, in presentation form: a TXT record's text as is, a TLSA record as
 * "usage selector matching-type hex" (lower-case hex), so both compare as strings.
 */
export interface DnsRecord {
  type: DnsRecordType;
  /** Fully qualified, without the trailing dot. */
  name: string;
  value: string;
  ttl: number;
}

export type RecordKey = Omit<DnsRecord, 'ttl'>;

/**
 * What DNS-01 and DANE need from a DNS provider: zones, and records of any type created, listed
 * and deleted. One folder per provider under dns/providers/, listed in dns/providers/index.ts.
 */
export interface DnsProvider {
  readonly name: string;
  /** Checks credentials, zones and permissions for these names; says what it proved, or throws naming what is missing. */
  preflight(names: string[]): Promise<{ zones: DnsZone[]; proven: string }>;
  /** The zone that holds the name (longest match among the zones the credentials can see). */
  zoneFor(name: string): Promise<DnsZone>;
  /** Creates a record and returns its id; an identical existing record counts as created. */
  create(zone: DnsZone, record: DnsRecord): Promise<string>;
  /** Deletes by id; a record that is already gone counts as deleted. */
  delete(zone: DnsZone, id: string): Promise<void>;
  /** The records of this type at this name, with their ids. */
  list(zone: DnsZone, type: DnsRecordType, name: string): Promise<{ id: string; record: DnsRecord }[]>;
}

/** Ids of the records with exactly this type, name and value (to clean up after a crash before the id was known). */
export async function findRecord(provider: DnsProvider, zone: DnsZone, key: RecordKey): Promise<string[]> {
  const found = await provider.list(zone, key.type, key.name);
  return found
    .filter((f) => sameName(f.record.name, key.name) && f.record.value === normalizeValue(key.type, key.value))
    .map((f) => f.id);
}

export function sameName(a: string, b: string): boolean {
  return a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();
}

/** TLSA values compare with single spaces and lower-case hex; TXT values as they are. */
export function normalizeValue(type: DnsRecordType, value: string): string {
  return type === 'TLSA' ? value.trim().split(/\s+/).join(' ').toLowerCase() : value;
}

export interface TlsaFields {
  usage: number;
  selector: number;
  matchingType: number;
  /** Lower-case hex. */
  data: string;
}

/** "3 1 1 ab12…" to its fields; undefined when it is not a TLSA value. */
export function parseTlsa(value: string): TlsaFields | undefined {
  const m = /^(\d{1,3}) (\d{1,3}) (\d{1,3}) ([0-9a-f]+)$/.exec(normalizeValue('TLSA', value));
  if (!m || m[4]!.length % 2 !== 0) return undefined;
  const [usage, selector, matchingType] = [m[1], m[2], m[3]].map(Number) as [number, number, number];
  if (usage > 255 || selector > 255 || matchingType > 255) return undefined;
  return { usage, selector, matchingType, data: m[4]! };
}

export function formatTlsa(f: TlsaFields): string {
  return `${f.usage} ${f.selector} ${f.matchingType} ${f.data.toLowerCase()}`;
}

export function zoneOf(name: string, zones: DnsZone[]): DnsZone | undefined {
  const n = name.replace(/\.$/, '').toLowerCase();
  return zones
    .filter((z) => n === z.name.toLowerCase() || n.endsWith(`.${z.name.toLowerCase()}`))
    .sort((a, b) => b.name.length - a.name.length)[0];
}
