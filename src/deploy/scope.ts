import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type Docker from 'dockerode';
import { hostnameAsContainerId, ownContainerId } from '../util/container.js';
import { UserError } from '../util/errors.js';
import { COMPOSE_PROJECT_LABEL, type ContainerView, listContainers } from './docker.js';
import { RELOAD_LABEL } from './kinds/index.js';
import { asTarget, type ReloadTarget } from './targets.js';
import { VERIFY_LABEL } from './verify.js';

/**
 * Which containers mailcerts may act on, and how it reaches them. Labels are untrusted input: any
 * container on the host can set them. So by default only containers of mailcerts' own compose
 * project are touched, and probes go only to a container's own addresses.
 */
export interface Scope {
  /** A compose project name, or '*' for every labelled container. */
  project: string;
  /** mailcerts' own container; undefined when it runs on the host. */
  self?: ContainerView;
}

/** mailcerts' own container, found by its id; undefined outside a container. */
export async function findSelf(docker: Docker): Promise<ContainerView | undefined> {
  const id = ownContainerId() ?? hostnameAsContainerId();
  if (!id) return undefined;
  const [self] = await listContainers(docker, { id: [id] });
  return self;
}

/** DOCKER_SCOPE, or mailcerts' own compose project. Throws a UserError saying what to set. */
export async function resolveScope(
  docker: Docker,
  configured: string | undefined,
  inContainer: boolean,
): Promise<Scope> {
  const self = inContainer ? await findSelf(docker) : undefined;
  if (configured) return { project: configured, self };
  if (!inContainer) {
    throw new UserError(
      'DOCKER_SCOPE is not set and mailcerts does not run in a container, so it cannot tell which compose project is its own; set DOCKER_SCOPE',
    );
  }
  if (!self) {
    throw new UserError(
      'mailcerts runs in a container but cannot find it through the Docker API; set DOCKER_SCOPE to the compose project of the mail stack (docker compose ls)',
    );
  }
  const project = self.labels[COMPOSE_PROJECT_LABEL];
  if (!project) {
    throw new UserError(
      `mailcerts' container ${self.name} is not part of a compose project; set DOCKER_SCOPE to the project of the mail containers, or DOCKER_SCOPE=* to act on every labelled container`,
    );
  }
  return { project, self };
}

/** Every running container in scope that carries the reload label (never mailcerts itself). */
export async function discoverTargets(docker: Docker, scope: Scope): Promise<ReloadTarget[]> {
  const label = [RELOAD_LABEL, ...(scope.project === '*' ? [] : [`${COMPOSE_PROJECT_LABEL}=${scope.project}`])];
  return (await listContainers(docker, { label })).filter((c) => c.id !== scope.self?.id).map(asTarget);
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** The container's own addresses: its IPs on every network, and loopback when it shares the host's network. */
export function ownAddresses(t: ContainerView): Set<string> {
  const own = new Set<string>();
  for (const n of t.networks) for (const a of [n.ip, n.ip6]) if (a) own.add(a);
  if (t.networkMode === 'host') for (const a of LOOPBACK) own.add(a);
  return own;
}

export type Reach = { host: string } | { unreachable: string } | { none: string };

/**
 * The address at which mailcerts can reach a container: on a network it shares with it, 127.0.0.1
 * with host networking on both sides, or any of its addresses when mailcerts runs on the host.
 */
export function addressOf(t: ContainerView, self: ContainerView | undefined): Reach {
  const selfOnHost = !self || self.networkMode === 'host';
  if (t.networkMode === 'host') {
    return selfOnHost
      ? { host: '127.0.0.1' }
      : {
          unreachable: `${t.name} uses host networking, which mailcerts cannot reach from its own network; run mailcerts with network_mode: host as well, or set ${VERIFY_LABEL}=off`,
        };
  }
  const withAddress = t.networks.filter((n) => n.ip || n.ip6);
  if (withAddress.length === 0)
    return { none: `it has no network address to reach; set ${VERIFY_LABEL}=off to silence this` };
  if (selfOnHost) return { host: withAddress[0]!.ip ?? withAddress[0]!.ip6! };
  const mine = new Set(self.networks.map((n) => n.id));
  const shared = withAddress.find((n) => mine.has(n.id));
  if (shared) return { host: shared.ip ?? shared.ip6! };
  return {
    unreachable: `mailcerts shares no network with ${t.name} (it is on ${withAddress.map((n) => n.name).join(', ')}; mailcerts on ${self.networks.map((n) => n.name).join(', ') || 'none'}); add mailcerts to one of its networks`,
  };
}

/**
 * Where to probe a host named in a container's mailcerts.verify: one of the container's own
 * addresses (a name must resolve to them only, and the address it resolved to is what is probed,
 * so a second lookup cannot be answered differently), or a host the admin allowed with
 * VERIFY_HOSTS. Otherwise the reason it is refused.
 */
export async function probeAddress(
  host: string,
  t: ContainerView,
  allowed: string[] | '*',
): Promise<{ address: string } | { problem: string }> {
  if (allowed === '*' || allowed.includes(host)) return { address: host };
  const own = ownAddresses(t);
  if (own.has(host)) return { address: host };
  if (isIP(host) === 0) {
    const found = await lookup(host, { all: true }).catch(() => []);
    if (found.length > 0 && found.every((a) => own.has(a.address))) return { address: found[0]!.address };
  }
  return {
    problem: `${VERIFY_LABEL} names ${host}, which is not an address of ${t.name}; mailcerts only probes a container's own addresses unless the host is listed in VERIFY_HOSTS`,
  };
}
