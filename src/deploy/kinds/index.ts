import type { SniCert, SniFile } from '../../publish/sni.js';
import type { EndpointSpec } from '../verify.js';
import { dovecot } from './dovecot/index.js';
import { exec } from './exec/index.js';
import type { ReloadAction, ReloadPlan, ReloadStep, ServerKind, Step } from './kind.js';
import { postfix } from './postfix/index.js';
import { restart } from './restart/index.js';
import { signal } from './signal/index.js';

export type { ReloadAction, ReloadPlan, ReloadStep, ServerKind, Step } from './kind.js';

/** Every kind a container's mailcerts.reload can name, in the order errors and `check` list them. */
export const SERVER_KINDS: readonly ServerKind[] = [postfix, dovecot, restart, signal, exec];

export const RELOAD_LABEL = 'mailcerts.reload';
/** mailcerts.escalate: restart (the default) or off, when a container still serves an old certificate after its reload. */
export const ESCALATE_LABEL = 'mailcerts.escalate';
/**
 * What every labelled container is asked: the ports listening in its network namespace (when it
 * has no mailcerts.verify). With host networking that is every socket of the host.
 */
export const LISTENING_COMMAND = ['cat', '/proc/net/tcp', '/proc/net/tcp6'];
/** Its output is kept whole up to this: a host-networked container sees every socket of the host (about 150 bytes each). */
export const LISTENING_MAX_OUTPUT = 8_000_000;

/** "a, b and c" */
const listed = (words: string[], last: string) =>
  words.length <= 1 ? words.join('') : `${words.slice(0, -1).join(', ')} ${last} ${words.at(-1)}`;

/** Parses a mailcerts.reload label value; the error says what to write instead. */
export function parseReloadLabel(value: string): ReloadAction | { error: string } {
  const v = value.trim();
  for (const kind of SERVER_KINDS) {
    if (!kind.argument && v === kind.name) return { kind: kind.name };
    if (kind.argument && v.startsWith(`${kind.name}:`)) return kind.argument(v.slice(kind.name.length + 1));
  }
  return {
    error: `unknown reload "${v}"; use ${listed(
      SERVER_KINDS.map((k) => k.syntax),
      'or',
    )}`,
  };
}

const kindOf = (action: ReloadAction): ServerKind | undefined => SERVER_KINDS.find((k) => k.name === action.kind);

/** A label that belongs to another kind than the container's: what is wrong with it, without the "label " prefix. */
function foreignLabel(action: ReloadAction | { error: string }, labels: Record<string, string>): string | undefined {
  for (const kind of SERVER_KINDS) {
    if ('kind' in action && kind.name === action.kind) continue;
    const label = kind.labels?.find((l) => labels[l] !== undefined);
    if (label) return `${label}: needs ${RELOAD_LABEL}=${kind.syntax}`;
  }
  return undefined;
}

/**
 * What a reload of a container runs, from its labels: the one plan that the deployer runs, `check`
 * describes and the socket proxy allows. The error names the label to fix; nothing runs then.
 */
export function planReload(action: ReloadAction, labels: Record<string, string>): ReloadPlan | { error: string } {
  const kind = kindOf(action);
  if (!kind) return { error: `label ${RELOAD_LABEL}: unknown kind ${action.kind}` };
  const foreign = foreignLabel(action, labels);
  return foreign ? { error: `label ${foreign}` } : kind.plan(action, labels);
}

/** What is wrong with a container's mailcerts labels, for `check`; empty when nothing. */
export function labelProblems(target: {
  label: string;
  action: ReloadAction | { error: string };
  labels: Record<string, string>;
}): string[] {
  const problems: string[] = [];
  if ('error' in target.action) problems.push(`${RELOAD_LABEL}=${target.label}: ${target.action.error}`);
  const foreign = foreignLabel(target.action, target.labels);
  if (foreign) problems.push(foreign);
  else if ('kind' in target.action) {
    const plan = planReload(target.action, target.labels);
    if ('error' in plan) problems.push(plan.error.replace(/^label /, ''));
  }
  return problems;
}

const stepText = (s: ReloadStep | Step, alone: boolean) =>
  'argv' in s
    ? s.argv.join(' ')
    : 'exec' in s
      ? `${alone ? 'run ' : ''}${s.exec.argv.join(' ')}`
      : 'signal' in s
        ? `send ${s.signal}`
        : 'restart the container';

/** What `check` says a container's reload does, from the very plan the deployer runs. */
export function describeReload(action: ReloadAction, labels: Record<string, string> = {}): string {
  const plan = planReload(action, labels);
  if ('error' in plan) return plan.error;
  const all = [...plan.checks, ...plan.steps];
  const words = all.map((s) => stepText(s, all.length === 1));
  return words.length === 1 ? words[0]! : `${words.slice(0, -1).join(', ')}, then ${words.at(-1)}`;
}

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
  let signal: string | undefined;
  let restart = (labels[ESCALATE_LABEL] ?? 'restart') === 'restart';
  const plan = 'kind' in action ? planReload(action, labels) : undefined;
  if (plan && !('error' in plan)) {
    commands.push(...plan.checks);
    for (const s of plan.steps) {
      if ('exec' in s) commands.push(s.exec);
      else if ('signal' in s) signal = s.signal;
      else restart = true;
    }
  }
  return { commands, signal, restart };
}

/** The endpoints a kind serves by default, when the container carries no mailcerts.verify. */
export function defaultEndpoints(action: ReloadAction | { error: string }): readonly EndpointSpec[] | undefined {
  return 'kind' in action ? kindOf(action)?.endpoints : undefined;
}

/** Which kinds have default endpoints, for the message that says a container has none. */
export const KINDS_WITH_ENDPOINTS = listed(
  SERVER_KINDS.filter((k) => k.endpoints).map((k) => k.name),
  'and',
);

/** The names of every kind's SNI files in CERTS_DIR/sni/, in the order they are rendered. */
export const SNI_FILE_NAMES: readonly string[] = SERVER_KINDS.flatMap((k) => k.sni?.files ?? []);

/** Every kind's SNI files for these certificates, for containers that mount CERTS_DIR at `base`. */
export function renderSni(certs: SniCert[], base: string): SniFile[] {
  return SERVER_KINDS.flatMap((k) => k.sni?.render(certs, base) ?? []);
}
