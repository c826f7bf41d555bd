import { DNS_PROVIDER_DEFINITIONS } from '../dns/providers/index.js';
import { reservedNameProblem } from '../util/cert-files.js';
import { type ConfigParts, chosenSources, defaultSource, sourceNamed } from './parts.js';
import { type CertificateSpec, type ConfigFile, type DaneSpec, defaultCertName, type Env } from './schema.js';

/**
 * The certificates of the configuration: from MAILCERTS_CONFIG, or the one of ACME_DOMAINS, each
 * with its source's settings (obtain/sources/<name>/index.ts) and checked; problems are collected.
 */
export function certificatesOf(
  parts: ConfigParts,
  e: Env,
  file: ConfigFile | undefined,
  problems: string[],
): CertificateSpec[] {
  const env = e as Record<string, unknown>;
  // DANE_PROVIDER, or the certificate's own DNS-01 provider; '' when neither (reported below).
  const daneOf = (names: string[], dnsProvider: string | undefined): DaneSpec => ({
    names,
    ports: [...new Set(e.DANE_PORTS)],
    ttlSeconds: Math.round(e.DANE_TTL / 1000),
    provider: e.DANE_PROVIDER ?? dnsProvider ?? '',
    keyLifetimeMs: e.DANE_KEY_LIFETIME,
    resolvers: e.DANE_RESOLVER,
  });
  const chosen = chosenSources(parts, env);
  if (!file && chosen.length > 1)
    problems.push(
      `${chosen[1]!.chosenBy}: set either ${chosen.map((s) => s.chosenBy).join(' or ')} for the certificate, not both (or list the certificates in MAILCERTS_CONFIG with a source each)`,
    );
  const several = (file?.certificates.length ?? 1) > 1;
  const entries = file
    ? file.certificates
    : [{ domains: e.ACME_DOMAINS!, name: undefined, source: undefined, dane: e.DANE_NAMES, ...noOverrides }];
  const certificates = entries.map((c): CertificateSpec => {
    const name = c.name ?? defaultCertName(c.domains);
    const from = sourceNamed(parts, c.source ?? defaultSource(parts, env).name);
    const challenge = c.challenge ?? e.ACME_CHALLENGE;
    const dnsProvider = challenge === 'dns-01' ? (c.dnsProvider ?? e.ACME_DNS_PROVIDER) : undefined;
    return {
      source: from.name,
      ...from.settings?.(env, { name, several }),
      name,
      domains: c.domains,
      keyTypes: c.keyType ?? e.ACME_KEY_TYPE,
      challenge,
      dnsProvider,
      dane: c.dane && daneOf(c.dane, dnsProvider),
    };
  });
  if (file && e.DANE_NAMES)
    problems.push('DANE_NAMES: with MAILCERTS_CONFIG, list the DANE names per certificate (dane: [mx.example.com])');
  checkCertificates(parts, certificates, env, !!file, problems);
  checkDane(parts, certificates, !!file, problems);
  return certificates;
}

/** The fields a certificate of ACME_DOMAINS takes from the environment alone. */
const noOverrides = { keyType: undefined, challenge: undefined, dnsProvider: undefined };

/** Names used twice, names that collide with the layout, a domain in two certificates, and each source's own checks. */
function checkCertificates(
  parts: ConfigParts,
  certificates: CertificateSpec[],
  env: Record<string, unknown>,
  file: boolean,
  problems: string[],
): void {
  const several = certificates.length > 1;
  const seen = new Set<string>();
  const owners = new Map<string, number>();
  certificates.forEach((c, i) => {
    const entry = `MAILCERTS_CONFIG certificates[${i}]`;
    if (seen.has(c.name)) problems.push(`${entry}.name: "${c.name}" is used twice; give each certificate its own name`);
    seen.add(c.name);
    const reserved = several ? reservedNameProblem(c.name) : undefined;
    if (reserved) problems.push(`${entry}.name: ${reserved}`);
    // SNI picks the certificate by name: a name can belong to one certificate only.
    c.domains.forEach((d, j) => {
      const owner = owners.get(d);
      if (owner !== undefined) {
        problems.push(
          `${entry}.domains[${j}]: "${d}" is also in certificates[${owner}] ("${certificates[owner]!.name}"); a client asking for a name by SNI can get one certificate only: list each name once`,
        );
      } else {
        owners.set(d, i);
      }
    });
    sourceNamed(parts, c.source).check?.(
      c,
      { env, entry, domains: file ? `${entry}.domains` : 'ACME_DOMAINS' },
      problems,
    );
  });
}

/** DANE: an ordered source, names of the certificate, a TTL the provider takes, a provider that writes the records. */
function checkDane(parts: ConfigParts, certificates: CertificateSpec[], file: boolean, problems: string[]): void {
  certificates.forEach((c, i) => {
    if (!c.dane) return;
    const where = file ? `MAILCERTS_CONFIG certificates[${i}].dane` : 'DANE_NAMES';
    const supplied = sourceNamed(parts, c.source).supplied;
    if (supplied)
      problems.push(
        `${where}: DANE needs a key that mailcerts controls and rolls over; "${c.name}" is ${supplied.takenAs}: publish its TLSA records yourself, or let mailcerts obtain it`,
      );
    for (const n of c.dane.names) {
      if (n.startsWith('*.'))
        problems.push(`${where}: "${n}" is a wildcard; TLSA records name the MX host itself, such as mx.example.com`);
      else if (!c.domains.includes(n))
        problems.push(
          `${where}: "${n}" is not one of the names of "${c.name}" (${c.domains.join(', ')}); a DANE name must be in the certificate`,
        );
    }
    const min = DNS_PROVIDER_DEFINITIONS.find((d) => d.name === c.dane!.provider)?.minTtlSeconds;
    if (min && c.dane.ttlSeconds < min)
      problems.push(
        `DANE_TTL: ${c.dane.provider} takes no TTL below ${min} s, and the rollover waits twice the real TTL: set DANE_TTL to ${min}s or more`,
      );
    if (!c.dane.provider)
      problems.push(
        `DANE_PROVIDER: "${c.name}" uses ${c.challenge}, so no DNS provider writes its TLSA records: set DANE_PROVIDER to ${DNS_PROVIDER_DEFINITIONS.map((d) => d.name).join(' or ')}, or to none to publish them by hand`,
      );
  });
}

/** The DNS providers the certificates use (DNS-01 orders, DANE records): each of them must be configured in full. */
export function usedDnsProviders(parts: ConfigParts, certificates: CertificateSpec[]): Set<string | undefined> {
  return new Set([
    ...certificates
      .filter((c) => c.challenge === 'dns-01' && !sourceNamed(parts, c.source).supplied)
      .map((c) => c.dnsProvider),
    ...certificates.map((c) => c.dane?.provider).filter((p) => p && p !== 'none'),
  ]);
}
