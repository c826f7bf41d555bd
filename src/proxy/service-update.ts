import { posix } from 'node:path';
import { parseSecretTarget, SECRET_TARGET_LABEL } from '../deploy/swarm/objects.js';
import { allow, deny, inScope, isVerdict, jsonObject, ownObject, type ProxyContext, type ProxyRequest, RELOAD_LABEL, STACK_LABEL, type Verdict } from './rules.js';
import { isRecord, onlyKeys, sameJson } from './strict-json.js';

/**
 * A service update is what lets whoever reaches the proxy change a service: its image, its mounts,
 * its capabilities. So one is allowed only for a service of the stack labelled mailcerts.reload,
 * and only when the new spec equals the current one but for which of mailcerts' files it mounts
 * (TaskTemplate.ContainerSpec.Secrets and Configs), TaskTemplate.ForceUpdate and UpdateConfig.
 * Every file reference it adds or drops must be one of mailcerts' objects for this stack, and
 * every one it adds must land below the service's mailcerts.secret-target directory.
 */
const FREE = [['TaskTemplate', 'ContainerSpec', 'Secrets'], ['TaskTemplate', 'ContainerSpec', 'Configs'], ['TaskTemplate', 'ForceUpdate'], ['UpdateConfig']];

/** A copy without the parts an update may change. */
function withoutFree(spec: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(spec);
  for (const path of FREE) {
    let o: unknown = copy;
    for (const k of path.slice(0, -1)) o = isRecord(o) ? o[k] : undefined;
    if (isRecord(o)) delete o[path.at(-1)!];
  }
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

type Ref = Record<string, unknown>;
const refsIn = (spec: Record<string, unknown>, kind: 'Secrets' | 'Configs'): unknown => {
  const tt = spec.TaskTemplate;
  const cs = isRecord(tt) ? tt.ContainerSpec : undefined;
  return isRecord(cs) ? (cs[kind] ?? []) : [];
};

/** Why a reference added or dropped is not one mailcerts may make; undefined when it may. */
async function refProblem(ref: Ref, kind: 'Secrets' | 'Configs', added: boolean, dir: string, ctx: ProxyContext): Promise<string | undefined> {
  const [idKey, nameKey, plural] = kind === 'Secrets' ? ['SecretID', 'SecretName', 'secrets'] : ['ConfigID', 'ConfigName', 'configs'];
  const keys = onlyKeys(ref, ['File', 'Runtime', idKey, nameKey], [idKey, nameKey]);
  if (keys) return `a ${plural.slice(0, -1)} reference: ${keys}`;
  const id = ref[idKey];
  if (typeof id !== 'string' || !/^[a-z0-9]{25}$/.test(id)) return `a ${plural.slice(0, -1)} reference without a valid ${idKey}`;
  const object = await ctx.engine.lookup(`/${plural}/${id}`);
  // A reference to an object that is gone may be dropped: it mounts nothing.
  if (object === undefined && !added && String(ref[nameKey]).startsWith('mailcerts.')) return undefined;
  if (!ownObject(ctx.scope, object)) return `${plural.slice(0, -1)} ${String(ref[nameKey])} was not made by mailcerts for ${ctx.scope.name}`;
  if (!added) return undefined;
  const spec = (object as { Spec: { Name: unknown } }).Spec;
  if (spec.Name !== ref[nameKey]) return `the reference names ${String(ref[nameKey])}, but ${id} is ${String(spec.Name)}`;
  const file = isRecord(ref.File) ? ref.File.Name : undefined;
  if (typeof file !== 'string' || posix.normalize(file) !== file || !file.startsWith(`${dir}/`)) return `${String(ref[nameKey])} would be mounted at ${String(file)}, outside ${dir} (${SECRET_TARGET_LABEL})`;
  return undefined;
}

async function refsProblem(current: Record<string, unknown>, next: Record<string, unknown>, dir: string, ctx: ProxyContext): Promise<string | undefined> {
  for (const kind of ['Secrets', 'Configs'] as const) {
    const before = refsIn(current, kind);
    const after = refsIn(next, kind);
    if (!Array.isArray(before) || !Array.isArray(after) || !after.every(isRecord)) return `TaskTemplate.ContainerSpec.${kind} is not a list of references`;
    const added = after.filter((r) => !before.some((b) => sameJson(b, r)));
    const dropped = before.filter((b): b is Ref => isRecord(b) && !after.some((r) => sameJson(b, r)));
    for (const [refs, isAdded] of [[added, true], [dropped, false]] as const) {
      for (const r of refs) {
        const problem = await refProblem(r, kind, isAdded, dir, ctx);
        if (problem) return problem;
      }
    }
  }
  return undefined;
}

export async function judgeServiceUpdate(req: ProxyRequest, id: string, ctx: ProxyContext): Promise<Verdict> {
  const version = req.query.get('version') ?? '';
  if (!/^\d+$/.test(version)) return deny('a service update must name the version it read');
  const next = jsonObject(req.body);
  if (isVerdict(next)) return next;
  const current = await ctx.engine.lookup(`/services/${id}`);
  if (!isRecord(current) || !isRecord(current.Spec)) return deny('no such service', 404);
  const spec = current.Spec;
  const labels = isRecord(spec.Labels) ? spec.Labels : {};
  if (!inScope(ctx.scope, labels, [STACK_LABEL])) return deny(`service ${String(spec.Name)} is not part of ${ctx.scope.name}, the stack this proxy serves`);
  if (labels[RELOAD_LABEL] === undefined) return deny(`service ${String(spec.Name)} carries no ${RELOAD_LABEL} label`);
  if (!isRecord(current.Version) || String(current.Version.Index) !== version) return deny(`service ${String(spec.Name)} changed since that version was read; read it again`);
  const changed = firstDifference(withoutFree(spec), withoutFree(next), '');
  if (changed) return deny(`the update of ${String(spec.Name)} changes ${changed}; only which of mailcerts' secrets and configs it mounts may change`);
  const dir = parseSecretTarget(typeof labels[SECRET_TARGET_LABEL] === 'string' ? labels[SECRET_TARGET_LABEL] : undefined);
  if (typeof dir !== 'string') return deny(`service ${String(spec.Name)}: label ${dir.error}`);
  const problem = await refsProblem(spec, next, dir, ctx);
  return problem ? deny(`the update of ${String(spec.Name)} refused: ${problem}`) : allow;
}
