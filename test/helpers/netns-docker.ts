import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

/** A dockerd of the test's own in an existing network namespace: its own data root, socket and /run. */
export interface Engine {
  host: string;
  docker(...args: string[]): Promise<string>;
  /** Removes its containers and stops it (its directory is removed). */
  stop(): Promise<void>;
}

export async function startEngineIn(
  netns: string,
  dir: string,
  dockerdArgs: string[],
  opts: { hostname?: string } = {},
): Promise<Engine> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'data'), { recursive: true });
  // The engine's socket and containerd's (in the exec root) must stay under the 108 bytes of a
  // unix socket address whatever directory the checkout is in: a short directory under /tmp.
  const execRoot = mkdtempSync(join(tmpdir(), 'mcx-'));
  const sock = join(execRoot, 'docker.sock');
  const pidfile = join(dir, 'docker.pid');
  // Not `ip netns exec`: it remounts /sys and dockerd then misses the cgroup mount. A private /run
  // keeps this engine's containerd apart from the host's; its own UTS namespace gives it a hostname.
  const script = `mount --make-rprivate / && mount -t tmpfs tmpfs /run && ${opts.hostname ? `hostname ${opts.hostname} && ` : ''}exec dockerd --data-root ${dir}/data --exec-root ${execRoot} -H unix://${sock} --pidfile ${pidfile} ${dockerdArgs.join(' ')}`;
  const daemon = spawn(
    'nsenter',
    [
      `--net=/run/netns/${netns}`,
      'unshare',
      '--mount',
      ...(opts.hostname ? ['--uts'] : []),
      '--fork',
      'sh',
      '-c',
      script,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  daemon.stderr.on('data', (d) => (log = (log + d).slice(-4000)));
  const host = `unix://${sock}`;
  const docker = async (...args: string[]) =>
    (await run('docker', ['-H', host, ...args], { maxBuffer: 32 * 1024 * 1024 })).stdout.trim();
  const stop = async () => {
    const ids = (await docker('ps', '-aq').catch(() => '')).split('\n').filter(Boolean);
    if (ids.length) await docker('rm', '-f', ...ids).catch(() => undefined);
    const pid = existsSync(pidfile) ? Number(readFileSync(pidfile, 'utf8')) : 0;
    if (pid) process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 150 && daemon.exitCode === null; i++) await delay(100);
    if (daemon.exitCode === null) daemon.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(execRoot, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (
      await docker('info').then(
        () => true,
        () => false,
      )
    )
      break;
    if (daemon.exitCode !== null || i > 150) {
      await stop();
      throw new Error(`the test's own dockerd in network namespace ${netns} did not start:\n${log}`);
    }
    await delay(200);
  }
  return { host, docker, stop };
}

/** Loads images into an engine: from a cached rootfs tarball when there is one, else from the host's engine. */
export async function loadImages(
  host: string,
  images: { fromCache?: Record<string, string>; fromHost?: string[] },
): Promise<void> {
  for (const [image, tar] of Object.entries(images.fromCache ?? {})) {
    if (existsSync(tar)) await run('docker', ['-H', host, 'import', tar, image]);
    else
      await run('bash', ['-o', 'pipefail', '-c', `docker save ${image} | docker -H ${host} load`], {
        maxBuffer: 16 * 1024 * 1024,
      });
  }
  for (const image of images.fromHost ?? [])
    await run('bash', ['-o', 'pipefail', '-c', `docker save ${image} | docker -H ${host} load`], {
      maxBuffer: 16 * 1024 * 1024,
    });
}

export async function startNetnsDocker(
  tag: string,
  workDir: string,
  images: { fromCache?: Record<string, string>; fromHost?: string[] },
): Promise<NetnsDocker> {
  const netns = `mc-${tag}-${process.pid}`;
  const dir = join(workDir, `netns-${tag}`);
  await run('ip', ['netns', 'add', netns]);
  await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  let engine: Engine;
  try {
    engine = await startEngineIn(netns, dir, [
      '--bridge=none',
      '--ip-masq=false',
      '--default-address-pool',
      'base=198.18.0.0/16,size=24',
    ]);
  } catch (err) {
    await run('ip', ['netns', 'del', netns]).catch(() => undefined);
    throw err;
  }
  const stop = async () => {
    await engine.stop();
    await run('ip', ['netns', 'del', netns]).catch(() => undefined);
  };
  try {
    await loadImages(engine.host, images);
  } catch (err) {
    await stop();
    throw err;
  }
  const inNetns = async (cmd: string, ...args: string[]) =>
    (await run('nsenter', [`--net=/run/netns/${netns}`, cmd, ...args], { maxBuffer: 16 * 1024 * 1024 })).stdout;
  return { host: engine.host, netns, docker: engine.docker, inNetns, stop };
}
