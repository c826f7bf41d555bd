import { writeFile } from 'node:fs/promises';
import * as z from 'zod/mini';
import { LOG_LEVELS } from '../config/schema.js';
import { createLogger, type Logger } from '../log.js';
import { ownContainerId } from '../util/container.js';
import { errorMessage } from '../util/errors.js';
import { splitHostPort } from '../util/host-port.js';
import { containerRules } from './container-rules.js';
import { engineSocket, type EngineSocket } from './engine-socket.js';
import { COMPOSE_LABEL, type ProxyContext, STACK_LABEL } from './rules.js';
import { PROXY_MARKER } from './health.js';
import { proxyServer } from './server.js';
import { swarmRules } from './swarm-rules.js';

/**
 * `mailcerts proxy`: the Docker socket proxy, run from the mailcerts image as a service of its own
 * beside mailcerts. It holds the socket; mailcerts reaches it over a network that only the two
 * share, and it lets through only the calls mailcerts makes, each judged on what it would do.
 */
export const ProxyEnv = z.object({
  /**
   * Where the proxy listens: on a network that only mailcerts joins.
   * @default 0.0.0.0:2375
   * @values `host:port`
   */
  PROXY_BIND: z._default(z.string(), '0.0.0.0:2375'),
  /**
   * The engine's socket.
   * @default /var/run/docker.sock
   */
  PROXY_SOCKET: z._default(z.string().check(z.minLength(1)), '/var/run/docker.sock'),
  /**
   * `yes`: also the Swarm calls of `DEPLOY_MODE=swarm`.
   * @default no
   */
  PROXY_SWARM: z._default(z.enum(['yes', 'no'], { error: () => 'use yes (DEPLOY_MODE=swarm) or no' }), 'no'),
  /**
   * Whose containers and services it serves (`*`: all); set it to mailcerts' `DOCKER_SCOPE` when that is set.
   * @default its own stack or compose project
   * @values a stack or compose project name, or `*`
   */
  PROXY_SCOPE: z.optional(
    z.string().check(z.regex(/^(\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,62})$/, 'use a stack or compose project name, or *')),
  ),
  /**
   * How much the proxy logs.
   * @default info
   */
  LOG_LEVEL: z._default(z.enum(LOG_LEVELS), 'info'),
  /**
   * As for mailcerts: `json` for a log collector, `text` for people.
   * @default `text` on a terminal, else `json`
   */
  LOG_FORMAT: z.optional(z.enum(['json', 'text'])),
});

export interface ProxySettings {
  bind: { host: string; port: number };
  socket: string;
  swarm: boolean;
  scope?: string;
  log: Logger;
}

/** The settings from the environment, or what to change. */
export function proxySettings(env: NodeJS.ProcessEnv): ProxySettings {
  const parsed = z.safeParse(
    ProxyEnv,
    Object.fromEntries(Object.entries(env).filter(([k, v]) => k in ProxyEnv.shape && v !== '')),
  );
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const e = parsed.data;
  const bind = splitHostPort(e.PROXY_BIND);
  if (!bind) throw new Error(`PROXY_BIND: "${e.PROXY_BIND}" is not host:port, such as 0.0.0.0:2375`);
  const log = createLogger(e.LOG_LEVEL, undefined, e.LOG_FORMAT ?? (process.stdout.isTTY ? 'text' : 'json'));
  return { bind, socket: e.PROXY_SOCKET, swarm: e.PROXY_SWARM === 'yes', scope: e.PROXY_SCOPE, log };
}

/**
 * Who the proxy is: its own container (never to be acted on) and the stack or compose project it
 * serves (PROXY_SCOPE, else its own container's). Without its own id it still runs, but refuses
 * every exec, kill and restart; without a scope it does not start.
 */
export async function identify(
  engine: EngineSocket,
  configured: string | undefined,
  mountinfo?: string,
): Promise<Pick<ProxyContext, 'self' | 'scope'>> {
  const id = ownContainerId(mountinfo);
  const self: ProxyContext['self'] = id ? { id } : { unknown: 'its container id is not in /proc/self/mountinfo' };
  let labels: Record<string, string> = {};
  if (id) {
    const c = (await engine.lookup(`/containers/${id}/json`)) as
      | { Config?: { Labels?: Record<string, string> } }
      | undefined;
    if (!c)
      return {
        self: { unknown: `the engine does not know container ${id.slice(0, 12)}` },
        scope: { name: configured ?? refuseScope() },
      };
    labels = c.Config?.Labels ?? {};
  }
  const name = configured ?? labels[STACK_LABEL] ?? labels[COMPOSE_LABEL] ?? refuseScope();
  return { self, scope: { name } };
}

function refuseScope(): never {
  throw new Error(
    'the proxy is not part of a stack or compose project, so it cannot tell whose containers and services it serves; set PROXY_SCOPE to the stack or project of mailcerts (the same as its DOCKER_SCOPE), or * for all',
  );
}

export async function runProxy(env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<void> {
  const s = proxySettings(env);
  const engine = engineSocket(s.socket);
  const { self, scope } = await identify(engine, s.scope).catch((err: unknown) => {
    throw new Error(`mailcerts proxy: ${errorMessage(err)}`);
  });
  if ('unknown' in self)
    s.log.warn(
      { step: 'proxy', why: self.unknown },
      'the proxy cannot tell which container is its own: it refuses every exec, kill and restart',
    );
  if (scope.name === '*')
    s.log.warn({ step: 'proxy' }, 'PROXY_SCOPE=*: every labelled container and service on this engine may be acted on');
  const ctx: ProxyContext = { engine, scope, self, execs: new Set() };
  const server = proxyServer(s.swarm ? [...containerRules, ...swarmRules] : containerRules, ctx, s.log);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(s.bind.port, s.bind.host, resolve);
  });
  // The image's HEALTHCHECK (mailcerts healthcheck) finds this and asks the proxy itself.
  await writeFile(PROXY_MARKER, JSON.stringify(s.bind)).catch(() => undefined);
  s.log.info(
    {
      step: 'proxy',
      listen: `${s.bind.host}:${s.bind.port}`,
      socket: s.socket,
      scope: scope.name,
      swarm: s.swarm,
      self: 'id' in self ? self.id.slice(0, 12) : undefined,
    },
    'socket proxy ready',
  );
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
