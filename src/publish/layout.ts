import { type Algorithm, ALGORITHMS } from '../pki/key-types.js';
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

export { ALGORITHMS };
/** A dual certificate's own files for one algorithm: the plain names with a prefix, e.g. rsa-privkey-fullchain.pem. */
export const variantName = (algorithm: Algorithm, name: string) => `${algorithm}-${name}`;

export const FILE_NAMES: readonly string[] = LAYOUT.map((f) => f.name);
/** Every name a certificate's directory can hold, the dual layout's included. */
export const ALL_FILE_NAMES: readonly string[] = [
  ...FILE_NAMES,
  ...ALGORITHMS.flatMap((a) => FILE_NAMES.map((n) => variantName(a, n))),
];
/** CERTS_DIR/sni/: the Postfix SNI map and the Dovecot local_name includes for every certificate. */
export const SNI_DIR = 'sni';
/** The file each certificate's SNI entries point at: key, leaf and chain in one (Postfix, Dovecot). */
export const SNI_KEY_AND_CHAIN = 'privkey-fullchain.pem';
/** The pair a reader needs; files adopted from another tool may lack the rest. */
export const PAIR = { chain: 'fullchain.pem', key: 'privkey.pem' } as const;
export const variantPair = (algorithm: Algorithm) => ({
  chain: variantName(algorithm, PAIR.chain),
  key: variantName(algorithm, PAIR.key),
});

/**
 * What one publish of a certificate holds: the first variant under the plain names and, for a
 * dual certificate, every variant (the first too) under its algorithm's prefixed names.
 */
export interface SetText {
  primary: BundleText;
  /** Dual layout only, in configured order. */
  variants?: { algorithm: Algorithm; text: BundleText }[];
}

export function isSecretFile(name: string): boolean {
  return LAYOUT.some((f) => f.secret && (f.name === name || ALGORITHMS.some((a) => variantName(a, f.name) === name)));
}

/** The files published for a certificate, by name. */
export function layoutFiles(set: SetText): { name: string; data: string; secret: boolean }[] {
  const files: { name: string; data: string; secret: boolean }[] = LAYOUT.map((f) => ({
    name: f.name,
    data: f.content(set.primary),
    secret: f.secret,
  }));
  for (const v of set.variants ?? [])
    files.push(
      ...LAYOUT.map((f) => ({ name: variantName(v.algorithm, f.name), data: f.content(v.text), secret: f.secret })),
    );
  return files;
}

/** The names layoutFiles gives a set. */
export function layoutNames(set: Pick<SetText, 'variants'>): string[] {
  return [...FILE_NAMES, ...(set.variants ?? []).flatMap((v) => FILE_NAMES.map((n) => variantName(v.algorithm, n)))];
}

/** The key-and-chain files the SNI entries of a certificate name, the first one first. */
export function sniFilesOf(set: Pick<SetText, 'variants'>): string[] {
  return set.variants?.length
    ? set.variants.map((v) => variantName(v.algorithm, SNI_KEY_AND_CHAIN))
    : [SNI_KEY_AND_CHAIN];
}

/**
 * Certificate names that would collide with what sits at the top of CERTS_DIR (the first
 * certificate's files), since every other certificate gets CERTS_DIR/<name>/.
 */
export function reservedNameProblem(name: string): string | undefined {
  if (ALL_FILE_NAMES.includes(name))
    return `"${name}" is the name of a published file at the top of CERTS_DIR; choose another certificate name`;
  if (name === SNI_DIR)
    return `"${name}" is the directory of the SNI files at the top of CERTS_DIR; choose another certificate name`;
  if (name.startsWith('..')) return `"${name}" starts with "..", which the publish layout uses for its own entries`;
  return undefined;
}
