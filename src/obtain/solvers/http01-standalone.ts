import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../../log.js';
import { UserError } from '../../util/errors.js';
import {
  answerClientErrors,
  type ConnectionLimits,
  DEFAULT_LIMITS,
  LISTENER_OPTIONS,
  limitConnections,
} from '../../util/http-limits.js';
import { CHALLENGE_PREFIX, type ChallengeItem, type ChallengeSolver, TOKEN_PATTERN } from './types.js';

const MAX_URL = 512;
/** "served a challenge" is logged once per token, then at most every 10 s with a count. */
const SERVED_LOG_EVERY_MS = 10_000;

/**
 * A minimal HTTP listener that answers only for tokens of orders in flight and 404s everything else.
 * It never serves files, accepts no request body and is open only while an order needs it.
 */
export class StandaloneHttp01 implements ChallengeSolver {
  readonly type = 'http-01' as const;
  private readonly tokens = new Map<string, string>();
  private server: Server | undefined;
  private users = 0;
  private opening: Promise<void> | undefined;
  private readonly port: number;
  private readonly address: string | undefined;
  private readonly log: Logger;
  private readonly limits: ConnectionLimits;
  private readonly served = new Map<string, { loggedAt: number; unlogged: number }>();

  constructor(opts: { port: number; address?: string; log: Logger; limits?: ConnectionLimits }) {
    this.port = opts.port;
    this.address = opts.address;
    this.log = opts.log.child({ solver: 'http-01-standalone' });
    this.limits = opts.limits ?? DEFAULT_LIMITS;
  }

  /** The bound port (useful when configured as 0). */
  get boundPort(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  /** Certificates are obtained concurrently: the first begin() opens the listener, the others wait for it. */
  async begin(): Promise<void> {
    this.users++;
    try {
      this.opening ??= this.open();
      await this.opening;
    } catch (err) {
      this.users--;
      throw err;
    }
  }

  private async open(): Promise<void> {
    const server = createServer(LISTENER_OPTIONS, (req, res) => this.handle(req, res));
    answerClientErrors(server);
    limitConnections(server, this.limits);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port: this.port, host: this.address, ipv6Only: false }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.opening = undefined; // the next begin() tries again
      const code = (err as NodeJS.ErrnoException).code;
      const where = `${this.address ?? '*'}:${this.port}`;
      if (code === 'EADDRINUSE')
        throw new UserError(
          `HTTP-01 listener: ${where} is already in use; stop the other server or use HTTP01_MODE=webroot`,
        );
      if (code === 'EACCES')
        throw new UserError(
          `HTTP-01 listener: no permission to bind ${where}; run with CAP_NET_BIND_SERVICE or set HTTP01_PORT above 1023 and map port 80 to it`,
        );
      throw err;
    }
    this.server = server;
    this.log.info({ step: 'http-01', port: this.boundPort }, 'challenge listener open');
  }

  async prepare(items: ChallengeItem[]): Promise<void> {
    for (const { token, keyAuthorization } of items) {
      if (!TOKEN_PATTERN.test(token)) throw new Error('the CA sent a malformed challenge token');
      this.tokens.set(token, keyAuthorization);
    }
  }

  async cleanup(items: ChallengeItem[]): Promise<void> {
    for (const { token } of items) {
      this.tokens.delete(token);
      this.served.delete(token);
    }
  }

  /** A CA asks a few times per token; a client hammering a known token must not flood the log. */
  private logServed(token: string, from: string | undefined): void {
    const now = Date.now();
    const seen = this.served.get(token);
    if (seen && now - seen.loggedAt < SERVED_LOG_EVERY_MS) {
      seen.unlogged++;
      return;
    }
    this.log.info(
      { step: 'http-01', status: 200, from, ...(seen?.unlogged ? { alsoServed: seen.unlogged } : {}) },
      'served a challenge',
    );
    this.served.set(token, { loggedAt: now, unlogged: 0 });
  }

  async end(): Promise<void> {
    this.users = Math.max(0, this.users - 1);
    if (this.users > 0 || !this.server) return;
    const server = this.server;
    this.server = undefined;
    this.opening = undefined;
    this.tokens.clear();
    this.served.clear();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.log.info({ step: 'http-01' }, 'challenge listener closed');
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('Connection', 'close');
    res.setHeader('Cache-Control', 'no-store');
    const reply = (status: number, body = '') => {
      res.statusCode = status;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.end(req.method === 'HEAD' ? undefined : body);
      if (status >= 400 && req.readable) req.destroy(); // never read what a client tries to push
    };
    const url = req.url ?? '';
    const length = Number(req.headers['content-length'] ?? 0);
    if (req.headers['transfer-encoding'] || length > 0) {
      reply(413);
      return;
    }
    if (url.length > MAX_URL) {
      reply(414);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      reply(405);
      return;
    }
    const token = url.startsWith(CHALLENGE_PREFIX) ? url.slice(CHALLENGE_PREFIX.length) : '';
    const keyAuthorization = TOKEN_PATTERN.test(token) ? this.tokens.get(token) : undefined;
    if (keyAuthorization === undefined) {
      this.log.debug({ step: 'http-01', status: 404 }, 'unknown challenge request');
      reply(404);
      return;
    }
    this.logServed(token, req.socket.remoteAddress);
    reply(200, keyAuthorization);
  }
}
