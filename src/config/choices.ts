// zod/mini: the same checks as zod's classic API at a fraction of its memory (it loads only what is used).
import * as z from 'zod/mini';
import { DNS_PROVIDER_DEFINITIONS } from '../dns/providers/index.js';
import { algorithmOf, KEY_TYPES, type KeyType } from '../pki/key-types.js';
import { CHALLENGES } from './types.js';
import { settingBounds } from './setting-doc.js';

/** Fields that pick from a list, shared by the environment (env/<group>.ts) and the config file (schema.ts). */

export const DNS_PROVIDERS = DNS_PROVIDER_DEFINITIONS.map((d) => d.name);

/** Why a list of key types is unusable: an unknown one, one listed twice, two of one algorithm. */
export function keyTypesProblem(list: string[]): string | undefined {
  if (list.length === 0) return `list at least one key type: ${KEY_TYPES.join(', ')}`;
  const unknown = list.find((k) => !(KEY_TYPES as readonly string[]).includes(k));
  if (unknown !== undefined)
    return `"${unknown}" is not a key type; use one of ${KEY_TYPES.join(', ')}, or two of them for dual certificates, as in ec-256,rsa-2048`;
  const twice = list.find((k, i) => list.indexOf(k) !== i);
  if (twice) return `"${twice}" is listed twice`;
  const same = list.find((k, i) => list.findIndex((o) => algorithmOf(o) === algorithmOf(k)) !== i);
  if (same)
    return `${list.filter((k) => algorithmOf(k) === algorithmOf(same)).join(' and ')} are both ${algorithmOf(same)?.toUpperCase()}: Postfix and Dovecot serve one key of each algorithm; keep one of them`;
  return undefined;
}

/** ACME_KEY_TYPE, or keyType in the config file: one key type, or a comma list (or YAML list) of one ECDSA and one RSA. */
export const keyTypes = z
  .pipe(
    z.union([z.string(), z.array(z.string())], {
      error: () => 'use a key type such as ec-256, or a list such as ec-256,rsa-2048',
    }),
    z.transform((v: string | string[], ctx) => {
      const list = (typeof v === 'string' ? v.split(',') : v).map((k) => k.trim()).filter(Boolean);
      const problem = keyTypesProblem(list);
      if (problem) {
        ctx.issues.push({ code: 'custom', input: v, message: problem });
        return z.NEVER;
      }
      return list as KeyType[];
    }),
  )
  .register(settingBounds, {
    values: `${KEY_TYPES.map((k) => `\`${k}\``).join(', ')}, or one ECDSA and one RSA, comma separated`,
  });

export const challenge = z.enum(CHALLENGES, { error: () => `use one of ${CHALLENGES.join(', ')}` });

export const dnsProvider = z.enum(DNS_PROVIDERS as [string, ...string[]], {
  error: () => `use one of ${DNS_PROVIDERS.join(', ')}`,
});
