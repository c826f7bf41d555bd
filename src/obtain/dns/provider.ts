/** A DNS zone as the provider knows it. */
export interface DnsZone {
  id: string;
  name: string;
}

/** What the dns-01 solver needs from a DNS provider (one folder per provider under obtain/dns/). */
export interface DnsProvider {
  readonly name: string;
  /** Checks credentials, zones and permissions for these names; the error names what is missing. */
  preflight(domains: string[]): Promise<{ zones: DnsZone[]; editVerified: boolean }>;
  /** The zone that holds the name (longest match among the zones the credentials can see). */
  zoneFor(name: string): Promise<DnsZone>;
  /** Creates a TXT record and returns its id; an identical existing record counts as created. */
  createTxt(zone: DnsZone, name: string, value: string): Promise<string>;
  /** Deletes by id; a record that is already gone counts as deleted. */
  deleteTxt(zone: DnsZone, id: string): Promise<void>;
  /** Ids of TXT records with this exact name and value (to clean up after a crash before the id was known). */
  findTxt(zone: DnsZone, name: string, value: string): Promise<string[]>;
}

export function zoneOf(name: string, zones: DnsZone[]): DnsZone | undefined {
  const n = name.replace(/\.$/, '').toLowerCase();
  return zones
    .filter((z) => n === z.name.toLowerCase() || n.endsWith(`.${z.name.toLowerCase()}`))
    .sort((a, b) => b.name.length - a.name.length)[0];
}
