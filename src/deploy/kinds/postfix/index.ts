import type { ServerKind } from '../kind.js';
import { renderPostfixMap } from './sni.js';

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

export const postfix: ServerKind = {
  name: 'postfix',
  syntax: 'postfix',
  labels: [POSTMAP_LABEL],
  plan(_action, labels) {
    const label = labels[POSTMAP_LABEL];
    const maps = label === undefined ? [] : parsePostmapLabel(label);
    if ('error' in maps) return { error: `label ${POSTMAP_LABEL}=${label}: ${maps.error}` };
    return {
      checks: [
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
      steps: [
        // postmap -F stores the files' contents in the table: it must run after every publish.
        ...maps.map((m) => ({ exec: { argv: ['postmap', '-F', m] }, failure: 'postmap failed, not reloaded' })),
        { exec: { argv: ['postfix', 'reload'] }, failure: 'reload failed' },
      ],
    };
  },
  endpoints: [
    { protocol: 'smtp', port: 25 },
    { protocol: 'submissions', port: 465 },
    { protocol: 'submission', port: 587 },
  ],
  sni: { files: ['postfix.map'], render: (certs, base) => [renderPostfixMap(certs, base)] },
};
