import { LEASE_HOLDER_LABEL, LEASE_SCOPE_LABEL, leaseConfigName } from '../deploy/modes/swarm/lease.js';
import {
  allow,
  deny,
  inStack,
  isVerdict,
  jsonObject,
  labelsOf,
  MANAGED_LABEL,
  notShown,
  ownObject,
  type ProxyContext,
  rewrite,
  type Rule,
  specOf,
  STACK_LABEL,
} from './rules.js';
import { isRecord, onlyKeys } from './strict-json.js';
import { judgeServiceUpdate, serviceWithoutEnv } from './service-update.js';

/**
 * The Swarm calls mailcerts makes (PROXY_SWARM=yes), each judged on what it does, not on how its
 * body begins: reads are cut to the stack (its services, their tasks without their environment,
 * mailcerts' objects), objects are made only as mailcerts.* with the stack's label and removed only
 * when they carry it, a service update may only change which of mailcerts' files a service mounts
 * (service-update.ts), and the lease's config may only have its labels updated.
 */
const SWARM_ID = '([a-z0-9]{25})';
const LEASE_PREFIX = 'mailcerts.lease.';
const OBJECT_NAME = /^mailcerts\.[A-Za-z0-9][A-Za-z0-9._-]{0,53}$/;

/** A lease config (deploy/modes/swarm/lease.ts): one of mailcerts' objects that carries the holder label. */
const isLease = (o: unknown) =>
  typeof labelsOf(o)[LEASE_HOLDER_LABEL] === 'string' &&
  typeof labelsOf(o)[MANAGED_LABEL] === 'string' &&
  String(specOf(o).Name).startsWith(LEASE_PREFIX);

/** The ids of the stack's services (undefined: every service, for the scope '*'). */
async function stackServices(ctx: ProxyContext): Promise<Set<string> | undefined> {
  if (ctx.scope.name === '*') return undefined;
  const list = await ctx.engine.lookup(
    `/services?filters=${encodeURIComponent(JSON.stringify({ label: [`${STACK_LABEL}=${ctx.scope.name}`] }))}`,
  );
  return new Set(
    (Array.isArray(list) ? list : [])
      .filter((s) => inStack(ctx.scope, labelsOf(s)))
      .map((s) => String((s as { ID?: unknown }).ID)),
  );
}

/** A task as mailcerts may see it: without its environment (which may hold secrets). */
function withoutEnv(t: unknown): unknown {
  const cs = isRecord(t) && isRecord(t.Spec) && isRecord(t.Spec.ContainerSpec) ? t.Spec.ContainerSpec : undefined;
  if (cs) delete cs.Env;
  return t;
}

async function judgeCreate(body: Buffer, ctx: ProxyContext, kind: 'secret' | 'config') {
  const b = jsonObject(body);
  if (isVerdict(b)) return b;
  const keys = onlyKeys(b, ['Name', 'Labels', 'Data']);
  if (keys) return deny(`${kind} create refused: ${keys}`);
  if (typeof b.Name !== 'string' || !OBJECT_NAME.test(b.Name))
    return deny(`${kind} create refused: only names mailcerts.* are allowed`);
  if (typeof b.Data !== 'string' || !isRecord(b.Labels) || !Object.values(b.Labels).every((v) => typeof v === 'string'))
    return deny(`${kind} create refused: Data and Labels must be a string and a map of strings`);
  if (!ownObject(ctx.scope, { Spec: b }))
    return deny(
      `${kind} create refused: it must carry ${MANAGED_LABEL}=${ctx.scope.name}, the stack this proxy serves`,
    );
  if (LEASE_HOLDER_LABEL in b.Labels)
    return (kind === 'secret' ? deny('a lease is a config, not a secret') : leaseProblem(b, ctx)) ?? allow;
  return allow;
}

/** A lease is only the stack's own: its name and scope label are the stack's (no squatting another stack's name, no claim to speak for it). */
function leaseProblem(b: Record<string, unknown>, ctx: ProxyContext) {
  const labels = isRecord(b.Labels) ? b.Labels : {};
  if (b.Name !== leaseConfigName(ctx.scope.name) || labels[LEASE_SCOPE_LABEL] !== ctx.scope.name)
    return deny(
      `the lease of ${ctx.scope.name} is ${leaseConfigName(ctx.scope.name)}, for the scope ${ctx.scope.name} only`,
    );
  return undefined;
}

async function judgeRemove(id: string, ctx: ProxyContext, plural: 'secrets' | 'configs') {
  const o = await ctx.engine.lookup(`/${plural}/${id}`);
  if (o === undefined) return deny('no such object', 404);
  return ownObject(ctx.scope, o)
    ? allow
    : deny(`that ${plural.slice(0, -1)} was not made by mailcerts for ${ctx.scope.name}`);
}

