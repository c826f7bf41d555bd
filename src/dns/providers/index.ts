import { cloudflare } from './cloudflare/index.js';
import type { ProviderDefinition } from './definition.js';
import { rfc2136 } from './rfc2136/index.js';

/** Every DNS provider mailcerts can write records with; the first is the default of ACME_DNS_PROVIDER. */
export const DNS_PROVIDER_DEFINITIONS: readonly ProviderDefinition<unknown>[] = [cloudflare, rfc2136];
export type { ProviderDefinition } from './definition.js';
