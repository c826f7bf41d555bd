import { describe, expect, it } from 'vitest';
import { parseReloadLabel } from '../../src/deploy/kinds/index.js';
import { parsePostmapLabel } from '../../src/deploy/kinds/postfix/index.js';

describe('the mailcerts.reload label', () => {
  it('knows the presets, signals, restart and exec', () => {
    expect(parseReloadLabel('postfix')).toEqual({ kind: 'postfix' });
    expect(parseReloadLabel(' dovecot ')).toEqual({ kind: 'dovecot' });
    expect(parseReloadLabel('restart')).toEqual({ kind: 'restart' });
    expect(parseReloadLabel('signal:SIGHUP')).toEqual({ kind: 'signal', signal: 'SIGHUP' });
    expect(parseReloadLabel('signal:usr1')).toEqual({ kind: 'signal', signal: 'SIGUSR1' });
  });

  it('splits exec commands into arguments without a shell, honouring quotes', () => {
    expect(parseReloadLabel(`exec:nginx -s reload`)).toEqual({ kind: 'exec', argv: ['nginx', '-s', 'reload'] });
    expect(parseReloadLabel(`exec:sh -c 'postmap -F /etc/postfix/sni && postfix reload'`)).toEqual({
      kind: 'exec',
      argv: ['sh', '-c', 'postmap -F /etc/postfix/sni && postfix reload'],
    });
  });

  it('refuses what it cannot do safely, saying what to write instead', () => {
    expect(parseReloadLabel('exec:postfix reload; rm -rf /')).toMatchObject({
      error: expect.stringMatching(/without a shell/),
    });
    expect(parseReloadLabel('exec:cat /etc/* > /tmp/x')).toMatchObject({
      error: expect.stringMatching(/without a shell/),
    });
    expect(parseReloadLabel('exec:')).toMatchObject({ error: expect.stringMatching(/needs a command/) });
    expect(parseReloadLabel('signal:SIGNOPE')).toMatchObject({
      error: 'unknown signal "SIGNOPE"; use a name such as signal:SIGHUP',
    });
    // No shell expands $VAR: it would become an empty argument, so it is refused.
    expect(parseReloadLabel('exec:postmap -F $MAP')).toEqual({
      error:
        "exec: commands run without a shell, so $MAP would not be expanded; write exec:sh -c '... $MAP ...' if the container's shell should expand it",
    });
    expect(parseReloadLabel(`exec:echo ${'$'}{HOME}x`)).toMatchObject({
      error: expect.stringMatching(/\$HOME would not be expanded/),
    });
    expect(parseReloadLabel(`exec:sh -c 'postmap -F $MAP'`)).toEqual({
      kind: 'exec',
      argv: ['sh', '-c', 'postmap -F $MAP'],
    });
    expect(parseReloadLabel('nginx')).toMatchObject({
      error: expect.stringMatching(/use postfix, dovecot, restart, signal:<NAME> or exec:<command>/),
    });
  });
});

describe('the mailcerts.postmap label', () => {
  it('takes type:path maps, and refuses anything else saying how to write it', () => {
    expect(parsePostmapLabel('hash:/etc/postfix/sni')).toEqual(['hash:/etc/postfix/sni']);
    expect(parsePostmapLabel('hash:/etc/postfix/sni, lmdb:/etc/postfix/sni2')).toEqual([
      'hash:/etc/postfix/sni',
      'lmdb:/etc/postfix/sni2',
    ]);
    expect(parsePostmapLabel('/etc/postfix/sni')).toEqual({
      error: '"/etc/postfix/sni" is not type:path; write it like hash:/etc/postfix/sni or lmdb:/etc/postfix/sni',
    });
    expect(parsePostmapLabel('hash:relative')).toMatchObject({ error: expect.stringMatching(/is not type:path/) });
    expect(parsePostmapLabel('hash:/x; rm -rf /')).toMatchObject({ error: expect.stringMatching(/is not type:path/) });
    expect(parsePostmapLabel('')).toMatchObject({ error: expect.stringMatching(/lists no map/) });
  });
});
