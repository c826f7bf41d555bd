import type { Logger } from '../../log.js';
import type { DnsProvider } from '../provider.js';
import { cloudflare } from './cloudflare/index.js';
import type { ProviderDefinition } from './definition.js';
import { rfc2136 } from './rfc2136/index.js';

/** Every DNS provider mailcerts can write records with; the first is the default of ACME_DNS_PROVIDER. */
export const DNS_PROVIDER_DEFINITIONS: readonly ProviderDefinition<unknown>[] = [cloudflare, rfc2136];
export type { ProviderDefinition } from './definition.js';

/** The configured providers, each made (and its SDK loaded) the first time it is asked for. */
export class DnsProviders {
  private readonly settings: Record<string, unknown>;
  private readonly log: Logger;
  private readonly made = new Map<string, Promise<DnsProvider>>();

  constructor(settings: Record<string, unknown>, log: Logger) {
    this.settings = settings;
    this.log = log;
  }

  /** Undefined when the provider is not configured. */
  get(name: string): Promise<DnsProvider> | undefined {
    const def = DNS_PROVIDER_DEFINITIONS.find((d) => d.name === name);
    const settings = this.settings[name];
    if (!def || settings === undefined) return undefined;
    const known = this.made.get(name);
    if (known) return known;
    const p = def.create(settings, this.log);
    this.made.set(name, p);
    return p;
  }

  async all(): Promise<Map<string, DnsProvider>> {
    const out = new Map<string, DnsProvider>();
    for (const name of Object.keys(this.settings)) {
      const p = this.get(name);
      if (p) out.set(name, await p);
    }
    return out;
  }
}
