import { keyAndChainPaths, type SniCert, type SniFile, sniDirAt, sniHeader } from '../../../publish/sni.js';

export const DOVECOT_SNI_FILES = { '2.3': 'dovecot.conf', '2.4': 'dovecot24.conf' } as const;

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

/** The settings of one local_name block, in the syntax of the version. */
function certLines(file: string, alt: string | undefined, version: '2.3' | '2.4'): string[] {
  return version === '2.3'
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
}

/** A Dovecot include with one local_name block per name, for 2.3 or for 2.4 (their syntax differs). */
export function renderDovecotInclude(certs: SniCert[], base: string, version: '2.3' | '2.4'): SniFile {
  const name = DOVECOT_SNI_FILES[version];
  const blocks = inMatchOrder(certs, version).map(({ domain, cert }) => {
    const [file, alt] = keyAndChainPaths(cert, base);
    return `local_name ${domain} {\n${certLines(file!, alt, version).join('\n')}\n}\n`;
  });
  return { name, data: sniHeader(`dovecot.conf: !include_try ${sniDirAt(base)}/${name}`) + blocks.join('') };
}
