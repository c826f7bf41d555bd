import { hostname } from 'node:os';
import type Docker from 'dockerode';
import { ownContainerId, runsInContainer } from '../../../util/container.js';
import { errorMessage } from '../../../util/errors.js';
import type { ContainerView } from '../../docker.js';
import { inspectService, inspectTask, type NodeView, type TaskView } from './api.js';
import { STACK_LABEL } from './stack-file.js';

/** Where mailcerts runs: its own task (as a container view, for reaching other tasks), service and stack; who it is for the lease. */
export interface Self {
  container?: ContainerView;
  serviceId?: string;
  scope: string;
  holder: string;
}

/**
 * Who this mailcerts is, taken from Swarm, cluster-wide: the task MAILCERTS_TASK_ID names
 * ({{.Task.ID}} in the stack file), checked to be this very container's. The engine that answers
 * (through the socket proxy) may be another manager's, whose container list does not show this
 * container. Inside a container without that identity it fails, so it never leads.
 */
export async function whoAmI(docker: Docker, configured: string | undefined): Promise<Self> {
  if (!runsInContainer()) {
    if (!configured)
      throw new Error(
        'DOCKER_SCOPE is not set and mailcerts does not run in a Swarm task; set DOCKER_SCOPE to the stack name (docker stack ls)',
      );
    return { scope: configured, holder: `host-${hostname()}-${process.pid}` };
  }
  const fix =
    'set MAILCERTS_TASK_ID: "{{.Task.ID}}" in the environment of the mailcerts service (see stack.example.yml); until then this mailcerts issues and deploys nothing';
  const taskId = process.env.MAILCERTS_TASK_ID?.trim();
  if (!taskId || !/^[a-z0-9]{25}$/.test(taskId))
    throw new Error(
      `mailcerts runs in a container, but ${taskId ? `MAILCERTS_TASK_ID "${taskId.slice(0, 40)}" is not a Swarm task id` : 'MAILCERTS_TASK_ID is not set'}: ${fix}`,
    );
  const task = await inspectTask(docker, taskId).catch((err: unknown) => {
    throw new Error(
      `MAILCERTS_TASK_ID names task ${taskId}, which the Swarm API does not show (${errorMessage(err)}): ${fix}`,
    );
  });
  const own = ownContainerId();
  const its = task.Status?.ContainerStatus?.ContainerID;
  if (!own || !its)
    throw new Error(
      `${!own ? 'this container has no id in /proc/self/mountinfo' : `Swarm does not report the container of task ${taskId} yet`}; tried again at the next pass, passive until then`,
    );
  if (its !== own)
    throw new Error(
      `MAILCERTS_TASK_ID names task ${taskId}, whose container is not this one (${own.slice(0, 12)}): ${fix}`,
    );
  if (!task.ServiceID) throw new Error(`task ${taskId} names no service; tried again at the next pass`);
  const service = await inspectService(docker, task.ServiceID);
  const scope = configured ?? service.Spec.Labels?.[STACK_LABEL];
  if (!scope)
    throw new Error(
      `mailcerts' service ${service.Spec.Name} is not part of a stack; set DOCKER_SCOPE to the stack of the mail services (docker stack ls), or * for every labelled service`,
    );
  return {
    container: taskView(task, service.Spec.Name ?? taskId, {}),
    serviceId: task.ServiceID,
    scope,
    holder: taskId,
  };
}

/** A task as the endpoint rules see a container: its labels (the service's), addresses and network mode. */
export function taskView(task: TaskView, name: string, labels: Record<string, string>): ContainerView {
  const networks = (task.NetworksAttachments ?? [])
    .filter((a) => a.Network?.Spec?.Name !== 'ingress')
    .map((a) => ({
      name: a.Network?.Spec?.Name ?? '',
      id: a.Network?.ID ?? '',
      ip: a.Addresses?.map((x) => x.replace(/\/\d+$/, '')).find((x) => x.includes('.')),
      ip6: a.Addresses?.map((x) => x.replace(/\/\d+$/, '')).find((x) => x.includes(':')),
    }));
  return { id: task.ID, name, labels, networkMode: networks.length === 0 ? 'host' : 'swarm', networks };
}

/**
 * Where mailcerts reaches a task: on an overlay network both are on, or at its node's address when
 * the task uses the host's network and mailcerts does too (or runs outside a container).
 */
export function reachTask(
  t: ContainerView,
  node: NodeView | undefined,
  self: ContainerView | undefined,
): { host: string } | { unreachable: string } | { none: string } {
  if (t.networkMode === 'host') {
    const addr = node?.Status?.Addr;
    if (!addr) return { unreachable: `the node of ${t.name} has no address in the swarm` };
    if (self && self.networkMode !== 'host')
      return {
        unreachable: `${t.name} uses host networking, which mailcerts cannot reach from its overlay network; put both on one overlay network, or set mailcerts.verify=off`,
      };
    return { host: addr };
  }
  if (!self || self.networkMode === 'host') {
    return {
      unreachable: `${t.name} is on the overlay network ${t.networks.map((n) => n.name).join(', ')}, which mailcerts, outside it, cannot reach; attach mailcerts to that network`,
    };
  }
  const mine = new Set(self.networks.map((n) => n.id));
  const shared = t.networks.find((n) => mine.has(n.id) && (n.ip || n.ip6));
  if (shared) return { host: shared.ip ?? shared.ip6! };
  return {
    unreachable: `mailcerts shares no network with ${t.name} (it is on ${t.networks.map((n) => n.name).join(', ')}); add mailcerts to one of them`,
  };
}
