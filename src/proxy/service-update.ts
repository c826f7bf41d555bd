import { posix } from 'node:path';
import { RELOAD_LABEL } from '../deploy/kinds/index.js';
import { parseSecretTarget, SECRET_TARGET_LABEL } from '../deploy/modes/swarm/objects.js';
import {
  deny,
  inStack,
  isVerdict,
  jsonObject,
  ownObject,
  type ProxyContext,
  type ProxyRequest,
  type Verdict,
} from './rules.js';
import { isRecord, onlyKeys, sameJson } from './strict-json.js';

/**
 * A service update is what lets whoever reaches the proxy change a service: its image, its mounts,
 * its capabilities. So one is allowed only for a service of the stack labelled mailcerts.reload,
 * and only when the new spec equals the current one but for which of mailcerts' files it mounts
 * (TaskTemplate.ContainerSpec.Secrets and Configs), TaskTemplate.ForceUpdate and UpdateConfig,
 * and those only as mailcerts changes them. Every file reference it adds or drops must be one of
 * mailcerts' objects for this stack, and every one it adds lands below the service's
 * mailcerts.secret-target directory, readable but neither executable nor writable by others.
 * Reads never show a service's environment (serviceWithoutEnv); an update is sent without it,
 * and the proxy puts the current one back before forwarding.
 */
const FREE = [
  ['TaskTemplate', 'ContainerSpec', 'Secrets'],
  ['TaskTemplate', 'ContainerSpec', 'Configs'],
  ['TaskTemplate', 'ForceUpdate'],
  ['UpdateConfig'],
];
/** What mailcerts sets where a service has no update policy of its own (deploy/modes/swarm/deployer.ts withMounts). */
const UPDATE_DEFAULTS: Record<string, unknown> = { Parallelism: 1, Order: 'stop-first', Monitor: 5_000_000_000 };

type Json = Record<string, unknown>;
const containerSpec = (spec: Json): Json | undefined =>
  isRecord(spec.TaskTemplate) && isRecord(spec.TaskTemplate.ContainerSpec)
    ? spec.TaskTemplate.ContainerSpec
    : undefined;

/** A service (or a list's entry) without its environment, which may hold secrets, nor its previous one's. */
export function serviceWithoutEnv(s: unknown): unknown {
  for (const spec of isRecord(s) ? [s.Spec, s.PreviousSpec] : []) if (isRecord(spec)) delete containerSpec(spec)?.Env;
  return s;
}

/** A copy without the parts an update may change, and without the environment. */
function withoutFree(spec: Json): Json {
  const copy = structuredClone(spec);
  for (const path of FREE) {
    let o: unknown = copy;
    for (const k of path.slice(0, -1)) o = isRecord(o) ? o[k] : undefined;
    if (isRecord(o)) delete o[path.at(-1)!];
  }
  delete containerSpec(copy)?.Env;
  return copy;
}

