import type * as z from 'zod/mini';
import type { Logger } from '../../log.js';
import type { DnsProvider } from '../provider.js';

/**
 * Everything mailcerts knows of one DNS provider, in its own folder: its variables (merged into
 * the configuration's schema), which of them are secrets, how its settings are read and checked,
 * and how it is made (its SDK loads only then). Adding a provider is one folder and one line in
 * providers/index.ts.
 */
export interface ProviderDefinition<S = unknown> {
  name: string;
  /** Its heading on the configuration page and in docs/dns-01.md: "Cloudflare", "Your own name server". */
  title: string;
  /** Its environment variables, each checked on its own. */
  env: Record<string, z.ZodMiniType>;
  /** The shortest TTL the provider accepts, in seconds (DANE's burn-in is counted in it). */
  minTtlSeconds?: number;
  /** Variables whose values are secrets: never logged, never echoed in an error. */
  secrets: readonly string[];
  /**
   * Its settings from the parsed environment, or undefined when it is not configured; `problems`
   * gets what is missing or contradictory. `used`: a certificate names this provider.
   */
  settings(env: Record<string, unknown>, used: boolean, problems: string[]): S | undefined;
  create(settings: S, log: Logger): Promise<DnsProvider>;
}
