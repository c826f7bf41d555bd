import { constants } from 'node:os';
import { parse as parseShellWords } from 'shell-quote';
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
  const maps = value
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  if (maps.length === 0) return { error: 'lists no map; write it like hash:/etc/postfix/sni' };
  for (const m of maps) {
    if (!/^[a-z][a-z0-9_]*:\/[^\s,]+$/.test(m))
      return {
        error: `"${m.slice(0, 80)}" is not type:path; write it like hash:/etc/postfix/sni or lmdb:/etc/postfix/sni`,
      };
  }
  return maps;
}

/** A command run in the container; `tty`: on a terminal (for a command that prints its errors only there). */
export interface Step {
  argv: string[];
  tty?: boolean;
}

interface Preset {
  /** Checks, run side by side before anything changes; any failure means no reload, and the server's own words are reported. */
  validate: Step[];
  reload: string[][];
  endpoints: EndpointSpec[];
}

export const PRESETS = {
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
    endpoints: [
      { protocol: 'smtp', port: 25 },
      { protocol: 'submissions', port: 465 },
      { protocol: 'submission', port: 587 },
    ],
  },
  dovecot: {
    validate: [{ argv: ['doveconf', '-n'] }],
    reload: [['doveadm', 'reload']],
    endpoints: [
      { protocol: 'imaps', port: 993 },
      { protocol: 'pop3s', port: 995 },
      { protocol: 'imap', port: 143 },
      { protocol: 'pop3', port: 110 },
      { protocol: 'sieve', port: 4190 },
    ],
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
    if (!(signal in constants.signals))
      return { error: `unknown signal "${v.slice(7)}"; use a name such as signal:SIGHUP` };
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
      return {
        error: `exec: commands run without a shell, so $${variables[0]} would not be expanded; write exec:sh -c '... $${variables[0]} ...' if the container's shell should expand it`,
      };
    }
    if (words.length === 0) return { error: 'exec: needs a command, such as exec:nginx -s reload' };
    if (!words.every((w): w is string => typeof w === 'string')) {
      return {
        error:
          "exec: commands run without a shell, so pipes, redirections, globs and ; are not allowed; use exec:sh -c '...' if you need a shell",
      };
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
      const maps =
        a.kind === 'postfix' && labels[POSTMAP_LABEL] !== undefined
          ? parsePostmapLabel(labels[POSTMAP_LABEL]!)
          : undefined;
      const postmap = maps && !('error' in maps) ? [`postmap -F ${maps.join(' ')}`] : [];
      const before = [...preset.validate.map((step) => step.argv.join(' ')), ...postmap];
      return `${before.join(', ')}, then ${preset.reload.map((argv) => argv.join(' ')).join(', ')}`;
    }
    case 'signal':
      return `send ${a.signal}`;
    case 'restart':
      return 'restart the container';
    case 'exec':
      return `run ${a.argv.join(' ')}`;
  }
}

/** The endpoints a preset serves by default, when the container carries no mailcerts.verify. */
export function presetEndpoints(a: ReloadAction | { error: string }): EndpointSpec[] | undefined {
  return 'kind' in a && (a.kind === 'postfix' || a.kind === 'dovecot') ? PRESETS[a.kind].endpoints : undefined;
}

/** The postmap -F commands a container's mailcerts.postmap asks for (postfix preset only). */
export function postmapSteps(target: {
  labels: Record<string, string>;
  action: ReloadAction | { error: string };
}): { steps: string[][] } | { error: string } {
  const label = target.labels[POSTMAP_LABEL];
  if (label === undefined) return { steps: [] };
  if (!('kind' in target.action) || target.action.kind !== 'postfix')
    return { error: `label ${POSTMAP_LABEL}: needs ${RELOAD_LABEL}=postfix` };
  const maps = parsePostmapLabel(label);
  if ('error' in maps) return { error: `label ${POSTMAP_LABEL}=${label}: ${maps.error}` };
  return { steps: maps.map((m) => ['postmap', '-F', m]) };
}

/** What every labelled container is asked: the ports it listens on (deployer.ts, when it has no mailcerts.verify). */
export const LISTENING_COMMAND = ['cat', '/proc/net/tcp', '/proc/net/tcp6'];
/** mailcerts.escalate: restart (the default) or off, when a container still serves an old certificate after its reload. */
export const ESCALATE_LABEL = 'mailcerts.escalate';

/**
 * Everything mailcerts may do to a container with these labels: the commands it runs in it, the
 * signal it sends, whether it may restart it. The socket proxy allows exactly these, so that
 * whoever reaches it cannot run anything else in a mail container.
 */
export function allowedActions(labels: Record<string, string>): {
  commands: Step[];
  signal?: string;
  restart: boolean;
} {
  const action = parseReloadLabel(labels[RELOAD_LABEL] ?? '');
  const commands: Step[] = [{ argv: LISTENING_COMMAND }];
  if ('kind' in action && (action.kind === 'postfix' || action.kind === 'dovecot')) {
    const preset = PRESETS[action.kind];
    const maps = postmapSteps({ labels, action });
    commands.push(
      ...preset.validate,
      ...('steps' in maps ? maps.steps : []).map((argv) => ({ argv })),
      ...preset.reload.map((argv) => ({ argv })),
    );
  }
  if ('kind' in action && action.kind === 'exec') commands.push({ argv: action.argv });
  const restart =
    ('kind' in action && action.kind === 'restart') || (labels[ESCALATE_LABEL] ?? 'restart') === 'restart';
  return { commands, signal: 'kind' in action && action.kind === 'signal' ? action.signal : undefined, restart };
}
