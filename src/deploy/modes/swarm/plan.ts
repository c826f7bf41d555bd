import type Docker from 'dockerode';
import type { ShippedFile } from '../../../publish/shipped.js';
import { errorMessage } from '../../../util/errors.js';
import { type DeployResult, expectationsFor, type ServedCert } from '../../deployer.js';
import { RELOAD_LABEL } from '../../kinds/index.js';
import { listNodes, listServices, type NodeView, type ServiceView } from './api.js';
import type { ServicePlan, SwarmPass } from './context.js';
import { mountsFor, objectFor, parseSecretTarget, SECRET_TARGET_LABEL, type SwarmObject } from './objects.js';
import type { Self } from './self.js';
import { ensureObject, inUpdate, ownIds, withMounts } from './service-spec.js';
import { STACK_LABEL } from './stack-file.js';
import { updateProblem } from './updates.js';

/** The mode and owner of the key files a service mounts (KEY_FILE_MODE, KEY_FILE_OWNER, KEY_FILE_GROUP). */
export interface KeyFiles {
  keyMode: number;
  owner?: number;
  group?: number;
}

/** The labelled services of the stack (every stack with scope *), mailcerts' own left out, by name. */
export async function labelledServices(docker: Docker, self: Self): Promise<ServiceView[]> {
  const label = [RELOAD_LABEL, ...(self.scope === '*' ? [] : [`${STACK_LABEL}=${self.scope}`])];
  return (await listServices(docker, label))
    .filter((s) => s.ID !== self.serviceId)
    .sort((a, b) => (a.Spec.Name ?? '').localeCompare(b.Spec.Name ?? ''));
}

/** Makes each object once in a deploy, however many services mount it. */
function objectMaker(docker: Docker): (o: SwarmObject) => Promise<{ id: string } | { error: string }> {
  const made = new Map<string, Promise<{ id: string } | { error: string }>>();
  return (o) => {
    const key = `${o.kind}/${o.name}`;
    const known = made.get(key);
    if (known) return known;
    const p = ensureObject(docker, o).then(
      (id) => ({ id }),
      (err: unknown) => ({ error: errorMessage(err) }),
    );
    made.set(key, p);
    return p;
  };
}

interface PlanInputs {
  certs: ServedCert[];
  sni: ShippedFile[];
  repairOnly: boolean;
  keyFiles: KeyFiles;
  own: Set<string>;
  nodes: NodeView[];
  ensure: ReturnType<typeof objectMaker>;
}

/**
 * What each labelled service in scope should mount, its objects made where missing. A service
 * whose labels, targets or placement are wrong gets a result naming it, and is not touched.
 * `repairOnly`: only the services that lack some of their files (or are in an update).
 */
export async function planServices(
  pass: SwarmPass,
  certs: ServedCert[],
  sni: ShippedFile[],
  repairOnly: boolean,
  keyFiles: KeyFiles,
): Promise<(ServicePlan | DeployResult)[]> {
  const { docker, self } = pass;
  const services = await labelledServices(docker, self);
  const nodes = services.length > 0 ? await listNodes(docker) : [];
  const own = services.length > 0 ? await ownIds(docker, self.scope) : new Set<string>();
  const inputs: PlanInputs = { certs, sni, repairOnly, keyFiles, own, nodes, ensure: objectMaker(docker) };
  const out: (ServicePlan | DeployResult)[] = [];
  for (const service of services) {
    const planned = await planService(pass, service, inputs);
    if (planned) out.push(planned);
  }
  return out;
}

/** One service's plan, its result when it cannot be updated, or undefined when a repair leaves it alone. */
async function planService(
  pass: SwarmPass,
  service: ServiceView,
  inputs: PlanInputs,
): Promise<ServicePlan | DeployResult | undefined> {
  const { certs, repairOnly, own } = inputs;
  const name = service.Spec.Name ?? service.ID;
  const labels = service.Spec.Labels ?? {};
  const wanted = expectationsFor({ labels }, certs);
  const base = {
    container: name,
    certs: [...new Set(wanted.map((w) => w.cert))],
    reloaded: false,
    serves: null,
    ok: false as boolean,
  };
  const target = parseSecretTarget(labels[SECRET_TARGET_LABEL]);
  if (typeof target !== 'string')
    return repairOnly ? undefined : { ...base, problem: 'label', error: `label ${target.error}` };
  const chosen = mountsFor(labels, certs, inputs.sni, { target, ...inputs.keyFiles });
  if (chosen.length === 0) return repairOnly ? undefined : { ...base, ok: true, reloaded: true };
  const objects = chosen.map((c) => objectFor(c.file, pass.self.scope));
  // A service that mounts these already is not updated: only verified (or, repairing, left alone).
  const changes =
    withMounts(
      service.Spec,
      chosen.map((c, i) => ({ ...c.mount, object: objects[i]!.name, id: '' })),
      own,
    ) !== undefined;
  if (repairOnly && !changes && !inUpdate(service)) return undefined;
  const problem = changes
    ? await updateProblem(
        pass.docker,
        service,
        chosen.map((c) => c.mount),
        own,
        inputs.nodes,
      )
    : undefined;
  if (problem) return { ...base, problem: 'reload', error: `service ${name} not updated: ${problem}` };
  const ids = await Promise.all(objects.map(inputs.ensure));
  const failed = ids.find((e) => 'error' in e);
  if (failed && 'error' in failed)
    return { ...base, problem: 'reload', error: `service ${name} not updated: ${failed.error}` };
  const mounts = chosen.map((c, i) => ({
    ...c.mount,
    object: objects[i]!.name,
    id: (ids[i] as { id: string }).id,
    file: c.file,
  }));
  return { service, name, certs: base.certs, mounts, own };
}
