import type { Socket } from 'node:net';
import { ProbeError, type ProbeStage, type Protocol } from './endpoint.js';

/** What a server said, as it may be shown in logs and /status: printable ASCII, short. */
function quoteServer(lines: string[]): string {
  return lines
    .join(' | ')
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 200);
}

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

/** One dialogue's tools: read, send, and fail at the stage reached with what the server said. */
interface Dialogue {
  r: LineReader;
  send(line: string): void;
  expect(ok: boolean, what: string, got: string[]): void;
  /** The greeting was accepted: what fails from here on is the certificate's fault. */
  accept(): void;
}

async function smtpStartTls({ r, send, expect, accept }: Dialogue): Promise<void> {
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
}

async function imapStartTls({ r, send, expect, accept }: Dialogue): Promise<void> {
  const greeting = await r.line();
  expect(/^\* (OK|PREAUTH)/i.test(greeting), 'no IMAP greeting', [greeting]);
  accept();
  send('a1 STARTTLS');
  const done = await r.until(/^a1 /i);
  expect(/^a1 OK/i.test(done.at(-1)!), 'STARTTLS refused', done);
}

async function pop3StartTls({ r, send, expect, accept }: Dialogue): Promise<void> {
  const greeting = await r.line();
  expect(greeting.startsWith('+OK'), 'no POP3 greeting', [greeting]);
  accept();
  send('STLS');
  const ok = await r.line();
  expect(ok.startsWith('+OK'), 'STLS refused', [ok]);
}

async function sieveStartTls({ r, send, expect, accept }: Dialogue): Promise<void> {
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
}

const DIALOGUES: Partial<Record<Protocol, (d: Dialogue) => Promise<void>>> = {
  smtp: smtpStartTls,
  submission: smtpStartTls,
  imap: imapStartTls,
  pop3: pop3StartTls,
  sieve: sieveStartTls,
};

/**
 * The plaintext dialogue up to the point where the server expects a TLS ClientHello. `greeted` is
 * called once the server's greeting was accepted: what fails before it is the server's state, what
 * fails after it the certificate's.
 */
export async function startTls(protocol: Protocol, socket: Socket, greeted: () => void): Promise<void> {
  const dialogue = Object.hasOwn(DIALOGUES, protocol) ? DIALOGUES[protocol] : undefined;
  if (!dialogue) throw new ProbeError('protocol', `${protocol} uses implicit TLS`);
  const r = new LineReader(socket);
  let stage: ProbeStage = 'greeting';
  const d: Dialogue = {
    r,
    send: (line) => socket.write(`${line}\r\n`),
    expect: (ok, what, got) => {
      if (!ok) throw new ProbeError(stage, `${what}; the server said: ${quoteServer(got)}`);
    },
    accept: () => {
      stage = 'protocol';
      greeted();
    },
  };
  try {
    await dialogue(d);
  } catch (err) {
    // A connection closed or an error while waiting: at the stage the dialogue had reached.
    if (err instanceof ProbeError) throw err;
    throw new ProbeError(stage, (err as Error).message);
  } finally {
    r.detach();
  }
}
