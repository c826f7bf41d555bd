import type { X509Certificate } from 'node:crypto';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { type Algorithm, ALGORITHM_TABLE, ALGORITHMS } from '../pki/key-types.js';
import { spkiOf } from '../pki/identity.js';
import { type Endpoint, endpointText, IMPLICIT_TLS, ProbeError, type ProbeStage } from './endpoint.js';
import { startTls } from './starttls.js';

export {
  DEFAULT_PORTS,
  type Endpoint,
  endpointText,
  ProbeError,
  type ProbeStage,
  PROTOCOLS,
  type Protocol,
} from './endpoint.js';

/** The certificate a server presented. */
export interface Served {
  cert: X509Certificate;
  serial: string;
  fingerprint256: string;
  /** sha256 of the SubjectPublicKeyInfo, hex: what DANE 3 1 1 pins. */
  spki: string;
}

export const CONNECT_TIMEOUT_MS = 5_000;

/**
 * The signature algorithms a client offers to get one variant of a dual certificate: the server
 * picks the certificate whose key can sign with them (TLS 1.3 needs RSA-PSS for an RSA key).
 */
export const SIGALGS = Object.fromEntries(ALGORITHMS.map((a) => [a, ALGORITHM_TABLE[a].sigalgs])) as Record<
  Algorithm,
  string
>;

/** One probe's connection, and how far its dialogue got: a timeout is classed by it. */
interface Attempt {
  socket?: Socket;
  tls?: TLSSocket;
  connected: boolean;
  stage: ProbeStage;
}

/** The probe's deadlines (the whole probe, and the TCP connect) and its cancellation; returns the disarm. */
function watchdog(a: Attempt, timeoutMs: number, signal: AbortSignal | undefined): () => void {
  const kill = (e: ProbeError) => {
    a.tls?.destroy(e);
    a.socket?.destroy(e);
  };
  const timer = setTimeout(() => kill(new ProbeError(a.stage, `no answer within ${timeoutMs / 1000}s`)), timeoutMs);
  const connectMs = Math.min(CONNECT_TIMEOUT_MS, timeoutMs);
  const connectTimer = setTimeout(() => {
    if (!a.connected)
      kill(new ProbeError('connect', `the TCP connection did not complete within ${connectMs / 1000}s`));
  }, connectMs);
  const onAbort = () => kill(new ProbeError('connect', 'cancelled: shutting down'));
  signal?.addEventListener('abort', onAbort, { once: true });
  return () => {
    clearTimeout(timer);
    clearTimeout(connectTimer);
    signal?.removeEventListener('abort', onAbort);
  };
}

/** The TCP connection; once it is up, the stage is the greeting (or the handshake, for implicit TLS). */
function connectTcp(endpoint: Endpoint, a: Attempt): Promise<Socket> {
  const socket = netConnect({ host: endpoint.host, port: endpoint.port });
  a.socket = socket;
  return new Promise<Socket>((resolve, reject) => {
    socket.once('connect', () => {
      a.connected = true;
      a.stage = IMPLICIT_TLS.has(endpoint.protocol) ? 'handshake' : 'greeting';
      resolve(socket);
    });
    socket.once('error', (e) => reject(e instanceof ProbeError ? e : new ProbeError('connect', e.message)));
  });
}

/** The TLS handshake over the connection; the leaf certificate the server presented. */
async function handshake(
  a: Attempt,
  socket: Socket,
  sni: string | undefined,
  algorithm: Algorithm | undefined,
): Promise<X509Certificate> {
  a.stage = 'handshake';
  const tls = tlsConnect({
    socket,
    servername: sni,
    rejectUnauthorized: false,
    ...(algorithm ? { sigalgs: SIGALGS[algorithm] } : {}),
  });
  a.tls = tls;
  await new Promise<void>((resolve, reject) => {
    tls.once('secureConnect', resolve);
    tls.once('error', (e: NodeJS.ErrnoException) =>
      reject(e instanceof ProbeError ? e : new ProbeError('handshake', e.message)),
    );
  });
  const cert = tls.getPeerX509Certificate();
  if (!cert) throw new ProbeError('handshake', 'the server presented no certificate');
  return cert;
}

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
  const a: Attempt = { connected: false, stage: 'connect' };
  const disarm = watchdog(a, opts.timeoutMs ?? 10_000, opts.signal);
  try {
    if (opts.signal?.aborted) throw new ProbeError('connect', 'cancelled: shutting down');
    const sni = servername && isIP(servername) === 0 ? servername : undefined; // undefined: a client that sends no SNI
    const socket = await connectTcp(endpoint, a);
    if (!IMPLICIT_TLS.has(endpoint.protocol)) await startTls(endpoint.protocol, socket, () => (a.stage = 'protocol'));
    const cert = await handshake(a, socket, sni, opts.algorithm);
    return { cert, serial: cert.serialNumber, fingerprint256: cert.fingerprint256, spki: spkiOf(cert) };
  } catch (err) {
    const e = err instanceof ProbeError ? err : new ProbeError(a.stage, (err as Error).message);
    throw new ProbeError(e.stage, `${endpointText(endpoint)}: ${e.message}`);
  } finally {
    disarm();
    a.tls?.destroy();
    a.socket?.destroy();
  }
}
