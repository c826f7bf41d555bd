import * as z from 'zod/mini';
import { DNS_PROVIDERS } from '../choices.js';
import { csv, csvOf, duration, PORT_MESSAGE, resolverProblem } from '../fields.js';
import { domainList } from '../names.js';

/**
 * The central variables of the `dane` group: TLSA records kept in step with the key.
 * Built when the configuration is read (envSchema in ../schema.ts), not kept.
 */
export const daneEnv = () => ({
  /**
   * MX host names (each one of the certificate's names) whose TLSA records mailcerts keeps in step with the key;
   * per certificate in the config file as `dane: [mx.example.com]`.
   * @group dane
   * @default none
   * @values DNS names, comma separated
   */
  DANE_NAMES: z.optional(z.pipe(csv, domainList)),
  /**
   * Ports with a TLSA RRset at `_PORT._tcp.NAME`, e.g. `25,465`.
   * @group dane
   * @default 25
   * @values port numbers from 1 to 65535, comma separated
   */
  DANE_PORTS: z._default(
    z.pipe(
      csv,
      z.array(
        z.pipe(
          z.pipe(z.string().check(z.regex(/^\d{1,5}$/, 'use port numbers such as 25 or 25,465')), z.transform(Number)),
          z.int().check(z.gte(1, PORT_MESSAGE), z.lte(65535, PORT_MESSAGE)),
        ),
      ),
    ),
    [25],
  ),
  // Short TTLs are for tests and labs; a resolver may still keep an RRset longer than asked.
  /**
   * The TLSA RRset's TTL. A rollover waits twice this after the next key's record is answered everywhere.
   * Cloudflare: at least 60 s.
   * @group dane
   * @default 3600s
   */
  DANE_TTL: z._default(duration(1_000, 86_400_000, '3600s'), 3_600_000),
  /**
   * The DNS provider that writes the TLSA records, or `none` to publish them by hand (`mailcerts dane` prints
   * them).
   * @group dane
   * @default the certificate's DNS-01 provider
   */
  DANE_PROVIDER: z.optional(
    z.enum(['none', ...DNS_PROVIDERS] as [string, ...string[]], {
      error: () => `use one of ${DNS_PROVIDERS.join(', ')}, or none to publish the records by hand`,
    }),
  ),
  /**
   * A key older than this is rolled over.
   * @group dane
   * @default 365d
   */
  DANE_KEY_LIFETIME: z._default(duration(86_400_000, 10 * 365 * 86_400_000, '365d'), 365 * 86_400_000),
  /**
   * Validating resolvers, such as the one your senders' side would use: the burn-in then counts only answers they
   * give with the DNSSEC AD bit.
   * @group dane
   * @default none
   * @values `ip[:port]`, comma separated
   */
  DANE_RESOLVER: z.optional(csvOf(resolverProblem)),
});
