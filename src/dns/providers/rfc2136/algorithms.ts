/** The TSIG algorithms BIND offers, strongest first (tsig.ts knows their hashes; it loads only with the provider). */
export const TSIG_ALGORITHM_NAMES = [
  'hmac-sha256',
  'hmac-sha384',
  'hmac-sha512',
  'hmac-sha224',
  'hmac-sha1',
  'hmac-md5',
] as const;
export type TsigAlgorithm = (typeof TSIG_ALGORITHM_NAMES)[number];
