import { SNI_DIR } from './layout.js';

/**
 * What the SNI files are rendered from: the published certificates, each with the names it covers
 * and its key-and-chain files. The publisher decides which certificates are listed (only those
 * whose files are published); each mail-server kind renders the files it reads
 * (deploy/kinds/<name>/sni.ts) with the helpers below, and the publisher writes them into
 * CERTS_DIR/sni/ after the certificates they name.
 */
export interface SniCert {
  name: string;
  domains: string[];
  /** The certificate's directory relative to CERTS_DIR ('' for the top). */
  dir: string;
  /** Its key-and-chain files in that directory: one, or one per algorithm (the first is Dovecot's ssl_cert, the second its ssl_alt_cert). */
  files: string[];
}

export interface SniFile {
  name: string;
  data: string;
}

/** Renders SNI files from the listed certificates, for containers that mount CERTS_DIR at `base`. */
export type SniRenderer = (certs: SniCert[], base: string) => SniFile[];

/** Where the SNI files are, as the containers see them. */
export const sniDirAt = (base: string) => `${base.replace(/\/$/, '')}/${SNI_DIR}`;

/** A certificate's key-and-chain files, as the containers see them. */
export const keyAndChainPaths = (c: SniCert, base: string) =>
  c.files.map((file) => [base.replace(/\/$/, ''), c.dir, file].filter(Boolean).join('/'));

/** The first lines of every SNI file: who writes it, and how the server is told to read it. */
export const sniHeader = (how: string) =>
  `# Written by mailcerts at every publish; do not edit (it is replaced).\n# ${how}\n`;
