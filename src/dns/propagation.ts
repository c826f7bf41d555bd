import { Resolver } from 'node:dns/promises';
import type { Logger } from '../log.js';
import { type Clock, systemClock } from '../util/clock.js';
import { UserError } from '../util/errors.js';
import { formatDuration } from '../util/duration.js';
import { poll } from '../util/retry.js';

import { type DnsRecordType, formatTlsa, normalizeValue } from './provider.js';
import { Cancelled } from '../util/error-codes.js';

/** Values that must all be answered at a name (others may be there too). */
export interface RecordExpectation {
  type: DnsRecordType;
  name: string;
  zone: string;
  values: string[];
}

/** Where the zone's authoritative name servers are, as addresses (IPv4 and IPv6), found through `bootstrap` (default: the system's resolvers). */
export async function authoritativeServers(zone: string, bootstrap?: string[]): Promise<string[]> {
  const resolver = new Resolver({ timeout: 3_000, tries: 2 });
  if (bootstrap) resolver.setServers(bootstrap);
  let hosts: string[];
  try {
    hosts = await resolver.resolveNs(zone);
  } catch (err) {
    throw new UserError(
      `cannot find the name servers of ${zone} (${(err as NodeJS.ErrnoException).code}); check the zone, or set DNS01_RESOLVERS to the addresses to ask`,
    );
  }
  const addresses = new Set<string>();
  for (const host of hosts) {
    for (const lookup of [resolver.resolve4(host), resolver.resolve6(host)]) {
      for (const a of await lookup.catch(() => [] as string[])) addresses.add(a.includes(':') ? `[${a}]:53` : a);
    }
  }
  if (addresses.size === 0)
    throw new UserError(`the name servers of ${zone} (${hosts.join(', ')}) have no addresses; set DNS01_RESOLVERS`);
  return [...addresses];
}

/** The values one server answers for a name, asked directly; a fresh resolver each time, so nothing is cached. */
export async function askRecords(server: string, type: DnsRecordType, name: string): Promise<string[] | string> {
  const resolver = new Resolver({ timeout: 2_000, tries: 1 });
  resolver.setServers([server]);
  try {
    if (type === 'TLSA') {
      return (await resolver.resolveTlsa(name)).map((r) =>
        formatTlsa({
          usage: r.certUsage,
          selector: r.selector,
          matchingType: r.match,
          data: Buffer.from(r.data).toString('hex'),
        }),
      );
    }
    return (await resolver.resolveTxt(name)).map((chunks) => chunks.join(''));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return code === 'ENODATA' || code === 'ENOTFOUND' ? [] : code;
  }
}

/** What a round of asking found missing: each name on each server that lacks a value, and why. */
async function missingRecords(expected: RecordExpectation[], servers: Map<string, string[]>): Promise<string[]> {
  const missing: string[] = [];
  for (const e of expected) {
    for (const server of servers.get(e.zone)!) {
      const answer = await askRecords(server, e.type, e.name);
      const lacking =
        typeof answer === 'string'
          ? e.values.length
          : e.values.filter((v) => !answer.includes(normalizeValue(e.type, v))).length;
      if (lacking > 0)
        missing.push(
          `${e.name} on ${server}${typeof answer === 'string' ? ` (${answer})` : ` (${lacking} of ${e.values.length} values missing)`}`,
        );
    }
  }
  return missing;
}

/** Waits between rounds of asking: short and growing, no fixed sleep. */
const PROPAGATION_BACKOFF = { initialMs: 500, factor: 1.5, maxMs: 5_000 };

/**
 * Waits until every server answers every expected value for each name. Servers are the zone's
 * authoritative ones unless `resolvers` replaces them.
 */
export async function waitForRecords(
  expected: RecordExpectation[],
  opts: {
    resolvers?: string[];
    bootstrap?: string[];
    timeoutMs: number;
    log: Logger;
    signal?: AbortSignal;
    step?: string;
    timeoutVariable?: string;
    clock?: Clock;
  },
): Promise<void> {
  const clock = opts.clock ?? systemClock;
  const step = opts.step ?? 'dns-01';
  const kinds = [...new Set(expected.map((e) => e.type))].join('/');
  const servers = new Map<string, string[]>();
  for (const e of expected) {
    if (!servers.has(e.zone))
      servers.set(e.zone, opts.resolvers ?? (await authoritativeServers(e.zone, opts.bootstrap)));
  }
  const started = clock.now();
  const r = await poll(() => missingRecords(expected, servers), {
    until: (missing) => missing.length === 0,
    backoff: PROPAGATION_BACKOFF,
    deadline: started + opts.timeoutMs,
    signal: opts.signal,
    clock,
    onWait: (missing) =>
      opts.log.info(
        { step, waiting: missing, elapsed: formatDuration(clock.now() - started) },
        `waiting for the ${kinds} records to propagate`,
      ),
  });
  if (r.ok) {
    opts.log.info(
      { step, names: expected.map((e) => e.name), rounds: r.attempts, waited: formatDuration(clock.now() - started) },
      `${kinds} records visible on every name server`,
    );
    return;
  }
  if (r.stopped === 'aborted') throw new Cancelled('propagation wait');
  throw new UserError(
    `${kinds} records not visible after ${formatDuration(clock.now() - started)}: ${r.value!.join('; ')}. Check the zone at the provider, or raise ${opts.timeoutVariable ?? 'DNS01_PROPAGATION_TIMEOUT'}`,
  );
}

/** The zone of a name: the nearest ancestor with NS records (when no provider says, as with DANE_PROVIDER=none). */
export async function zoneOfName(name: string, resolvers?: string[]): Promise<string> {
  const r = new Resolver({ timeout: 3_000, tries: 2 });
  if (resolvers) r.setServers(resolvers);
  const labels = name.split('.');
  for (let i = 0; i < labels.length - 1; i++) {
    const candidate = labels.slice(i).join('.');
    if ((await r.resolveNs(candidate).catch(() => [])).length > 0) return candidate;
  }
  return labels.slice(-2).join('.');
}
