import { connect } from 'node:net';
import { u16 } from './providers/rfc2136/wire.js';

/** One DNS message over TCP (RFC 7766 framing): no truncation to handle, and the signed bytes arrive whole. */
export function exchange(server: { host: string; port: number }, message: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: server.host.replace(/^\[|\]$/g, ''), port: server.port });
    let got = Buffer.alloc(0);
    const done = (err: Error | undefined, answer?: Buffer) => {
      socket.destroy();
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(answer!);
    };
    const timer = setTimeout(
      () => done(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })),
      timeoutMs,
    );
    socket.on('connect', () => socket.write(Buffer.concat([u16(message.length), message])));
    socket.on('data', (chunk) => {
      got = Buffer.concat([got, chunk]);
      if (got.length > 70_000) return done(new Error('answer too large'));
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0))
        done(undefined, got.subarray(2, 2 + got.readUInt16BE(0)));
    });
    socket.on('error', (err) => done(err));
    socket.on('end', () => done(new Error('the server closed the connection without an answer')));
  });
}
