/**
 * The key types mailcerts can make, order and recognise, in one table: a new size or curve of an
 * algorithm it knows is one line here (and the CA must issue for it). A new algorithm is its name
 * in util/cert-files.ts (ALGORITHMS, which also prefixes its dual files) and one line in
 * ALGORITHM_TABLE: its key-type prefix and the signature algorithms a probe offers to get its
 * certificate; the compiler asks for the line once the name is there.
 */
import { type Algorithm, ALGORITHMS } from '../util/cert-files.js';

export { type Algorithm, ALGORITHMS };

export const ALGORITHM_TABLE = {
  ecdsa: {
    keyTypePrefix: 'ec-',
    sigalgs: 'ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384:ecdsa_secp521r1_sha512',
  },
  rsa: {
    keyTypePrefix: 'rsa-',
    // TLS 1.3 needs RSA-PSS for an RSA key.
    sigalgs:
      'rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:rsa_pkcs1_sha256:rsa_pkcs1_sha384:rsa_pkcs1_sha512',
  },
} as const satisfies Record<Algorithm, { keyTypePrefix: string; sigalgs: string }>;

/** ecdsa-with-SHA256, ecdsa-with-SHA384 (no parameters); sha256WithRSAEncryption (NULL parameters). */
const RSA_SIGNATURE = { hash: 'sha256', oid: '1.2.840.113549.1.1.11', nullParameters: true } as const;

export const KEY_TYPE_TABLE = [
  {
    name: 'ec-256',
    generate: { type: 'ec', namedCurve: 'P-256' },
    curve: 'prime256v1',
    csr: { hash: 'sha256', oid: '1.2.840.10045.4.3.2', nullParameters: false },
  },
  {
    name: 'ec-384',
    generate: { type: 'ec', namedCurve: 'P-384' },
    curve: 'secp384r1',
    csr: { hash: 'sha384', oid: '1.2.840.10045.4.3.3', nullParameters: false },
  },
  { name: 'rsa-2048', generate: { type: 'rsa', modulusLength: 2048 }, csr: RSA_SIGNATURE },
  { name: 'rsa-3072', generate: { type: 'rsa', modulusLength: 3072 }, csr: RSA_SIGNATURE },
  { name: 'rsa-4096', generate: { type: 'rsa', modulusLength: 4096 }, csr: RSA_SIGNATURE },
] as const;

export type KeyType = (typeof KEY_TYPE_TABLE)[number]['name'];
export type KeyTypeDefinition = (typeof KEY_TYPE_TABLE)[number];
export const KEY_TYPES: readonly KeyType[] = KEY_TYPE_TABLE.map((k) => k.name);

/** The algorithm of a key type, by its prefix (a supplied rsa-1024 is RSA too); undefined for none. */
export const algorithmOf = (keyType: string): Algorithm | undefined =>
  ALGORITHMS.find((a) => keyType.startsWith(ALGORITHM_TABLE[a].keyTypePrefix));

export const keyTypeDefinition = (name: string): KeyTypeDefinition | undefined =>
  KEY_TYPE_TABLE.find((k) => k.name === name);
