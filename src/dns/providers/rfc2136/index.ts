import { isIP } from 'node:net';
import * as z from 'zod/mini';
import { splitHostPort } from '../../../util/host-port.js';
import type { ProviderDefinition } from '../definition.js';
import { TSIG_ALGORITHM_NAMES, type TsigAlgorithm } from './algorithms.js';

export interface Rfc2136Settings {
  server: { host: string; port: number };
  keyName: string;
  algorithm: TsigAlgorithm;
  secret: Buffer;
}

const ALGORITHMS = TSIG_ALGORITHM_NAMES;
/** What RFC 8945 §6 says of the use of the weak ones: still offered, for servers that have no other key yet. */
const WEAK_ALGORITHMS: Partial<Record<TsigAlgorithm, string>> = {
  'hmac-md5': 'hmac-md5 MUST NOT be used',
  'hmac-sha1': 'hmac-sha1 is NOT RECOMMENDED',
};
const HOST = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

const server = z.pipe(
  z.string(),
  z.transform((s: string, ctx) => {
    const hp = splitHostPort(s.trim(), 53);
    if (!hp || (isIP(hp.host) === 0 && !HOST.test(hp.host))) {
      ctx.issues.push({
        code: 'custom',
        input: s,
        message: `"${s}" is not host[:port]; use the primary name server's address or name, such as 192.0.2.53, ns1.example.com:53 or [2001:db8::53]:53`,
      });
      return z.NEVER;
    }
    return hp;
  }),
);

/** Base64 as tsig-keygen writes it; the decoded key must not be empty. */
const secret = z.pipe(
  z.string(),
  z.transform((s: string, ctx) => {
    const text = s.trim();
    const bytes = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)
      ? Buffer.from(text, 'base64')
      : undefined;
    if (!bytes || bytes.length === 0) {
      ctx.issues.push({
        code: 'custom',
        input: '(secret)',
        message:
          'is not base64; use the secret line of the key as tsig-keygen prints it (secret "…";), without the quotes',
      });
      return z.NEVER;
    }
    return bytes;
  }),
);

export const rfc2136: ProviderDefinition<Rfc2136Settings> = {
  name: 'rfc2136',
  title: 'Your own name server',
  env: {
    /**
     * The primary name server that takes the updates, `host[:port]` (port 53 by default; `[v6]:port`). Spoken to over
     * TCP.
     * @default (required for rfc2136)
     */
    RFC2136_SERVER: z.optional(server),
    /**
     * The TSIG key's name as the server knows it (BIND: `key "NAME" { … }`).
     * @default (required for rfc2136)
     */
    RFC2136_TSIG_KEY: z.optional(
      z
        .string()
        .check(
          z.regex(
            /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/,
            'use the key\'s name as the server knows it (BIND: key "NAME" { … }), letters, digits, - _ and dots',
          ),
        ),
    ),
    /**
     * The TSIG algorithm. `hmac-sha1` and `hmac-md5` still work, with a warning: RFC 8945 §6 says hmac-md5 MUST NOT
     * be used and hmac-sha1 is NOT RECOMMENDED.
     * @default hmac-sha256
     */
    RFC2136_TSIG_ALGORITHM: z._default(
      z.enum(ALGORITHMS, { error: () => `use one of ${ALGORITHMS.join(', ')}` }),
      'hmac-sha256',
    ),
    /**
     * The key's secret, base64 as `tsig-keygen` prints it. Better as `RFC2136_TSIG_SECRET_FILE`.
     * @default (required for rfc2136)
     */
    RFC2136_TSIG_SECRET: z.optional(secret),
  },
  secrets: ['RFC2136_TSIG_SECRET'],
  settings(env, used, problems) {
    const host = env.RFC2136_SERVER as Rfc2136Settings['server'] | undefined;
    const keyName = env.RFC2136_TSIG_KEY as string | undefined;
    const secretBytes = env.RFC2136_TSIG_SECRET as Buffer | undefined;
    if (!host && !keyName && !secretBytes) {
      if (used)
        problems.push(
          'RFC2136_SERVER: is required for dns-01 with rfc2136: the primary name server that accepts updates, with RFC2136_TSIG_KEY and RFC2136_TSIG_SECRET (or _FILE) for the key that signs them',
        );
      return undefined;
    }
    const missing = [
      !host && 'RFC2136_SERVER',
      !keyName && 'RFC2136_TSIG_KEY',
      !secretBytes && 'RFC2136_TSIG_SECRET',
    ].filter((m): m is string => !!m);
    if (missing.length > 0) {
      // Unsigned updates are not offered: anyone who can reach the server could then change the zone.
      problems.push(
        `${missing[0]}: RFC 2136 updates need RFC2136_SERVER, RFC2136_TSIG_KEY and RFC2136_TSIG_SECRET (or _FILE) together; missing: ${missing.join(', ')}`,
      );
      return undefined;
    }
    return {
      server: host!,
      keyName: keyName!.replace(/\.$/, ''),
      algorithm: env.RFC2136_TSIG_ALGORITHM as TsigAlgorithm,
      secret: secretBytes!,
    };
  },
  async create(settings, log) {
    const weak = WEAK_ALGORITHMS[settings.algorithm];
    if (weak)
      log.warn(
        { step: 'dns', provider: 'rfc2136', algorithm: settings.algorithm },
        `RFC2136_TSIG_ALGORITHM=${settings.algorithm}: RFC 8945 §6 says ${weak}; make a new key with tsig-keygen -a hmac-sha256 and set RFC2136_TSIG_ALGORITHM=hmac-sha256`,
      );
    const { Rfc2136Dns } = await import('./rfc2136.js');
    return new Rfc2136Dns({
      server: settings.server,
      key: { name: settings.keyName, algorithm: settings.algorithm, secret: settings.secret },
      log,
    });
  },
};