/** Where two JSON values first differ, as a path (for the refusal's message). */
function firstDifference(a: unknown, b: unknown, path: string): string | undefined {
  if (sameJson(a, b)) return undefined;
  if (isRecord(a) && isRecord(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference(a[k], b[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
  }
  return path || 'the whole spec';
}

/** UpdateConfig as mailcerts changes it: the service's own values kept, its defaults where none, FailureAction rollback or continue. */
function updatePolicyProblem(current: Json, next: Json): string | undefined {
  const before = isRecord(current.UpdateConfig) ? current.UpdateConfig : {};
  const after = next.UpdateConfig === undefined ? before : next.UpdateConfig;
  if (!isRecord(after)) return 'UpdateConfig is not an object';
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (k === 'FailureAction' && (after[k] === 'rollback' || after[k] === 'continue')) continue;
    if (k in before ? !sameJson(before[k], after[k]) : after[k] !== UPDATE_DEFAULTS[k])
      return `UpdateConfig.${k} may not change`;
  }
  const force = (spec: Json) => (isRecord(spec.TaskTemplate) ? (spec.TaskTemplate.ForceUpdate ?? 0) : 0);
  if (force(next) !== force(current) && force(next) !== Number(force(current)) + 1)
    return 'TaskTemplate.ForceUpdate may only go up by one';
  return undefined;
}

type Ref = Json;
const refsIn = (spec: Json, kind: 'Secrets' | 'Configs'): unknown => containerSpec(spec)?.[kind] ?? [];

/** The file a reference adds: below the target directory, not executable, written by its owner only. */
function fileProblem(ref: Ref, name: string, dir: string): string | undefined {
  const f = isRecord(ref.File) ? ref.File : {};
  const file = f.Name;
  if (typeof file !== 'string' || posix.normalize(file) !== file || !file.startsWith(`${dir}/`) || file.endsWith('/'))
    return `${name} would be mounted at ${String(file)}, not a file below ${dir} (${SECRET_TARGET_LABEL})`;
  if (onlyKeys(f, ['Name', 'UID', 'GID', 'Mode'], ['Name']))
    return `${name}: a file with more than a name, owner and mode`;
  if (![f.UID, f.GID].every((x) => x === undefined || (typeof x === 'string' && /^\d{1,10}$/.test(x))))
    return `${name}: its owner is not numeric`;
  if (f.Mode !== undefined && !(Number.isInteger(f.Mode) && ((f.Mode as number) & ~0o644) === 0))
    return `${name}: mode ${String(f.Mode)} would make it executable or writable by others`;
  return undefined;
}

/** Why a reference added or dropped is not one mailcerts may make; undefined when it may. */
async function refProblem(
  ref: Ref,
  kind: 'Secrets' | 'Configs',
  added: boolean,
  dir: string,
  ctx: ProxyContext,
): Promise<string | undefined> {
  const [idKey, nameKey, plural] =
    kind === 'Secrets' ? ['SecretID', 'SecretName', 'secrets'] : ['ConfigID', 'ConfigName', 'configs'];
  const keys = onlyKeys(ref, ['File', idKey, nameKey], [idKey, nameKey]);
  if (keys) return `a ${plural.slice(0, -1)} reference: ${keys}`;
  const id = ref[idKey];
  if (typeof id !== 'string' || !/^[a-z0-9]{25}$/.test(id))
    return `a ${plural.slice(0, -1)} reference without a valid ${idKey}`;
  const object = await ctx.engine.lookup(`/${plural}/${id}`);
  // A reference to an object that is gone may be dropped: it mounts nothing.
  if (object === undefined && !added && String(ref[nameKey]).startsWith('mailcerts.')) return undefined;
  if (!ownObject(ctx.scope, object))
    return `${plural.slice(0, -1)} ${String(ref[nameKey])} was not made by mailcerts for ${ctx.scope.name}`;
  if (!added) return undefined;
  const spec = (object as { Spec: { Name: unknown } }).Spec;
  if (spec.Name !== ref[nameKey])
    return `the reference names ${String(ref[nameKey])}, but ${id} is ${String(spec.Name)}`;
  return fileProblem(ref, String(ref[nameKey]), dir);
}

async function refsProblem(current: Json, next: Json, dir: string, ctx: ProxyContext): Promise<string | undefined> {
  for (const kind of ['Secrets', 'Configs'] as const) {
    const before = refsIn(current, kind);
    const after = refsIn(next, kind);
    if (!Array.isArray(before) || !Array.isArray(after) || !after.every(isRecord))
      return `TaskTemplate.ContainerSpec.${kind} is not a list of references`;
    const added = after.filter((r) => !before.some((b) => sameJson(b, r)));
    const dropped = before.filter((b): b is Ref => isRecord(b) && !after.some((r) => sameJson(b, r)));
    for (const [refs, isAdded] of [
      [added, true],
      [dropped, false],
    ] as const) {
      for (const r of refs) {
        const problem = await refProblem(r, kind, isAdded, dir, ctx);
        if (problem) return problem;
      }
    }
  }
  return undefined;
}

/** The body to forward: the spec judged, with the service's current environment put back. */
function withEnvOf(current: Json, next: Json): Buffer {
  const env = containerSpec(current)?.Env;
  const cs = containerSpec(next);
  if (env !== undefined && cs) cs.Env = env;
  return Buffer.from(JSON.stringify(next));
}

export async function judgeServiceUpdate(req: ProxyRequest, id: string, ctx: ProxyContext): Promise<Verdict> {
  const version = req.query.get('version') ?? '';
  if (!/^\d+$/.test(version)) return deny('a service update must name the version it read');
  const next = jsonObject(req.body);
  if (isVerdict(next)) return next;
  const current = await ctx.engine.lookup(`/services/${id}`);
  if (!isRecord(current) || !isRecord(current.Spec)) return deny('no such service', 404);
  const spec = current.Spec;
  const name = String(spec.Name);
  const labels = isRecord(spec.Labels) ? spec.Labels : {};
  if (!inStack(ctx.scope, labels))
    return deny(`service ${name} is not part of ${ctx.scope.name}, the stack this proxy serves`);
  if (labels[RELOAD_LABEL] === undefined) return deny(`service ${name} carries no ${RELOAD_LABEL} label`);
  if (!isRecord(current.Version) || String(current.Version.Index) !== version)
    return deny(`service ${name} changed since that version was read; read it again`);
  if (containerSpec(next)?.Env !== undefined)
    return deny(
      `the update of ${name} names an environment; the proxy keeps the service's own (send the spec as the proxy shows it)`,
    );
  const changed = firstDifference(withoutFree(spec), withoutFree(next), '') ?? updatePolicyProblem(spec, next);
  if (changed)
    return deny(
      `the update of ${name} changes ${changed.replace(/ may( only)? .*$/, '')}; only which of mailcerts' secrets and configs it mounts may change`,
    );
  const dir = parseSecretTarget(
    typeof labels[SECRET_TARGET_LABEL] === 'string' ? labels[SECRET_TARGET_LABEL] : undefined,
  );
  if (typeof dir !== 'string') return deny(`service ${name}: label ${dir.error}`);
  const problem = await refsProblem(spec, next, dir, ctx);
  return problem ? deny(`the update of ${name} refused: ${problem}`) : { allow: true, body: withEnvOf(spec, next) };
}
