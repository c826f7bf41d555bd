export function bindMissing(): string | undefined;
export function tsigKeygen(name: string, algorithm?: string): string;
export interface Bind {
  address: string;
  port: number;
  dir: string;
  dig(name: string, type: string): string[];
  stop(): Promise<void>;
}
export function startBind(opts: {
  dir: string;
  port: number;
  zones: { name: string; update?: 'key' | 'none'; /** An update-policy instead of allow-update, e.g. 'grant k zonesub TXT;'. */ policy?: string; records?: string[] }[];
  keys: { name: string; algorithm?: string; secret: string }[];
}): Promise<Bind>;
