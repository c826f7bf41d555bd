import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { inject } from 'vitest';
import { ROOT, TEST_PROJECT } from './mailstack.js';

export const CLI = join(ROOT, 'dist', 'cli.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The JSON log lines (from stdout for run/renew, stderr for status/check). */
  logs: Record<string, unknown>[];
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text.split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** How the CLI is started: as it is, under `ulimit -n`, in a network namespace, or with a resolv.conf of its own. */
function commandFor(
  args: string[],
  o: { maxOpenFiles?: number; netns?: string; resolvConf?: string },
): [string, string[]] {
  const cli = [process.execPath, CLI, ...args];
  if (o.maxOpenFiles) return ['sh', ['-c', `ulimit -n ${o.maxOpenFiles} && exec "$0" "$@"`, ...cli]];
  if (o.netns) return ['nsenter', [`--net=/run/netns/${o.netns}`, ...cli]];
  // A mount namespace of its own, with the file bound over /etc/resolv.conf.
  if (o.resolvConf)
    return [
      'unshare',
      ['--mount', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', o.resolvConf, ...cli],
    ];
  return [process.execPath, [CLI, ...args]];
}

/** Runs `node dist/cli.js ...` with only the given environment (plus PATH and DOCKER_HOST). */
export function runCli(
  args: string[],
  env: Record<string, string | undefined>,
  opts: {
    onStart?: (pid: number) => void;
    onLine?: (line: Record<string, unknown>, pid: number) => void;
    maxOpenFiles?: number;
    uid?: number;
    /** A network namespace (`ip netns add`) to run it in, as a process on that "host". */
    netns?: string;
    /** A resolv.conf it sees as /etc/resolv.conf (in a mount namespace of its own): the system's resolvers. */
    resolvConf?: string;
  } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const [cmd, argv] = commandFor(args, opts);
    const child = spawn(cmd, argv, {
      env: {
        PATH: process.env.PATH,
        ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // With uid, as that user (and group of the same number), as the image runs mailcerts (10001).
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}),
    });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      if (!opts.onLine) return;
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const l of jsonLines(lines.join('\n'))) opts.onLine(l, child.pid!);
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    if (child.pid) opts.onStart?.(child.pid);
    child.on('close', (code) => resolve({ code, stdout, stderr, logs: [...jsonLines(stdout), ...jsonLines(stderr)] }));
  });
}

export function logsWith(run: CliRun, fields: Record<string, unknown>): Record<string, unknown>[] {
  return run.logs.filter((l) => Object.entries(fields).every(([k, v]) => l[k] === v));
}

/** Points mailcerts at the test Pebble, publishing into dir/certs with its state in dir/state. */
export function pebbleEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  const pebble = inject('pebble');
  return {
    ACME_DIRECTORY: pebble.directoryUrl,
    NODE_EXTRA_CA_CERTS: pebble.caFile,
    HTTP01_PORT: String(pebble.httpPort),
    CERTS_DIR: join(dir, 'certs'),
    STATE_DIR: join(dir, 'state'),
    DOCKER_SCOPE: TEST_PROJECT, // mailcerts runs on the host here: the test containers' project
    ...extra,
  };
}
