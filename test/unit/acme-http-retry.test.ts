import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AcmeError, configureAcmeHttp, getDirectory } from '../../src/obtain/acme-http.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** Answers queued per test: status and Retry-After; then 200 with a directory. */
const queue: { status: number; retryAfter?: string }[] = [];
let hits = 0;
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((_req, res) => {
    hits++;
    const next = queue.shift();
    if (next) {
      res.writeHead(next.status, {
        'content-type': 'application/problem+json',
        ...(next.retryAfter ? { 'retry-after': next.retryAfter } : {}),
      });
      res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:rateLimited', detail: `status ${next.status}` }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ newNonce: 'n' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/directory`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function setUp(retries: number) {
  const clock = new FakeClock();
  configureAcmeHttp({ timeoutMs: 5_000, retries, retryAfterCapMs: 30_000 }, clock);
  queue.length = 0;
  hits = 0;
  return clock;
}

describe('ACME calls: 429, 5xx and network errors retried within the call', () => {
  it('waits the backoff step, or the Retry-After the CA asks for, then succeeds', async () => {
    const clock = setUp(2);
    queue.push({ status: 503 }, { status: 429, retryAfter: '3' });
    await expect(getDirectory(url)).resolves.toEqual({ newNonce: 'n' });
    expect(hits).toBe(3);
    expect(clock.slept).toEqual([1_000, 3_000]);
  });

  it('after the retries, the last answer is the failure, with the CA’s problem', async () => {
    const clock = setUp(2);
    queue.push({ status: 500 }, { status: 502 }, { status: 503 }, { status: 503 });
    const err = await getDirectory(url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AcmeError);
    expect((err as AcmeError).problem).toMatchObject({ status: 503, detail: 'status 503' });
    expect(hits).toBe(3);
    expect(clock.slept).toEqual([1_000, 2_000]);
  });

  it('a Retry-After beyond the cap is not waited out inside the call', async () => {
    const clock = setUp(2);
    queue.push({ status: 429, retryAfter: '3600' });
    const err = await getDirectory(url).catch((e: unknown) => e);
    expect((err as AcmeError).problem.retryAfterMs).toBe(3_600_000);
    expect(hits).toBe(1);
    expect(clock.slept).toEqual([]);
  });

  it('a refusal (4xx other than 429) is not retried', async () => {
    const clock = setUp(2);
    queue.push({ status: 400 });
    await expect(getDirectory(url)).rejects.toThrow(/status 400/);
    expect(hits).toBe(1);
    expect(clock.slept).toEqual([]);
  });
});
