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

/** A zone this BIND serves as a secondary: it transfers from `primary` at start, then only when rndc() says so. */
const secondaryZone = (dir, host, z) =>
  `zone "${z.name}" { type secondary; primaries { ${z.secondaryOf.replace(':', ' port ')}; }; transfer-source ${host}; file "${join(dir, `${z.name}.secondary`)}"; };`;

/**
 * Options beyond the zones and keys (bind.d.mts): `address` to listen on (127.0.0.1); a zone's
 * `nameServers` (its NS records and their addresses; default ns1 at 127.0.0.1), `refresh` (the
 * SOA refresh its secondaries keep, in seconds), `transferTo` (addresses allowed to transfer it),
 * or `secondaryOf` (this BIND is a secondary of that host:port); `rndcPort` for rndc(); `querylog`
 * to log every query (named.log).
 */
export async function startBind(opts) {
  const problem = bindMissing();
  if (problem) throw new Error(problem);
  const { dir, port } = opts;
  const host = opts.address ?? '127.0.0.1';
  mkdirSync(dir, { recursive: true });
  // rndc's key and channel only when rndc() is to be used: tsig-keygen is a process of its own.
  const rndcKey = opts.rndcPort ? `key "rndc-key" { algorithm hmac-sha256; secret "${tsigKeygen('rndc-key')}"; };` : '';
  if (rndcKey) writeFileSync(join(dir, 'rndc.key'), `${rndcKey}\n`);
  const keys = opts.keys
    .map((k) => `key "${k.name}" { algorithm ${k.algorithm ?? 'hmac-sha256'}; secret "${k.secret}"; };`)
    .join('\n');
  const zones = opts.zones
    .map((z) => {
      if (z.secondaryOf) return secondaryZone(dir, host, z);
      const file = join(dir, `${z.name}.zone`);
      const ns = z.nameServers ?? [{ name: 'ns1', address: '127.0.0.1' }];
      writeFileSync(
        file,
        [
          '$TTL 60',
          // Negative answers kept 2 s: tests add names.
          `@ IN SOA ${ns[0].name}.${z.name}. hostmaster.${z.name}. 1 ${z.refresh ?? 60} 60 ${Math.max(600, (z.refresh ?? 0) * 2)} 2`,
          ...ns.flatMap((n) => [`@ IN NS ${n.name}.${z.name}.`, `${n.name} IN A ${n.address}`]),
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
      const transfer = z.transferTo ? ` allow-transfer { ${z.transferTo.map((a) => `${a};`).join(' ')} };` : '';
      return `zone "${z.name}" { type primary; file "${file}"; ${update}${signing}${transfer} };`;
    })
    .join('\n');
  writeFileSync(
    join(dir, 'named.conf'),
    `
options {
  directory "${dir}";
  pid-file "${join(dir, 'named.pid')}";
  listen-on port ${port} { ${host}; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;${opts.querylog ? '\n  querylog yes;' : ''}
  notify no;
  allow-transfer { none; };
};
${keys}
${rndcKey}
${opts.rndcPort ? `controls { inet 127.0.0.1 port ${opts.rndcPort} allow { 127.0.0.1; } keys { "rndc-key"; }; };` : 'controls { };'}
${zones}
`,
  );
  // -g: foreground, logs to stderr; no -u: the test runs it as the user it is.
  const { stop } = await startServerProcess({
    bin: 'named',
    args: ['-g', '-c', join(dir, 'named.conf')],
    logFile: join(dir, 'named.log'),
    what: `named on ${host}:${port}`,
    answers: () =>
      execFileSync(
        'dig',
        ['+short', '+time=1', '+tries=1', '-p', String(port), `@${host}`, opts.zones[0].name, 'SOA'],
        { encoding: 'utf8', stdio: 'pipe' },
      ).trim() !== '',
  });
  /** What the server answers for a name, asked directly (dig +short). */
  const dig = (name, type) =>
    execFileSync('dig', ['+short', '+tcp', '-p', String(port), `@${host}`, name, type], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
  /** A signed zone's key-signing key as a DNSKEY record (a validating resolver's trust anchor); waits until the zone is signed. */
  const ksk = async (zone) => {
    for (let i = 0; i < 300; i++) {
      const keys = execFileSync('dig', ['+noall', '+answer', '+tcp', '-p', String(port), `@${host}`, zone, 'DNSKEY'], {
        encoding: 'utf8',
      })
        .split('\n')
        .filter((l) => /\sDNSKEY\s+257\s/.test(l));
      const signed = execFileSync('dig', ['+dnssec', '+short', '+tcp', '-p', String(port), `@${host}`, zone, 'SOA'], {
        encoding: 'utf8',
      }).includes('SOA ');
      if (keys.length > 0 && signed) return keys[0].replace(/\s+/g, ' ').replace(/ \d+ IN DNSKEY /, ' DNSKEY ');
      await delay(100);
    }
    throw new Error(`BIND did not sign ${zone} within 30s; see ${join(dir, 'named.log')}`);
  };
  /** Runs rndc against this named (with rndcPort), e.g. rndc('retransfer', zone). */
  const rndc = (...args) =>
    execFileSync('rndc', ['-k', join(dir, 'rndc.key'), '-s', '127.0.0.1', '-p', String(opts.rndcPort), ...args], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
  return { address: `${host}:${port}`, port, dir, dig, ksk, rndc, stop };
}
