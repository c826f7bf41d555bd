import { join } from 'node:path';
import { readJson, writeJson } from './files.js';

/** A challenge record mailcerts created (or is about to create) at a DNS provider. */
export interface JournalEntry {
  provider: string;
  zoneId: string;
  zoneName: string;
  name: string;
  value: string;
  /** Known once the provider answered the create. */
  id?: string;
  cert: string;
  createdAt: string;
}

/**
 * STATE_DIR/dns-records.json: every challenge record is written here before it is created and
 * removed after it is deleted, so a killed process's leftovers are found and removed at the next start.
 */
export class DnsJournal {
  private readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, 'dns-records.json');
  }

  async list(): Promise<JournalEntry[]> {
    return (await readJson<{ records: JournalEntry[] }>(this.path))?.records ?? [];
  }

  private async save(records: JournalEntry[]): Promise<void> {
    await writeJson(this.path, { records });
  }

  async add(entry: JournalEntry): Promise<void> {
    await this.save([...(await this.list()), entry]);
  }

  async setId(entry: JournalEntry, id: string): Promise<void> {
    const records = await this.list();
    const found = records.find((r) => same(r, entry));
    if (found) found.id = id;
    await this.save(records);
  }

  async remove(entry: JournalEntry): Promise<void> {
    await this.save((await this.list()).filter((r) => !same(r, entry)));
  }
}

function same(a: JournalEntry, b: JournalEntry): boolean {
  return a.provider === b.provider && a.zoneId === b.zoneId && a.name === b.name && a.value === b.value;
}
