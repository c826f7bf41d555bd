// zod/mini: the same checks as zod's classic API at a fraction of its memory (it loads only what is used).
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { DNS_PROVIDER_DEFINITIONS } from '../dns/providers/index.js';
import { challenge, dnsProvider, keyTypes } from './choices.js';
import { alertsEnv } from './env/alerts.js';
import { caEnv } from './env/ca.js';
import { certificatesEnv } from './env/certificates.js';
import { daneEnv } from './env/dane.js';
import { deployEnv } from './env/deploy.js';
import { dns01Env } from './env/dns01.js';
import { filesEnv } from './env/files.js';
import { http01Env } from './env/http01.js';
import { reportEnv } from './env/report.js';
import { scheduleEnv } from './env/schedule.js';
import { matching } from './fields.js';
import { domainList } from './names.js';
import type { ConfigParts } from './parts.js';
import { settingBounds } from './setting-doc.js';

// The key types are one table (pki/key-types.ts).
export { type Algorithm, algorithmOf, KEY_TYPES, type KeyType } from '../pki/key-types.js';
// What the rest of mailcerts reads: the configuration's types (types.ts), re-exported here.
export * from './types.js';
export { DNS_PROVIDERS, keyTypesProblem } from './choices.js';
export { DIRECTORIES, NEEDS_EAB } from './env/ca.js';
export { aLabelName, dnsNameProblem } from './names.js';

// zod/mini leaves its own messages generic until a locale is set (an unknown key, a wrong type).
z.config(en());

const certName = matching(
  /^[a-z0-9][a-z0-9._-]{0,63}$/,
  'use 1-64 lower-case letters, digits, dots, hyphens or underscores, starting with a letter or digit',
);

/**
 * The environment, one field per variable, each group's defined with its docs in env/<group>.ts, in
 * the order of docs/configuration.md. Empty values count as unset (compose writes FOO= as "").
 * Built when the configuration is read and dropped after: a daemon does not keep a hundred field
 * schemas in memory for its lifetime.
 */
export const envSchema = (parts: ConfigParts) =>
  z.object({
    ...certificatesEnv(),
    ...caEnv(),
    ...http01Env(),
    ...dns01Env(),
    ...daneEnv(),
    ...filesEnv(),
    // Each certificate source's own variables (obtain/sources/<name>/index.ts).
    ...(Object.assign({}, ...parts.sources.map((s) => s.env)) as Record<string, z.ZodMiniType>),
    ...deployEnv(parts),
    ...scheduleEnv(),
    ...alertsEnv(),
    ...reportEnv(),
  });

export type Env = z.output<ReturnType<typeof envSchema>>;

/** Variables whose values must never be logged. Filled as secret-bearing settings arrive. */
export const SECRET_KEYS: readonly string[] = [
  'ACME_EAB_HMAC_KEY',
  'ALERT_SMTP',
  'ALERT_WEBHOOK',
  ...DNS_PROVIDER_DEFINITIONS.flatMap((d) => d.secrets),
];

/** The optional config file: a list of certificates; everything else comes from the environment. */
export const fileSchema = (parts: ConfigParts) =>
  z.strictObject({
    certificates: z
      .array(
        z.strictObject({
          /**
           * The certificate's name: its directory in `CERTS_DIR` and in `STATE_DIR`, and what `status` shows. With
           * several certificates, it may not be `sni` nor the name of a published file (`privkey.pem` …).
           * @default the first domain, `*.` spelt `wildcard.`
           * @values 1 to 64 lower-case letters, digits, `.`, `_` or `-`, starting with a letter or digit
           */
          name: z.optional(certName),
          /**
           * The names of this certificate, as a list. Internationalized names may be written as they are; they are
           * converted to their A-label (`xn--`) form.
           * @default (required)
           * @values DNS names, as a YAML or JSON list
           */
          domains: domainList,
          /**
           * One key type, or a list of one ECDSA and one RSA (`[ec-256, rsa-2048]`) for a dual certificate.
           * @default `ACME_KEY_TYPE`
           * @values as `ACME_KEY_TYPE`, or a YAML or JSON list
           */
          keyType: z.optional(keyTypes),
          /**
           * `http-01` or `dns-01`.
           * @default `ACME_CHALLENGE`
           */
          challenge: z.optional(challenge),
          /**
           * The DNS provider of this certificate's DNS-01 challenges.
           * @default `ACME_DNS_PROVIDER`
           */
          dnsProvider: z.optional(dnsProvider),
          /**
           * Where the certificate comes from.
           * @default the first source whose variable is set (see [Supplied certificates and
           * Traefik](#supplied-certificates-and-traefik)), else `acme`
           */
          source: z.optional(
            z
              .enum(parts.sources.map((s) => s.name) as [string, ...string[]], {
                error: () =>
                  `use ${parts.sources
                    .map((s) => s.name)
                    .join(', ')
                    .replace(/, ([^,]*)$/, ' or $1')}`,
              })
              .register(settingBounds, {
                values: parts.sources.map((s) => `\`${s.name}\` (${s.summary})`).join(', '),
              }),
          ),
          /**
           * MX host names (each one of this certificate's names) whose TLSA records mailcerts keeps in step with the
           * key (DANE).
           * @default none
           * @values DNS names, as a YAML or JSON list
           */
          dane: z.optional(domainList),
        }),
      )
      .check(z.minLength(1, 'list at least one certificate')),
  });
export type ConfigFile = z.output<ReturnType<typeof fileSchema>>;
