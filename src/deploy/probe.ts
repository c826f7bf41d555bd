import type { X509Certificate } from 'node:crypto';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { type Algorithm, ALGORITHM_TABLE, ALGORITHMS } from '../pki/key-types.js';
import { spkiOf } from '../pki/identity.js';

export const PROTOCOLS = [
  'smtp',
  'submission',
  'submissions',
  'smtps',
  'imap',
  'imaps',
  'pop3',
  'pop3s',
  'sieve',
] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const DEFAULT_PORTS: Record<Protocol, number> = {
  smtp: 25,
  submission: 587,
  submissions: 465,
  smtps: 465,
  imap: 143,
  imaps: 993,
  pop3: 110,
  pop3s: 995,
  sieve: 4190,
};
const IMPLICIT_TLS = new Set<Protocol>(['submissions', 'smtps', 'imaps', 'pop3s']);

export interface Endpoint {
  protocol: Protocol;
  host: string;
  port: number;
}

export function endpointText(e: Endpoint): string {
  return `${e.protocol}://${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
}

/** The certificate a server presented. */
export interface Served {
  cert: X509Certificate;
  serial: string;
  fingerprint256: string;
  /** sha256 of the SubjectPublicKeyInfo, hex: what DANE 3 1 1 pins. */
  spki: string;
}

/**
 * Where a probe failed, which says whose fault it is:
 *   connect    the TCP connection did not complete (refused, unreachable, no answer);
 *   greeting   no usable greeting (a 421 from postscreen or a rate limit, a server still starting,
 *              a greeting that never came): neither is the certificate's fault;
 *   protocol   the dialogue that leads to TLS failed (STARTTLS not offered or refused: what a
 *              server does when it cannot load its certificate);
 *   handshake  TLS itself failed.
 */
export type ProbeStage = 'connect' | 'greeting' | 'protocol' | 'handshake';

export class ProbeError extends Error {
  override name = 'ProbeError';
  readonly stage: ProbeStage;
  constructor(stage: ProbeStage, message: string) {
    super(message.trim().replace(/\s*\n\s*/g, ' '));
    this.stage = stage;
  }
}

/** What a server said, as it may be shown in logs and /status: printable ASCII, short. */
function quoteServer(lines: string[]): string {
  return lines
    .join(' | ')
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 200);
}

export const CONNECT_TIMEOUT_MS = 5_000;

/** Reads CRLF lines from a plaintext socket, bounded in size. */
class LineReader {
  private buffer = '';
  private lines: string[] = [];
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer) => {
    this.buffer += chunk.toString('latin1');
    if (this.buffer.length > 65_536)
      this.fail(new Error('the server sent more than 64 KiB without finishing its answer'));
    const parts = this.buffer.split(/\r?\n/);
    this.buffer = parts.pop() ?? '';
    this.lines.push(...parts);
    this.waiter?.();
  };

  private readonly socket: Socket;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('error', (e) => this.fail(e instanceof ProbeError ? e : new Error(e.message)));
    socket.on('end', () => this.fail(new Error('the server closed the connection')));
  }

  fail(e: Error) {
    this.failure ??= e;
    this.waiter?.();
  }

  async line(): Promise<string> {
    while (this.lines.length === 0) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = undefined;
    }
    return this.lines.shift()!;
  }

  /** Lines until one matches `last`. */
  async until(last: RegExp): Promise<string[]> {
    const seen: string[] = [];
    for (;;) {
      const l = await this.line();
      seen.push(l);
      if (last.test(l)) return seen;
    }
  }

  detach() {
    this.socket.off('data', this.onData);
  }
}

async function smtpReply(r: LineReader): Promise<{ code: number; lines: string[] }> {
  const lines = await r.until(/^\d{3}( |$)/);
  return { code: Number(lines.at(-1)!.slice(0, 3)), lines };
}

/**
 * The plaintext dialogue up to the point where the server expects a TLS ClientHello. `greeted` is
 * called once the server's greeting was accepted: what fails before it is the server's state, what
 * fails after it the certificate's.
 */
async function startTls(protocol: Protocol, socket: Socket, greeted: () => void): Promise<void> {
  const r = new LineReader(socket);
  let stage: ProbeStage = 'greeting';
  const send = (line: string) => socket.write(`${line}\r\n`);
  const expect = (ok: boolean, what: string, got: string[]) => {
    if (!ok) throw new ProbeError(stage, `${what}; the server said: ${quoteServer(got)}`);
  };
  const accept = () => {
    stage = 'protocol';
    greeted();
  };
  try {
    switch (protocol) {
      case 'smtp':
      case 'submission': {
        const greeting = await smtpReply(r);
        expect(greeting.code === 220, 'no 220 greeting', greeting.lines);
        accept();
        send('EHLO mailcerts.invalid');
        const ehlo = await smtpReply(r);
        expect(ehlo.code === 250, 'EHLO refused', ehlo.lines);
        expect(
          ehlo.lines.some((l) => /^250[- ]STARTTLS\b/i.test(l)),
          'STARTTLS is not offered',
          ehlo.lines,
        );
        send('STARTTLS');
        const ready = await smtpReply(r);
        expect(ready.code === 220, 'STARTTLS refused', ready.lines);
        break;
      }
      case 'imap': {
        const greeting = await r.line();
        expect(/^\* (OK|PREAUTH)/i.test(greeting), 'no IMAP greeting', [greeting]);
        accept();
        send('a1 STARTTLS');
        const done = await r.until(/^a1 /i);
        expect(/^a1 OK/i.test(done.at(-1)!), 'STARTTLS refused', done);
        break;
      }
      case 'pop3': {
        const greeting = await r.line();
        expect(greeting.startsWith('+OK'), 'no POP3 greeting', [greeting]);
        accept();
        send('STLS');
        const ok = await r.line();
        expect(ok.startsWith('+OK'), 'STLS refused', [ok]);
        break;
      }
      case 'sieve': {
        const caps = await r.until(/^(OK|NO|BYE)/i);
        expect(/^OK/i.test(caps.at(-1)!), 'no ManageSieve greeting', caps);
        accept();
        expect(
          caps.some((l) => /^"STARTTLS"/i.test(l)),
          'STARTTLS is not offered',
          caps,
        );
        send('STARTTLS');
        const ok = await r.line();
        expect(/^OK/i.test(ok), 'STARTTLS refused', [ok]);
        break;
      }
      default:
        throw new ProbeError('protocol', `${protocol} uses implicit TLS`);
    }
  } catch (err) {
    // A connection closed or an error while waiting: at the stage the dialogue had reached.
    if (err instanceof ProbeError) throw err;
    throw new ProbeError(stage, (err as Error).message);
  } finally {
    r.detach();
  }
}

/**
 * The signature algorithms a client offers to get one variant of a dual certificate: the server
 * picks the certificate whose key can sign with them (TLS 1.3 needs RSA-PSS for an RSA key).
 */
export const SIGALGS = Object.fromEntries(ALGORITHMS.map((a) => [a, ALGORITHM_TABLE[a].sigalgs])) as Record<
  Algorithm,
  string
>;

/**
 * Connects as a mail client would and returns the leaf certificate the server presents for
 * `servername`. The TCP connect has its own deadline: one that does not complete is a 'connect'
 * failure, on implicit-TLS ports as on STARTTLS ones.
 */
export async function probe(
  endpoint: Endpoint,
  servername: string | undefined,
  opts: { timeoutMs?: number; signal?: AbortSignal; algorithm?: Algorithm } = {},
): Promise<Served> {
  const where = endpointText(endpoint);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let socket: Socket | undefined;
  let tls: TLSSocket | undefined;
  let connected = false;
  /** How far the dialogue got: a timeout is classed by it. */
  let stage: ProbeStage = 'connect';
  const kill = (e: ProbeError) => {
    tls?.destroy(e);
    socket?.destroy(e);
  };
  const timer = setTimeout(() => kill(new ProbeError(stage, `no answer within ${timeoutMs / 1000}s`)), timeoutMs);
  const connectTimer = setTimeout(
    () => {
      if (!connected)
        kill(
          new ProbeError(
            'connect',
            `the TCP connection did not complete within ${Math.min(CONNECT_TIMEOUT_MS, timeoutMs) / 1000}s`,
          ),
        );
    },
    Math.min(CONNECT_TIMEOUT_MS, timeoutMs),
  );
  const onAbort = () => kill(new ProbeError('connect', 'cancelled: shutting down'));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (opts.signal?.aborted) throw new ProbeError('connect', 'cancelled: shutting down');
    const sni = servername && isIP(servername) === 0 ? servername : undefined; // undefined: a client that sends no SNI
    socket = netConnect({ host: endpoint.host, port: endpoint.port });
    await new Promise<void>((resolve, reject) => {
      socket!.once('connect', () => {
        connected = true;
        stage = IMPLICIT_TLS.has(endpoint.protocol) ? 'handshake' : 'greeting';
        resolve();
      });
      socket!.once('error', (e) => reject(e instanceof ProbeError ? e : new ProbeError('connect', e.message)));
    });
    if (!IMPLICIT_TLS.has(endpoint.protocol)) await startTls(endpoint.protocol, socket, () => (stage = 'protocol'));
    stage = 'handshake';
    tls = tlsConnect({
      socket,
      servername: sni,
      rejectUnauthorized: false,
      ...(opts.algorithm ? { sigalgs: SIGALGS[opts.algorithm] } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      tls!.once('secureConnect', resolve);
      tls!.once('error', (e: NodeJS.ErrnoException) =>
        reject(e instanceof ProbeError ? e : new ProbeError('handshake', e.message)),
      );
    });
    const cert = tls.getPeerX509Certificate();
    if (!cert) throw new ProbeError('handshake', 'the server presented no certificate');
    return { cert, serial: cert.serialNumber, fingerprint256: cert.fingerprint256, spki: spkiOf(cert) };
  } catch (err) {
    const e = err instanceof ProbeError ? err : new ProbeError(stage, (err as Error).message);
    throw new ProbeError(e.stage, `${where}: ${e.message}`);
  } finally {
    clearTimeout(timer);
    clearTimeout(connectTimer);
    opts.signal?.removeEventListener('abort', onAbort);
    tls?.destroy();
    socket?.destroy();
  }
}
