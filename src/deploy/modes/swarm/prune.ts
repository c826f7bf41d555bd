import { listObjects, listServices, type ObjectView, removeObject } from './api.js';
import type { ServicePlan, SwarmPass } from './context.js';
import { LEASE_HOLDER_LABEL } from './lease.js';
import { groupOf, MANAGED_LABEL, versionOf } from './objects.js';
import { refsOf } from './service-spec.js';

const versionOfObject = (o: ObjectView) => versionOf(o.Spec.Labels ?? {}) ?? o.Spec.Name;

/** The versions of one group to keep: the one now deployed (`current`) and the one before it (what a rollback needs). */
function versionsToKeep(list: ObjectView[], isCurrent: (o: ObjectView) => boolean): Set<string> {
  const versions = [
    ...new Set(list.sort((x, y) => (y.CreatedAt ?? '').localeCompare(x.CreatedAt ?? '')).map(versionOfObject)),
  ];
  const keep = new Set<string>();
  const currentVersion = versions.find((v) => list.some((o) => versionOfObject(o) === v && isCurrent(o)));
  if (currentVersion) keep.add(currentVersion);
  const previous = versions.find((v) => v !== currentVersion);
  if (previous) keep.add(previous);
  return keep;
}

/**
 * Removes mailcerts' objects of this scope that no service uses, keeping in each group the
 * version now deployed and the one before it (what a rollback needs).
 */
export async function pruneOldVersions(pass: SwarmPass, plans: ServicePlan[]): Promise<void> {
  const { docker, self, log } = pass;
  const current = new Set(plans.flatMap((p) => p.mounts.map((m) => `${m.kind}/${m.object}`)));
  const services = await listServices(docker, []);
  // In use: by a service's spec, or by the spec it would roll back to (docker service rollback).
  const used = new Set(
    services.flatMap((s) =>
      [...refsOf(s.Spec), ...(s.PreviousSpec ? refsOf(s.PreviousSpec) : [])].map((r) => r.SecretID ?? r.ConfigID ?? ''),
    ),
  );
  for (const kind of ['secret', 'config'] as const) {
    // The lease's config is not a version of anything: it stays.
    const objects = (await listObjects(docker, kind, [`${MANAGED_LABEL}=${self.scope}`])).filter(
      (o) => !(LEASE_HOLDER_LABEL in (o.Spec.Labels ?? {})),
    );
    const byGroup = new Map<string, ObjectView[]>();
    for (const o of objects) {
      const g = groupOf(o.Spec.Labels ?? {}) ?? '';
      byGroup.set(g, [...(byGroup.get(g) ?? []), o]);
    }
    const isCurrent = (o: ObjectView) => current.has(`${kind}/${o.Spec.Name}`);
    for (const list of byGroup.values()) {
      const keep = versionsToKeep(list, isCurrent);
      for (const o of list) {
        if (keep.has(versionOfObject(o)) || used.has(o.ID) || isCurrent(o)) continue;
        await pass.stillLeading();
        await removeObject(docker, kind, o.ID);
        log.info({ step: 'reload', [kind]: o.Spec.Name }, `removed the ${kind} of an old version`);
      }
    }
  }
}
