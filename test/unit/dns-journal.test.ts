import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DnsProvider, DnsRecord, DnsZone } from '../../src/dns/provider.js';
import { removeLeftoverRecords } from '../../src/obtain/solvers/dns01.js';
import { DnsJournal } from '../../src/state/dns-journal.js';
import { captureLog } from '../helpers/fakes.js';

/** A provider that only records what it is asked to delete. */
function recordingProvider(): DnsProvider & { deleted: string[] } {
  const deleted: string[] = [];
  return {
    name: 'rfc2136',
    deleted,
    preflight: async () => ({ zones: [], proven: '' }),
    zoneFor: async (name: string): Promise<DnsZone> => ({ id: name, name }),
    create: async (_z: DnsZone, r: DnsRecord) => r.name,
    delete: async (_z: DnsZone, id: string) => void deleted.push(id),
    list: async () => [],
  };
}

describe('the DNS record journal', () => {
  it('reads entries from before record types (TXT challenges), and sweeps only challenge records, never a lasting TLSA record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailcerts-journal-'));
    const old = {
      provider: 'rfc2136',
      zoneId: 'example.com',
      zoneName: 'example.com',
      name: '_acme-challenge.example.com',
      value: 'v1',
      id: 'old-id',
      cert: 'mail',
      createdAt: '2026-11-01T00:00:00.000Z',
    };
    const tlsa = {
      ...old,
      type: 'TLSA',
      purpose: 'lasting',
      name: '_25._tcp.mx.example.com',
      value: `3 1 1 ${'ab'.repeat(32)}`,
      id: 'tlsa-id',
    };
    writeFileSync(join(dir, 'dns-records.json'), JSON.stringify({ records: [old, tlsa] }));
    const journal = new DnsJournal(dir);
    expect(await journal.leftovers()).toEqual([{ ...old, type: 'TXT', purpose: 'challenge' }]);
    const provider = recordingProvider();
    await removeLeftoverRecords(new Map([['rfc2136', provider]]), journal, captureLog().log);
    expect(provider.deleted).toEqual(['old-id']);
    expect(JSON.parse(readFileSync(join(dir, 'dns-records.json'), 'utf8')).records).toEqual([tlsa]);
  });
});
