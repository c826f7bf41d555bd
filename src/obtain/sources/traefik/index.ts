import { resolve } from 'node:path';
import { absolutePath, bool } from '../../../config/fields.js';
import * as z from 'zod/mini';
import type { CertificateSource } from '../source.js';

declare module '../../../config/types.js' {
  interface CertificateSpec {
    /** source: traefik: the acme.json it is taken from, and how. */
    traefik?: { file: string; resolver?: string; verifyChain: boolean };
  }
}

/**
 * source: traefik: the certificate Traefik obtained for the names, taken from its acme.json
 * (mounted read-only), checked as an issued one, and published again each time Traefik renews it.
 */
export const traefik: CertificateSource = {
  name: 'traefik',
  summary: "taken from Traefik's `acme.json`",
  env: {
    /**
     * Traefik's `acme.json`, mounted read-only: the certificate comes from Traefik; with `MAILCERTS_CONFIG`, for each
     * certificate with `source: traefik`.
     * @group supplied
     * @default none
     * @values an absolute path
     */
    TRAEFIK_ACME_JSON: z.optional(
      absolutePath(
        "use the absolute path at which Traefik's acme.json is mounted (read-only), such as /traefik/acme.json",
      ),
    ),
    /**
     * Only this Traefik certificate resolver's entries.
     * @group supplied
     * @default any
     * @values a resolver name from Traefik's configuration
     */
    TRAEFIK_RESOLVER: z.optional(
      z
        .string()
        .check(
          z.regex(
            /^[A-Za-z0-9._-]{1,64}$/,
            "use the name of a certificate resolver from Traefik's configuration (certificatesResolvers.NAME)",
          ),
        ),
    ),
    /**
     * An entry of acme.json is taken only if its chain leads to a root Node trusts: its bundled roots plus
     * `NODE_EXTRA_CA_CERTS`. `false` is for a private ACME CA whose root you do not give in `NODE_EXTRA_CA_CERTS`:
     * the chain's signatures, the key, the names and the dates are still checked, not who issued it.
     * @group supplied
     * @default true
     */
    TRAEFIK_VERIFY_CHAIN: z._default(bool, true),
  },
  chosenBy: 'TRAEFIK_ACME_JSON',
  settings(env) {
    const file = env.TRAEFIK_ACME_JSON as string | undefined;
    // Normalized: the watcher reports the path so, and compares it with this one.
    return {
      traefik: file
        ? {
            file: resolve(file),
            resolver: env.TRAEFIK_RESOLVER as string | undefined,
            verifyChain: env.TRAEFIK_VERIFY_CHAIN as boolean,
          }
        : undefined,
    };
  },
  check(_spec, at, problems) {
    if (!at.env.TRAEFIK_ACME_JSON)
      problems.push(
        `${at.entry}.source: traefik needs TRAEFIK_ACME_JSON, the path of Traefik's acme.json mounted read-only`,
      );
  },
  describe: (spec) => `from Traefik's acme.json (${spec.traefik?.file})`,
  supplied: {
    read: async (spec, ctx) => (await import('./read.js')).readFromTraefik(spec, ctx),
    renewal: () => 'Traefik renews it, mailcerts publishes each new one',
    rejected: 'this certificate from Traefik was rolled back; mailcerts waits for Traefik to renew it',
    takenAs: 'taken from Traefik (TRAEFIK_ACME_JSON)',
    published: 'published the certificate from Traefik',
    origin: (spec) => spec.traefik?.file,
    // Rewritten in place when Traefik renews; every certificate taken from it.
    watch: (spec) => (spec.traefik ? { file: spec.traefik.file, what: "Traefik's acme.json" } : undefined),
  },
};
