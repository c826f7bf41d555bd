// The Postfix + Dovecot containers of the tests and the demo, and a client's view of their TLS.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const ROOT = join(import.meta.dirname, '..', '..');
export const MAIL_IMAGE = process.env.MAILSTACK_IMAGE ?? 'mailcerts-mailstack:bookworm-3';
/** Postfix 3.10 and Dovecot 2.4, from Debian trixie (scripts/mail-image.sh trixie). */
export const MAIL_IMAGE_TRIXIE = process.env.MAILSTACK_TRIXIE_IMAGE ?? 'mailcerts-mailstack:trixie-1';
const CONF = join(ROOT, 'docker', 'mailstack');

/** The stack's TLS endpoints (docker/mailstack configs), all on 127.0.0.1: these ports, unless useMailPorts() moved them. */
export const ENDPOINTS = {
  smtp: { port: 10025, starttls: 'smtp' },
  submission: { port: 10587, starttls: 'smtp' },
  smtps: { port: 10465 },
  imap: { port: 10143, starttls: 'imap' },
  imaps: { port: 10993 },
  pop3: { port: 10110, starttls: 'pop3' },
  pop3s: { port: 10995 },
  sieve: { port: 14190, starttls: 'sieve' },
};
/** The ports as the files in docker/mailstack have them. */
const CONFIG_PORTS = Object.fromEntries(Object.entries(ENDPOINTS).map(([k, e]) => [k, e.port]));

/** mailcerts.verify labels for the stack's containers (host networking: the host part stays empty). */
export const VERIFY_LABELS = { postfix: '', dovecot: '' };
function setVerifyLabels() {
  const list = (names) => names.map((n) => `${n}://:${ENDPOINTS[n].port}`).join(',');
  VERIFY_LABELS.postfix = list(['smtp', 'submission', 'smtps']);
  VERIFY_LABELS.dovecot = list(['imap', 'imaps', 'pop3', 'pop3s', 'sieve']);
}
setVerifyLabels();

/**
 * Moves the stack's endpoints to other ports (one per endpoint, in ENDPOINTS order): containers
 * started afterwards listen there (their configs are written with these ports), and ENDPOINTS,
 * VERIFY_LABELS and servedCertificate() follow. The tests use free ports, so that runs side by
 * side do not collide; the demo keeps the ports of the files.
 */
export function useMailPorts(ports) {
  const names = Object.keys(ENDPOINTS);
  if (ports.length !== names.length || new Set(ports).size !== names.length)
    throw new Error(`useMailPorts needs ${names.length} distinct ports`);
  for (const [i, n] of names.entries()) ENDPOINTS[n].port = ports[i];
  setVerifyLabels();
}

/** A file of docker/mailstack (e.g. "postfix/master.cf"), its listening ports replaced by those of ENDPOINTS. */
export function mailConfig(file) {
  const moved = new Map(Object.entries(CONFIG_PORTS).map(([n, p]) => [String(p), String(ENDPOINTS[n].port)]));
  return readFileSync(join(CONF, file), 'utf8').replace(/(?<![0-9])1[04][0-9]{3}(?![0-9])/g, (p) => moved.get(p) ?? p);
}

