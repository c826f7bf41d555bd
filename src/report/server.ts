import { createServer, type Server } from 'node:http';
import type { Gauge, Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../util/errors.js';
import { answerClientErrors, LISTENER_OPTIONS, limitConnections } from '../util/http-limits.js';
import { redact } from '../util/redact.js';
import { collectStatus, health, type StatusRow } from './status.js';
import { type Clock, systemClock } from '../util/clock.js';

const seconds = (iso?: string) => (iso ? new Date(iso).getTime() / 1000 : undefined);

/** One series per variant: a dual certificate has an ECDSA and an RSA one. */
const CERT_LABELS = ['certificate', 'key_type'];

/** Each gauge: its name (after mailcerts_), its help, its labels; exposed in this order. */
const GAUGES = {
  expiry: ['certificate_expiry_timestamp_seconds', 'When the published certificate expires.', CERT_LABELS],
  success: ['certificate_last_success_timestamp_seconds', 'Last successful issuance or publish.', CERT_LABELS],
  failures: ['certificate_consecutive_failures', 'Failures since the last success.', CERT_LABELS],
  next: ['certificate_next_renewal_timestamp_seconds', 'When mailcerts plans to renew (or retry).', CERT_LABELS],
  deployed: ['certificate_deployed', '1 when the published certificate was deployed to the containers.', CERT_LABELS],
  ariStart: [
    'certificate_ari_window_start_timestamp_seconds',
    "Start of the CA's suggested renewal window (ARI).",
    CERT_LABELS,
  ],
  ariEnd: [
    'certificate_ari_window_end_timestamp_seconds',
    "End of the CA's suggested renewal window (ARI).",
    CERT_LABELS,
  ],
  reloaded: ['container_reload_success', '1 when the last reload of the container succeeded.', ['container']],
  serves: [
    'container_serves_current',
    '1 when the container serves the published certificate, 0 when not; absent when not verified.',
    ['container'],
  ],
  unverified: [
    'container_unverified',
    '1 when the container was reloaded but what it serves could not be checked (mailcerts status says why), 0 when it was checked.',
    ['container'],
  ],
  servesName: [
    'container_serves_name',
    '1 when every endpoint of the container serves the right certificate for the name by SNI ("(no SNI)": the default), 0 when not.',
    ['container', 'name'],
  ],
  daneInStep: [
    'dane_in_step',
    '1 when the served key is in the TLSA RRset on every authoritative server (DANE), 0 when not; absent before a check.',
    CERT_LABELS,
  ],
  daneSeen: [
    'dane_next_seen_since_timestamp_seconds',
    "Since when the next key's TLSA record has been answered everywhere (DANE).",
    CERT_LABELS,
  ],
  healthy: ['healthy', '1 when every certificate is valid and will be retried before it expires.', []],
} satisfies Record<string, [name: string, help: string, labels: string[]]>;

type Gauges = Record<keyof typeof GAUGES, Gauge>;

/**
 * Prometheus metrics, rebuilt from the same data as `mailcerts status` at each scrape. prom-client
 * (with its OpenTelemetry API) is loaded at the first scrape: a daemon nobody scrapes does not carry it.
 */
async function metrics(rows: StatusRow[]): Promise<Registry> {
  const { Gauge, Registry } = await import('prom-client');
  const registry = new Registry();
  const g = Object.fromEntries(
    Object.entries(GAUGES).map(([key, [name, help, labelNames]]) => [
      key,
      new Gauge({ name: `mailcerts_${name}`, help, labelNames, registers: [registry] }),
    ]),
  ) as Gauges;
  for (const r of rows) {
    const c = { certificate: r.name, key_type: r.keyType };
    const set = (gauge: Gauge, v?: number) => v !== undefined && gauge.set(c, v);
    set(g.expiry, seconds(r.notAfter));
    set(g.success, seconds(r.lastSuccessAt));
    g.failures.set(c, r.failures);
    set(g.next, seconds(r.nextRenewal));
    g.deployed.set(c, r.deployed ? 1 : 0);
    set(g.ariStart, seconds(r.ariWindow?.start));
    set(g.ariEnd, seconds(r.ariWindow?.end));
    if (r.dane?.inStep !== undefined) g.daneInStep.set(c, r.dane.inStep ? 1 : 0);
    set(g.daneSeen, seconds(r.dane?.nextSeenSince));
  }
  for (const [name, c] of Object.entries(rows[0]?.containers ?? {})) {
    g.reloaded.set({ container: name }, c.reloaded ? 1 : 0);
    if (c.serves !== null) g.serves.set({ container: name }, c.serves ? 1 : 0);
    if (c.reloaded) g.unverified.set({ container: name }, c.serves === null ? 1 : 0);
    for (const [sni, ok] of Object.entries(c.names ?? {})) g.servesName.set({ container: name, name: sni }, ok ? 1 : 0);
  }
  g.healthy.set(health(rows).ok ? 1 : 0);
  return registry;
}

/** collectStatus reads every certificate's files: a burst of requests shares one reading per second. */
const CACHE_MS = 1_000;

function cachedStatus(config: Config, clock: Clock): () => Promise<StatusRow[]> {
  let cached: { at: number; rows: Promise<StatusRow[]> } | undefined;
  return () => {
    const now = clock.now();
    if (!cached || now - cached.at >= CACHE_MS) {
      const rows = collectStatus(config);
      cached = { at: now, rows };
      rows.catch(() => (cached = undefined));
    }
    return cached.rows;
  };
}

/**
 * GET /healthz, /status and /metrics; nothing else. Loopback by default (the image's HEALTHCHECK
 * runs inside the container); the same connection limits and timeouts as the HTTP-01 listener,
 * and everything it sends goes through the one redaction.
 */
export async function startStatusServer(
  config: Config,
  address: { host: string; port: number },
  log: Logger,
  clock: Clock = systemClock,
): Promise<Server> {
  const { host, port } = address;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const status = cachedStatus(config, clock);
  const server = createServer(LISTENER_OPTIONS, async (req, res) => {
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', connection: 'close' });
      res.end(redact(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/healthz') {
        const h = health(await status());
        return send(
          h.ok ? 200 : 503,
          'application/json',
          `${JSON.stringify({ status: h.ok ? 'ok' : 'unhealthy', problems: h.problems })}\n`,
        );
      }
      if (path === '/status') return send(200, 'application/json', `${JSON.stringify(await status(), null, 2)}\n`);
      if (path === '/metrics') {
        const registry = await metrics(await status());
        return send(200, registry.contentType, await registry.metrics());
      }
      return send(404, 'text/plain', 'not found: try /healthz, /status or /metrics\n');
    } catch (err) {
      log.error({ step: 'status', error: errorMessage(err) }, 'status request failed');
      return send(500, 'text/plain', 'internal error\n');
    }
  });
  answerClientErrors(server);
  limitConnections(server, { maxConnections: 64, maxPerSource: 16 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `STATUS_ADDRESS ${where} is already in use; choose another port or set STATUS_ADDRESS=off`
            : err.message,
        ),
      ),
    );
    server.listen(port, host, resolve);
  });
  log.info({ step: 'status', address: where }, 'status endpoint listening (/healthz, /status, /metrics)');
  return server;
}
