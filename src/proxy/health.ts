import { readFile } from 'node:fs/promises';
import { errorMessage } from '../util/errors.js';

/** Written when the proxy listens: the healthcheck of a proxy's container pings it instead. */
export const PROXY_MARKER = '/tmp/mailcerts-proxy.json';

/** `mailcerts healthcheck` in the proxy's container: healthy when the proxy answers its own ping. */
export async function proxyHealth(): Promise<string | undefined> {
  const marker = await readFile(PROXY_MARKER, 'utf8').catch(() => undefined);
  if (marker === undefined) return undefined;
  const { host, port } = JSON.parse(marker) as { host: string; port: number };
  const at = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const r = await fetch(`http://${at.includes(':') ? `[${at}]` : at}:${port}/_ping`, {
    signal: AbortSignal.timeout(5_000),
  }).catch((err: unknown) => errorMessage(err));
  return typeof r === 'string' || r.status !== 200
    ? `unhealthy: the socket proxy does not answer its ping (${typeof r === 'string' ? r : `HTTP ${r.status}`})`
    : 'healthy (socket proxy)';
}
