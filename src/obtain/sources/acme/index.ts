import type { CertificateSource } from '../source.js';

/**
 * source: acme (the default): mailcerts makes the key and orders the certificate from the CA
 * (obtain/issuer.ts), one order per key type, renews it when due (plan/renewal.ts, ARI), and may
 * keep its key across renewals (ACME_REUSE_KEY, DANE). Its variables (ACME_*, HTTP01_*, DNS01_*)
 * are the central ones of config/env/ (ca.ts, http01.ts, dns01.ts …).
 */
export const acme: CertificateSource = {
  name: 'acme',
  summary: 'obtained from the CA',
  env: {},
  check(spec, at, problems) {
    // dns-01: its provider is checked with the others; HTTP-01 cannot answer for a wildcard.
    if (spec.challenge !== 'dns-01' && spec.domains.some((d) => d.startsWith('*.')))
      problems.push(`${at.domains}: wildcard names need the dns-01 challenge; HTTP-01 cannot validate "*." names`);
  },
  describe: () => 'ordered from the ACME CA',
};
