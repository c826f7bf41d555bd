import type { KeyType } from '../pki/key-types.js';

/**
 * The configuration as the rest of mailcerts reads it: what loadConfig returns. The parts that bring
 * settings of their own (certificate sources, deploy modes) declare them here by augmenting
 * CertificateSpec or DockerConfig from their own folder (`declare module '…/config/types.js'`).
 * This file imports no other file of config/, so that config/parts.ts can name these types.
 */
export const CHALLENGES = ['http-01', 'dns-01'] as const;
export type Challenge = (typeof CHALLENGES)[number];
export type DnsProviderName = string;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export interface CertificateSpec {
  name: string;
  domains: string[];
  /**
   * One key type, or one ECDSA and one RSA: each is its own order (key, serial, renewal time), and
   * all are published together. The first keeps the plain file names.
   */
  keyTypes: KeyType[];
  challenge: Challenge;
  /** Set when challenge is dns-01. */
  dnsProvider?: DnsProviderName;
  /**
   * Where it comes from (obtain/sources/): acme, obtained from the CA; custom, supplied by the user;
   * traefik, taken from Traefik's acme.json. Each source declares its own settings on this type.
   */
  source: string;
  /** DANE: TLSA 3 1 1 records kept in step with the key (which is then reused across renewals); only for an ordered source. */
  dane?: DaneSpec;
}

export interface DaneSpec {
  /** MX host names (each one of the certificate's names): records at _PORT._tcp.NAME. */
  names: string[];
  ports: number[];
  ttlSeconds: number;
  /** The DNS provider that writes the records, or 'none': printed to be published by hand. */
  provider: string;
  /** A key older than this is rolled over (after the next key's record has been seen long enough). */
  keyLifetimeMs: number;
  /** Validating resolvers (DANE_RESOLVER): the burn-in counts only answers they give with the AD bit. */
  resolvers?: string[];
}

/** One key type of a certificate: what a single order obtains and a single state file follows. */
export interface VariantSpec extends CertificateSpec {
  keyType: KeyType;
}

export function variantsOf(spec: CertificateSpec): VariantSpec[] {
  return spec.keyTypes.map((keyType) => ({ ...spec, keyType }));
}

/** How certificates reach the containers; each deploy mode adds its own settings (deploy/modes/<name>/index.ts). */
export interface DockerConfig {
  /** false: publish without reloading any container. */
  reload: boolean;
  /** The compose project whose containers mailcerts acts on; '*' for every labelled container; undefined: its own project. */
  scope?: string;
  /** Hosts that mailcerts.verify labels may name besides the container's own addresses ('*': any). */
  verifyHosts: string[] | '*';
  /** The DEPLOY_MODE (deploy/modes/): volume (files in CERTS_DIR, containers reloaded), swarm (secrets and configs, services updated). */
  mode: string;
}

export interface Config {
  certificates: CertificateSpec[];
  acme: {
    directoryUrl: string;
    directoryName: string;
    email?: string;
    timeoutMs: number;
    /** Certificates obtained at the same time in a pass. */
    concurrency: number;
    /** Sent in newOrder; a change renews the certificate. */
    profile?: string;
    /** Issuer common name of the chain to prefer among the CA's alternates. */
    preferredChain?: string;
    /** Keep the private key across renewals (for DANE TLSA 3 1 1 records). */
    reuseKey: boolean;
    eab?: { kid: string; hmacKey: string };
  };
  http01: { mode: 'standalone' | 'webroot'; port: number; address?: string; webroot?: string };
  dns: {
    /** Name servers to ask instead of each zone's authoritative ones. */
    resolvers?: string[];
    propagationTimeoutMs: number;
    /** The settings of each configured DNS provider, by name (see dns/providers/). */
    providers: Record<string, unknown>;
  };
  certsDir: string;
  /** Where the mail containers see CERTS_DIR: the paths written into the sni/ files. */
  sniCertsPath: string;
  stateDir: string;
  files: { keyMode: number; certMode: number; owner?: number; group?: number };
  renewCheckIntervalMs: number;
  /** Where /healthz, /status and /metrics listen, or undefined when off. */
  statusAddress?: { host: string; port: number };
  docker: DockerConfig;
  logLevel: (typeof LOG_LEVELS)[number];
  /** Who is told when something is wrong (and again when it is fixed). */
  alerts: {
    /** servername: what the submission server's certificate is checked against. */
    email?: { to: string[]; smtp: string; from: string; servername: string };
    webhook?: { url: string; format: 'json' | 'ntfy' | 'slack' };
    afterMs: number;
    expiryMs: number;
  };
  /** Unset: text when the log goes to a terminal, JSON otherwise. */
  logFormat?: 'json' | 'text';
  /** The values of the secret variables (tokens, keys), for redaction only. */
  secrets: string[];
}

/** The certificate's default name: its first domain, "*." spelt "wildcard.". */
export function defaultCertName(domains: string[]): string {
  return domains[0]!.replace(/^\*\./, 'wildcard.');
}
