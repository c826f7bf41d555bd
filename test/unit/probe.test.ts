/**
 * The probe in-process, against a fake server on loopback: each STARTTLS dialogue reaches the
 * certificate, and each failure is classed at the stage it happened (what verify.ts decides on).
 * The real Postfix and Dovecot are probed in test/integration/verify-rollback.test.ts.
 */
import { X509Certificate } from 'node:crypto';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { type Protocol, probe } from '../../src/deploy/probe.js';
import { makeChain } from '../helpers/pki.js';

const chain = makeChain(['mail.example.com']);
const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

/** What the fake server answers to each line, and the line after which it speaks TLS. */
interface Script {
  greeting: string;
  replies: Record<string, string>;
  upgradeAfter?: string;
}

const SCRIPTS: Record<string, Script> = {
  smtp: {
    greeting: '220 mail.example.com ESMTP',
    replies: { 'EHLO mailcerts.invalid': '250-mail.example.com\r\n250 STARTTLS', STARTTLS: '220 go ahead' },
    upgradeAfter: 'STARTTLS',
  },
  imap: {
    greeting: '* OK IMAP ready',
    replies: { 'a1 STARTTLS': 'a1 OK begin TLS' },
    upgradeAfter: 'a1 STARTTLS',
  },
  pop3: { greeting: '+OK POP3 ready', replies: { STLS: '+OK begin TLS' }, upgradeAfter: 'STLS' },
  sieve: {
    greeting: '"IMPLEMENTATION" "fake"\r\n"STARTTLS"\r\nOK "ready"',
    replies: { STARTTLS: 'OK "begin TLS"' },
    upgradeAfter: 'STARTTLS',
  },
};

async function fakeServer(script: Script): Promise<number> {
  const server = createServer((socket: Socket) => {
    socket.on('error', () => undefined);
    socket.write(`${script.greeting}\r\n`);
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let nl = buffer.indexOf('\r\n');
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        socket.write(`${script.replies[line] ?? '500 what?'}\r\n`);
        if (line === script.upgradeAfter) {
          socket.off('data', onData);
          new TLSSocket(socket, { isServer: true, key: chain.key, cert: chain.fullchain }).on('error', () => undefined);
          return;
        }
        nl = buffer.indexOf('\r\n');
      }
    };
    socket.on('data', onData);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('probe', () => {
  const serial = new X509Certificate(chain.leaf).serialNumber;

  for (const protocol of ['smtp', 'imap', 'pop3', 'sieve'] as Protocol[])
    it(`${protocol}: the STARTTLS dialogue, then the certificate served for the name`, async () => {
      const port = await fakeServer(SCRIPTS[protocol]!);
      const served = await probe({ protocol, host: '127.0.0.1', port }, 'mail.example.com', { timeoutMs: 5_000 });
      expect(served.serial).toBe(serial);
      expect(served.spki).toMatch(/^[0-9a-f]{64}$/);
    });

  it('classes each failure by its stage: greeting, protocol, handshake, connect, and a timeout where it stopped', async () => {
    const refused = await fakeServer({ greeting: '421 too busy', replies: {} });
    await expect(probe({ protocol: 'smtp', host: '127.0.0.1', port: refused }, undefined)).rejects.toMatchObject({
      stage: 'greeting',
      message: expect.stringMatching(/127\.0\.0\.1:\d+: no 220 greeting; the server said: 421 too busy$/),
    });
    const noTls = await fakeServer({ greeting: '220 hi', replies: { 'EHLO mailcerts.invalid': '250 mail' } });
    await expect(probe({ protocol: 'submission', host: '127.0.0.1', port: noTls }, undefined)).rejects.toMatchObject({
      stage: 'protocol',
      message: expect.stringContaining('STARTTLS is not offered'),
    });
    const silent = await fakeServer({ greeting: '* OK', replies: {} });
    await expect(
      probe({ protocol: 'imaps', host: '127.0.0.1', port: silent }, 'mail.example.com', { timeoutMs: 300 }),
    ).rejects.toMatchObject({ stage: 'handshake' });
    const mute = createServer(() => undefined);
    servers.push(mute);
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    await expect(
      probe({ protocol: 'smtp', host: '127.0.0.1', port: (mute.address() as AddressInfo).port }, undefined, {
        timeoutMs: 300,
      }),
    ).rejects.toMatchObject({ stage: 'greeting', message: expect.stringContaining('no answer within 0.3s') });
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await expect(probe({ protocol: 'imap', host: '127.0.0.1', port }, undefined)).rejects.toMatchObject({
      stage: 'connect',
    });
  });

  it('a cancelled probe fails at once', async () => {
    const port = await fakeServer(SCRIPTS.smtp!);
    await expect(
      probe({ protocol: 'smtp', host: '127.0.0.1', port }, undefined, { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ stage: 'connect', message: expect.stringContaining('cancelled') });
  });
});
