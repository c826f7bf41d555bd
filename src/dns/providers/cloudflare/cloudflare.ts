import Cloudflare, { APIConnectionError, APIError } from 'cloudflare';
import type { Logger } from '../../../log.js';
import { type Clock, systemClock } from '../../../util/clock.js';
import { UserError } from '../../../util/errors.js';
import { retry } from '../../../util/retry.js';
import { parseRetryAfter } from '../../../util/retry-after.js';
import {
  type DnsProvider,
  type DnsRecord,
  type DnsRecordType,
  type DnsZone,
  findRecord,
  formatTlsa,
  parseTlsa,
  zoneOf,
} from '../../provider.js';

const MIN_TTL = 60; // Cloudflare's minimum outside Enterprise plans
const COMMENT: Record<DnsRecordType, string> = { TXT: 'mailcerts ACME challenge', TLSA: 'mailcerts DANE' };
const RETRIES = 3;
const RETRY_AFTER_CAP_MS = 30_000;

export interface CloudflareOptions {
  apiToken: string;
  zoneId?: string;
  baseUrl?: string;
  log: Logger;
  /** How retries wait (a test's fake clock). */
  clock?: Clock;
}

type ZoneInfo = DnsZone & { permissions?: string[] };

function codes(err: APIError): string {
  const list = (err.errors ?? []) as { code?: number; message?: string }[];
  return list.map((e) => `code ${e.code}: ${e.message}`).join('; ') || `HTTP ${err.status}`;
}

const transient = (err: unknown): boolean =>
  err instanceof APIConnectionError || (err instanceof APIError && (err.status === 429 || (err.status ?? 0) >= 500));

function hasCode(err: unknown, ...wanted: number[]): boolean {
  return (
    err instanceof APIError &&
    ((err.errors ?? []) as { code?: number }[]).some((e) => e.code !== undefined && wanted.includes(e.code))
  );
}

/** Cloudflare DNS through the official SDK: zone lookup, records created, listed and deleted by id, preflight of the token. */
export class CloudflareDns implements DnsProvider {
  readonly name = 'cloudflare';
  private readonly cf: Cloudflare;
  private readonly zoneId?: string;
  private readonly log: Logger;
  private readonly where: string;
  private readonly clock: Clock;
  private zones: ZoneInfo[] | undefined;

  constructor(opts: CloudflareOptions) {
    this.zoneId = opts.zoneId;
    this.log = opts.log.child({ provider: 'cloudflare' });
    this.where = opts.baseUrl ?? 'https://api.cloudflare.com/client/v4';
    this.clock = opts.clock ?? systemClock;
    this.cf = new Cloudflare({
      apiToken: opts.apiToken,
      apiKey: null,
      apiEmail: null,
      baseURL: this.where,
      maxRetries: 0, // retried here, with the wait capped and the error classified
      timeout: 30_000,
      logLevel: 'off',
    });
  }

