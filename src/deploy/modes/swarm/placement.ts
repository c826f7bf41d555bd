import type { NodeView, ServiceSpec } from './api.js';

/**
 * Whether Swarm could place the new tasks of a service. An update replaces running tasks with new
 * ones; when no node satisfies the service's constraints any more (a node label removed, a node
 * paused), the old tasks would stop and the new ones stay pending: mail down. So mailcerts asks
 * before it updates. Only the documented constraint forms are read; an unknown one is left to Swarm.
 */
export function unsatisfiable(spec: ServiceSpec, nodes: NodeView[], running: number): string | undefined {
  const constraints = spec.TaskTemplate?.Placement?.Constraints ?? [];
  const usable = nodes.filter((n) => n.Status?.State === 'ready' && (n.Spec?.Availability ?? 'active') === 'active');
  const eligible = usable.filter((n) => constraints.every((c) => satisfies(n, c)));
  if (eligible.length === 0) {
    return `no ready, active node satisfies its placement constraints (${constraints.join(', ') || 'none'}), so its new tasks could not start; fix the constraints or the node labels first`;
  }
  // The running tasks must all find a place again (a node that is down already lost its task).
  const perNode = spec.TaskTemplate?.Placement?.MaxReplicas;
  if (perNode && running > eligible.length * perNode) {
    return `${running} of its tasks run, at most ${perNode} per node, but only ${eligible.length} ready, active node(s) satisfy its constraints; a replaced task could not start again`;
  }
  return undefined;
}

/** One constraint, such as node.role==manager or node.labels.mail!=no. */
function satisfies(n: NodeView, constraint: string): boolean {
  const m = /^\s*([A-Za-z0-9._-]+)\s*(==|!=)\s*(.*?)\s*$/.exec(constraint);
  if (!m) return true;
  const [, key, op, want] = m as unknown as [string, string, string, string];
  const value = nodeValue(n, key);
  if (value === null) return true; // a form mailcerts does not know: Swarm decides
  const equal = value !== undefined && value.toLowerCase() === want.toLowerCase();
  return op === '==' ? equal : !equal;
}

function nodeValue(n: NodeView, key: string): string | undefined | null {
  if (key === 'node.id') return n.ID;
  if (key === 'node.hostname') return n.Description?.Hostname;
  if (key === 'node.role') return n.Spec?.Role;
  if (key === 'node.platform.os') return n.Description?.Platform?.OS;
  if (key === 'node.platform.arch') return n.Description?.Platform?.Architecture;
  if (key.startsWith('node.labels.')) return n.Spec?.Labels?.[key.slice('node.labels.'.length)];
  if (key.startsWith('engine.labels.')) return n.Description?.Engine?.Labels?.[key.slice('engine.labels.'.length)];
  return null;
}
