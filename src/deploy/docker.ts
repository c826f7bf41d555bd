import { PassThrough, type Readable } from 'node:stream';
import Docker from 'dockerode';
import { withTimeout } from '../util/abort.js';
import { Cancelled } from '../util/error-codes.js';
import { errorMessage } from '../util/errors.js';
import { every, poll } from '../util/retry.js';

/**
 * Docker mechanics only: connect, list, exec, signal, restart. What to run in a container and
 * when is decided by targets.ts and deployer.ts.
 */
const CALL_TIMEOUT = 30_000;
export const EXEC_TIMEOUT = 120_000;
/** What is kept of a command's output by default: enough for a config check's error. */
const MAX_OUTPUT = 4_000;

export const COMPOSE_PROJECT_LABEL = 'com.docker.compose.project';

/** A Docker client from DOCKER_HOST (unix socket, or tcp to a socket proxy). */
export function connectDocker(): Docker {
  return new Docker();
}

export function dockerWhere(): string {
  return process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
}

export async function pingDocker(docker: Docker): Promise<void> {
  try {
    await withTimeout(docker.ping(), CALL_TIMEOUT, 'Docker ping');
  } catch (err) {
    throw new Error(
      `cannot reach the Docker API at ${dockerWhere()} (${errorMessage(err)}); mount /var/run/docker.sock or set DOCKER_HOST=tcp://<socket-proxy>:2375, or set DOCKER_RELOAD=false to publish without reloading`,
    );
  }
}

/** One network a container is attached to. */
export interface Attachment {
  name: string;
  id: string;
  ip?: string;
  ip6?: string;
}

/** A container as the list call shows it: no environment, unlike inspect (which mailcerts never calls). */
export interface ContainerView {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** HostConfig.NetworkMode: host, none, bridge, a network name, or container:<id>. */
  networkMode: string;
  networks: Attachment[];
}

function view(c: Docker.ContainerInfo): ContainerView {
  const networks = Object.entries(c.NetworkSettings?.Networks ?? {})
    .map(([name, n]) => ({
      name,
      id: n.NetworkID ?? '',
      ip: n.IPAddress || undefined,
      ip6: n.GlobalIPv6Address || undefined,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  return {
    id: c.Id,
    name: (c.Names[0] ?? c.Id.slice(0, 12)).replace(/^\//, ''),
    labels: c.Labels ?? {},
    networkMode: c.HostConfig?.NetworkMode ?? '',
    networks,
  };
}

/** Running containers matching every label filter (Docker ANDs them). */
export async function listContainers(
  docker: Docker,
  filters: { label?: string[]; id?: string[] },
): Promise<ContainerView[]> {
  const list = await withTimeout(
    docker.listContainers({ filters: { ...filters, status: ['running'] } }),
    CALL_TIMEOUT,
    'listing containers',
  );
  return list.map(view).sort((a, b) => a.name.localeCompare(b.name));
}

export interface ExecOutcome {
  exitCode: number;
  output: string;
}

/**
 * Runs a command in a container and reads its exit code and output. On timeout or abort the
 * request and its stream are torn down, so nothing is left open. `tty`: on a terminal, for a
 * command that prints its errors only there (Postfix 3.7's postfix-script logs through postlog,
 * which writes to stderr only when that is a terminal). Only the exec is made with a terminal:
 * started as any other, its output still comes multiplexed (and the socket proxy's rule for the
 * start body stays one).
 */
export async function execIn(
  docker: Docker,
  id: string,
  argv: string[],
  opts: { timeoutMs?: number; signal?: AbortSignal; tty?: boolean; maxOutput?: number } = {},
): Promise<ExecOutcome> {
  const maxOutput = opts.maxOutput ?? MAX_OUTPUT;
  const what = `running "${argv.join(' ')}"`;
  const abort = new AbortController();
  const timeoutMs = opts.timeoutMs ?? EXEC_TIMEOUT;
  const timer = setTimeout(
    () => abort.abort(new Error(`${what} timed out after ${Math.round(timeoutMs / 1000)}s`)),
    timeoutMs,
  );
  const onAbort = () => abort.abort(new Cancelled(what));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let stream: Readable | undefined;
  try {
    const container = docker.getContainer(id);
    const tty = opts.tty ?? false;
    const exec = await container.exec({
      Cmd: argv,
      AttachStdout: true,
      AttachStderr: true,
      Tty: tty,
      abortSignal: abort.signal,
    } as Docker.ExecCreateOptions);
    stream = (await exec.start({
      hijack: false,
      stdin: false,
      abortSignal: abort.signal,
    } as Docker.ExecStartOptions)) as Readable;
    let output = '';
    const sink = new PassThrough();
    sink.on('data', (b: Buffer) => {
      if (output.length < maxOutput) output += b.toString('utf8');
    });
    docker.modem.demuxStream(stream, sink, sink);
    await new Promise<void>((resolve, reject) => {
      const s = stream!;
      const stop = () => reject(abort.signal.reason as Error);
      if (abort.signal.aborted) return stop();
      abort.signal.addEventListener('abort', stop, { once: true });
      s.on('end', resolve);
      s.on('close', resolve);
      s.on('error', reject);
    });
    const inspect = () => exec.inspect({ abortSignal: abort.signal } as object) as Promise<Docker.ExecInspectInfo>;
    // The stream ends a moment before the exec is marked finished: looked at again for up to 5 s.
    const polled = await poll(inspect, {
      until: (i) => !i.Running,
      attempts: 101,
      backoff: every(50),
      signal: abort.signal,
    });
    if (abort.signal.aborted) throw abort.signal.reason as Error;
    const info = polled.value!;
    // A terminal ends its lines with \r\n.
    return {
      exitCode: info.ExitCode ?? -1,
      output: (tty ? output.replace(/\r+\n/g, '\n') : output).trim().slice(0, maxOutput),
    };
  } catch (err) {
    throw abort.signal.aborted ? (abort.signal.reason as Error) : err;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    stream?.destroy();
  }
}

export async function signalContainer(docker: Docker, id: string, signal: string): Promise<void> {
  await withTimeout(docker.getContainer(id).kill({ signal }), CALL_TIMEOUT, `sending ${signal}`);
}

/** Restarts a container (Docker stops it with a 30 s grace period). */
export async function restartContainer(docker: Docker, id: string): Promise<void> {
  await withTimeout(docker.getContainer(id).restart({ t: 30 }), 60_000, 'restarting');
}
