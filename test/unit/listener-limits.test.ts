import { connect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StandaloneHttp01 } from '../../src/obtain/solvers/http01-standalone.js';
import { sourceOf } from '../../src/util/http-limits.js';
import { captureLog } from '../helpers/fakes.js';

/**
 * The HTTP-01 listener faces the internet: idle and slowloris connections, and floods of them,
 * must not keep the CA from its answer, nor eat the process's file descriptors.
 */
let solver: StandaloneHttp01;
let port: number;
let logged: Record<string, unknown>[];
const TOKEN = 'tok_en-1';

function open(localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** What the listener answers the CA, and how long it took. */
async function askAsCa(): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const r = await fetch(`http://127.0.0.1:${port}/.well-known/acme-challenge/${TOKEN}`, {
    signal: AbortSignal.timeout(5_000),
  });
  await r.text();
  return { status: r.status, ms: performance.now() - started };
}

/** Resolves with what the server sent and when the connection closed (ms after `since`). */
const closed = (s: Socket, since: number) =>
  new Promise<{ data: string; ms: number }>((resolve) => {
    let data = '';
    s.on('data', (d) => (data += d));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ data, ms: performance.now() - since }));
  });

beforeEach(async () => {
  const { log, lines } = captureLog();
  logged = lines;
  solver = new StandaloneHttp01({ port: 0, address: '127.0.0.1', log });
  await solver.begin();
  port = solver.boundPort!;
  await solver.prepare([
    { domain: 'mail.example.com', wildcard: false, token: TOKEN, keyAuthorization: `${TOKEN}.thumbprint` },
  ]);
});
afterEach(() => solver.end());

describe('connection limits of the HTTP-01 listener', () => {
  it('an idle connection and a slowloris one are closed with 408 within about 5 s', async () => {
    const t0 = performance.now();
    const idle = await open('127.0.0.3');
    const slow = await open('127.0.0.3');
    slow.write('GET /.well-known/acme-challenge/tok_en-1 HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => slow.writable && slow.write('X-Drip: 1\r\n'), 500);
    const [a, b] = await Promise.all([closed(idle, t0), closed(slow, t0)]);
    clearInterval(drip);
    for (const r of [a, b]) {
      expect(r.data).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
      expect(r.ms).toBeGreaterThan(4_000);
      expect(r.ms).toBeLessThan(7_500);
    }
  }, 15_000);

  it('a flood of 1,000 idle connections from one source is held to 16; the CA is answered at once', async () => {
    const flood = await Promise.all(Array.from({ length: 1_000 }, () => open('127.0.0.2').catch(() => undefined)));
    // Refused connections are closed by the server at once; those still open are the allowance. The
    // closes are awaited (under load they take a moment to arrive), but for less than the 5 s
    // request timeout, which would close them all anyway.
    const stillOpen = () =>
      flood.filter((s) => s && !s.destroyed && s.readyState === 'open' && !s.readableEnded).length;
    for (const until = performance.now() + 2_000; stillOpen() > 16 && performance.now() < until; )
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200)); // and none of the allowance is closed after all
    expect(stillOpen()).toBeLessThanOrEqual(16);
    expect(stillOpen()).toBeGreaterThan(0);
    const ca = await askAsCa();
    expect(ca.status).toBe(200);
    expect(ca.ms).toBeLessThan(1_000);
    for (const s of flood) s?.destroy();
  });

  it('a flood from many sources fills the whole allowance, and the CA still gets in and is answered', async () => {
    const sources = Array.from({ length: 40 }, (_, i) => `127.0.1.${i + 1}`);
    const flood = (
      await Promise.all(sources.flatMap((src) => Array.from({ length: 16 }, () => open(src).catch(() => undefined))))
    ).filter(Boolean) as Socket[];
    expect(flood.length).toBeGreaterThan(256); // more than the listener holds at once
    const ca = await askAsCa();
    expect(ca.status).toBe(200);
    expect(ca.ms).toBeLessThan(1_000);
    for (const s of flood) s.destroy();
  });

  it("even when every client seems to come from one address (a NAT, Docker's userland proxy), the CA gets in", async () => {
    const flood = (
      await Promise.all(Array.from({ length: 100 }, () => open('127.0.0.1').catch(() => undefined)))
    ).filter(Boolean) as Socket[];
    const ca = await askAsCa(); // from 127.0.0.1 too
    expect(ca.status).toBe(200);
    for (const s of flood) s.destroy();
  });

  it('a client hammering a known token does not flood the log', async () => {
    for (let i = 0; i < 50; i++) expect((await askAsCa()).status).toBe(200);
    expect(logged.filter((l) => l.msg === 'served a challenge')).toHaveLength(1);
  });

  it('counts IPv6 clients per /64 and IPv4-mapped ones as IPv4', () => {
    expect(sourceOf('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(sourceOf('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(sourceOf('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(sourceOf('192.0.2.7')).toBe('192.0.2.7');
  });
});
