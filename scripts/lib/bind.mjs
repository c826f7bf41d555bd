// Starts a real BIND 9 (Debian's bind9) on 127.0.0.1: authoritative for the given zones, with a
// TSIG key allowed to update them (RFC 2136), and optionally DNSSEC-signed. Used by the tests.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { startServerProcess } from './server-process.mjs';

const which = (bin) => {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
};

/** Why BIND cannot run here, or undefined. */
export function bindMissing() {
  const missing = ['named', 'tsig-keygen', 'dig'].filter((b) => !which(b) && !which(`/usr/sbin/${b}`));
  return missing.length
    ? `BIND 9 is missing (${missing.join(', ')}): run "bash scripts/setup.sh" (Debian packages bind9, bind9-utils, bind9-dnsutils)`
    : undefined;
}

/** A fresh TSIG secret as tsig-keygen makes it. */
export function tsigKeygen(name, algorithm = 'hmac-sha256') {
  const out = execFileSync('tsig-keygen', ['-a', algorithm, name], { encoding: 'utf8' });
  return /secret "([^"]+)"/.exec(out)[1];
}

/**
 * @param {{ dir: string, port: number, zones: { name: string, update?: 'key' | 'none', policy?: string, dnssec?: boolean, records?: string[] }[], keys: { name: string, algorithm?: string, secret: string }[] }} opts
 */
export async function startBind(opts) {
  const problem = bindMissing();
  if (problem) throw new Error(problem);
  const { dir, port } = opts;
  mkdirSync(dir, { recursive: true });
  const keys = opts.keys
    .map((k) => `key "${k.name}" { algorithm ${k.algorithm ?? 'hmac-sha256'}; secret "${k.secret}"; };`)
    .join('\n');
  const zones = opts.zones
    .map((z) => {
      const file = join(dir, `${z.name}.zone`);
      writeFileSync(
        file,
        [
          '$TTL 60',
          `@ IN SOA ns1.${z.name}. hostmaster.${z.name}. 1 60 60 600 2`, // negative answers kept 2 s: tests add names
          `@ IN NS ns1.${z.name}.`,
          'ns1 IN A 127.0.0.1',
          ...(z.records ?? []),
          '',
        ].join('\n'),
      );
      const update = z.policy
        ? `update-policy { ${z.policy} };`
        : z.update === 'none'
          ? 'allow-update { none; };'
          : `allow-update { ${opts.keys.map((k) => `key "${k.name}";`).join(' ')} };`;
      // DNSSEC: BIND makes the keys and signs at once, and signs every update too.
      const signing = z.dnssec ? ` dnssec-policy default; inline-signing yes; key-directory "${dir}";` : '';
      return `zone "${z.name}" { type primary; file "${file}"; ${update}${signing} };`;
    })
    .join('\n');
  writeFileSync(
    join(dir, 'named.conf'),
    `
options {
  directory "${dir}";
  pid-file "${join(dir, 'named.pid')}";
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify no;
  allow-transfer { none; };
};
${keys}
${zones}
`,
  );
  // -g: foreground, logs to stderr; no -u: the test runs it as the user it is.
  const { stop } = await startServerProcess({
    bin: 'named',
    args: ['-g', '-c', join(dir, 'named.conf')],
    logFile: join(dir, 'named.log'),
    what: `named on 127.0.0.1:${port}`,
    answers: () =>
      execFileSync(
        'dig',
        ['+short', '+time=1', '+tries=1', '-p', String(port), '@127.0.0.1', opts.zones[0].name, 'SOA'],
        { encoding: 'utf8', stdio: 'pipe' },
      ).trim() !== '',
  });
  /** What the server answers for a name, asked directly (dig +short). */
  const dig = (name, type) =>
    execFileSync('dig', ['+short', '+tcp', '-p', String(port), '@127.0.0.1', name, type], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
  /** A signed zone's key-signing key as a DNSKEY record (a validating resolver's trust anchor); waits until the zone is signed. */
  const ksk = async (zone) => {
    for (let i = 0; i < 300; i++) {
      const keys = execFileSync(
        'dig',
        ['+noall', '+answer', '+tcp', '-p', String(port), '@127.0.0.1', zone, 'DNSKEY'],
        { encoding: 'utf8' },
      )
        .split('\n')
        .filter((l) => /\sDNSKEY\s+257\s/.test(l));
      const signed = execFileSync('dig', ['+dnssec', '+short', '+tcp', '-p', String(port), '@127.0.0.1', zone, 'SOA'], {
        encoding: 'utf8',
      }).includes('SOA ');
      if (keys.length > 0 && signed) return keys[0].replace(/\s+/g, ' ').replace(/ \d+ IN DNSKEY /, ' DNSKEY ');
      await delay(100);
    }
    throw new Error(`BIND did not sign ${zone} within 30s; see ${join(dir, 'named.log')}`);
  };
  return { address: `127.0.0.1:${port}`, port, dir, dig, ksk, stop };
}
