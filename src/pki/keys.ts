import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { KeyType } from '../config/schema.js';

const generate = promisify(generateKeyPair);

/** A fresh private key of the type, as PKCS#8 PEM. */
export async function generatePrivateKey(type: KeyType): Promise<string> {
  const { privateKey } = type.startsWith('ec-')
    ? await generate('ec', { namedCurve: type === 'ec-256' ? 'P-256' : 'P-384' })
    : await generate('rsa', { modulusLength: Number(type.slice(4)) });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** The key type of a public key in mailcerts' terms, or a description when it is none of them. */
export function keyTypeOf(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    return d.namedCurve === 'prime256v1'
      ? 'ec-256'
      : d.namedCurve === 'secp384r1'
        ? 'ec-384'
        : `ec-${d.namedCurve ?? '?'}`;
  }
  if (key.asymmetricKeyType === 'rsa') return `rsa-${d.modulusLength ?? '?'}`;
  return key.asymmetricKeyType ?? 'unknown';
}
