import { constants } from 'node:os';
import type Docker from 'dockerode';
import { parse as parseShellWords } from 'shell-quote';
import type { Logger } from '../log.js';
import { errorMessage } from '../util/errors.js';
import { type ContainerView, execIn, restartContainer, signalContainer } from './docker.js';
import type { EndpointSpec } from './verify.js';

/**
 * What mailcerts knows about each kind of mail server: how to validate its configuration, how to
 * reload it, and which endpoints it serves by default. Everything Postfix- or Dovecot-specific in
 * the deploy stage lives here.
 */
export const RELOAD_LABEL = 'mailcerts.reload';
/** Indexed Postfix tables to rebuild with `postmap -F` before the reload, e.g. hash:/etc/postfix/sni. */
export const POSTMAP_LABEL = 'mailcerts.postmap';

/** Parses mailcerts.postmap: a comma list of type:path. */
export function parsePostmapLabel(value: string): string[] | { error: string } {
  const maps = value.split(',').map((m) => m.trim()).filter(Boolean);
  if (maps.length === 0) return { error: 'lists no map; write it like hash:/etc/postfix/sni' };
  for (const m of maps) {
    if (!/^[a-z][a-z0-9_]*:\/[^\s,]+$/.test(m)) return { error: `"${m.slice(0, 80)}" is not type:path; write it like hash:/etc/postfix/sni or lmdb:/etc/postfix/sni` };
  }
  return maps;
}

/** A command run in the container; `tty`: on a terminal (for a command that prints its errors only there). */
interface Step {
  argv: string[];
  tty?: boolean;
}

interface Preset {
  /** Checks, run side by side before anything changes; any failure means no reload, and the server's own words are reported. */
  validate: Step[];
  reload: string[][];
  endpoints: EndpointSpec[];
}

const PRESETS = {
  postfix: {
    validate: [
      // Parses main.cf and master.cf (both files the reloaded master reads) and prints Postfix's words.
      { argv: ['postconf', '-n'] },
      // What `postfix start` checks before it starts, and what a restart would meet: postconf -n
      // passes a master.cf without its postlog service while maillog_file is set; this does not.
      // postfix-script check-fatal: post-install create-missing (makes queue directories that are
      // missing, and only those), master.cf present, the postlog service, then postsuper's queue
      // structure check (postfix reload runs postsuper itself); check-warn only warns. On a
      // terminal, because Postfix 3.7 prints the failure only there (postlog writes to stderr when
      // it is a terminal); 3.10 prints it either way.
      { argv: ['postfix', 'check'], tty: true },
    ],
    reload: [['postfix', 'reload']],
    endpoints: [{ protocol: 'smtp', port: 25 }, { protocol: 'submissions', port: 465 }, { protocol: 'submission', port: 587 }],
  },
  dovecot: {
    validate: [{ argv: ['doveconf', '-n'] }],
    reload: [['doveadm', 'reload']],
    endpoints: [{ protocol: 'imaps', port: 993 }, { protocol: 'pop3s', port: 995 }, { protocol: 'imap', port: 143 }, { protocol: 'pop3', port: 110 }, { protocol: 'sieve', port: 4190 }],
  },
} satisfies Record<string, Preset>;

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
    const variables: string[] = [];
    // Without a shell, $VAR would silently become an empty argument: refuse it instead.
    const words = parseShellWords(v.slice(5), (name: string) => {
      variables.push(name);
      return '';
    });
    if (variables.length > 0) {
      return { error: `exec: commands run without a shell, so $${variables[0]} would not be expanded; write exec:sh -c '... $${variables[0]} ...' if the container's shell should expand it` };
    }
    if (words.length === 0) return { error: 'exec: needs a command, such as exec:nginx -s reload' };
    if (!words.every((w): w is string => typeof w === 'string')) {
      return { error: 'exec: commands run without a shell, so pipes, redirections, globs and ; are not allowed; use exec:sh -c \'...\' if you need a shell' };
    }
    return { kind: 'exec', argv: words };
  }
  return { error: `unknown reload "${v}"; use postfix, dovecot, restart, signal:<NAME> or exec:<command>` };
}

/** What `check` says a container's reload does, from the very steps reloadTarget runs. */
export function describeAction(a: ReloadAction, labels: Record<string, string> = {}): string {
  switch (a.kind) {
    case 'postfix':
    case 'dovecot': {
      const preset = PRESETS[a.kind];
      const maps = a.kind === 'postfix' && labels[POSTMAP_LABEL] !== undefined ? parsePostmapLabel(labels[POSTMAP_LABEL]!) : undefined;
      const postmap = maps && !('error' in maps) ? [`postmap -F ${maps.join(' ')}`] : [];
      const before = [...preset.validate.map((step) => step.argv.join(' ')), ...postmap];
      return `${before.join(', ')}, then ${preset.reload.map((argv) => argv.join(' ')).join(', ')}`;
    }
    case 'signal': return `send ${a.signal}`;
    case 'restart': return 'restart the container';
    case 'exec': return `run ${a.argv.join(' ')}`;
  }
}