  /** One API call: transient failures (429, 5xx, network) are retried; permanent ones explain what to change. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await retry(fn, {
        attempts: RETRIES + 1,
        backoff: { initialMs: 500, maxMs: RETRY_AFTER_CAP_MS },
        retryIf: transient,
        retryAfter: (err) => parseRetryAfter(err instanceof APIError ? err.headers?.get('retry-after') : undefined),
        maxRetryAfterMs: RETRY_AFTER_CAP_MS,
        clock: this.clock,
        onRetry: (err, wait) =>
          this.log.warn(
            { step: 'dns-01', call: what, status: err instanceof APIError ? err.status : 'network', retryIn: wait },
            'Cloudflare call failed; retrying',
          ),
      });
    } catch (err) {
      throw this.explain(what, err);
    }
  }

  private explain(what: string, err: unknown): Error {
    const explained = this.explainText(what, err);
    return explained ? new UserError(explained, { cause: err }) : err instanceof Error ? err : new Error(String(err));
  }

  private explainText(what: string, err: unknown): string | undefined {
    if (err instanceof APIConnectionError)
      return `Cloudflare: ${what}: cannot reach ${this.where} (${err.message}); check the network or CLOUDFLARE_API_BASE_URL`;
    if (!(err instanceof APIError)) return undefined;
    if (err.status === 429) return `Cloudflare: ${what}: rate limited (${codes(err)}); mailcerts retries later`;
    if ((err.status ?? 0) >= 500)
      return `Cloudflare: ${what}: Cloudflare failed (${codes(err)}); mailcerts retries later`;
    if (hasCode(err, 1000, 6003, 6111))
      return `Cloudflare: ${what}: the API token is not valid (${codes(err)}); check CLOUDFLARE_API_TOKEN (an API token, not the Global API Key)`;
    if (hasCode(err, 9109, 10000, 9106) || err.status === 401 || err.status === 403) {
      return `Cloudflare: ${what}: the API token is not allowed to do this (${codes(err)}); give it Zone:Read and DNS:Edit on the zone`;
    }
    return `Cloudflare: ${what}: ${codes(err)}`;
  }

  private async loadZones(): Promise<ZoneInfo[]> {
    if (this.zones) return this.zones;
    const zones: ZoneInfo[] = [];
    if (this.zoneId) {
      const z = await this.call(`reading zone ${this.zoneId} (CLOUDFLARE_ZONE_ID)`, () =>
        this.cf.zones.get({ zone_id: this.zoneId! }),
      );
      zones.push({ id: z.id, name: z.name, permissions: z.permissions });
    } else {
      await this.call('listing zones', async () => {
        for await (const z of this.cf.zones.list({ per_page: 50 }))
          zones.push({ id: z.id, name: z.name, permissions: z.permissions });
      });
    }
    this.zones = zones;
    return zones;
  }

  async zoneFor(name: string): Promise<DnsZone> {
    const zones = await this.loadZones();
    const zone = zoneOf(name, zones);
    if (zone) return { id: zone.id, name: zone.name };
    const seen = zones.map((z) => z.name).join(', ') || 'none';
    throw new UserError(
      this.zoneId
        ? `Cloudflare: ${name} is not in the zone ${zones[0]?.name} (CLOUDFLARE_ZONE_ID); unset CLOUDFLARE_ZONE_ID or use the zone that holds the name`
        : `Cloudflare: no zone the API token can read holds ${name} (zones it can read: ${seen}); give the token Zone:Read on that zone`,
    );
  }

  async preflight(domains: string[]): Promise<{ zones: DnsZone[]; proven: string }> {
    this.zones = undefined; // zones may have changed since the last pass
    const verified = await this.call('verifying the API token', () => this.cf.user.tokens.verify());
    if (verified.status !== 'active')
      throw new UserError(
        `Cloudflare: the API token is ${verified.status}; create a new one with Zone:Read and DNS:Edit`,
      );
    const zones = await this.loadZones();
    const used = new Map<string, ZoneInfo>();
    let editVerified = true;
    for (const d of domains) {
      const zone = await this.zoneFor(d.replace(/^\*\./, ''));
      used.set(zone.id, zones.find((z) => z.id === zone.id)!);
    }
    for (const zone of used.values()) {
      if (zone.permissions) {
        if (!zone.permissions.includes('#dns_records:edit')) {
          throw new UserError(
            `Cloudflare: the API token lacks DNS:Edit on the zone ${zone.name}; edit the token and add Zone → DNS → Edit for it`,
          );
        }
      } else {
        // Without the permission list, reading the records is what can be proven before the first write.
        await this.call(`reading DNS records of ${zone.name}`, () =>
          this.cf.dns.records.list({ zone_id: zone.id, per_page: 1 }),
        );
        editVerified = false;
        this.log.info(
          { step: 'dns-01', zone: zone.name },
          "Cloudflare did not list the token's permissions; DNS:Edit is proven at the first record",
        );
      }
    }
    this.log.info(
      { step: 'dns-01', zones: [...used.values()].map((z) => z.name) },
      'Cloudflare token and zones checked',
    );
    const names = [...used.values()].map((z) => z.name).join(', ');
    return {
      zones: [...used.values()].map(({ id, name }) => ({ id, name })),
      proven: `token active; zones ${names} ${editVerified ? 'with DNS:Edit' : 'readable (DNS:Edit is proven at the first record)'}`,
    };
  }

  async create(zone: DnsZone, record: DnsRecord): Promise<string> {
    const { type, name, value } = record;
    const ttl = Math.max(record.ttl, MIN_TTL);
    try {
      const rec = await this.call(`creating ${type} ${name}`, () => {
        if (type === 'TXT')
          return this.cf.dns.records.create({
            zone_id: zone.id,
            type,
            name,
            content: `"${value}"`,
            ttl,
            comment: COMMENT[type],
          });
        const f = parseTlsa(value);
        if (!f) throw new UserError(`not a TLSA value: "${value}"`);
        return this.cf.dns.records.create({
          zone_id: zone.id,
          type,
          name,
          ttl,
          comment: COMMENT[type],
          data: { usage: f.usage, selector: f.selector, matching_type: f.matchingType, certificate: f.data },
        });
      });
      return rec.id;
    } catch (err) {
      // "An identical record already exists" (81058) / "Record already exists" (81057): ours from an earlier try.
      if (!hasCode((err as Error).cause, 81057, 81058)) throw err;
      const [id] = await findRecord(this, zone, record);
      if (!id) throw err;
      this.log.info({ step: 'dns-01', record: name, type }, `${type} record already existed; using it`);
      return id;
    }
  }

  async delete(zone: DnsZone, id: string): Promise<void> {
    try {
      await this.call('deleting a record', () => this.cf.dns.records.delete(id, { zone_id: zone.id }));
    } catch (err) {
      if (!hasCode((err as Error).cause, 81044)) throw err; // already gone
    }
  }

  async list(zone: DnsZone, type: DnsRecordType, name: string): Promise<{ id: string; record: DnsRecord }[]> {
    const out: { id: string; record: DnsRecord }[] = [];
    await this.call(`listing ${type} ${name}`, async () => {
      for await (const r of this.cf.dns.records.list({
        zone_id: zone.id,
        type,
        name: { exact: name },
        per_page: 100,
      })) {
        const value =
          type === 'TXT'
            ? (r.content ?? '').replace(/^"|"$/g, '')
            : tlsaValue(r as { content?: string; data?: TlsaData });
        if (value !== undefined) out.push({ id: r.id, record: { type, name: r.name, value, ttl: r.ttl ?? MIN_TTL } });
      }
    });
    return out;
  }
}

interface TlsaData {
  usage?: number;
  selector?: number;
  matching_type?: number;
  certificate?: string;
}

/** A TLSA record as Cloudflare returns it: the data fields, or the formatted content. */
function tlsaValue(r: { content?: string; data?: TlsaData }): string | undefined {
  const d = r.data;
  if (d && d.usage !== undefined && d.selector !== undefined && d.matching_type !== undefined && d.certificate) {
    return formatTlsa({ usage: d.usage, selector: d.selector, matchingType: d.matching_type, data: d.certificate });
  }
  return r.content ? parseTlsa(r.content) && formatTlsa(parseTlsa(r.content)!) : undefined;
}
