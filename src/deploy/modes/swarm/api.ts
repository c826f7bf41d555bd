import type Docker from 'dockerode';
import { withTimeout } from '../../../util/abort.js';

/**
 * The Swarm API calls mailcerts makes, typed for the fields it reads. Bodies and query strings go
 * apart (docker-modem would otherwise put a POST's body in the URL too). Every call has a timeout.
 */
const CALL_TIMEOUT = 30_000;

export interface FileRef {
  File?: { Name?: string; UID?: string; GID?: string; Mode?: number };
  SecretID?: string;
  SecretName?: string;
  ConfigID?: string;
  ConfigName?: string;
}

export interface ServiceSpec {
  Name?: string;
  Labels?: Record<string, string>;
  TaskTemplate?: {
    ContainerSpec?: { Secrets?: FileRef[]; Configs?: FileRef[]; [k: string]: unknown };
    Placement?: { Constraints?: string[]; MaxReplicas?: number; [k: string]: unknown };
    Networks?: { Target?: string }[];
    [k: string]: unknown;
  };
  Mode?: { Replicated?: { Replicas?: number }; Global?: object; [k: string]: unknown };
  UpdateConfig?: { FailureAction?: string; Order?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface ServiceView {
  ID: string;
  Version: { Index: number };
  Spec: ServiceSpec;
  /** The spec before the last update: what a rollback returns to. */
  PreviousSpec?: ServiceSpec;
  UpdateStatus?: { State?: string; StartedAt?: string; CompletedAt?: string; Message?: string };
  Endpoint?: { Spec?: object };
}

export interface TaskView {
  ID: string;
  ServiceID?: string;
  NodeID?: string;
  Slot?: number;
  DesiredState?: string;
  Status?: { State?: string; Err?: string; ContainerStatus?: { ContainerID?: string } };
  Spec?: {
    ContainerSpec?: { Secrets?: FileRef[]; Configs?: FileRef[]; Labels?: Record<string, string> };
    Networks?: { Target?: string }[];
  };
  NetworksAttachments?: { Network?: { ID?: string; Spec?: { Name?: string } }; Addresses?: string[] }[];
}

export interface NodeView {
  ID: string;
  Description?: {
    Hostname?: string;
    Platform?: { OS?: string; Architecture?: string };
    Engine?: { Labels?: Record<string, string> };
  };
  Spec?: { Role?: string; Availability?: string; Labels?: Record<string, string>; Name?: string };
  Status?: { State?: string; Addr?: string };
}

export interface ObjectView {
  ID: string;
  Version?: { Index: number };
  CreatedAt?: string;
  /** Data: a config's content, base64 (never given for a secret). */
  Spec: { Name: string; Labels?: Record<string, string>; Data?: string };
}

type Modem = { dial(opts: object, cb: (err: unknown, data: unknown) => void): void };

/** One call through docker-modem, its query and body kept apart. */
function dial<T>(
  docker: Docker,
  path: string,
  method: 'GET' | 'POST' | 'DELETE',
  what: string,
  o: { query?: object; body?: object; codes?: Record<number, string | boolean> } = {},
): Promise<T> {
  const modem = docker.modem as unknown as Modem;
  const statusCodes = {
    200: true,
    201: true,
    204: true,
    400: 'bad parameter',
    404: 'no such object',
    409: 'conflict',
    500: 'server error',
    503: 'node is not part of a swarm',
    ...o.codes,
  };
  const call = new Promise<T>((resolve, reject) =>
    modem.dial(
      {
        path: `${path}?`,
        method,
        statusCodes,
        options: { _query: o.query ?? {}, _body: o.body ?? {} },
        allowEmpty: method === 'POST',
      },
      (err, data) => (err ? reject(err) : resolve(data as T)),
    ),
  );
  return withTimeout(call, CALL_TIMEOUT, what);
}

const filters = (f: Record<string, string[]>) => ({ filters: JSON.stringify(f) });

export const swarmInfo = (docker: Docker) =>
  withTimeout(
    docker.info() as Promise<{ Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean; NodeID?: string } }>,
    CALL_TIMEOUT,
    'reading the engine info',
  );
export const listServices = (docker: Docker, label: string[]) =>
  dial<ServiceView[]>(docker, '/services', 'GET', 'listing services', { query: filters({ label }) });
export const inspectService = (docker: Docker, id: string) =>
  dial<ServiceView>(docker, `/services/${encodeURIComponent(id)}`, 'GET', 'reading a service');
export const updateService = (docker: Docker, s: ServiceView, spec: ServiceSpec) =>
  dial<{ Warnings?: string[] }>(
    docker,
    `/services/${encodeURIComponent(s.ID)}/update`,
    'POST',
    `updating service ${s.Spec.Name}`,
    { query: { version: s.Version.Index }, body: spec },
  );
export const listTasks = (docker: Docker, service: string) =>
  dial<TaskView[]>(docker, '/tasks', 'GET', 'listing tasks', { query: filters({ service: [service] }) });
export const inspectTask = (docker: Docker, id: string) =>
  dial<TaskView>(docker, `/tasks/${encodeURIComponent(id)}`, 'GET', 'reading a task');
export const listNodes = (docker: Docker) => dial<NodeView[]>(docker, '/nodes', 'GET', 'listing nodes');

const plural = { secret: 'secrets', config: 'configs' } as const;
export const listObjects = (docker: Docker, kind: 'secret' | 'config', label: string[]) =>
  dial<ObjectView[]>(docker, `/${plural[kind]}`, 'GET', `listing ${plural[kind]}`, { query: filters({ label }) });
export const listObjectsNamed = (docker: Docker, kind: 'secret' | 'config', name: string) =>
  dial<ObjectView[]>(docker, `/${plural[kind]}`, 'GET', `listing ${plural[kind]}`, {
    query: filters({ name: [name] }),
  });
export const createObject = (
  docker: Docker,
  kind: 'secret' | 'config',
  name: string,
  data: string,
  labels: Record<string, string>,
) =>
  dial<{ ID: string }>(docker, `/${plural[kind]}/create`, 'POST', `creating ${kind} ${name}`, {
    body: { Name: name, Labels: labels, Data: Buffer.from(data).toString('base64') },
  });
export const inspectConfig = (docker: Docker, id: string) =>
  dial<ObjectView>(docker, `/configs/${encodeURIComponent(id)}`, 'GET', 'reading a config');
/** A config's labels, which Swarm lets change (its name and data never do), at the version read. */
export const updateConfigLabels = (docker: Docker, c: ObjectView, labels: Record<string, string>) =>
  dial<void>(docker, `/configs/${encodeURIComponent(c.ID)}/update`, 'POST', `updating config ${c.Spec.Name}`, {
    query: { version: c.Version?.Index ?? 0 },
    body: { Name: c.Spec.Name, Labels: labels, Data: c.Spec.Data },
  });
export const removeObject = (docker: Docker, kind: 'secret' | 'config', id: string) =>
  dial<void>(docker, `/${plural[kind]}/${encodeURIComponent(id)}`, 'DELETE', `removing a ${kind}`);
