import { errorMessage } from '../util/errors.js';
import { EXIT } from './common.js';
import { Cancelled } from '../util/error-codes.js';

/** `mailcerts proxy`: needs none of mailcerts' own configuration, only the PROXY_ variables. */
export async function commandProxy(rest: string[]): Promise<number> {
  if (rest.length > 0) {
    process.stderr.write(
      `mailcerts proxy: takes no arguments (it is configured with PROXY_BIND, PROXY_SOCKET, PROXY_SWARM and PROXY_SCOPE)\n`,
    );
    return EXIT.usage;
  }
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => stop.abort(new Cancelled()));
  const { runProxy } = await import('../proxy/index.js');
  try {
    await runProxy(process.env, stop.signal);
    return EXIT.ok;
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\nThe proxy did not start.\n`);
    return EXIT.config;
  }
}

/** The same image runs the socket proxy, whose container has the same HEALTHCHECK: its verdict, when it is the proxy. */
export async function proxyHealthcheck(): Promise<number | undefined> {
  const proxy = await (await import('../proxy/health.js')).proxyHealth();
  if (proxy === undefined) return undefined;
  process.stdout.write(`${proxy}\n`);
  return proxy.startsWith('healthy') ? EXIT.ok : EXIT.failed;
}
