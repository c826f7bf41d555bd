import { allow, deny, inScope, isVerdict, jsonObject, type ProxyContext, RELOAD_LABEL, rewrite, type Rule, type Verdict } from './rules.js';
import { isRecord, onlyKeys } from './strict-json.js';

/**
 * The calls mailcerts makes in volume mode (and in swarm mode for the engine it talks to): ping,
 * version, the container list, and exec, kill and restart on the labelled containers of its
 * scope. The exec bodies are exactly what mailcerts sends: a command with its output attached, no
 * TTY; never User, Privileged, Env, WorkingDir or anything else. There is no container inspect,
 * which would hand out every container's environment.
 */
const ID = '([0-9a-f]{64})';
const MAX_EXECS = 1_000;

/** Whether a call may act on this container: never the proxy itself, only a labelled container in scope. */
async function judgeTarget(ctx: ProxyContext, id: string): Promise<Verdict | undefined> {
  if ('unknown' in ctx.self) return deny(`the proxy cannot tell which container is its own (${ctx.self.unknown}), so it acts on no container`);
  if (id === ctx.self.id) return deny('that container is the proxy itself, which holds the Docker socket');
  const c = await ctx.engine.lookup(`/containers/${id}/json`);
  if (!isRecord(c)) return deny('no such container', 404);
  const labels = isRecord(c.Config) ? c.Config.Labels : undefined;
  if (!inScope(ctx.scope, labels)) return deny(`that container is not part of ${ctx.scope.name}, the stack or compose project this proxy serves`);
  if (!isRecord(labels) || labels[RELOAD_LABEL] === undefined) return deny(`that container carries no ${RELOAD_LABEL} label`);
  return undefined;
}

/**
 * {"Cmd":[…],"AttachStdout":true,"AttachStderr":true,"Tty":false}, and nothing else; a terminal
 * only for `postfix check` (Postfix 3.7 prints its failure only on one; targets.ts).
 */
function execBodyProblem(b: Record<string, unknown>): string | undefined {
  const keys = onlyKeys(b, ['Cmd', 'AttachStdout', 'AttachStderr', 'Tty']);
  if (keys) return keys;
  if (!Array.isArray(b.Cmd) || b.Cmd.length === 0 || b.Cmd.length > 64 || !b.Cmd.every((w) => typeof w === 'string')) return 'Cmd is not a list of words';
  if (b.AttachStdout !== true || b.AttachStderr !== true) return 'only attached output is allowed';
  const postfixCheck = b.Cmd.length === 2 && b.Cmd[0] === 'postfix' && b.Cmd[1] === 'check';
  if (b.Tty !== false && !(b.Tty === true && postfixCheck)) return 'a TTY only for postfix check';
  return undefined;
}

function remember(ctx: ProxyContext, id: unknown): void {
  if (typeof id !== 'string') return;
  ctx.execs.add(id);
  if (ctx.execs.size > MAX_EXECS) ctx.execs.delete(ctx.execs.values().next().value!);
}

export const containerRules: Rule[] = [
  { methods: ['GET', 'HEAD'], path: /^\/_ping$/, judge: () => allow },
  { methods: ['GET'], path: /^\/version$/, judge: () => allow },
  {
    methods: ['GET'],
    path: /^\/containers\/json$/,
    query: ['filters', 'all', 'limit'],
    judge: (_req, _m, ctx) => ({ allow: true, answer: (a) => rewrite(a, (list) => (Array.isArray(list) ? list.filter((c) => isRecord(c) && inScope(ctx.scope, c.Labels)) : [])) }),
  },
  {
    methods: ['POST'],
    path: new RegExp(`^/containers/${ID}/exec$`),
    judge: async (req, m, ctx) => {
      const body = jsonObject(req.body);
      if (isVerdict(body)) return body;
      const problem = execBodyProblem(body);
      if (problem) return deny(`exec refused: ${problem}`);
      const target = await judgeTarget(ctx, m[1]!);
      if (target) return target;
      return { allow: true, answer: (a) => rewrite(a, (made) => (remember(ctx, isRecord(made) ? made.Id : undefined), made)) };
    },
  },
  {
    methods: ['POST'],
    path: new RegExp(`^/exec/${ID}/start$`),
    judge: (req, m, ctx) => {
      if (!ctx.execs.has(m[1]!)) return deny('that exec instance was not made through this proxy');
      const body = jsonObject(req.body);
      if (isVerdict(body)) return body;
      const keys = onlyKeys(body, ['hijack', 'stdin']);
      if (keys || body.hijack !== false || body.stdin !== false) return deny(`exec start refused: ${keys ?? 'only a detached-input start without hijacking is allowed'}`);
      return allow;
    },
  },
  { methods: ['GET'], path: new RegExp(`^/exec/${ID}/json$`), judge: (_req, m, ctx) => (ctx.execs.has(m[1]!) ? allow : deny('that exec instance was not made through this proxy')) },
  { methods: ['POST'], path: new RegExp(`^/containers/${ID}/kill$`), query: ['signal'], judge: async (_req, m, ctx) => (await judgeTarget(ctx, m[1]!)) ?? allow },
  { methods: ['POST'], path: new RegExp(`^/containers/${ID}/restart$`), query: ['t'], judge: async (_req, m, ctx) => (await judgeTarget(ctx, m[1]!)) ?? allow },
];