/** The path of that file to mount: docker/mailstack's own, or a copy with the ports of ENDPOINTS. */
export function mailConfigFile(file) {
  if (Object.entries(CONFIG_PORTS).every(([n, p]) => ENDPOINTS[n].port === p)) return join(CONF, file);
  // Named by the SMTP port, which no other process holds while this one lives (the global setup clears the directory).
  const dir = join(ROOT, '.test-work', 'integration', 'mailstack-config', String(ENDPOINTS.smtp.port));
  const path = join(dir, file.replace(/\//g, '_'));
  const text = mailConfig(file);
  // Written once, whole: a container already started may be reading it (never truncated under it).
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return path;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
  return path;
}

export async function docker(...args) {
  const { stdout } = await run('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** Removes every container carrying the marker label (tests: TEST_MARKER, demo: mailcerts.demo=1). */
export async function removeContainers(marker = TEST_MARKER) {
  const ids = (await docker('ps', '-aq', '--filter', `label=${marker}`)).split('\n').filter(Boolean);
  if (ids.length) await docker('rm', '-f', ...ids);
}

/**
 * One test run (the vitest process, set in the environment its workers inherit): its containers
 * carry mailcerts.test.run=TEST_RUN and are named and grouped (compose project) by it, so that
 * runs side by side never touch each other's containers. It begins with the run's pid.
 */
process.env.MAILCERTS_TEST_RUN ||= `${process.pid}-${randomBytes(3).toString('hex')}`;
export const TEST_RUN = process.env.MAILCERTS_TEST_RUN;
export const TEST_MARKER = `mailcerts.test.run=${TEST_RUN}`;
/** The compose project the tests' containers belong to, as if started by docker compose (DOCKER_SCOPE). */
export const TEST_PROJECT = `mailcerts-test-${TEST_RUN}`;

/** Removes the containers of test runs that are gone (their pid is not alive): what a killed run left. */
export async function removeStaleTestContainers() {
  const lines = (
    await docker(
      'ps',
      '-a',
      '--filter',
      'label=mailcerts.test.run',
      '--format',
      '{{.ID}} {{.Label "mailcerts.test.run"}}',
    )
  )
    .split('\n')
    .filter(Boolean);
  const alive = (pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return err.code === 'EPERM';
    }
  };
  const stale = lines
    .map((l) => l.split(' '))
    .filter(([, run = '']) => {
      const pid = Number(/^(\d+)-/.exec(run)?.[1] ?? 0);
      return run !== TEST_RUN && pid > 0 && !alive(pid);
    })
    .map(([id]) => id);
  if (stale.length) await docker('rm', '-f', ...stale);
}

export async function startContainer(o) {
  const name = `${o.prefix ?? `mailcerts-test-${TEST_RUN}`}-${o.name}`;
  const project = o.project ?? TEST_PROJECT;
  const markers = o.marker ? [o.marker] : ['mailcerts.test=1', TEST_MARKER];
  const args = [
    'run',
    '-d',
    '--name',
    name,
    ...markers.flatMap((m) => ['--label', m]),
    '--label',
    `com.docker.compose.project=${project}`,
    '--network',
    o.network ?? 'host',
    '--hostname',
    'mail',
    '-v',
    `${o.certsDir}:/etc/ssl/mail:ro`,
  ];
  if (o.reload) args.push('--label', `mailcerts.reload=${o.reload}`);
  for (const [k, v] of Object.entries(o.labels ?? {})) args.push('--label', `${k}=${v}`);
  for (const v of o.volumes ?? []) args.push('-v', v);
  const image = o.image ?? MAIL_IMAGE;
  if (o.role === 'postfix') {
    args.push(
      '-v',
      `${o.mainCf ?? join(CONF, 'postfix', 'main.cf')}:/etc/postfix/main.cf:ro`,
      '-v',
      `${o.masterCf ?? mailConfigFile('postfix/master.cf')}:/etc/postfix/master.cf:ro`,
    );
    args.push(image, ...(o.command ?? ['postfix', 'start-fg']));
  } else {
    const conf =
      o.dovecotConf ?? mailConfigFile(image === MAIL_IMAGE_TRIXIE ? 'dovecot24/dovecot.conf' : 'dovecot/dovecot.conf');
    args.push('-v', `${conf}:/etc/dovecot/dovecot.conf:ro`, image, ...(o.command ?? ['dovecot', '-F']));
  }
  await docker(...args);
  return name;
}

export async function waitForPort(port, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs / 1000}s`);
    await delay(100);
  }
}

/** Postfix and Dovecot on host networking, reading certsDir, labelled for reload. */
export async function startMailStack(certsDir, opts = {}) {
  const postfix = await startContainer({
    ...opts,
    name: 'postfix',
    role: 'postfix',
    certsDir,
    reload: 'postfix',
    mainCf: opts.mainCf,
    masterCf: opts.masterCf,
    labels: { 'mailcerts.verify': VERIFY_LABELS.postfix, ...opts.labels, ...opts.postfixLabels },
  });
  const dovecot = await startContainer({
    ...opts,
    name: 'dovecot',
    role: 'dovecot',
    certsDir,
    reload: 'dovecot',
    labels: { 'mailcerts.verify': VERIFY_LABELS.dovecot, ...opts.labels },
  });
  for (const e of Object.values(ENDPOINTS)) await waitForPort(e.port);
  return { postfix, dovecot };
}

/**
 * The leaf certificate an endpoint serves, read with openssl s_client as a mail admin would;
 * servername null: no SNI. `opts.only`: a client that offers only 'ecdsa' or only 'rsa' signatures
 * (TLS 1.3); with `opts.tls12`, TLS 1.2 with only that algorithm's cipher suites.
 */
export async function servedCertificate(endpoint, servername = 'mail.example.test', opts = {}) {
  const e = ENDPOINTS[endpoint];
  const args = [
    's_client',
    '-connect',
    `127.0.0.1:${e.port}`,
    ...(servername === null ? ['-noservername'] : ['-servername', servername]),
  ];
  if (opts.only && opts.tls12) args.push('-tls1_2', '-cipher', opts.only === 'rsa' ? 'aRSA' : 'aECDSA');
  else if (opts.only)
    args.push('-sigalgs', opts.only === 'rsa' ? 'RSA-PSS+SHA256:RSA+SHA256' : 'ECDSA+SHA256:ECDSA+SHA384');
  if (e.starttls) args.push('-starttls', e.starttls);
  const child = execFile('openssl', args, { timeout: 15_000 });
  child.stdin?.end();
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  await new Promise((resolve) => child.on('close', resolve));
  const pem = out.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)?.[0];
  if (!pem)
    throw new Error(`no certificate from ${endpoint} (127.0.0.1:${e.port}); openssl said:\n${out.slice(0, 2000)}`);
  return `${pem}\n`;
}

/** A self-signed certificate as plain files, like the one a mail server starts with before mailcerts. */
export async function seedSelfSigned(dir, cn = 'seed.invalid') {
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(dir, 'privkey.pem'),
    '-out',
    join(dir, 'fullchain.pem'),
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
  ]);
  writeFileSync(
    join(dir, 'privkey-fullchain.pem'),
    readFileSync(join(dir, 'privkey.pem'), 'utf8') + readFileSync(join(dir, 'fullchain.pem'), 'utf8'),
  );
}

export async function containerLogs(name) {
  const { stdout, stderr } = await run('docker', ['logs', name], { maxBuffer: 16 * 1024 * 1024 });
  return stdout + stderr;
}

/** Waits until the container's log shows the pattern (e.g. Postfix's "daemon started"). */
export async function waitForLog(name, pattern, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  while (!pattern.test(await containerLogs(name))) {
    if (Date.now() > until)
      throw new Error(
        `${name} did not log ${pattern} within ${timeoutMs / 1000}s:\n${(await containerLogs(name)).slice(-2000)}`,
      );
    await delay(100);
  }
}
