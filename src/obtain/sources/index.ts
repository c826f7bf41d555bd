import type { CertificateSpec } from '../../config/schema.js';
import { acme } from './acme/index.js';
import { custom } from './custom/index.js';
import type { CertificateSource, SuppliedSource } from './source.js';
import { traefik } from './traefik/index.js';

export type { CertificateSource, SuppliedRead, SuppliedSource, Watched } from './source.js';

/** Every certificate source; the first that is chosen by no variable is the default. */
export const CERTIFICATE_SOURCES: readonly CertificateSource[] = [acme, custom, traefik];
export const SOURCE_NAMES = CERTIFICATE_SOURCES.map((s) => s.name);

export function sourceOf(spec: Pick<CertificateSpec, 'source'>): CertificateSource {
  const source = CERTIFICATE_SOURCES.find((s) => s.name === spec.source);
  if (!source) throw new Error(`certificate source "${spec.source}" is not known; use ${SOURCE_NAMES.join(', ')}`);
  return source;
}

/** The supplied side of a certificate's source; undefined when mailcerts orders it. */
export const suppliedSourceOf = (spec: Pick<CertificateSpec, 'source'>): SuppliedSource | undefined =>
  sourceOf(spec).supplied;

/** The certificate is taken whole from elsewhere (one run for its set), not ordered per key type. */
export const isSupplied = (spec: Pick<CertificateSpec, 'source'>): boolean => suppliedSourceOf(spec) !== undefined;

/** How status and logs say where a certificate comes from. */
export const describeSource = (spec: CertificateSpec): string => sourceOf(spec).describe(spec);

/** mailcerts orders the certificate and answers its challenge with a DNS provider (DNS-01). */
export const ordersByDns01 = (spec: Pick<CertificateSpec, 'source' | 'challenge'>): boolean =>
  !isSupplied(spec) && spec.challenge === 'dns-01';

/** The sources whose variable is set: each would take a certificate that names no source. */
export const chosenSources = (env: Record<string, unknown>): CertificateSource[] =>
  CERTIFICATE_SOURCES.filter((s) => s.chosenBy && env[s.chosenBy]);

/** The source of a certificate that names none: the first chosen by its variable, else the default. */
export const defaultSource = (env: Record<string, unknown>): CertificateSource =>
  chosenSources(env)[0] ?? CERTIFICATE_SOURCES.find((s) => !s.chosenBy)!;
