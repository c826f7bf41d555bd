import type { EngineAnswer, EngineSocket } from './engine-socket.js';
import { MANAGED_LABEL } from '../deploy/modes/swarm/objects.js';
import { STACK_LABEL } from '../deploy/modes/swarm/stack-file.js';
import { isRecord, parseStrictJson, StrictJsonError } from './strict-json.js';

/**
 * What a rule of the proxy sees and says. A request is allowed only by a rule that matches its
 * method and path and then judges it; everything else is refused.
 */
export interface ProxyRequest {
  method: string;
  /** The path without the API version prefix (/v1.41). */
  path: string;
  query: URLSearchParams;
  body: Buffer;
}

/** The stack (Swarm) or compose project the proxy serves; '*' for all. */
export interface ProxyScope {
  name: string;
}

export interface ProxyContext {
  engine: EngineSocket;
  scope: ProxyScope;
  /** The proxy's own container id, or why it could not be told (then nothing may act on a container). */
  self: { id: string } | { unknown: string };
  /** The exec instances made through the proxy: only those may be started or read. */
  execs: Set<string>;
}

export type Verdict =
  /**
   * Allowed; `answer` rewrites the engine's answer (it is then read whole), otherwise it is
   * streamed back; `body` replaces the request's body (what was judged, with what the proxy keeps
   * from the client put back).
   */
  | { allow: true; answer?: (a: EngineAnswer) => EngineAnswer | Promise<EngineAnswer>; body?: Buffer }
  | { deny: string; status?: number };

export interface Rule {
  methods: string[];
  path: RegExp;
  /** The query parameters it may carry; any other is refused. */
  query?: string[];
  judge(req: ProxyRequest, match: RegExpMatchArray, ctx: ProxyContext): Verdict | Promise<Verdict>;
}

export const allow: Verdict = { allow: true };
export const deny = (why: string, status = 403): Verdict => ({ deny: why, status });

export { MANAGED_LABEL, STACK_LABEL };
/** docker compose's label (deploy/docker.ts has it too, but would load dockerode here). */
export const COMPOSE_LABEL = 'com.docker.compose.project';

/** Whether labels (a container's, or a service's) put it in the proxy's scope. */
export function inScope(scope: ProxyScope, labels: unknown, keys = [STACK_LABEL, COMPOSE_LABEL]): boolean {
  if (scope.name === '*') return true;
  return isRecord(labels) && keys.some((k) => labels[k] === scope.name);
}

/** Whether a service, task or object's labels put it in the proxy's stack. */
export const inStack = (scope: ProxyScope, labels: unknown) => inScope(scope, labels, [STACK_LABEL]);

/** A body as a JSON object, or the verdict that refuses it. */
export function jsonObject(body: Buffer): Record<string, unknown> | Verdict {
  try {
    const v = parseStrictJson(body);
    return isRecord(v) ? v : deny('the body is not a JSON object');
  } catch (err) {
    if (err instanceof StrictJsonError) return deny(err.message);
    throw err;
  }
}

export const isVerdict = (v: unknown): v is Verdict => isRecord(v) && ('deny' in v || v.allow === true);

/** The engine's answer, its JSON body rewritten. */
export function rewrite(a: EngineAnswer, edit: (body: unknown) => unknown): EngineAnswer {
  if (a.status !== 200 && a.status !== 201) return a;
  const body = Buffer.from(JSON.stringify(edit(JSON.parse(a.body.toString('utf8')) as unknown)));
  return { ...a, body, headers: { ...a.headers, 'content-length': String(body.length) } };
}

/** The answer when the object it names must not be shown: the same as for one that does not exist. */
export function notShown(
  a: EngineAnswer,
  visible: (body: unknown) => boolean | Promise<boolean>,
  what: string,
): Promise<EngineAnswer> | EngineAnswer {
  if (a.status !== 200) return a;
  const check = async () => {
    if (await visible(JSON.parse(a.body.toString('utf8')) as unknown)) return a;
    const body = Buffer.from(JSON.stringify({ message: `mailcerts proxy: ${what} is not of this stack` }));
    return {
      status: 403,
      headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
      body,
    };
  };
  return check();
}

export const specOf = (o: unknown) => (isRecord(o) && isRecord(o.Spec) ? o.Spec : {});
export const labelsOf = (o: unknown) =>
  isRecord(specOf(o).Labels) ? (specOf(o).Labels as Record<string, unknown>) : {};

/** A secret or config of mailcerts for this stack. */
export function ownObject(scope: ProxyScope, o: unknown): boolean {
  const managedBy = labelsOf(o)[MANAGED_LABEL];
  const name = specOf(o).Name;
  return (
    typeof managedBy === 'string' &&
    typeof name === 'string' &&
    name.startsWith('mailcerts.') &&
    (scope.name === '*' || managedBy === scope.name)
  );
}
