/**
 * Makes the provider hold the wanted TLSA values at each owner name, as far as mailcerts wrote
 * them: missing ones are created (journaled as lasting records); ours that are neither wanted nor
 * kept are deleted. Records someone else put there are left alone.
 */
import type { CertificateSpec, DaneSpec } from '../config/schema.js';
import { type DnsProvider, normalizeValue } from '../dns/provider.js';
import type { Logger } from '../log.js';
import { DnsJournal } from '../state/dns-journal.js';
import { tlsaOwners } from './plan.js';

/**
 * `keep`: values never deleted here though not written either (the key in CERTS_DIR, whoever
 * made it: containers may serve it). Returns how many records were created.
 */
export async function writeRecords(
  spec: CertificateSpec,
  dane: DaneSpec,
  provider: DnsProvider,
  values: { wanted: string[]; keep: string[] },
  ctx: { stateDir: string; log: Logger },
): Promise<number> {
  let created = 0;
  const journal = new DnsJournal(ctx.stateDir, ctx.log);
  const ours = (await journal.list()).filter(
    (e) => e.purpose === 'lasting' && e.type === 'TLSA' && e.cert === spec.name && e.provider === provider.name,
  );
  for (const owner of tlsaOwners(dane.names, dane.ports)) {
    const zone = await provider.zoneFor(owner);
    const present = await provider.list(zone, 'TLSA', owner);
    for (const value of values.wanted) {
      if (present.some((p) => p.record.value === normalizeValue('TLSA', value))) continue;
      const entry = {
        provider: provider.name,
        zoneId: zone.id,
        zoneName: zone.name,
        type: 'TLSA' as const,
        purpose: 'lasting' as const,
        name: owner,
        value,
        cert: spec.name,
        createdAt: new Date().toISOString(),
      };
      await journal.add(entry);
      const id = await provider.create(zone, { type: 'TLSA', name: owner, value, ttl: dane.ttlSeconds });
      await journal.setId(entry, id);
      created++;
      ctx.log.info({ step: 'dane', cert: spec.name, record: owner, value }, 'TLSA record created');
    }
    for (const entry of ours.filter(
      (e) => e.name === owner && !values.wanted.includes(e.value) && !values.keep.includes(e.value),
    )) {
      for (const p of present.filter((r) => r.record.value === entry.value)) await provider.delete(zone, p.id);
      await journal.remove(entry);
      ctx.log.info(
        { step: 'dane', cert: spec.name, record: owner, value: entry.value },
        'TLSA record of a retired key deleted',
      );
    }
  }
  return created;
}
