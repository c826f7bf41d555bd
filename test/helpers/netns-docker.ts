import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A Docker engine of the test's own, in a network namespace the test creates (`ip netns add`).
 * Bridge networks (198.18.0.0/16, a range for test networks) and Docker's iptables rules live
 * inside that namespace only, so compose files
 * run with their real networks (an internal network included), and no packet leaves it. The host's
 * own engine, started with --bridge=none --iptables=false, is left as it is.
 */
export interface NetnsDocker {
  /** DOCKER_HOST for this engine. */
  host: string;
  netns: string;
  docker(...args: string[]): Promise<string>;
  /** Runs a command in the namespace's network (as a process on that "host"). */
  inNetns(cmd: string, ...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startNetnsDocker(tag: string, workDir: string, images: { fromCache?: Record<string, string>; fromHost?: string[] }): Promise<NetnsDocker> {
  const netns = `mc-${tag}-${process.pid}`;
  const dir = join(workDir, `netns-${tag}`);
  rmSync(dir, { recursive: true, force: true });
  for (const d of ['data', 'exec']) mkdirSync(join(dir, d), { recursive: true });
  const sock = join(dir, 'docker.sock');
  const pidfile = join(dir, 'docker.pid');
  await run('ip', ['netns', 'add', netns]);
  await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  // Not `ip netns exec`: it remounts /sys and dockerd then misses the cgroup mount. A private /run
  // keeps this engine's containerd apart from the host's.
  const script = `mount --make-rprivate / && mount -t tmpfs tmpfs /run && exec dockerd --data-root ${dir}/data --exec-root ${dir}/exec -H unix://${sock} --pidfile ${pidfile} --bridge=none --ip-masq=false --default-address-pool base=198.18.0.0/16,size=24`;
  const daemon = spawn('nsenter', [`--net=/run/netns/${netns}`, 'unshare', '--mount', '--fork', 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  daemon.stderr.on('data', (d) => (log = (log + d).slice(-4000)));
  const host = `unix://${sock}`;
  const docker = async (...args: string[]) => (await run('docker', ['-H', host, ...args], { maxBuffer: 32 * 1024 * 1024 })).stdout.trim();
  const stop = async () => {
    const ids = (await docker('ps', '-aq').catch(() => '')).split('\n').filter(Boolean);
    if (ids.length) await docker('rm', '-f', ...ids).catch(() => undefined);
    const pid = existsSync(pidfile) ? Number(readFileSync(pidfile, 'utf8')) : 0;
    if (pid) process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 150 && daemon.exitCode === null; i++) await delay(100);
    if (daemon.exitCode === null) daemon.kill('SIGKILL');
    await run('ip', ['netns', 'del', netns]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (await docker('info').then(() => true, () => false)) break;
    if (daemon.exitCode !== null || i > 150) {
      await stop();
      throw new Error(`the test's own dockerd in network namespace ${netns} did not start:\n${log}`);
    }
    await delay(200);
  }
  try {
    for (const [image, tar] of Object.entries(images.fromCache ?? {})) {
      if (existsSync(tar)) await run('docker', ['-H', host, 'import', tar, image]);
      else await run('bash', ['-o', 'pipefail', '-c', `docker save ${image} | docker -H ${host} load`], { maxBuffer: 16 * 1024 * 1024 });
    }
    for (const image of images.fromHost ?? []) await run('bash', ['-o', 'pipefail', '-c', `docker save ${image} | docker -H ${host} load`], { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    await stop();
    throw err;
  }
  const inNetns = async (cmd: string, ...args: string[]) => (await run('nsenter', [`--net=/run/netns/${netns}`, cmd, ...args], { maxBuffer: 16 * 1024 * 1024 })).stdout;
  return { host, netns, docker, inNetns, stop };
}
