import { allowedActions, RELOAD_LABEL } from '../deploy/kinds/index.js';
import {
  allow,
  deny,
  inScope,
  isVerdict,
  jsonObject,
  type ProxyContext,
  rewrite,
  type Rule,
  type Verdict,
} from './rules.js';
import { isRecord, onlyKeys } from './strict-json.js';

/**
 * The calls mailcerts makes in volume mode (and in swarm mode for the engine it talks to): ping,
 * version, the container list, and exec, kill and restart on the labelled containers of its
 * scope, each only as that container's own labels ask (the commands of its preset or exec:, the
 * signal of signal:, a restart). The exec bodies are exactly what mailcerts sends: a command with
 * its output attached; never User, Privileged, Env, WorkingDir or anything else. There is no
 * container inspect, which would hand out every container's environment.
 */
const ID = '([0-9a-f]{64})';
const MAX_EXECS = 1_000;

type Act = { exec: { argv: string[]; tty: boolean } } | { kill: string } | { restart: true };

/** The labels of a container a call may act on (never the proxy, only a labelled container in scope), or the verdict that refuses it. */
async function targetLabels(ctx: ProxyContext, id: string): Promise<Record<string, string> | Verdict> {
  if ('unknown' in ctx.self)
    return deny(`the proxy cannot tell which container is its own (${ctx.self.unknown}), so it acts on no container`);
  if (id === ctx.self.id) return deny('that container is the proxy itself, which holds the Docker socket');
  const c = await ctx.engine.lookup(`/containers/${id}/json`);
  if (!isRecord(c)) return deny('no such container', 404);
  const labels = isRecord(c.Config) && isRecord(c.Config.Labels) ? (c.Config.Labels as Record<string, string>) : {};
  if (!inScope(ctx.scope, labels))
    return deny(`that container is not part of ${ctx.scope.name}, the stack or compose project this proxy serves`);
  if (labels[RELOAD_LABEL] === undefined) return deny(`that container carries no ${RELOAD_LABEL} label`);
  return labels;
}

/** Whether the container's own labels ask mailcerts to do this to it (the plan of its kind, deploy/kinds/): nothing else is let through. */
async function judgeAct(ctx: ProxyContext, id: string, act: Act): Promise<Verdict | undefined> {
  const labels = await targetLabels(ctx, id);
  if (isVerdict(labels)) return labels;
  const allowed = allowedActions(labels);
  if ('exec' in act) {
    const ok = allowed.commands.some(
      (c) =>
        (c.tty ?? false) === act.exec.tty &&
        c.argv.length === act.exec.argv.length &&
        c.argv.every((w, i) => w === act.exec.argv[i]),
    );
    return ok
      ? undefined
      : deny(
          `the labels of that container (${RELOAD_LABEL}=${labels[RELOAD_LABEL]}) do not ask for "${act.exec.argv.join(' ').slice(0, 200)}"${act.exec.tty ? ' on a terminal' : ''}`,
        );
  }
  if ('kill' in act)
    return act.kill === allowed.signal
      ? undefined
      : deny(`the labels of that container do not ask for the signal ${act.kill.slice(0, 20) || '(none)'}`);
  return allowed.restart
    ? undefined
    : deny(
        `the labels of that container do not allow a restart (${RELOAD_LABEL}=${labels[RELOAD_LABEL]}, mailcerts.escalate=off)`,
      );
}

/** {"Cmd":[…],"AttachStdout":true,"AttachStderr":true,"Tty":false or true}, and nothing else; the command itself is judged by judgeAct. */
function execBodyProblem(b: Record<string, unknown>): string | undefined {
  const keys = onlyKeys(b, ['Cmd', 'AttachStdout', 'AttachStderr', 'Tty']);
  if (keys) return keys;
  if (!Array.isArray(b.Cmd) || b.Cmd.length === 0 || b.Cmd.length > 64 || !b.Cmd.every((w) => typeof w === 'string'))
    return 'Cmd is not a list of words';
  if (b.AttachStdout !== true || b.AttachStderr !== true || typeof b.Tty !== 'boolean')
    return 'only attached output is allowed';
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
    judge: (_req, _m, ctx) => ({
      allow: true,
      answer: (a) =>
        rewrite(a, (list) =>
          Array.isArray(list) ? list.filter((c) => isRecord(c) && inScope(ctx.scope, c.Labels)) : [],
        ),
    }),
  },
  {
    methods: ['POST'],
    path: new RegExp(`^/containers/${ID}/exec$`),
    judge: async (req, m, ctx) => {
      const body = jsonObject(req.body);
      if (isVerdict(body)) return body;
      const problem = execBodyProblem(body);
      if (problem) return deny(`exec refused: ${problem}`);
      const refused = await judgeAct(ctx, m[1]!, { exec: { argv: body.Cmd as string[], tty: body.Tty as boolean } });
      if (refused) return refused;
      return {
        allow: true,
        answer: (a) =>
          rewrite(a, (made) => {
            remember(ctx, isRecord(made) ? made.Id : undefined);
            return made;
          }),
      };
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
      if (keys || body.hijack !== false || body.stdin !== false)
        return deny(`exec start refused: ${keys ?? 'only a detached-input start without hijacking is allowed'}`);
      return allow;
    },
  },
  {
    methods: ['GET'],
    path: new RegExp(`^/exec/${ID}/json$`),
    judge: (_req, m, ctx) =>
      ctx.execs.has(m[1]!) ? allow : deny('that exec instance was not made through this proxy'),
  },
  {
    methods: ['POST'],
    path: new RegExp(`^/containers/${ID}/kill$`),
    query: ['signal'],
    judge: async (req, m, ctx) => (await judgeAct(ctx, m[1]!, { kill: req.query.get('signal') ?? '' })) ?? allow,
  },
  {
    methods: ['POST'],
    path: new RegExp(`^/containers/${ID}/restart$`),
    query: ['t'],
    judge: async (_req, m, ctx) => (await judgeAct(ctx, m[1]!, { restart: true })) ?? allow,
  },
];
