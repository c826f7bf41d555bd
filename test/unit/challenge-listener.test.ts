import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { StandaloneHttp01 } from '../../src/obtain/solvers/http01-standalone.js';

const log = createLogger('silent');
let solver: StandaloneHttp01;
let port: number;

/** Sends raw bytes, returns the status code the listener answered (0 = connection closed without answer). */
function raw(request: string | Buffer, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let data = '';
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      reject(new Error('no answer'));
    });
    s.on('data', (d) => (data += d));
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') reject(e);
    });
    s.on('close', () =>
      resolve({ status: Number(data.match(/^HTTP\/1\.1 (\d{3})/)?.[1] ?? 0), body: data.split('\r\n\r\n')[1] ?? '' }),
    );
    s.write(request);
  });
}
const get = (path: string, extra = '') => raw(`GET ${path} HTTP/1.1\r\nHost: mail.example.com\r\n${extra}\r\n`);

beforeEach(async () => {
  solver = new StandaloneHttp01({ port: 0, address: '127.0.0.1', log });
  await solver.begin();
  port = solver.boundPort!;
  await solver.prepare([
    { domain: 'mail.example.com', wildcard: false, token: 'tok_en-1', keyAuthorization: 'tok_en-1.thumbprint' },
  ]);
});
afterEach(() => solver.end());

describe('the HTTP-01 standalone listener', () => {
  it('answers the key authorization for a token of an order in flight, and HEAD without a body', async () => {
    expect(await get('/.well-known/acme-challenge/tok_en-1')).toEqual({ status: 200, body: 'tok_en-1.thumbprint' });
    expect((await raw('HEAD /.well-known/acme-challenge/tok_en-1 HTTP/1.1\r\nHost: x\r\n\r\n')).body).toBe('');
  });

  it('404s unknown tokens, other paths, query strings and path traversal, and never serves files', async () => {
    for (const path of [
      '/.well-known/acme-challenge/unknown',
      '/.well-known/acme-challenge/',
      '/',
      '/etc/passwd',
      '/.well-known/acme-challenge/../../../../etc/passwd',
      '/.well-known/acme-challenge/..%2f..%2fetc%2fpasswd',
      '/.well-known/acme-challenge/tok_en-1?x=1',
      '/.well-known/acme-challenge/tok_en-1/',
      '/.well-known/acme-challenge/tok_en-1%00',
      '//.well-known/acme-challenge/tok_en-1',
      'http://evil/.well-known/acme-challenge/tok_en-1',
      '*',
    ]) {
      const r = await get(path);
      expect(r.status, path).toBe(404);
      expect(r.body, path).toBe('');
    }
  });

  it('refuses request bodies (413), other methods (405), long URLs (414) and huge headers (431)', async () => {
    expect(
      (await raw('POST /.well-known/acme-challenge/tok_en-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'))
        .status,
    ).toBe(413);
    expect(
      (
        await raw(
          'GET /.well-known/acme-challenge/tok_en-1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
        )
      ).status,
    ).toBe(413);
    expect(
      (
        await raw(
          `GET /.well-known/acme-challenge/tok_en-1 HTTP/1.1\r\nHost: x\r\nContent-Length: ${10 ** 9}\r\n\r\n` +
            'x'.repeat(65536),
        )
      ).status,
    ).toBe(413);
    expect((await raw('DELETE /.well-known/acme-challenge/tok_en-1 HTTP/1.1\r\nHost: x\r\n\r\n')).status).toBe(405);
    expect((await get(`/.well-known/acme-challenge/${'a'.repeat(600)}`)).status).toBe(414);
    expect((await get('/x', `X-Big: ${'b'.repeat(16_000)}\r\n`)).status).toBe(431);
  });

  it('answers malformed requests with 400 and closes them', async () => {
    expect((await raw('NONSENSE\r\n\r\n')).status).toBe(400);
    expect((await raw(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00]))).status).toBe(400); // a TLS ClientHello
    expect((await raw('GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n')).status).toBe(
      400,
    );
  });

  it('survives a burst of hostile requests and still answers the CA afterwards', async () => {
    const junk = Array.from({ length: 200 }, (_, i) =>
      i % 4 === 0
        ? raw('GARBAGE\r\n\r\n')
        : i % 4 === 1
          ? get('/.well-known/acme-challenge/../x')
          : i % 4 === 2
            ? get('/', `X: ${'y'.repeat(9000)}\r\n`)
            : raw('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc'),
    );
    const statuses = new Set((await Promise.all(junk)).map((r) => r.status));
    expect([...statuses].sort()).toEqual([400, 404, 413, 431]);
    expect(await get('/.well-known/acme-challenge/tok_en-1')).toEqual({ status: 200, body: 'tok_en-1.thumbprint' });
  });

  it('forgets removed tokens and closes when no order needs it', async () => {
    await solver.cleanup([
      { domain: 'mail.example.com', wildcard: false, token: 'tok_en-1', keyAuthorization: 'tok_en-1.thumbprint' },
    ]);
    expect((await get('/.well-known/acme-challenge/tok_en-1')).status).toBe(404);
    await solver.begin(); // a second order in flight keeps it open
    await solver.end();
    expect((await get('/.well-known/acme-challenge/x')).status).toBe(404);
    await solver.end();
    await expect(get('/x')).rejects.toThrow(/ECONNREFUSED/);
    await solver.begin(); // afterEach ends it
  });

  it('says what to change when the port is taken', async () => {
    const second = new StandaloneHttp01({ port, address: '127.0.0.1', log });
    await expect(second.begin()).rejects.toThrow(
      `HTTP-01 listener: 127.0.0.1:${port} is already in use; stop the other server or use HTTP01_MODE=webroot`,
    );
  });
});
