import * as z from 'zod/mini';
import type { ProviderDefinition } from '../definition.js';

export interface CloudflareSettings {
  apiToken: string;
  zoneId?: string;
  baseUrl?: string;
}

const LOOPBACK_HOSTS = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

/** Cloudflare's API, or a local stand-in: plain http only on loopback, where the token cannot be sniffed. */
const apiBaseUrl = z.pipe(
  z.string(),
  z.transform((s: string, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(s);
    } catch {
      /* reported below */
    }
    if (!url || (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.test(url.hostname)))) {
      ctx.issues.push({
        code: 'custom',
        input: s,
        message:
          'use an https:// URL such as https://api.cloudflare.com/client/v4 (plain http only for a loopback address: the token would travel in clear)',
      });
      return z.NEVER;
    }
    return url.href.replace(/\/$/, '');
  }),
);

export const cloudflare: ProviderDefinition<CloudflareSettings> = {
  name: 'cloudflare',
  title: 'Cloudflare',
  env: {
    /**
     * Cloudflare API token with Zone:Read and DNS:Edit (see [the token](dns-01.md#the-token)). Better as
     * `CLOUDFLARE_API_TOKEN_FILE`.
     * @default (required for dns-01 with Cloudflare)
     */
    CLOUDFLARE_API_TOKEN: z.optional(
      z
        .string()
        .check(
          z.regex(
            /^[A-Za-z0-9_-]{20,200}$/,
            'does not look like a Cloudflare API token (letters, digits, - and _); create one under My Profile → API Tokens',
          ),
        ),
    ),
    /**
     * Pins the zone instead of searching the zones the token can read.
     * @default none
     * @values 32 hex characters
     */
    CLOUDFLARE_ZONE_ID: z.optional(
      z.string().check(z.regex(/^[0-9a-f]{32}$/, "use the 32-character zone ID shown on the zone's Overview page")),
    ),
    /**
     * Another endpoint (a proxy; the tests' double).
     * @default `https://api.cloudflare.com/client/v4`
     * @values `https://`, or `http://` only for a loopback address, since the token would travel in clear
     */
    CLOUDFLARE_API_BASE_URL: z.optional(apiBaseUrl),
  },
  secrets: ['CLOUDFLARE_API_TOKEN'],
  minTtlSeconds: 60, // outside Enterprise plans
  settings(env, used, problems) {
    const apiToken = env.CLOUDFLARE_API_TOKEN as string | undefined;
    if (!apiToken) {
      if (used)
        problems.push(
          'CLOUDFLARE_API_TOKEN: is required for dns-01 with Cloudflare: create an API token with Zone:Read and DNS:Edit and set CLOUDFLARE_API_TOKEN or CLOUDFLARE_API_TOKEN_FILE',
        );
      return undefined;
    }
    return {
      apiToken,
      zoneId: env.CLOUDFLARE_ZONE_ID as string | undefined,
      baseUrl: env.CLOUDFLARE_API_BASE_URL as string | undefined,
    };
  },
  async create(settings, log) {
    const { CloudflareDns } = await import('./cloudflare.js');
    return new CloudflareDns({ ...settings, log });
  },
};
