import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudflareDns } from '../../src/dns/providers/cloudflare/cloudflare.js';
import { createLogger } from '../../src/log.js';
import { type CloudflareDouble, startCloudflareDouble, zoneId } from '../doubles/cloudflare.js';
import { FakeClock } from '../helpers/fake-clock.js';

const TOKEN = 'good-token-0123456789abcdefABCDEF';
const zone = { id: zoneId(), name: 'example.test' };
let cf: CloudflareDouble;

beforeAll(async () => {
  cf = await startCloudflareDouble({
    zones: [zone],
    tokens: { [TOKEN]: { zones: '*', permissions: ['#zone:read', '#dns_records:read', '#dns_records:edit'] } },
    challtestsrv: 'http://127.0.0.1:9', // never called: no record is created here
  });
});
afterAll(() => cf.stop());

const provider = (clock: FakeClock) =>
  new CloudflareDns({ apiToken: TOKEN, baseUrl: cf.url, log: createLogger('silent'), clock });

describe('Cloudflare API calls, retried on the clock', () => {
  it('a 429 with Retry-After and a 5xx are waited out (Retry-After, then the backoff step), then the call succeeds', async () => {
    const clock = new FakeClock();
    cf.failNext(1, { status: 429, code: 971, message: 'Please wait', retryAfter: 2 });
    cf.failNext(2, { status: 502, code: 10000, message: 'Bad gateway' });
    await expect(provider(clock).zoneFor('mx.example.test')).resolves.toMatchObject({ name: 'example.test' });
    expect(clock.slept).toEqual([2_000, 1_000, 2_000]);
  });

  it('a Retry-After over 30 s is cut to 30 s; after three retries the failure is explained', async () => {
    const clock = new FakeClock();
    cf.failNext(4, { status: 429, code: 971, message: 'Please wait', retryAfter: 600 });
    await expect(provider(clock).zoneFor('mx.example.test')).rejects.toThrow(/rate limited .*mailcerts retries later/);
    expect(clock.slept).toEqual([30_000, 30_000, 30_000]);
  });

  it('a permanent failure is not retried', async () => {
    const clock = new FakeClock();
    cf.failNext(1, { status: 403, code: 10000, message: 'Authentication error' });
    await expect(provider(clock).zoneFor('mx.example.test')).rejects.toThrow(/not allowed to do this/);
    expect(clock.slept).toEqual([]);
  });
});
