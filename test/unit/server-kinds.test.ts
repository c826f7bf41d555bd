import { describe, expect, it } from 'vitest';
import {
  allowedActions,
  describeReload,
  LISTENING_COMMAND,
  labelProblems,
  parseReloadLabel,
  planReload,
  type ReloadAction,
} from '../../src/deploy/kinds/index.js';

const action = (label: string) => parseReloadLabel(label) as ReloadAction;
const argvs = (labels: Record<string, string>) => allowedActions(labels).commands.map((c) => c.argv.join(' '));

describe('the mail-server kinds: one plan, run by the deployer, described by check, allowed by the proxy', () => {
  it('describes each kind from the steps it runs', () => {
    expect(describeReload(action('postfix'))).toBe('postconf -n, postfix check, then postfix reload');
    expect(describeReload(action('postfix'), { 'mailcerts.postmap': 'hash:/etc/postfix/sni' })).toBe(
      'postconf -n, postfix check, postmap -F hash:/etc/postfix/sni, then postfix reload',
    );
    expect(describeReload(action('dovecot'))).toBe('doveconf -n, then doveadm reload');
    expect(describeReload(action('signal:hup'))).toBe('send SIGHUP');
    expect(describeReload(action('restart'))).toBe('restart the container');
    expect(describeReload(action('exec:nginx -s reload'))).toBe('run nginx -s reload');
  });

  it('the proxy allows exactly the commands of the plan, the listening ports, and a restart unless escalation is off', () => {
    expect(argvs({ 'mailcerts.reload': 'postfix', 'mailcerts.postmap': 'hash:/etc/postfix/sni' })).toEqual([
      LISTENING_COMMAND.join(' '),
      'postconf -n',
      'postfix check',
      'postmap -F hash:/etc/postfix/sni',
      'postfix reload',
    ]);
    expect(allowedActions({ 'mailcerts.reload': 'signal:USR1', 'mailcerts.escalate': 'off' })).toEqual({
      commands: [{ argv: LISTENING_COMMAND }],
      signal: 'SIGUSR1',
      restart: false,
    });
    expect(allowedActions({ 'mailcerts.reload': 'restart', 'mailcerts.escalate': 'off' }).restart).toBe(true);
  });

  it('a label of one kind on a container of another is refused before anything runs, as check says', () => {
    const labels = { 'mailcerts.reload': 'exec:nginx -s reload', 'mailcerts.postmap': 'hash:/etc/postfix/sni' };
    expect(planReload(action(labels['mailcerts.reload']), labels)).toEqual({
      error: 'label mailcerts.postmap: needs mailcerts.reload=postfix',
    });
    expect(
      labelProblems({ label: labels['mailcerts.reload'], action: action(labels['mailcerts.reload']), labels }),
    ).toEqual(['mailcerts.postmap: needs mailcerts.reload=postfix']);
    // The proxy lets through no command of a container mailcerts will not reload.
    expect(argvs(labels)).toEqual([LISTENING_COMMAND.join(' ')]);
    // A Postfix whose map label is wrong: not even its checks run.
    expect(argvs({ 'mailcerts.reload': 'postfix', 'mailcerts.postmap': '/etc/postfix/sni' })).toEqual([
      LISTENING_COMMAND.join(' '),
    ]);
  });
});
