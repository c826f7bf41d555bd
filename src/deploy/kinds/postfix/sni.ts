import { keyAndChainPaths, type SniCert, type SniFile, sniDirAt, sniHeader } from '../../../publish/sni.js';

/** Postfix looks up the name, then each parent prefixed with a dot: *.example.com is written .example.com. */
export function postfixKey(domain: string): string {
  return domain.startsWith('*.') ? domain.slice(1) : domain;
}

/** The source of tls_server_sni_maps: one line per name, its key-and-chain files (one per algorithm). */
export function renderPostfixMap(certs: SniCert[], base: string): SniFile {
  const name = 'postfix.map';
  const how = `main.cf: tls_server_sni_maps = texthash:${sniDirAt(base)}/${name} (or postmap -F it into an indexed table)`;
  const lines = certs.flatMap((c) => c.domains.map((d) => `${postfixKey(d)} ${keyAndChainPaths(c, base).join(',')}\n`));
  return { name, data: sniHeader(how) + lines.join('') };
}
