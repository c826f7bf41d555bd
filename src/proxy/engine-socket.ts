import { type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';

/**
 * The Docker socket behind the proxy: the proxy's own lookups (what a container, service or object
 * is, before a call on it is allowed), and the calls it lets through.
 */
const CALL_TIMEOUT_MS = 30_000;
const STREAM_IDLE_MS = 10 * 60_000;
/** A response the proxy reads to filter it (a list of services, tasks, objects). */
const MAX_READ = 64 * 1024 * 1024;

export interface EngineAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface EngineSocket {
  /** One call, its whole answer read (for the proxy's own lookups and for filtered answers). */
  call(method: string, path: string, body?: Buffer): Promise<EngineAnswer>;
  /** One call whose answer is streamed on (exec output may run for minutes). */
  open(method: string, path: string, body?: Buffer): Promise<IncomingMessage>;
  /** A GET of the proxy's own: the parsed JSON when it answers 200, undefined on 404, otherwise an error. */
  lookup(path: string): Promise<unknown>;
}

export function engineSocket(socketPath: string): EngineSocket {
  /** `idleMs`: how long the engine may stay silent (a streamed exec may print nothing for a while; mailcerts times its own execs). */
  const open = (method: string, path: string, body?: Buffer, idleMs = STREAM_IDLE_MS) =>
    new Promise<IncomingMessage>((resolve, reject) => {
      const headers: Record<string, string | number> = { host: 'docker' };
      if (body && body.length > 0)
        Object.assign(headers, { 'content-type': 'application/json', 'content-length': body.length });
      const req = request({ socketPath, method, path, headers, timeout: idleMs }, resolve);
      req.on('timeout', () =>
        req.destroy(new Error(`the Docker engine was silent on ${method} ${path} for ${idleMs / 1000} s`)),
      );
      req.on('error', reject);
      req.end(body);
    });
  const call = async (method: string, path: string, body?: Buffer): Promise<EngineAnswer> => {
    const res = await open(method, path, body, CALL_TIMEOUT_MS);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_READ) {
        res.destroy();
        throw new Error(`the answer to ${method} ${path} is larger than ${MAX_READ / 1024 / 1024} MB`);
      }
      chunks.push(c);
    }
    return { status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) };
  };
  return {
    call,
    open,
    async lookup(path) {
      const r = await call('GET', path);
      if (r.status === 404) return undefined;
      if (r.status !== 200)
        throw new Error(
          `the Docker engine answered ${r.status} to GET ${path}: ${r.body.toString('utf8').slice(0, 200)}`,
        );
      return JSON.parse(r.body.toString('utf8')) as unknown;
    },
  };
}
