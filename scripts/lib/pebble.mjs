// Starts a real ACME CA on loopback: Debian's pebble with pebble-challtestsrv as its DNS server
// (every name resolves to 127.0.0.1 / ::1). Used by the tests and by `npm run demo`.
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

function which(bin) {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, bin))) return join(dir, bin);
  return undefined;
}

export function pebbleMissing() {
  const missing = ['pebble', 'pebble-challtestsrv', 'openssl'].filter((b) => !which(b));
  return missing.length
    ? `${missing.join(', ')} not found on PATH: run "bash scripts/setup.sh" (it installs Debian's pebble package)`
    : undefined;
}

/** A CA and a server certificate for Pebble's own HTTPS listener; clients trust caFile (NODE_EXTRA_CA_CERTS). */
function makeTlsFiles(dir, host) {
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '30',
    '-subj',
    '/CN=mailcerts test CA for Pebble',
  );
  const extra = host && host !== '127.0.0.1' ? `,IP:${host}` : '';
  writeFileSync(
    join(dir, 'san.ext'),
    `subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1${extra}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  ssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=localhost',
  );
  ssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '30',
    '-extfile',
    'san.ext',
  );
}

function httpsGet(url, ca) {
  return new Promise((resolve, reject) => {
    const req = get(url, { ca, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/**
 * netns: run the CA inside that network namespace (ip netns), listening on `host` there.
 * @param {{ dir: string, netns?: string, host?: string, dnsServer?: string, acmePort?: number, mgmtPort?: number, httpPort?: number, dnsPort?: number, dnsMgmtPort?: number, env?: Record<string,string>, bin?: string, pebbleConfig?: Record<string, unknown> }} opts
 */
export async function startPebble(opts) {
  const problem = pebbleMissing();
  if (problem) throw new Error(problem);
  const { dir } = opts;
  const acmePort = opts.acmePort ?? 14000;
  const mgmtPort = opts.mgmtPort ?? 15000;
  const httpPort = opts.httpPort ?? 5002;
  const dnsPort = opts.dnsPort ?? 8053;
  const dnsMgmtPort = opts.dnsMgmtPort ?? 8055;
  mkdirSync(dir, { recursive: true });
  const host = opts.host ?? '127.0.0.1';
  if (!existsSync(join(dir, 'server.pem'))) makeTlsFiles(dir, host); // a restarted CA keeps its TLS certificate
  writeFileSync(
    join(dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `${host}:${acmePort}`,
        managementListenAddress: `${host}:${mgmtPort}`,
        certificate: join(dir, 'server.pem'),
        privateKey: join(dir, 'server.key'),
        httpPort,
        tlsPort: 5001,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...opts.pebbleConfig,
      },
    }),
  );
  const log = createWriteStream(join(dir, 'pebble.log'));
  const procs = [];
  const start = (bin, args, env = {}) => {
    const [file, argv] = opts.netns ? ['nsenter', [`--net=/run/netns/${opts.netns}`, bin, ...args]] : [bin, args];
    const p = spawn(file, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.pipe(log, { end: false });
    p.stderr.pipe(log, { end: false });
    procs.push(p);
    return p;
  };
  // With dnsServer (a real name server, such as BIND), the CA resolves through it instead of challtestsrv.
  if (!opts.dnsServer)
    start('pebble-challtestsrv', [
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-management',
      `127.0.0.1:${dnsMgmtPort}`,
    ]);
  start(
    opts.bin ?? 'pebble',
    ['-config', join(dir, 'pebble.json'), '-dnsserver', opts.dnsServer ?? `127.0.0.1:${dnsPort}`],
    {
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: '0',
      PEBBLE_AUTHZREUSE: '0',
      ...opts.env,
    },
  );
  const stop = async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => (p.exitCode === null ? new Promise((r) => p.once('exit', r)) : undefined)));
    log.end();
  };
  const caPem = readFileSync(join(dir, 'ca.pem'));
  const directoryUrl = `https://${host}:${acmePort}/dir`;
  // Inside a namespace, only a process in it can ask: a TCP connect from there tells that it listens.
  const answers = opts.netns
    ? () =>
        new Promise((resolve) =>
          spawn('nsenter', [`--net=/run/netns/${opts.netns}`, 'bash', '-c', `exec 3<>/dev/tcp/${host}/${acmePort}`], {
            stdio: 'ignore',
          }).on('exit', (code) => resolve(code === 0)),
        )
    : async () => (await httpsGet(directoryUrl, caPem)).status === 200;
  for (let i = 0; ; i++) {
    const exited = procs.find((p) => p.exitCode !== null);
    if (exited) {
      await stop();
      throw new Error(`${exited.spawnfile} exited at start; see ${join(dir, 'pebble.log')} (a port may be in use)`);
    }
    try {
      if (await answers()) break;
    } catch {
      /* not up yet */
    }
    if (i > 100) {
      await stop();
      throw new Error(`Pebble did not answer at ${directoryUrl} within 10s; see ${join(dir, 'pebble.log')}`);
    }
    await delay(100);
  }
  /** The PEM of Pebble's root for the issued chains. */
  const root = async () => (await httpsGet(`https://${host}:${mgmtPort}/roots/0`, caPem)).body;
  return { directoryUrl, caFile: join(dir, 'ca.pem'), httpPort, dnsPort, dnsMgmtPort, mgmtPort, root, stop };
}
