import type Docker from 'dockerode';
import {
  createObject,
  type FileRef,
  listObjects,
  listObjectsNamed,
  type ServiceSpec,
  type ServiceView,
} from './api.js';
import { MANAGED_LABEL, type Mount, SECRET_TARGET_LABEL, type SwarmObject, sameObject } from './objects.js';

/**
 * A service's spec as mailcerts changes it: its references to mailcerts' objects replaced, its own
 * left alone; and the objects themselves, made once and never changed.
 */
export const inUpdate = (s: ServiceView) =>
  s.UpdateStatus?.State === 'updating' || s.UpdateStatus?.State === 'rollback_started';

/** Makes the object unless it exists (its id either way); one that exists with other content, or not made by mailcerts, is refused. */
export async function ensureObject(docker: Docker, o: SwarmObject): Promise<string> {
  const [existing] = (await listObjectsNamed(docker, o.kind, o.name)).filter((e) => e.Spec.Name === o.name);
  if (existing) {
    if (!sameObject({ labels: existing.Spec.Labels ?? {} }, o))
      throw new Error(
        `a ${o.kind} named ${o.name} exists and was not made by mailcerts for this content; remove it (docker ${o.kind} rm ${o.name})`,
      );
    return existing.ID;
  }
  return (await createObject(docker, o.kind, o.name, o.data, o.labels)).ID;
}

/** The ids of mailcerts' own objects in this scope: the references a service update may replace. */
export async function ownIds(docker: Docker, scope: string): Promise<Set<string>> {
  const [secrets, configs] = await Promise.all([
    listObjects(docker, 'secret', [`${MANAGED_LABEL}=${scope}`]),
    listObjects(docker, 'config', [`${MANAGED_LABEL}=${scope}`]),
  ]);
  return new Set([...secrets, ...configs].map((o) => o.ID));
}

export const refsOf = (spec: ServiceSpec): FileRef[] => [
  ...(spec.TaskTemplate?.ContainerSpec?.Secrets ?? []),
  ...(spec.TaskTemplate?.ContainerSpec?.Configs ?? []),
];

/** A reference of the service's own (not mailcerts') whose target is one mailcerts would mount. */
export function collisionIn(
  service: ServiceView,
  mounts: Pick<Mount, 'target'>[],
  own: Set<string>,
): string | undefined {
  const ours = new Set(mounts.map((m) => m.target));
  for (const r of refsOf(service.Spec)) {
    if (own.has(r.SecretID ?? r.ConfigID ?? '')) continue;
    if (r.File?.Name && ours.has(r.File.Name)) {
      return `its ${r.SecretName ? `secret ${r.SecretName}` : `config ${r.ConfigName}`} is mounted at ${r.File.Name}, where mailcerts would mount a certificate file; set ${SECRET_TARGET_LABEL} to another directory, or remove that ${r.SecretName ? 'secret' : 'config'} from the service`;
    }
  }
  return undefined;
}

/**
 * The service's spec with mailcerts' references at the targets of `mounts` replaced (the service's
 * own references kept, and mailcerts' at other targets too: a certificate whose files could not be
 * read this time keeps the ones it had), and an update policy that rolls back on failure;
 * undefined when it mounts exactly these already.
 */
export function withMounts(spec: ServiceSpec, mounts: Mount[], own: Set<string>): ServiceSpec | undefined {
  const cs = spec.TaskTemplate?.ContainerSpec ?? {};
  const targets = new Set(mounts.map((m) => m.target));
  const isOurs = (r: FileRef) => own.has(r.SecretID ?? r.ConfigID ?? '');
  const replaced = (r: FileRef) => isOurs(r) && targets.has(r.File?.Name ?? '');
  const ref = (m: Mount) => ({
    File: { Name: m.target, UID: m.uid, GID: m.gid, Mode: m.mode },
    ...(m.kind === 'secret' ? { SecretID: m.id, SecretName: m.object } : { ConfigID: m.id, ConfigName: m.object }),
  });
  const key = (r: FileRef) =>
    `${r.SecretName ?? r.ConfigName}@${r.File?.Name}:${r.File?.Mode}:${r.File?.UID}:${r.File?.GID}`;
  const now = [...(cs.Secrets ?? []), ...(cs.Configs ?? [])].filter(replaced).map(key).sort();
  const next = mounts.map(ref).map(key).sort();
  if (now.length === next.length && now.every((k, i) => k === next[i])) return undefined;
  const secrets = [
    ...(cs.Secrets ?? []).filter((r) => !replaced(r)),
    ...mounts.filter((m) => m.kind === 'secret').map(ref),
  ];
  const configs = [
    ...(cs.Configs ?? []).filter((r) => !replaced(r)),
    ...mounts.filter((m) => m.kind === 'config').map(ref),
  ];
  const first = ![...(cs.Secrets ?? []), ...(cs.Configs ?? [])].some(isOurs);
  return {
    ...spec,
    TaskTemplate: { ...spec.TaskTemplate, ContainerSpec: { ...cs, Secrets: secrets, Configs: configs } },
    // Swarm's own defaults where the service sets none (without them the API replaces every task
    // at once). A task that fails with the new files (health check, exit) makes Swarm put the old
    // ones back; the first shipment has nothing to go back to (the tasks had no certificate, and
    // may have been failing for want of one): it rolls forward.
    UpdateConfig: {
      Parallelism: 1,
      Order: 'stop-first',
      Monitor: 5_000_000_000,
      ...spec.UpdateConfig,
      FailureAction: first ? 'continue' : 'rollback',
    },
  };
}
