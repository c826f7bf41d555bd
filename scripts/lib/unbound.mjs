// A validating resolver for the tests: Debian's unbound on a loopback address of its own, port 53
// (a libc resolver, as Postfix's, cannot be given another port), trusting one zone's key and
// asking BIND for that zone.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServerProcess } from './server-process.mjs';

export function unboundMissing() {
  try {
    execFileSync('sh', ['-c', 'command -v unbound || test -x /usr/sbin/unbound'], { stdio: 'pipe' });
    return undefined;
  } catch {
    return 'unbound is missing: run "bash scripts/setup.sh" (Debian package unbound)';
  }
}

/** @param {{ dir: string, address: string, zone: string, trustAnchor: string, stub: string }} opts */
export async function startUnbound(opts) {
  const problem = unboundMissing();
  if (problem) throw new Error(problem);
  mkdirSync(opts.dir, { recursive: true });
  const conf = join(opts.dir, 'unbound.conf');
  writeFileSync(
    conf,
    `server:
  interface: ${opts.address}
  port: 53
  do-ip6: no
  do-daemonize: no
  use-syslog: no
  logfile: ""
  verbosity: 1
  val-log-level: 2
  username: ""
  chroot: ""
  directory: "${opts.dir}"
  pidfile: "${join(opts.dir, 'unbound.pid')}"
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  # .test is a name unbound refuses by default (RFC 6761); here it is the test's own zone.
  local-zone: "test." nodefault
  trust-anchor: "${opts.trustAnchor}"
  module-config: "validator iterator"
  # A name the test adds must not stay "absent" in the cache for long.
  cache-max-negative-ttl: 1
stub-zone:
  name: "${opts.zone}"
  stub-addr: ${opts.stub.replace(':', '@')}
`,
  );
  execFileSync('unbound-checkconf', [conf], { stdio: 'pipe' });
  const { stop } = await startServerProcess({
    bin: 'unbound',
    args: ['-d', '-c', conf],
    logFile: join(opts.dir, 'unbound.log'),
    what: `unbound on ${opts.address}:53`,
    answers: () =>
      /status: NOERROR/.test(
        execFileSync('dig', ['+time=1', '+tries=1', `@${opts.address}`, opts.zone, 'SOA'], {
          encoding: 'utf8',
          stdio: 'pipe',
        }),
      ),
  });
  /** dig through the resolver: the answer's flags (ad when validated) and records. */
  const dig = (name, type) => execFileSync('dig', ['+dnssec', `@${opts.address}`, name, type], { encoding: 'utf8' });
  return { address: opts.address, dig, stop };
}
