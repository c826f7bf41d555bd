import { SNI_DIR } from './layout.js';

/**
 * The SNI files for Postfix and Dovecot, rendered from the list of published certificates. Pure:
 * the publisher decides which certificates are listed (only those whose files are published), this
 * only writes them down, in the syntax each server reads.
 */
export interface SniCert {
  name: string;
  domains: string[];
  /** The certificate's directory relative to CERTS_DIR ('' for the top). */
  dir: string;
  /** Its key-and-chain files in that directory: one, or one per algorithm (the first is Dovecot's ssl_cert, the second its ssl_alt_cert). */
  files: string[];
}

export interface SniFile {
  name: string;
  data: string;
}

export const SNI_FILES = { postfix: 'postfix.map', dovecot23: 'dovecot.conf', dovecot24: 'dovecot24.conf' } as const;

const pathOf = (c: SniCert, base: string, file: string) =>
  [base.replace(/\/$/, ''), c.dir, file].filter(Boolean).join('/');
const filesOf = (c: SniCert, base: string) => c.files.map((f) => pathOf(c, base, f));

/** Postfix looks up the name, then each parent prefixed with a dot: *.example.com is written .example.com. */
export function postfixKey(domain: string): string {
  return domain.startsWith('*.') ? domain.slice(1) : domain;
}

/**
 * The order in which a specific name beats a wildcard that also matches it. Checked on this
 * machine: Dovecot 2.3 uses the first matching local_name, so specific names go first; Dovecot
 * 2.4 uses the last, so wildcards go first (as its documentation says).
 */
function inMatchOrder(certs: SniCert[], version: '2.3' | '2.4'): { domain: string; cert: SniCert }[] {
  const all = certs.flatMap((cert) => cert.domains.map((domain) => ({ domain, cert })));
  const wild = all.filter((e) => e.domain.startsWith('*.'));
  const specific = all.filter((e) => !e.domain.startsWith('*.'));
  return version === '2.3' ? [...specific, ...wild] : [...wild, ...specific];
}

/** The three files, for containers that mount CERTS_DIR at `base`. */
export function renderSni(certs: SniCert[], base: string): SniFile[] {
  const sni = `${base.replace(/\/$/, '')}/${SNI_DIR}`;
  const header = (how: string) => `# Written by mailcerts at every publish; do not edit (it is replaced).\n# ${how}\n`;
  const postfix =
    header(
      `main.cf: tls_server_sni_maps = texthash:${sni}/${SNI_FILES.postfix} (or postmap -F it into an indexed table)`,
    ) + certs.flatMap((c) => c.domains.map((d) => `${postfixKey(d)} ${filesOf(c, base).join(',')}\n`)).join('');
  const dovecot = (version: '2.3' | '2.4') =>
    header(`dovecot.conf: !include_try ${sni}/${version === '2.3' ? SNI_FILES.dovecot23 : SNI_FILES.dovecot24}`) +
    inMatchOrder(certs, version)
      .map(({ domain, cert }) => {
        const [file, alt] = filesOf(cert, base);
        const lines =
          version === '2.3'
            ? [
                `  ssl_cert = <${file}`,
                `  ssl_key = <${file}`,
                ...(alt ? [`  ssl_alt_cert = <${alt}`, `  ssl_alt_key = <${alt}`] : []),
              ]
            : [
                `  ssl_server_cert_file = ${file}`,
                `  ssl_server_key_file = ${file}`,
                ...(alt ? [`  ssl_server_alt_cert_file = ${alt}`, `  ssl_server_alt_key_file = ${alt}`] : []),
              ];
        return `local_name ${domain} {\n${lines.join('\n')}\n}\n`;
      })
      .join('');
  return [
    { name: SNI_FILES.postfix, data: postfix },
    { name: SNI_FILES.dovecot23, data: dovecot('2.3') },
    { name: SNI_FILES.dovecot24, data: dovecot('2.4') },
  ];
}
