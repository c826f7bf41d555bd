import type { BundleText } from './bundle.js';

/**
 * The published layout: the only place that knows the file names inside a certificate's directory.
 * Key-bearing files get the key mode, owner and group.
 */
export const LAYOUT = [
  { name: 'fullchain.pem', secret: false, content: (b: BundleText) => b.certificates.join('') },
  { name: 'cert.pem', secret: false, content: (b: BundleText) => b.certificates[0]! },
  { name: 'chain.pem', secret: false, content: (b: BundleText) => b.certificates.slice(1).join('') },
  { name: 'privkey.pem', secret: true, content: (b: BundleText) => b.privateKey },
  // For Postfix smtpd_tls_chain_files: key first, then its chain, in one file.
  { name: 'privkey-fullchain.pem', secret: true, content: (b: BundleText) => b.privateKey + b.certificates.join('') },
] as const;

export const FILE_NAMES: readonly string[] = LAYOUT.map((f) => f.name);
/** CERTS_DIR/sni/: the Postfix SNI map and the Dovecot local_name includes for every certificate. */
export const SNI_DIR = 'sni';
/** The file each certificate's SNI entries point at: key, leaf and chain in one (Postfix, Dovecot). */
export const SNI_KEY_AND_CHAIN = 'privkey-fullchain.pem';
/** The pair a reader needs; files adopted from another tool may lack the rest. */
export const PAIR = { chain: 'fullchain.pem', key: 'privkey.pem' } as const;

export function isSecretFile(name: string): boolean {
  return LAYOUT.some((f) => f.name === name && f.secret);
}

/** The files published for a certificate, by name. */
export function layoutFiles(b: BundleText): { name: string; data: string; secret: boolean }[] {
  return LAYOUT.map((f) => ({ name: f.name, data: f.content(b), secret: f.secret }));
}

/**
 * Certificate names that would collide with what sits at the top of CERTS_DIR (the first
 * certificate's files), since every other certificate gets CERTS_DIR/<name>/.
 */
export function reservedNameProblem(name: string): string | undefined {
  if (FILE_NAMES.includes(name)) return `"${name}" is the name of a published file at the top of CERTS_DIR; choose another certificate name`;
  if (name === SNI_DIR) return `"${name}" is the directory of the SNI files at the top of CERTS_DIR; choose another certificate name`;
  if (name.startsWith('..')) return `"${name}" starts with "..", which the publish layout uses for its own entries`;
  return undefined;
}
