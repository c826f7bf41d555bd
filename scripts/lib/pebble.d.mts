export function pebbleMissing(): string | undefined;
export interface Pebble {
  directoryUrl: string;
  caFile: string;
  httpPort: number;
  dnsPort: number;
  dnsMgmtPort: number;
  mgmtPort: number;
  root(): Promise<string>;
  stop(): Promise<void>;
}
export function startPebble(opts: {
  dir: string;
  /** Run inside this network namespace (ip netns), listening on host there. */
  netns?: string;
  /** The address the CA listens on (default 127.0.0.1); its TLS certificate names it. */
  host?: string;
  /** host:port of a real name server for the CA to resolve through; pebble-challtestsrv is then not started. */
  dnsServer?: string;
  acmePort?: number;
  mgmtPort?: number;
  httpPort?: number;
  dnsPort?: number;
  dnsMgmtPort?: number;
  env?: Record<string, string>;
  bin?: string;
  /** Merged into pebble.json's "pebble" object, e.g. externalAccountBindingRequired. */
  pebbleConfig?: Record<string, unknown>;
}): Promise<Pebble>;
