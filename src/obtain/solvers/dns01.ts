import type { Logger } from '../../log.js';
import type { DnsJournal, JournalEntry } from '../../state/dns-journal.js';
import { errorMessage } from '../../util/errors.js';
import { type RecordExpectation, waitForRecords } from '../../dns/propagation.js';
import { type DnsProvider, findRecord } from '../../dns/provider.js';
import type { ChallengeItem, ChallengeSolver } from './types.js';

/** Short: a challenge record lives minutes, and a resolver must not keep an old value longer. */
const CHALLENGE_TTL = 60;

export function recordName(domain: string): string {
  return `_acme-challenge.${domain.replace(/^\*\./, '')}`;
}

/**
 * DNS-01: one TXT record per challenge under _acme-challenge.<name> (apex and wildcard share the
 * name, so both values exist together), proven on the zone's name servers before the CA is asked,
 * deleted by id afterwards. Every record is journaled so a crash's leftovers are removed later.
 */
export class Dns01Solver implements ChallengeSolver {
  readonly type = 'dns-01' as const;
  private readonly provider: DnsProvider;
  private readonly journal: DnsJournal;
  private readonly resolvers?: string[];
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private readonly cert: string;
  private readonly made = new Map<string, JournalEntry>();

  constructor(opts: {
    provider: DnsProvider;
    journal: DnsJournal;
    resolvers?: string[];
    propagationTimeoutMs: number;
    log: Logger;
    cert: string;
  }) {
    this.provider = opts.provider;
    this.journal = opts.journal;
    this.resolvers = opts.resolvers;
    this.timeoutMs = opts.propagationTimeoutMs;
    this.log = opts.log.child({ solver: `dns-01-${opts.provider.name}` });
    this.cert = opts.cert;
  }

  async preflight(domains: string[]): Promise<string> {
    return (await this.provider.preflight(domains)).proven;
  }

  async begin(): Promise<void> {}

  async prepare(items: ChallengeItem[], signal?: AbortSignal): Promise<void> {
    const expected = new Map<string, RecordExpectation>();
    for (const item of items) {
      const name = recordName(item.domain);
      const zone = await this.provider.zoneFor(item.domain);
      const entry: JournalEntry = {
        provider: this.provider.name,
        zoneId: zone.id,
        zoneName: zone.name,
        type: 'TXT',
        purpose: 'challenge',
        name,
        value: item.keyAuthorization,
        cert: this.cert,
        createdAt: new Date().toISOString(),
      };
      await this.journal.add(entry); // before the create: a crash right after it still leaves a trace
      this.made.set(item.token, entry);
      const id = await this.provider.create(zone, {
        type: 'TXT',
        name,
        value: item.keyAuthorization,
        ttl: CHALLENGE_TTL,
      });
      entry.id = id;
      await this.journal.setId(entry, id);
      this.log.info(
        { step: 'dns-01', domain: item.domain, record: name, zone: zone.name, wildcard: item.wildcard || undefined },
        'TXT record created',
      );
      const e = expected.get(name) ?? { type: 'TXT', name, zone: zone.name, values: [] };
      e.values.push(item.keyAuthorization);
      expected.set(name, e);
    }
    await waitForRecords([...expected.values()], {
      resolvers: this.resolvers,
      timeoutMs: this.timeoutMs,
      log: this.log,
      signal,
    });
  }

  async cleanup(items: ChallengeItem[]): Promise<void> {
    for (const item of items) {
      const entry = this.made.get(item.token);
      if (!entry) continue;
      this.made.delete(item.token);
      await removeRecord(this.provider, this.journal, entry, this.log);
    }
  }

  async end(): Promise<void> {}
}

/** Deletes one journaled record; on failure the entry stays for the next start. */
async function removeRecord(
  provider: DnsProvider,
  journal: DnsJournal,
  entry: JournalEntry,
  log: Logger,
): Promise<boolean> {
  const zone = { id: entry.zoneId, name: entry.zoneName };
  try {
    const ids = entry.id
      ? [entry.id]
      : await findRecord(provider, zone, { type: entry.type, name: entry.name, value: entry.value });
    for (const id of ids) await provider.delete(zone, id);
    await journal.remove(entry);
    log.info({ step: 'dns-01', record: entry.name, zone: entry.zoneName }, 'TXT record deleted');
    return true;
  } catch (err) {
    log.warn(
      { step: 'dns-01', record: entry.name, zone: entry.zoneName, error: errorMessage(err) },
      'could not delete a TXT record; will retry at the next start',
    );
    return false;
  }
}

/** Removes records journaled by an earlier run that did not clean up (killed, crashed). */
export async function removeLeftoverRecords(
  providers: Map<string, DnsProvider>,
  journal: DnsJournal,
  log: Logger,
): Promise<void> {
  for (const entry of await journal.leftovers()) {
    const provider = providers.get(entry.provider);
    if (!provider) {
      log.warn(
        { step: 'dns-01', record: entry.name, provider: entry.provider },
        'a leftover TXT record belongs to a provider that is no longer configured; delete it by hand',
      );
      continue;
    }
    log.info(
      { step: 'dns-01', record: entry.name, zone: entry.zoneName, cert: entry.cert },
      'removing a TXT record left by an earlier run',
    );
    await removeRecord(provider, journal, entry, log);
  }
}
