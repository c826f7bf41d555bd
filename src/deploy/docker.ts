import { constants } from 'node:os';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { parse as parseShellWords } from 'shell-quote';
import type { Logger } from '../log.js';
import { sleep, withTimeout } from '../util/abort.js';
import { errorMessage } from '../util/errors.js';

export const RELOAD_LABEL = 'mailcerts.reload';
const CALL_TIMEOUT = 30_000;
const EXEC_TIMEOUT = 120_000;
const MAX_OUTPUT = 4_000;

export type ReloadAction =
  | { kind: 'postfix' }
  | { kind: 'dovecot' }
  | { kind: 'signal'; signal: string }
  | { kind: 'restart' }
  | { kind: 'exec'; argv: string[] };

/** Parses a mailcerts.reload label value; the error says what to write instead. */
export function parseReloadLabel(value: string): ReloadAction | { error: string } {
  const v = value.trim();
  if (v === 'postfix' || v === 'dovecot' || v === 'restart') return { kind: v };
  if (v.startsWith('signal:')) {
    const raw = v.slice(7).trim().toUpperCase();
    const signal = raw.startsWith('SIG') ? raw : `SIG${raw}`;
    if (!(signal in constants.signals)) return { error: `unknown signal "${v.slice(7)}"; use a name such as signal:SIGHUP` };
    return { kind: 'signal', signal };
  }
  if (v.startsWith('exec:')) {
    const words = parseShellWords(v.slice(5));
    if (words.length === 0) return { error: 'exec: needs a command, such as exec:nginx -s reload' };
    if (!words.every((w): w is string => typeof w === 'string')) {
      return { error: 'exec: commands run without a shell, so pipes, redirections, globs and ; are not allowed; use exec:sh -c \'...\' if you need a shell' };
    }
    return { kind: 'exec', argv: words };
  }
  return { error: `unknown reload "${v}"; use postfix, dovecot, restart, signal:<NAME> or exec:<command>` };
}

export function describeAction(a: ReloadAction): string {
  switch (a.kind) {
    case 'postfix': return 'postconf -n, postfix check, then postfix reload';
    case 'dovecot': return 'doveconf -n, then doveadm reload';
    case 'signal': return `send ${a.signal}`;
    case 'restart': return 'restart the container';
    case 'exec': return `run ${a.argv.join(' ')}`;
  }
}

export interface ReloadTarget {
  id: string;
  name: string;
  label: string;
  action: ReloadAction | { error: string };
  labels: Record<string, string>;
}

export interface ReloadResult {
  container: string;
  ok: boolean;
  /** Why it was not reloaded, with the container's own output. */
  error?: string;
}

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
    throw new Error(`cannot reach the Docker API at ${dockerWhere()} (${errorMessage(err)}); mount /var/run/docker.sock or set DOCKER_HOST=tcp://<socket-proxy>:2375, or set DOCKER_RELOAD=false to publish without reloading`);
  }
}

/** Every running container that carries the reload label. */
export async function discoverTargets(docker: Docker): Promise<ReloadTarget[]> {
  const list = await withTimeout(docker.listContainers({ filters: { label: [RELOAD_LABEL], status: ['running'] } }), CALL_TIMEOUT, 'listing containers');
  return list
    .map((c) => {
      const label = c.Labels[RELOAD_LABEL] ?? '';
      return { id: c.Id, name: (c.Names[0] ?? c.Id.slice(0, 12)).replace(/^\//, ''), label, action: parseReloadLabel(label), labels: c.Labels };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

interface ExecOutcome {
  exitCode: number;
  output: string;
}

export async function execIn(docker: Docker, id: string, argv: string[]): Promise<ExecOutcome> {
  const container = docker.getContainer(id);
  const run = async (): Promise<ExecOutcome> => {
    const exec = await container.exec({ Cmd: argv, AttachStdout: true, AttachStderr: true, Tty: false });
    const stream = await exec.start({ hijack: false, stdin: false });
    let output = '';
    const sink = new PassThrough();
    sink.on('data', (b: Buffer) => {
      if (output.length < MAX_OUTPUT) output += b.toString('utf8');
    });
    docker.modem.demuxStream(stream, sink, sink);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    let info = await exec.inspect();
    for (let i = 0; info.Running && i < 100; i++) {
      await sleep(50);
      info = await exec.inspect();
    }
    return { exitCode: info.ExitCode ?? -1, output: output.trim().slice(0, MAX_OUTPUT) };
  };
  return withTimeout(run(), EXEC_TIMEOUT, `running "${argv.join(' ')}"`);
}

/** Runs the commands in order; stops at the first failure and reports it with the container's output. */
async function execSteps(docker: Docker, target: ReloadTarget, steps: string[][], log: Logger): Promise<string | undefined> {
  for (const argv of steps) {
    const cmd = argv.join(' ');
    const { exitCode, output } = await execIn(docker, target.id, argv);
    log.info({ step: 'reload', container: target.name, command: cmd, exitCode }, exitCode === 0 ? 'command succeeded' : 'command failed');
    if (exitCode !== 0) {
      const said = output ? `:\n${output}` : ' and printed nothing (see the container log)';
      const what = exitCode === 126 || exitCode === 127 ? ` (command not found in the container?)` : '';
      return `"${cmd}" exited with ${exitCode}${what}${said}`;
    }
  }
  return undefined;
}

/** Validates, then reloads one container. Never throws: the result says what happened. */
export async function reloadTarget(docker: Docker, target: ReloadTarget, log: Logger): Promise<ReloadResult> {
  const result = (error?: string): ReloadResult => ({ container: target.name, ok: !error, error });
  const { action } = target;
  if ('error' in action) return result(`label ${RELOAD_LABEL}=${target.label}: ${action.error}`);
  try {
    let error: string | undefined;
    switch (action.kind) {
      case 'postfix':
        // postconf prints Postfix's own words for main.cf errors; postfix check alone logs them elsewhere.
        error = await execSteps(docker, target, [['postconf', '-n'], ['postfix', 'check']], log);
        if (error) return result(`validation failed, not reloaded: ${error}`);
        error = await execSteps(docker, target, [['postfix', 'reload']], log);
        break;
      case 'dovecot':
        error = await execSteps(docker, target, [['doveconf', '-n']], log);
        if (error) return result(`validation failed, not reloaded: ${error}`);
        error = await execSteps(docker, target, [['doveadm', 'reload']], log);
        break;
      case 'exec':
        error = await execSteps(docker, target, [action.argv], log);
        break;
      case 'signal':
        await withTimeout(docker.getContainer(target.id).kill({ signal: action.signal }), CALL_TIMEOUT, `sending ${action.signal}`);
        log.info({ step: 'reload', container: target.name, signal: action.signal }, 'signal sent');
        break;
      case 'restart':
        await restartContainer(docker, target);
        log.info({ step: 'reload', container: target.name }, 'container restarted');
        break;
    }
    return result(error && `reload failed: ${error}`);
  } catch (err) {
    return result(`reload failed: ${errorMessage(err)}`);
  }
}

/** Reloads every labelled container; one failure does not stop the others. */
export async function restartContainer(docker: Docker, target: ReloadTarget): Promise<void> {
  await withTimeout(docker.getContainer(target.id).restart({ t: 30 }), 60_000, 'restarting');
}
