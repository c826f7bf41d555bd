export function bindMissing(): string | undefined;
export function tsigKeygen(name: string, algorithm?: string): string;
export interface Bind {
  address: string;
  port: number;
  dir: string;
  dig(name: string, type: string): string[];
  /** The zone's KSK as "zone. DNSKEY 257 3 13 …", once the zone is signed. */
  ksk(zone: string): Promise<string>;
  stop(): Promise<void>;
}
export function startBind(opts: {
  dir: string;
  port: number;
  zones: {
    name: string;
    update?: 'key' | 'none' /** An update-policy instead of allow-update, e.g. 'grant k zonesub TXT;'. */;
    policy?: string;
    dnssec?: boolean;
    records?: string[];
  }[];
  keys: { name: string; algorithm?: string; secret: string }[];
}): Promise<Bind>;
