import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { DIRECTORY_RETRY_MS, fetchAri } from '../../src/obtain/ari.js';
import { createLogger } from '../../src/log.js';
import { makeChain } from '../helpers/pki.js';

let requests = 0;
let up = false; // /back answers once it is up again: a directory without ARI
const down = createServer((req, res) => {
  requests++;
  if (req.url === '/back' && up) res.writeHead(200, { 'content-type': 'application/json' }).end('{"newNonce":"x"}');
  else res.writeHead(503).end('down for maintenance');
});
await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
afterAll(() => down.close());

describe('a CA whose directory cannot be fetched', () => {
  it('is asked once, not once per certificate: the others of the pass fail at once with the same error', async () => {
    const directoryUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}/dir`;
    const log = createLogger('silent');
    const certs = Array.from({ length: 5 }, (_, i) => makeChain([`mail${i}.example.test`]).leaf);
    const errors: string[] = [];
    for (const certPem of certs) {
      await fetchAri({ directoryUrl, certPem, timeoutMs: 5_000, log }).then(
        () => errors.push('no error'),
        (e: Error) => errors.push(e.message),
      );
    }
    expect(requests).toBe(1);
    expect(errors).toEqual(Array(5).fill(`${directoryUrl} answered HTTP 503`));
  });

  it('is asked again once the minute is over, and its answer is used', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const directoryUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}/back`;
      const log = createLogger('silent');
      const certPem = makeChain(['mail.example.test']).leaf;
      const before = requests;
      await expect(fetchAri({ directoryUrl, certPem, timeoutMs: 5_000, log })).rejects.toThrow(/answered HTTP 503/);
      up = true;
      await expect(fetchAri({ directoryUrl, certPem, timeoutMs: 5_000, log })).rejects.toThrow(/answered HTTP 503/); // remembered
      expect(requests - before).toBe(1);
      vi.advanceTimersByTime(DIRECTORY_RETRY_MS);
      await expect(fetchAri({ directoryUrl, certPem, timeoutMs: 5_000, log })).resolves.toBeUndefined(); // no renewalInfo: no ARI
      expect(requests - before).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
