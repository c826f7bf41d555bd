import * as z from 'zod/mini';
import { DNS_PROVIDER_DEFINITIONS } from '../../dns/providers/index.js';
import { DNS_PROVIDERS, dnsProvider } from '../choices.js';
import { csvOf, duration, resolverProblem } from '../fields.js';

/**
 * The central variables of the `dns01` group: TXT records at _acme-challenge.NAME; each DNS provider brings its own variables.
 * Built when the configuration is read (envSchema in ../schema.ts), not kept.
 */
export const dns01Env = () => ({
  /**
   * DNS provider for `dns-01`: each has its section below, with its own variables (see [DNS-01](dns-01.md)).
   * @group dns01
   * @default cloudflare
   */
  ACME_DNS_PROVIDER: z._default(dnsProvider, DNS_PROVIDERS[0]!),
  // Each DNS provider's own variables (dns/providers/<name>/index.ts).
  ...(Object.assign({}, ...DNS_PROVIDER_DEFINITIONS.map((d) => d.env)) as Record<string, z.ZodMiniType>),
  /**
   * Name servers to ask for the records instead.
   * @group dns01
   * @default each zone's authoritative servers
   * @values `ip[:port]` / `[ipv6]:port`, comma separated
   */
  DNS01_RESOLVERS: z.optional(csvOf(resolverProblem)),
  /**
   * How long to wait for the TXT records before giving up.
   * @group dns01
   * @default 180s
   */
  DNS01_PROPAGATION_TIMEOUT: z._default(duration(5_000, 3_600_000, '180s'), 180_000),
});
