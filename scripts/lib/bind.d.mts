export function bindMissing(): string | undefined;
export function tsigKeygen(name: string, algorithm?: string): string;
export interface Bind {
  address: string;
  port: number;
  dir: string;
  dig(name: string, type: string): string[];
  /** The zone's KSK as "zone. DNSKEY 257 3 13 …", once the zone is signed. */
  ksk(zone: string): Promise<string>;
  /** rndc against this named (needs rndcPort), e.g. rndc('retransfer', 'zone.test'). */
  rndc(...args: string[]): string;
  stop(): Promise<void>;
}
export function startBind(opts: {
  dir: string;
  port: number;
  /** The address to listen on (default 127.0.0.1). */
  address?: string;
  /** Where rndc() reaches it, on 127.0.0.1. */
  rndcPort?: number;
  /** Log every query it answers into named.log. */
  querylog?: boolean;
  zones: {
    name: string;
    update?: 'key' | 'none' /** An update-policy instead of allow-update, e.g. 'grant k zonesub TXT;'. */;
    policy?: string;
    dnssec?: boolean;
    records?: string[];
    /** Its NS records and their addresses (default: ns1 at 127.0.0.1). */
    nameServers?: { name: string; address: string }[];
    /** The SOA refresh (seconds) its secondaries keep (default 60). */
    refresh?: number;
    /** Addresses allowed to transfer it (default none). */
    transferTo?: string[];
    /** This BIND is a secondary for the zone, transferring from this host:port. */
    secondaryOf?: string;
  }[];
  keys: { name: string; algorithm?: string; secret: string }[];
}): Promise<Bind>;
