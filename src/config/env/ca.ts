import * as z from 'zod/mini';
import { bool, duration, matching, stringTo, wholeNumber } from '../fields.js';

export const DIRECTORIES: Record<string, string> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
  zerossl: 'https://acme.zerossl.com/v2/DV90',
  buypass: 'https://api.buypass.com/acme/directory',
  'buypass-staging': 'https://api.test4.buypass.no/acme/directory',
  google: 'https://dv.acme-v02.api.pki.goog/directory',
  'google-staging': 'https://dv.acme-v02.test-api.pki.goog/directory',
};
/** CAs that refuse accounts without external account binding. */
export const NEEDS_EAB = new Set(['zerossl', 'google', 'google-staging']);

/**
 * The central variables of the `ca` group: which CA issues the certificates, and how mailcerts talks to it.
 * Built when the configuration is read (envSchema in ../schema.ts), not kept.
 */
export const caEnv = () => ({
  /**
   * Contact address for the ACME account.
   * @group ca
   * @default none
   */
  ACME_EMAIL: z.optional(z.email({ error: () => 'use a mail address such as postmaster@example.com' })),
  /**
   * A preset or an `https://` directory URL.
   * @group ca
   * @default letsencrypt
   * @values `letsencrypt`, `letsencrypt-staging`, `zerossl`, `buypass`, `buypass-staging`, `google`,
   *   `google-staging`, or an `https://` URL
   */
  ACME_DIRECTORY: z._default(
    stringTo((s, ctx) => {
      const known = DIRECTORIES[s];
      if (known) return { name: s, url: known };
      let url: URL | undefined;
      try {
        url = new URL(s);
      } catch {
        /* reported below */
      }
      if (url?.protocol !== 'https:') {
        ctx.issues.push({
          code: 'custom',
          input: s,
          message: `"${s}" is neither a known CA (${Object.keys(DIRECTORIES).join(', ')}) nor an https:// directory URL`,
        });
        return z.NEVER;
      }
      return { name: url.host, url: url.href };
    }),
    { name: 'letsencrypt', url: DIRECTORIES.letsencrypt! },
  ),
  /**
   * Timeout of each HTTP call to the CA.
   * @group ca
   * @default 30s
   */
  ACME_TIMEOUT: z._default(duration(1_000, 600_000, '30s'), 30_000),
  /**
   * How many certificates are ordered at the same time in a pass (1 orders them one after another, in configuration
   * order). See [the benchmark](benchmark.md).
   * @group ca
   * @default 4
   */
  ACME_CONCURRENCY: z._default(
    wholeNumber(1, 32, {
      digits: 'use a whole number from 1 (one certificate at a time) to 32',
      min: 'use a whole number from 1 (one certificate at a time) to 32',
      max: 'use a whole number from 1 to 32: a CA limits how many orders an account may have in flight',
    }),
    4,
  ),
  /**
   * Profile sent in newOrder (Let's Encrypt: `classic`, `tlsserver`, `shortlived`). Checked against the CA's list;
   * a change renews the certificate.
   * @group ca
   * @default none
   * @values a profile name the CA offers
   */
  ACME_PROFILE: z.optional(
    matching(/^[a-z0-9][a-z0-9_.-]{0,63}$/i, 'use a profile name the CA offers, such as tlsserver or shortlived'),
  ),
  /**
   * Issuer common name of the alternate chain to prefer, e.g. `ISRG Root X1`.
   * @group ca
   * @default the CA's default
   */
  ACME_PREFERRED_CHAIN: z.optional(z.string().check(z.minLength(1))),
  /**
   * Keep the private key across renewals, so that TLSA `3 1 1` records published by hand stay valid. A change of
   * `ACME_KEY_TYPE` still makes a new key. With `DANE_NAMES`, mailcerts keeps the key and its records itself.
   * @group ca
   * @default false
   */
  ACME_REUSE_KEY: z._default(bool, false),
  /**
   * External account binding key id; with `ACME_EAB_HMAC_KEY`, both or neither. Required by `zerossl` and `google`.
   * @group ca
   * @default none
   */
  ACME_EAB_KID: z.optional(z.string().check(z.minLength(1))),
  /**
   * External account binding HMAC key (base64url), given by the CA with the key id.
   * @group ca
   * @default none
   */
  ACME_EAB_HMAC_KEY: z.optional(
    matching(/^[A-Za-z0-9_=+/-]{16,}$/, 'use the base64url HMAC key the CA gave you with the key id'),
  ),
});