/** The endpoints a preset serves by default, when the container carries no mailcerts.verify. */
export function presetEndpoints(a: ReloadAction | { error: string }): EndpointSpec[] | undefined {
  return 'kind' in a && (a.kind === 'postfix' || a.kind === 'dovecot') ? PRESETS[a.kind].endpoints : undefined;
}

export interface ReloadTarget extends ContainerView {
  label: string;
  action: ReloadAction | { error: string };
}

export function asTarget(c: ContainerView): ReloadTarget {
  const label = c.labels[RELOAD_LABEL] ?? '';
  return { ...c, label, action: parseReloadLabel(label) };
}

/** Runs one command; its failure with the container's output, or undefined. */
async function execStep(docker: Docker, target: ReloadTarget, step: Step, log: Logger, signal?: AbortSignal): Promise<string | undefined> {
  const cmd = step.argv.join(' ');
  const { exitCode, output } = await execIn(docker, target.id, step.argv, { signal, tty: step.tty });
  log.info({ step: 'reload', container: target.name, command: cmd, exitCode }, exitCode === 0 ? 'command succeeded' : 'command failed');
  if (exitCode === 0) return undefined;
  const said = output ? `:\n${output}` : ' and printed nothing (see the container log)';
  const what = exitCode === 126 || exitCode === 127 ? ' (command not found in the container?)' : '';
  return `"${cmd}" exited with ${exitCode}${what}${said}`;
}

/** Runs the commands in order; stops at the first failure and reports it with the container's output. */
async function execSteps(docker: Docker, target: ReloadTarget, steps: string[][], log: Logger, signal?: AbortSignal): Promise<string | undefined> {
  for (const argv of steps) {
    const failed = await execStep(docker, target, { argv }, log, signal);
    if (failed) return failed;
  }
  return undefined;
}

/**
 * Runs the checks side by side and waits for all of them; reports the first failure in the listed
 * order. Nothing that changes the server starts before every check has finished.
 */
async function execChecks(docker: Docker, target: ReloadTarget, checks: Step[], log: Logger, signal?: AbortSignal): Promise<string | undefined> {
  const results = await Promise.allSettled(checks.map((step) => execStep(docker, target, step, log, signal)));
  for (const r of results) {
    if (r.status === 'rejected') throw r.reason;
    if (r.value) return r.value;
  }
  return undefined;
}

/** The postmap -F commands a container's mailcerts.postmap asks for (postfix preset only). */
function postmapSteps(target: ReloadTarget): { steps: string[][] } | { error: string } {
  const label = target.labels[POSTMAP_LABEL];
  if (label === undefined) return { steps: [] };
  if (!('kind' in target.action) || target.action.kind !== 'postfix') return { error: `label ${POSTMAP_LABEL}: needs ${RELOAD_LABEL}=postfix` };
  const maps = parsePostmapLabel(label);
  if ('error' in maps) return { error: `label ${POSTMAP_LABEL}=${label}: ${maps.error}` };
  return { steps: maps.map((m) => ['postmap', '-F', m]) };
}

/** What is wrong with a container's mailcerts labels (reload, postmap), for `check`; empty when nothing. */
export function labelProblems(target: ReloadTarget): string[] {
  const problems: string[] = [];
  if ('error' in target.action) problems.push(`${RELOAD_LABEL}=${target.label}: ${target.action.error}`);
  const maps = postmapSteps(target);
  if ('error' in maps) problems.push(maps.error.replace(/^label /, ''));
  return problems;
}

/** Validates, then reloads one container. Never throws: the answer is the error, or undefined. */
export async function reloadTarget(docker: Docker, target: ReloadTarget, log: Logger, signal?: AbortSignal): Promise<string | undefined> {
  const { action } = target;
  if ('error' in action) return `label ${RELOAD_LABEL}=${target.label}: ${action.error}`;
  try {
    switch (action.kind) {
      case 'postfix':
      case 'dovecot': {
        const preset = PRESETS[action.kind];
        const invalid = await execChecks(docker, target, preset.validate, log, signal);
        if (invalid) return `validation failed, not reloaded: ${invalid}`;
        // postmap -F stores the files' contents in the table: it must run after every publish.
        const maps = postmapSteps(target);
        if ('error' in maps) return maps.error;
        const unmapped = await execSteps(docker, target, maps.steps, log, signal);
        if (unmapped) return `postmap failed, not reloaded: ${unmapped}`;
        const failed = await execSteps(docker, target, preset.reload, log, signal);
        return failed && `reload failed: ${failed}`;
      }
      case 'exec': {
        const failed = await execSteps(docker, target, [action.argv], log, signal);
        return failed && `reload failed: ${failed}`;
      }
      case 'signal':
        await signalContainer(docker, target.id, action.signal);
        log.info({ step: 'reload', container: target.name, signal: action.signal }, 'signal sent');
        return undefined;
      case 'restart':
        await restartContainer(docker, target.id);
        log.info({ step: 'reload', container: target.name }, 'container restarted');
        return undefined;
    }
  } catch (err) {
    return `reload failed: ${errorMessage(err)}`;
  }
}
