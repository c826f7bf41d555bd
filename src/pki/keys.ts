import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { KEY_TYPE_TABLE, type KeyType, keyTypeDefinition } from './key-types.js';

const generate = promisify(generateKeyPair);

/** A fresh private key of the type, as PKCS#8 PEM. */
export async function generatePrivateKey(type: KeyType): Promise<string> {
  const how = keyTypeDefinition(type)!.generate;
  const { privateKey } =
    how.type === 'ec'
      ? await generate('ec', { namedCurve: how.namedCurve })
      : await generate('rsa', { modulusLength: how.modulusLength });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** The key type of a public key in mailcerts' terms, or a description when it is none of them. */
export function keyTypeOf(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec')
    return KEY_TYPE_TABLE.find((k) => 'curve' in k && k.curve === d.namedCurve)?.name ?? `ec-${d.namedCurve ?? '?'}`;
  if (key.asymmetricKeyType === 'rsa') return `rsa-${d.modulusLength ?? '?'}`;
  return key.asymmetricKeyType ?? 'unknown';
}
