import {
  ALGORITHMS,
  type Algorithm,
  type FileName,
  FILE_NAMES as NAMES,
  PAIR,
  SNI_DIR,
  variantName,
  variantPair,
} from '../util/cert-files.js';
import type { BundleText } from '../pki/bundle.js';

export { ALGORITHMS, PAIR, SNI_DIR, variantName, variantPair };
export const FILE_NAMES: readonly string[] = NAMES;

/**
 * The published layout: what each file of a certificate's directory holds (util/cert-files.ts
 * names them). Key-bearing files get the key mode, owner and group.
 */
const CONTENTS: Record<FileName, { secret: boolean; content: (b: BundleText) => string }> = {
  'fullchain.pem': { secret: false, content: (b) => b.certificates.join('') },
  'cert.pem': { secret: false, content: (b) => b.certificates[0]! },
  'chain.pem': { secret: false, content: (b) => b.certificates.slice(1).join('') },
  'privkey.pem': { secret: true, content: (b) => b.privateKey },
  // For Postfix smtpd_tls_chain_files: key first, then its chain, in one file.
  'privkey-fullchain.pem': { secret: true, content: (b) => b.privateKey + b.certificates.join('') },
};
export const LAYOUT = NAMES.map((name) => ({ name, ...CONTENTS[name] }));

/** The file each certificate's SNI entries point at: key, leaf and chain in one (Postfix, Dovecot). */
export const SNI_KEY_AND_CHAIN: FileName = 'privkey-fullchain.pem';

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
