import { createServer, type Server } from 'node:http';
import { Gauge, Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../util/errors.js';
import { collectStatus, health, type StatusRow } from './status.js';

const seconds = (iso?: string) => (iso ? new Date(iso).getTime() / 1000 : undefined);

/** Prometheus metrics, rebuilt from the same data as `mailcerts status` at each scrape. */
function metrics(rows: StatusRow[]): Registry {
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: string[]) => new Gauge({ name: `mailcerts_${name}`, help, labelNames, registers: [registry] });
  const expiry = gauge('certificate_expiry_timestamp_seconds', 'When the published certificate expires.', ['certificate']);
  const success = gauge('certificate_last_success_timestamp_seconds', 'Last successful issuance or publish.', ['certificate']);
  const failures = gauge('certificate_consecutive_failures', 'Failures since the last success.', ['certificate']);
  const next = gauge('certificate_next_renewal_timestamp_seconds', 'When mailcerts plans to renew (or retry).', ['certificate']);
  const deployed = gauge('certificate_deployed', '1 when the published certificate was deployed to the containers.', ['certificate']);
  const ariStart = gauge('certificate_ari_window_start_timestamp_seconds', 'Start of the CA\'s suggested renewal window (ARI).', ['certificate']);
  const ariEnd = gauge('certificate_ari_window_end_timestamp_seconds', 'End of the CA\'s suggested renewal window (ARI).', ['certificate']);
  const reloaded = gauge('container_reload_success', '1 when the last reload of the container succeeded.', ['container']);
  const serves = gauge('container_serves_current', '1 when the container serves the published certificate, 0 when not; absent when not verified.', ['container']);
  const healthy = gauge('healthy', '1 when every certificate is valid and will be retried before it expires.', []);
  for (const r of rows) {
    const c = { certificate: r.name };
    const set = (g: Gauge, v?: number) => v !== undefined && g.set(c, v);
    set(expiry, seconds(r.notAfter));
    set(success, seconds(r.lastSuccessAt));
    failures.set(c, r.failures);
    set(next, seconds(r.nextRenewal));
    deployed.set(c, r.deployed ? 1 : 0);
    set(ariStart, seconds(r.ariWindow?.start));
    set(ariEnd, seconds(r.ariWindow?.end));
  }
  for (const [name, c] of Object.entries(rows[0]?.containers ?? {})) {
    reloaded.set({ container: name }, c.reloaded ? 1 : 0);
    if (c.serves !== null) serves.set({ container: name }, c.serves ? 1 : 0);
  }
  healthy.set(health(rows).ok ? 1 : 0);
  return registry;
}

/** Parses STATUS_ADDRESS ("127.0.0.1:9090", "[::]:9090", "0.0.0.0:9090"). */
export function parseListen(address: string): { host: string; port: number } {
  const m = address.match(/^\[([^\]]+)\]:(\d+)$/) ?? address.match(/^([^:]+):(\d+)$/);
  if (!m) throw new Error(`"${address}" is not host:port`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** GET /healthz, /status and /metrics; nothing else. */
export async function startStatusServer(config: Config, address: string, log: Logger): Promise<Server> {
  const { host, port } = parseListen(address);
  const server = createServer(async (req, res) => {
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/healthz') {
        const h = health(await collectStatus(config));
        return send(h.ok ? 200 : 503, 'application/json', `${JSON.stringify({ status: h.ok ? 'ok' : 'unhealthy', problems: h.problems })}\n`);
      }
      if (path === '/status') return send(200, 'application/json', `${JSON.stringify(await collectStatus(config), null, 2)}\n`);
      if (path === '/metrics') {
        const registry = metrics(await collectStatus(config));
        return send(200, registry.contentType, await registry.metrics());
      }
      return send(404, 'text/plain', 'not found: try /healthz, /status or /metrics\n');
    } catch (err) {
      log.error({ step: 'status', error: errorMessage(err) }, 'status request failed');
      return send(500, 'text/plain', 'internal error\n');
    }
  });
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(err.code === 'EADDRINUSE' ? `STATUS_ADDRESS ${address} is already in use; choose another port or set STATUS_ADDRESS=off` : err.message)),
    );
    server.listen(port, host, resolve);
  });
  log.info({ step: 'status', address }, 'status endpoint listening (/healthz, /status, /metrics)');
  return server;
}