/** The lease: a label update of mailcerts' own lease config for this stack, its name and data unchanged. */
async function judgeLeaseUpdate(body: Buffer, query: URLSearchParams, id: string, ctx: ProxyContext) {
  if (!/^\d+$/.test(query.get('version') ?? '')) return deny('a config update must name the version it read');
  const current = await ctx.engine.lookup(`/configs/${id}`);
  if (current === undefined) return deny('no such config', 404);
  if (!ownObject(ctx.scope, current) || !isLease(current))
    return deny('only the lease config of this stack may be updated');
  const b = jsonObject(body);
  if (isVerdict(b)) return b;
  const keys = onlyKeys(b, ['Name', 'Labels', 'Data'], ['Name', 'Labels']);
  if (keys) return deny(`config update refused: ${keys}`);
  if (b.Name !== specOf(current).Name || (b.Data !== undefined && b.Data !== specOf(current).Data))
    return deny('config update refused: only its labels may change');
  if (!ownObject(ctx.scope, { Spec: b }))
    return deny(`config update refused: it must keep ${MANAGED_LABEL}=${ctx.scope.name}`);
  if (!isRecord(b.Labels) || !(LEASE_HOLDER_LABEL in b.Labels))
    return deny('config update refused: a lease keeps its holder label');
  return leaseProblem(b, ctx) ?? allow;
}

export const swarmRules: Rule[] = [
  { methods: ['GET'], path: /^\/info$/, judge: () => allow },
  { methods: ['GET'], path: /^\/nodes$/, query: ['filters'], judge: () => allow },
  {
    methods: ['GET'],
    path: /^\/services$/,
    query: ['filters', 'status', 'insertDefaults'],
    judge: (_r, _m, ctx) => ({
      allow: true,
      answer: (a) =>
        rewrite(a, (l) =>
          Array.isArray(l) ? l.filter((s) => inStack(ctx.scope, labelsOf(s))).map(serviceWithoutEnv) : [],
        ),
    }),
  },
  {
    methods: ['GET'],
    path: new RegExp(`^/services/${SWARM_ID}$`),
    query: ['insertDefaults'],
    judge: (_r, _m, ctx) => ({
      allow: true,
      answer: async (a) => {
        const shown = await notShown(a, (s) => inStack(ctx.scope, labelsOf(s)), 'that service');
        return shown.status === 200 ? rewrite(shown, serviceWithoutEnv) : shown;
      },
    }),
  },
  {
    methods: ['POST'],
    path: new RegExp(`^/services/${SWARM_ID}/update$`),
    query: ['version'],
    judge: (req, m, ctx) => judgeServiceUpdate(req, m[1]!, ctx),
  },
  {
    methods: ['GET'],
    path: /^\/tasks$/,
    query: ['filters'],
    judge: (_r, _m, ctx) => ({
      allow: true,
      answer: async (a) => {
        const ids = await stackServices(ctx);
        return rewrite(a, (l) =>
          Array.isArray(l)
            ? l.filter((t) => !ids || (isRecord(t) && ids.has(String(t.ServiceID)))).map(withoutEnv)
            : [],
        );
      },
    }),
  },
  {
    methods: ['GET'],
    path: new RegExp(`^/tasks/${SWARM_ID}$`),
    judge: (_r, _m, ctx) => ({
      allow: true,
      answer: async (a) => {
        const shown = await notShown(
          a,
          async (t) => isRecord(t) && ((await stackServices(ctx))?.has(String(t.ServiceID)) ?? true),
          'that task',
        );
        return shown.status === 200 ? rewrite(shown, withoutEnv) : shown;
      },
    }),
  },
  {
    methods: ['GET'],
    path: /^\/(secrets|configs)$/,
    query: ['filters'],
    judge: (_r, _m, ctx) => ({
      allow: true,
      answer: (a) =>
        rewrite(a, (l) =>
          (Array.isArray(l) ? l : []).flatMap((o) => {
            if (ownObject(ctx.scope, o)) return [o];
            if (!isLease(o)) return []; // another stack's lease: who issues for which names
            delete (specOf(o) as { Data?: unknown }).Data;
            return [o];
          }),
        ),
    }),
  },
  {
    methods: ['GET'],
    path: new RegExp(`^/configs/${SWARM_ID}$`),
    judge: (_r, _m, ctx) => ({
      allow: true,
      answer: (a) => notShown(a, (o) => ownObject(ctx.scope, o), 'that config'),
    }),
  },
  { methods: ['POST'], path: /^\/secrets\/create$/, judge: (req, _m, ctx) => judgeCreate(req.body, ctx, 'secret') },
  { methods: ['POST'], path: /^\/configs\/create$/, judge: (req, _m, ctx) => judgeCreate(req.body, ctx, 'config') },
  {
    methods: ['DELETE'],
    path: new RegExp(`^/secrets/${SWARM_ID}$`),
    judge: (_r, m, ctx) => judgeRemove(m[1]!, ctx, 'secrets'),
  },
  {
    methods: ['DELETE'],
    path: new RegExp(`^/configs/${SWARM_ID}$`),
    judge: (_r, m, ctx) => judgeRemove(m[1]!, ctx, 'configs'),
  },
  {
    methods: ['POST'],
    path: new RegExp(`^/configs/${SWARM_ID}/update$`),
    query: ['version'],
    judge: (req, m, ctx) => judgeLeaseUpdate(req.body, req.query, m[1]!, ctx),
  },
];
