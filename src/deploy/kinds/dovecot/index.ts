import type { ServerKind } from '../kind.js';
import { DOVECOT_SNI_FILES, renderDovecotInclude } from './sni.js';

export const dovecot: ServerKind = {
  name: 'dovecot',
  syntax: 'dovecot',
  plan: () => ({
    checks: [{ argv: ['doveconf', '-n'] }],
    steps: [{ exec: { argv: ['doveadm', 'reload'] }, failure: 'reload failed' }],
  }),
  endpoints: [
    { protocol: 'imaps', port: 993 },
    { protocol: 'pop3s', port: 995 },
    { protocol: 'imap', port: 143 },
    { protocol: 'pop3', port: 110 },
    { protocol: 'sieve', port: 4190 },
  ],
  // Both syntaxes, always: mailcerts cannot tell which Dovecot mounts the volume.
  sni: {
    files: Object.values(DOVECOT_SNI_FILES),
    render: (certs, base) => [renderDovecotInclude(certs, base, '2.3'), renderDovecotInclude(certs, base, '2.4')],
  },
};
