/**
 * What the authoritative servers answer for a DANE certificate's TLSA records: asked directly,
 * each server on its own, by the DANE step (before and after the orders) and by `mailcerts dane`.
 */
import type { Config } from '../config/schema.js';
import { askRecords, authoritativeServers, zoneOfName } from '../dns/propagation.js';
import type { DnsProvider } from '../dns/provider.js';

/** What each authoritative server answers at each owner name; a string is an error. */
export type Answers = Map<string, Map<string, string[] | string>>;

async function serversFor(provider: DnsProvider | undefined, owner: string, config: Config): Promise<string[]> {
  if (config.dns.resolvers) return config.dns.resolvers;
  const zone = provider ? (await provider.zoneFor(owner)).name : await zoneOfName(owner);
  return authoritativeServers(zone);
}

export async function ask(owners: string[], provider: DnsProvider | undefined, config: Config): Promise<Answers> {
  const answers: Answers = new Map();
  for (const owner of owners) {
    const byServer = new Map<string, string[] | string>();
    for (const server of await serversFor(provider, owner, config)) byServer.set(server, await askRecords(server, 'TLSA', owner));
    answers.set(owner, byServer);
  }
  return answers;
}

/** Owner names and servers where some wanted value is not answered. */
export function missingIn(answers: Answers, wanted: string[]): string[] {
  const missing: string[] = [];
  for (const [owner, byServer] of answers) {
    for (const [server, got] of byServer) {
      const lacking = typeof got === 'string' ? wanted : wanted.filter((w) => !got.includes(w));
      if (lacking.length > 0) missing.push(`${owner} on ${server}${typeof got === 'string' ? ` (${got})` : ` (${lacking.length} of ${wanted.length} missing)`}`);
    }
  }
  return missing;
}
