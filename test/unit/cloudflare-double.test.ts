import { createServer, type Server } from 'node:http';
import Cloudflare from 'cloudflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CloudflareDouble, startCloudflareDouble, zoneId } from '../doubles/cloudflare.js';

/**
 * The Cloudflare double refuses what Cloudflare's API reference does not allow, so that the
 * integration tests that drive mailcerts against it prove something about the real API. Its DNS
 * side (pebble-challtestsrv) is a loopback server that accepts every update here.
 */
const TOKEN = 'double-test-token-0123456789abcdef';
const zone = { id: zoneId(), name: 'example.test' };
let cf: CloudflareDouble;
let challtestsrv: Server;

async function post(body: unknown): Promise<{ status: number; code?: number; message?: string }> {
  const res = await fetch(`${cf.url}/zones/${zone.id}/dns_records`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const json = (await res.json()) as { errors: { code: number; message: string }[] };
  return { status: res.status, code: json.errors[0]?.code, message: json.errors[0]?.message };
}
const get = async (path: string) =>
  (await fetch(`${cf.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status;
const txt = { type: 'TXT', name: '_acme-challenge.example.test', content: '"token-value"', ttl: 60 };

beforeAll(async () => {
  challtestsrv = createServer((_, res) => res.end());
  await new Promise<void>((r) => challtestsrv.listen(0, '127.0.0.1', r));
  cf = await startCloudflareDouble({
    zones: [zone],
    tokens: { [TOKEN]: { zones: '*', permissions: ['#zone:read', '#dns_records:read', '#dns_records:edit'] } },
    challtestsrv: `http://127.0.0.1:${(challtestsrv.address() as { port: number }).port}`,
  });
});
afterAll(async () => {
  await cf?.stop();
  challtestsrv?.close();
});

describe('the Cloudflare double is as strict as the API reference', () => {
  it('accepts what the official SDK sends for a TXT and a TLSA record, and lists them by exact name', async () => {
    const sdk = new Cloudflare({ apiToken: TOKEN, baseURL: cf.url, maxRetries: 0 });
    const created = await sdk.dns.records.create({ zone_id: zone.id, ...txt, type: 'TXT', comment: 'mailcerts' });
    expect(created.content).toBe('"token-value"');
    const tlsa = await sdk.dns.records.create({
      zone_id: zone.id,
      type: 'TLSA',
      name: '_25._tcp.mail.example.test',
      ttl: 300,
      data: { usage: 3, selector: 1, matching_type: 1, certificate: 'AB'.repeat(32) },
    });
    expect(tlsa.content).toBe(`3 1 1 ${'ab'.repeat(32)}`);
    const listed = [];
    for await (const r of sdk.dns.records.list({ zone_id: zone.id, type: 'TXT', name: { exact: txt.name } }))
      listed.push(r.id);
    expect(listed).toEqual([created.id]);
  });

  it('refuses unknown fields, unknown types, and what a TXT or TLSA record may not carry', async () => {
    const refused = async (body: unknown) => {
      const r = await post(body);
      expect(r.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      return r;
    };
    expect(await refused({ ...txt, priority: 10 })).toMatchObject({
      code: 9207,
      message: expect.stringContaining('priority'),
    });
    expect(await refused({ ...txt, zone_id: zone.id })).toMatchObject({ code: 9207 });
    expect(await refused({ ...txt, type: 'SPF' })).toMatchObject({
      code: 1004,
      message: expect.stringContaining('SPF'),
    });
    expect(await refused({ ...txt, type: 'txt' })).toMatchObject({ code: 1004 });
    expect(await refused({ ...txt, content: 'unquoted' })).toMatchObject({ code: 1004 });
    expect(await refused({ ...txt, content: `"${'x'.repeat(256)}"` })).toMatchObject({ code: 1004 });
    expect(await refused({ ...txt, proxied: true })).toMatchObject({ code: 9004 });
    expect(await refused({ ...txt, ttl: 30 })).toMatchObject({ code: 9021 });
    expect(await refused({ ...txt, ttl: undefined })).toMatchObject({ code: 1004 });
    expect(await refused({ ...txt, comment: 'c'.repeat(101) })).toMatchObject({ code: 9102 });
    expect(await refused({ ...txt, settings: { flatten_cname: true } })).toMatchObject({ code: 9207 });
    expect(await refused('{"type": "TXT",')).toMatchObject({ code: 9207 });
    const tlsa = { type: 'TLSA', name: '_25._tcp.mail.example.test', ttl: 300 };
    const data = { usage: 3, selector: 1, matching_type: 1, certificate: 'ab'.repeat(32) };
    expect(await refused({ ...tlsa, data, content: '3 1 1 ab' })).toMatchObject({ code: 9207 });
    expect(await refused({ ...tlsa, data: { ...data, usage: 256 } })).toMatchObject({ code: 9101 });
    expect(await refused({ ...tlsa, data: { ...data, hash: 'x' } })).toMatchObject({ code: 9101 });
    expect(await refused({ ...tlsa, data: { ...data, certificate: 'not hex' } })).toMatchObject({ code: 9101 });
    expect(await refused({ ...txt, name: 'other.test' })).toMatchObject({ code: 1004 });
    // None of them was stored.
    expect([...cf.records.values()].filter((r) => r.name === 'other.test')).toEqual([]);
  });

  it('refuses query parameters the reference does not name', async () => {
    expect(await get('/zones?per_page=50&page=2')).toBe(200);
    expect(await get('/zones?name=example.test&status=active')).toBe(200);
    expect(await get('/zones?limit=50')).toBe(400);
    expect(await get('/zones?per_page=0')).toBe(400);
    expect(await get(`/zones/${zone.id}/dns_records?type=TXT&name.exact=x.example.test&per_page=100`)).toBe(200);
    expect(await get(`/zones/${zone.id}/dns_records?type=TXTX`)).toBe(400);
    expect(await get(`/zones/${zone.id}/dns_records?record_name=x`)).toBe(400);
  });
});
