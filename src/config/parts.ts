import type * as z from 'zod/mini';
import type { CertificateSpec } from './types.js';

/**
 * What the configuration needs to know of the parts that bring settings of their own: each
 * certificate source (obtain/sources/<name>/) and each deploy mode (deploy/modes/<name>/). The
 * configuration does not import the parts, which sit above it: src/parts.ts hands their registries
 * in (loadConfig's `parts`). The DNS providers sit below config and are imported directly.
 */
export interface ConfigParts {
  /** Every certificate source; the first that is chosen by no variable is the default. */
  sources: readonly SourceDefinition[];
  /** Every deploy mode, the default (DEPLOY_MODE unset) first. */
  modes: readonly ModeDefinition[];
}

/** A certificate source as the configuration sees it. */
export interface SourceDefinition {
  /** Its value in a certificate's `source:`. */
  name: string;
  /** What it does, for the configuration page: "obtained from the CA". */
  summary: string;
  /** Its environment variables, each checked on its own. */
  env: Record<string, z.ZodMiniType>;
  /** For a certificate that names no source: this one when the variable is set (else the first without one). */
  chosenBy?: string;
  /** Its settings for one certificate, merged into the spec (each source declares its fields on CertificateSpec). */
  settings?(env: Record<string, unknown>, cert: { name: string; several: boolean }): Partial<CertificateSpec>;
  /** What is missing or wrong for one certificate of this source; `at` names the places to fix. */
  check?(spec: CertificateSpec, at: CheckPlaces, problems: string[]): void;
  /** Present for a source that supplies finished certificates; absent when mailcerts orders them. */
  supplied?: { takenAs: string };
}

/** Where a problem of one certificate is: its entry in MAILCERTS_CONFIG, or the variables. */
export interface CheckPlaces {
  env: Record<string, unknown>;
  /** "MAILCERTS_CONFIG certificates[1]" (also used without a file, where only env-chosen sources arise). */
  entry: string;
  /** Where its names are set: "MAILCERTS_CONFIG certificates[1].domains" or "ACME_DOMAINS". */
  domains: string;
}

/** A deploy mode as the configuration sees it. */
export interface ModeDefinition {
  /** Its DEPLOY_MODE value. */
  name: string;
  /** What it does, for DEPLOY_MODE's error: "a shared volume, containers reloaded through the Docker API". */
  summary: string;
  /** Its own environment variables, merged into the configuration's schema. */
  env?: Record<string, z.ZodMiniType>;
  /** Its settings from the parsed environment, merged into config.docker (declared there by augmenting DockerConfig). */
  settings?(env: Record<string, unknown>): Record<string, unknown>;
  /** What is missing or contradictory in the environment when this mode is chosen. */
  check?(env: Record<string, unknown>, where: { inContainer: boolean }, problems: string[]): void;
}

/** The source named `name`; the schema has already refused any other. */
export function sourceNamed(parts: ConfigParts, name: string): SourceDefinition {
  const source = parts.sources.find((s) => s.name === name);
  if (!source) throw new Error(`certificate source "${name}" is not known`);
  return source;
}

/** The sources whose variable is set: each would take a certificate that names no source. */
export const chosenSources = (parts: ConfigParts, env: Record<string, unknown>): SourceDefinition[] =>
  parts.sources.filter((s) => s.chosenBy && env[s.chosenBy]);

/** The source of a certificate that names none: the first chosen by its variable, else the default. */
export const defaultSource = (parts: ConfigParts, env: Record<string, unknown>): SourceDefinition =>
  chosenSources(parts, env)[0] ?? parts.sources.find((s) => !s.chosenBy)!;
