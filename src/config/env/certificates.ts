import * as z from 'zod/mini';
import { challenge, keyTypes } from '../choices.js';
import { absolutePath, csv } from '../fields.js';
import { domainList } from '../names.js';

/**
 * The central variables of the `certificates` group: which certificates mailcerts keeps, and how the CA checks them.
 * Built when the configuration is read (envSchema in ../schema.ts), not kept.
 */
export const certificatesEnv = () => ({
  /**
   * Comma-separated names of one certificate. The first name also names it; `*.` becomes `wildcard.`. Use either
   * `ACME_DOMAINS` or `MAILCERTS_CONFIG`, not both.
   * @group certificates
   * @default (required)
   * @values DNS names, comma separated
   */
  ACME_DOMAINS: z.optional(z.pipe(csv, domainList)),
  /**
   * How the CA checks the names. Wildcard names need `dns-01`. See [DNS-01](dns-01.md).
   * @group certificates
   * @default http-01
   */
  ACME_CHALLENGE: z._default(challenge, 'http-01'),
  /**
   * The key type, or one ECDSA and one RSA for dual certificates, e.g. `ec-256,rsa-2048` (see [dual
   * keys](dual-keys.md)). Changing it renews what changed.
   * @group certificates
   * @default ec-256
   */
  ACME_KEY_TYPE: z._default(keyTypes, ['ec-256']),
  /**
   * Path of a YAML or JSON file that lists several certificates (see [the config
   * file](#the-mailcerts_config-file)).
   * @group certificates
   * @default none
   * @values an absolute path to a `.yml`, `.yaml` or `.json` file
   */
  MAILCERTS_CONFIG: z.optional(absolutePath('use an absolute path to a .yml, .yaml or .json file')),
});
