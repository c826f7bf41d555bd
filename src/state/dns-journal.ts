import { join } from 'node:path';
import pLimit from 'p-limit';
import * as z from 'zod/mini';
import type { Logger } from '../log.js';
import { readStateFile, writeJson } from './files.js';

/** A record mailcerts created (or is about to create) at a DNS provider. */
const JournalEntrySchema = z.object({
  provider: z.string(),
  zoneId: z.string(),
  zoneName: z.string(),
  /** Entries written before other record types existed are TXT challenge records. */
  type: z._default(z.enum(['TXT', 'TLSA']), 'TXT'),
  /**
   * challenge: removed once the validation is over, and swept at the next start when a run was
   * killed before. lasting (DANE's TLSA): kept, never swept as a leftover.
   */
  purpose: z._default(z.enum(['challenge', 'lasting']), 'challenge'),
  name: z.string(),
  value: z.string(),
  /** Known once the provider answered the create. */
  id: z.optional(z.string()),
  cert: z.string(),
  createdAt: z.string(),
});
export type JournalEntry = z.output<typeof JournalEntrySchema>;
const JournalSchema = z.object({ records: z.array(JournalEntrySchema) });

/**
 * STATE_DIR/dns-records.json: every challenge record is written here before it is created and
 * removed after it is deleted, so a killed process's leftovers are found and removed at the next start.
 */
export class DnsJournal {
  private readonly path: string;
  private readonly log?: Logger;
  private readonly oneWriter = pLimit(1);

  constructor(stateDir: string, log?: Logger) {
    this.path = join(stateDir, 'dns-records.json');
    this.log = log;
  }

  async list(): Promise<JournalEntry[]> {
    return (await readStateFile(this.path, JournalSchema, this.log))?.records ?? [];
  }

  /** Challenge records a killed run may have left behind. */
  async leftovers(): Promise<JournalEntry[]> {
    return (await this.list()).filter((r) => r.purpose === 'challenge');
  }

  private async save(records: JournalEntry[]): Promise<void> {
    await writeJson(this.path, { records });
  }

  async add(entry: JournalEntry): Promise<void> {
    await this.change((records) => [...records, entry]);
  }

  async setId(entry: JournalEntry, id: string): Promise<void> {
    await this.change((records) => records.map((r) => (same(r, entry) ? { ...r, id } : r)));
  }

  async remove(entry: JournalEntry): Promise<void> {
    await this.change((records) => records.filter((r) => !same(r, entry)));
  }

  /** Certificates are obtained concurrently: one read-modify-write of the journal at a time. */
  private change(edit: (records: JournalEntry[]) => JournalEntry[]): Promise<void> {
    return this.oneWriter(async () => this.save(edit(await this.list())));
  }
}

function same(a: JournalEntry, b: JournalEntry): boolean {
  return (
    a.provider === b.provider && a.zoneId === b.zoneId && a.type === b.type && a.name === b.name && a.value === b.value
  );
}
