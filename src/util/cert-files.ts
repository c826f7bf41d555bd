/**
 * The names in CERTS_DIR: what a certificate's directory holds, and what a certificate may not
 * be called. Here, below config, because config checks certificate names against them;
 * publish/layout.ts says what each file holds.
 */

/** What a TLS client's signature algorithms choose between: Postfix takes one key of each. */
export const ALGORITHMS = ['ecdsa', 'rsa'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];
/** A dual certificate's own files for one algorithm: the plain names with a prefix, e.g. rsa-privkey-fullchain.pem. */
export const variantName = (algorithm: Algorithm, name: string) => `${algorithm}-${name}`;
/** The pair a reader needs; files adopted from another tool may lack the rest. */
export const PAIR = { chain: 'fullchain.pem', key: 'privkey.pem' } as const;
export const variantPair = (algorithm: Algorithm) => ({
  chain: variantName(algorithm, PAIR.chain),
  key: variantName(algorithm, PAIR.key),
});

export const FILE_NAMES = ['fullchain.pem', 'cert.pem', 'chain.pem', 'privkey.pem', 'privkey-fullchain.pem'] as const;
export type FileName = (typeof FILE_NAMES)[number];
/** Every name a certificate's directory can hold, the dual layout's included. */
export const ALL_FILE_NAMES: readonly string[] = [
  ...FILE_NAMES,
  ...ALGORITHMS.flatMap((a) => FILE_NAMES.map((n) => variantName(a, n))),
];
/** CERTS_DIR/sni/: the Postfix SNI map and the Dovecot local_name includes for every certificate. */
export const SNI_DIR = 'sni';

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
