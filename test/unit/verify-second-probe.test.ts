import { X509Certificate } from 'node:crypto';
import { type AddressInfo, connect, createServer as createTcpServer, type Server } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyServed } from '../../src/deploy/verify.js';
import { captureLog } from '../helpers/fakes.js';
import { makeChain, type TestChain } from '../helpers/pki.js';
import { monotonicMs } from '../../src/util/clock.js';

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

const listen = async (s: Server) => {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
};

/** An implicit-TLS server presenting `chain`. */
const tlsServer = (chain: TestChain) => {
  const s = createTlsServer({ key: chain.key, cert: chain.fullchain });
  s.on('tlsClientError', () => undefined);
  return listen(s);
};

/**
 * The endpoint under test, standing in for Postfix just after a reload: `route(n)` says where its
 * n-th connection goes (1 = the first) and after how long it is answered, as an old idle process
 * that takes a connection and answers late would.
 */
async function endpoint(route: (n: number) => { port: number; lateMs: number }) {
  const seen = { connections: 0, lateAnswered: 0 };
  const front = createTcpServer((c) => {
    c.on('error', () => undefined);
    c.pause();
    const { port, lateMs } = route(++seen.connections);
    setTimeout(() => {
      if (lateMs > 0) seen.lateAnswered++;
      const back = connect(port, '127.0.0.1');
      back.on('error', () => c.destroy());
      c.on('close', () => back.destroy());
      c.pipe(back).pipe(c);
      c.resume();
    }, lateMs);
  });
  return { port: await listen(front), seen };
}

const wanted = (leaf: string) => [
  { cert: 'mail', name: 'mail.example.test', servername: 'mail.example.test', leaf: new X509Certificate(leaf) },
];

describe('verification races a late probe with a second connection', () => {
  it('an old process that takes the first connection and answers late neither holds up nor fails the check', async () => {
    const old = makeChain(['mail.example.test']);
    const fresh = makeChain(['mail.example.test']);
    const [oldPort, freshPort] = [await tlsServer(old), await tlsServer(fresh)];
    const { port, seen } = await endpoint((n) =>
      n === 1 ? { port: oldPort, lateMs: 1_500 } : { port: freshPort, lateMs: 0 },
    );
    const { log, lines } = captureLog();
    const out = await verifyServed([{ protocol: 'imaps', host: '127.0.0.1', port }], wanted(fresh.leaf), {
      waits: [100, 200, 400],
      log,
      container: 'postfix',
      deadline: monotonicMs() + 20_000,
    });
    expect(out).toMatchObject({ ok: true, checked: [`imaps://127.0.0.1:${port} (mail, mail.example.test)`] });
    expect(seen.connections).toBe(2); // the old process's and one more, in the same attempt
    expect(seen.lateAnswered).toBe(0); // decided before the old process answered
    expect(lines.filter((l) => l.msg === 'not yet serving the published certificate')).toHaveLength(0);
  });

  it('when both connections show the old certificate, it is reported as old, and looked at again', async () => {
    const old = makeChain(['mail.example.test']);
    const fresh = makeChain(['mail.example.test']);
    const oldPort = await tlsServer(old);
    const { port, seen } = await endpoint(() => ({ port: oldPort, lateMs: 400 }));
    const { log, lines } = captureLog();
    const out = await verifyServed([{ protocol: 'imaps', host: '127.0.0.1', port }], wanted(fresh.leaf), {
      waits: [100],
      log,
      container: 'postfix',
      deadline: monotonicMs() + 20_000,
    });
    const oldSerial = new X509Certificate(old.leaf).serialNumber;
    expect(out).toMatchObject({
      ok: false,
      kind: 'stale',
      detail: expect.stringMatching(
        new RegExp(
          `^imaps://127.0.0.1:${port} serves serial ${oldSerial} .*instead of ${new X509Certificate(fresh.leaf).serialNumber}`,
        ),
      ),
    });
    expect(seen.connections).toBe(4); // two attempts, each with its second connection
    expect(lines.filter((l) => l.msg === 'not yet serving the published certificate')).toHaveLength(2);
  });

  it('a second connection that finds the old certificate does not wait for a first one held open by an old process', async () => {
    // Postfix just after a reload: an old smtpd takes the first connection and holds it (it is
    // retrying its tlsmgr), another old one answers the second at once, new ones answer after.
    const old = makeChain(['mail.example.test']);
    const fresh = makeChain(['mail.example.test']);
    const [oldPort, freshPort] = [await tlsServer(old), await tlsServer(fresh)];
    const { port, seen } = await endpoint((n) =>
      n === 1
        ? { port: oldPort, lateMs: 3_000 }
        : n === 2
          ? { port: oldPort, lateMs: 0 }
          : { port: freshPort, lateMs: 0 },
    );
    const { log, lines } = captureLog();
    const t0 = monotonicMs();
    const out = await verifyServed([{ protocol: 'imaps', host: '127.0.0.1', port }], wanted(fresh.leaf), {
      waits: [100, 200, 400],
      log,
      container: 'postfix',
      deadline: monotonicMs() + 20_000,
    });
    const ms = monotonicMs() - t0;
    expect(out).toMatchObject({ ok: true });
    expect(seen.connections).toBe(3); // the held one, the old answer, the new process's answer
    expect(lines.filter((l) => l.msg === 'not yet serving the published certificate')).toHaveLength(1);
    expect(ms).toBeLessThan(2_000); // not the 3 s the first connection was held
  });

  it('a second connection that finds the handshake broken outweighs a first one that found an old certificate', async () => {
    const old = makeChain(['mail.example.test']);
    const fresh = makeChain(['mail.example.test']);
    const oldPort = await tlsServer(old);
    const rude = createTcpServer((s) => s.on('error', () => undefined).end('not TLS\r\n')); // answers, but no handshake
    const rudePort = await listen(rude);
    const { port } = await endpoint((n) =>
      n % 2 === 1 ? { port: oldPort, lateMs: 400 } : { port: rudePort, lateMs: 0 },
    );
    const { log } = captureLog();
    const out = await verifyServed([{ protocol: 'imaps', host: '127.0.0.1', port }], wanted(fresh.leaf), {
      waits: [],
      log,
      container: 'postfix',
      deadline: monotonicMs() + 20_000,
    });
    expect(out).toMatchObject({ ok: false, kind: 'broken' });
  });
});
