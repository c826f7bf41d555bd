import type { Server } from 'node:http';
import { isIPv6, type Socket } from 'node:net';

/**
 * Limits for mailcerts' own HTTP listeners (HTTP-01, status), which may face the internet.
 * Node enforces the request timeouts only when it checks, every connectionsCheckingInterval, so
 * that interval is short: an idle or slowloris connection lives about as long as the timeout.
 */
export const LISTENER_OPTIONS = {
  maxHeaderSize: 4096,
  headersTimeout: 5_000,
  requestTimeout: 5_000,
  keepAliveTimeout: 1_000,
  connectionsCheckingInterval: 1_000,
} as const;

/**
 * Past either limit, the oldest connection (in all, or of that source) is dropped for the newcomer,
 * never the newcomer: a flood cannot lock the CA out, even when every client seems to come from one
 * address (Docker's userland proxy, a NAT).
 */
export interface ConnectionLimits {
  /** Connections held at once. */
  maxConnections: number;
  /** Connections held at once per source (an IPv4 address, or an IPv6 /64). */
  maxPerSource: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = { maxConnections: 256, maxPerSource: 16 };

/** The source a connection is counted against: IPv4 address, or IPv6 /64 (one host often has many). */
export function sourceOf(address: string | undefined): string {
  if (!address) return '?';
  const mapped = address.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g || '0')
    .join(':')}::/64`;
}

/** Counts connections per source and in all, evicting the oldest as the limits say. */
export function limitConnections(server: Server, limits: ConnectionLimits = DEFAULT_LIMITS): void {
  const open = new Set<Socket>(); // insertion order: oldest first
  const perSource = new Map<string, Set<Socket>>();
  const forget = (socket: Socket, source: string) => {
    open.delete(socket);
    const mine = perSource.get(source);
    mine?.delete(socket);
    if (mine?.size === 0) perSource.delete(source);
  };
  server.on('connection', (socket: Socket) => {
    const source = sourceOf(socket.remoteAddress);
    const mine = perSource.get(source) ?? new Set<Socket>();
    perSource.set(source, mine);
    if (mine.size >= limits.maxPerSource) {
      const oldest = mine.values().next().value!;
      forget(oldest, source);
      oldest.destroy();
    }
    if (open.size >= limits.maxConnections) {
      const oldest = open.values().next().value!;
      forget(oldest, sourceOf(oldest.remoteAddress));
      oldest.destroy();
    }
    open.add(socket);
    mine.add(socket);
    socket.once('close', () => forget(socket, source));
  });
}

/** The answer to a request Node refused before any handler saw it. */
export function clientErrorStatus(code: string | undefined): string {
  if (code === 'HPE_HEADER_OVERFLOW') return '431 Request Header Fields Too Large';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return '408 Request Timeout';
  return '400 Bad Request';
}

/** Installs the clientError answer: a status line, then the connection is closed. */
export function answerClientErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable && !socket.writableEnded) {
      socket.end(`HTTP/1.1 ${clientErrorStatus(err.code)}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    socket.destroy();
  });
}
