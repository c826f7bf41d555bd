// What Cloudflare's v4 API reference allows, as the double enforces it: the request bodies and query
// parameters of the calls mailcerts makes, read from the reference's own definitions as the official
// SDK ships them (cloudflare/resources/dns/records.d.ts: RecordCreateParams, RecordListParams;
// cloudflare/resources/zones/zones.d.ts: ZoneListParams). Whatever they do not name is refused, so
// that a request Cloudflare would not understand fails here first.

export interface ApiError {
  status: number;
  code: number;
  message: string;
}

/** Every record type the reference lists; the double stores TXT and TLSA, the ones mailcerts writes. */
export const RECORD_TYPES = [
  'A',
  'AAAA',
  'CAA',
  'CERT',
  'CNAME',
  'DNSKEY',
  'DS',
  'HTTPS',
  'LOC',
  'MX',
  'NAPTR',
  'NS',
  'OPENPGPKEY',
  'PTR',
  'SMIMEA',
  'SRV',
  'SSHFP',
  'SVCB',
  'TLSA',
  'TXT',
  'URI',
] as const;

/** The body fields of a TXT and of a TLSA record (RecordCreateParams.TXTRecord, .TLSARecord). */
const BODY_FIELDS: Record<'TXT' | 'TLSA', readonly string[]> = {
  TXT: ['name', 'ttl', 'type', 'comment', 'content', 'proxied', 'settings', 'tags'],
  TLSA: ['name', 'ttl', 'type', 'comment', 'data', 'proxied', 'settings', 'tags'],
};
const TLSA_DATA_FIELDS = ['usage', 'selector', 'matching_type', 'certificate'];
const SETTINGS_FIELDS = ['ipv4_only', 'ipv6_only'];
/** Only these may be proxied; anything else with proxied: true is refused. */
const PROXIABLE = new Set(['A', 'AAAA', 'CNAME']);
/** A comment's longest on the Free plan. */
const COMMENT_MAX = 100;
/** RFC 1035 character strings, each quoted and at most 255 bytes, as the reference asks of TXT content. */
const QUOTED_STRINGS = /^(?:"(?:[^"\\]|\\.){0,255}"\s*)+$/;

const invalid = (message: string): ApiError => ({
  status: 400,
  code: 9207,
  message: `Request body is invalid. ${message}`,
});
const validation = (message: string): ApiError => ({
  status: 400,
  code: 1004,
  message: `DNS Validation Error: ${message}`,
});

const unknownKeys = (o: object, allowed: readonly string[]) => Object.keys(o).filter((k) => !allowed.includes(k));

/** Why Cloudflare would refuse this POST /zones/{id}/dns_records body, or undefined. */
export function recordBodyProblem(body: unknown): ApiError | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return invalid('Expected a JSON object.');
  const b = body as Record<string, unknown>;
  if (typeof b.type !== 'string' || !(RECORD_TYPES as readonly string[]).includes(b.type))
    return validation(`unknown record type ${JSON.stringify(b.type)}`);
  if (b.type !== 'TXT' && b.type !== 'TLSA')
    return { status: 501, code: 10001, message: `the double stores TXT and TLSA records only, not ${b.type}` };
  const extra = unknownKeys(b, BODY_FIELDS[b.type]);
  if (extra.length) return invalid(`Unknown field(s) for a ${b.type} record: ${extra.join(', ')}.`);
  if (typeof b.name !== 'string' || b.name === '' || b.name.length > 255) return validation('name is required');
  if (b.ttl === undefined) return validation('ttl is required');
  if (!Number.isInteger(b.ttl) || (b.ttl !== 1 && ((b.ttl as number) < 60 || (b.ttl as number) > 86400)))
    return {
      status: 400,
      code: 9021,
      message: 'Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.',
    };
  if (b.comment !== undefined && (typeof b.comment !== 'string' || b.comment.length > COMMENT_MAX))
    return { status: 400, code: 9102, message: `Comment must be a string of at most ${COMMENT_MAX} characters.` };
  if (b.proxied !== undefined && typeof b.proxied !== 'boolean') return invalid('proxied must be a boolean.');
  if (b.proxied === true && !PROXIABLE.has(b.type))
    return { status: 400, code: 9004, message: 'This record type cannot be proxied.' };
  if (b.tags !== undefined && !(Array.isArray(b.tags) && b.tags.every((t) => typeof t === 'string')))
    return invalid('tags must be an array of "name:value" strings.');
  if (b.settings !== undefined) {
    if (typeof b.settings !== 'object' || b.settings === null) return invalid('settings must be an object.');
    const s = unknownKeys(b.settings, SETTINGS_FIELDS);
    if (s.length) return invalid(`Unknown setting(s): ${s.join(', ')}.`);
  }
  if (b.type === 'TXT') {
    if (typeof b.content !== 'string' || !QUOTED_STRINGS.test(b.content))
      return validation('TXT content must be quoted character strings of at most 255 bytes each');
    return undefined;
  }
  const d = b.data as Record<string, unknown> | undefined;
  if (typeof d !== 'object' || d === null) return { status: 400, code: 9101, message: 'TLSA record data is invalid.' };
  const extraData = unknownKeys(d, TLSA_DATA_FIELDS);
  const byte = (n: unknown) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 255;
  if (
    extraData.length ||
    ![d.usage, d.selector, d.matching_type].every(byte) ||
    typeof d.certificate !== 'string' ||
    !/^[0-9a-fA-F]+$/.test(d.certificate)
  )
    return { status: 400, code: 9101, message: 'TLSA record data is invalid.' };
  return undefined;
}

const FILTERABLE = /^(?:name|content|comment|tag)(?:\.(?:exact|contains|startswith|endswith|present|absent))?$/;
const RECORD_QUERY = [
  'page',
  'per_page',
  'type',
  'match',
  'order',
  'direction',
  'proxied',
  'search',
  'tag_match',
  'include_shadow_metadata',
  'shadowed_by_name',
  'shadowing_name',
];
const ZONE_QUERY = ['page', 'per_page', 'name', 'status', 'order', 'direction', 'match', 'account.id', 'account.name'];
const POSITIVE = /^[1-9][0-9]*$/;

/** Why Cloudflare would refuse these query parameters of GET /zones or GET /zones/{id}/dns_records, or undefined. */
export function queryProblem(list: 'zones' | 'records', query: Record<string, string>): ApiError | undefined {
  const allowed = (k: string) =>
    list === 'zones' ? ZONE_QUERY.includes(k) : RECORD_QUERY.includes(k) || FILTERABLE.test(k);
  const extra = Object.keys(query).filter((k) => !allowed(k));
  if (extra.length) return { status: 400, code: 7003, message: `Unknown query parameter(s): ${extra.join(', ')}` };
  for (const k of ['page', 'per_page'])
    if (query[k] !== undefined && !POSITIVE.test(query[k]))
      return { status: 400, code: 7003, message: `${k} must be a positive integer` };
  if (list === 'records' && query.type !== undefined && !(RECORD_TYPES as readonly string[]).includes(query.type))
    return validation(`unknown record type ${JSON.stringify(query.type)}`);
  return undefined;
}
