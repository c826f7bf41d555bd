import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * The id of the container this process runs in, from the bind mounts Docker makes for every
 * container (/var/lib/docker/containers/<id>/hostname, hosts, resolv.conf), which appear in
 * /proc/self/mountinfo under cgroup v1 and v2 alike; undefined outside a container.
 */
export function ownContainerId(mountinfo = readOrEmpty('/proc/self/mountinfo')): string | undefined {
  return mountinfo.match(/\/containers\/([0-9a-f]{64})\/(?:hostname|hosts|resolv\.conf)\b/)?.[1];
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export function runsInContainer(): boolean {
  return existsSync('/.dockerenv') || existsSync('/run/.containerenv') || ownContainerId() !== undefined;
}

/** Docker's default hostname is the container's short id: the fallback when mountinfo says nothing. */
export function hostnameAsContainerId(): string | undefined {
  const h = hostname();
  return /^[0-9a-f]{12}$/.test(h) ? h : undefined;
}
