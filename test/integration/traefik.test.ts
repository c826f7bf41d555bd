import { X509Certificate } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { execFile } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type CliRun, logsWith, pebbleEnv, runCli } from '../helpers/cli.js';
import {
  removeTestContainers,
  seedSelfSigned,
  servedCertificate,
  startMailStack,
  TEST_MARKER,
  TEST_PROJECT,
} from '../helpers/mailstack.js';
import { makeChain, makeSelfSigned } from '../helpers/pki.js';

/**
 * Traefik's acme.json as a certificate source. Traefik itself cannot run here, so the files are
 * built the way Traefik v2/v3 writes them, from certificates Pebble issued.
 */
const work = join(inject('workDir'), 'traefik');
const ACCOUNT_SECRET = 'ACCOUNT-KEY-MARKER-never-to-be-copied-0123456789';
interface Pair {
  fullchain: string;
  key: string;
  serial: string;
}
const pairs: Record<string, Pair> = {};

const b64 = (s: string) => Buffer.from(s).toString('base64');
const entry = (p: Pick<Pair, 'fullchain' | 'key'>, main: string, sans: string[] = []) => ({
  domain: { main, sans },
  certificate: b64(p.fullchain),
  key: b64(p.key),
  Store: 'default',
});
/** An acme.json as Traefik v2/v3 writes it: per resolver, the account and the certificates. */
function acmeJson(resolvers: Record<string, unknown[]>): string {
  return `${JSON.stringify(
    Object.fromEntries(
      Object.entries(resolvers).map(([name, certs]) => [
        name,
        {
          Account: {
            Email: 'admin@tr.test',
            Registration: { body: { status: 'valid' }, uri: 'https://ca/acct/1' },
            PrivateKey: ACCOUNT_SECRET,
            KeyType: '4096',
          },
          Certificates: certs,
        },
      ]),
    ),
    null,
    2,
  )}\n`;
}

/** A certificate from Pebble for these names, through mailcerts itself (HTTP-01). */
async function issue(label: string, domains: string): Promise<Pair> {
  const dir = join(work, 'issued', label);
  const r = await runCli(['run', '--once'], pebbleEnv(dir, { ACME_DOMAINS: domains, DOCKER_RELOAD: 'false' }));
  if (r.code !== 0) throw new Error(`issuing ${label} failed: ${r.stdout}`);
  const fullchain = readFileSync(join(dir, 'certs', 'fullchain.pem'), 'utf8');
  return {
    fullchain,
    key: readFileSync(join(dir, 'certs', 'privkey.pem'), 'utf8'),
    serial: new X509Certificate(fullchain).serialNumber,
  };
}

const file = join(work, 'acme.json');
const certsDir = join(work, 'certs');
/** The roots mailcerts trusts here (NODE_EXTRA_CA_CERTS): Pebble's, and those of the test chains made below. */
const roots = join(work, 'roots.pem');
const run = promisify(execFile);
const env = (extra: Record<string, string> = {}) => ({
  ACME_DOMAINS: 'mail.tr.test,smtp.tr.test',
  TRAEFIK_ACME_JSON: file,
  CERTS_DIR: certsDir,
  STATE_DIR: join(work, 'state'),
  DOCKER_RELOAD: 'false',
  DOCKER_SCOPE: TEST_PROJECT,
  NODE_EXTRA_CA_CERTS: roots,
  ...extra,
});
const servedSerial = (dir = certsDir) => new X509Certificate(readFileSync(join(dir, 'cert.pem'))).serialNumber;

function noAccountKey(r: CliRun, stateDir: string) {
  expect(r.stdout.includes(ACCOUNT_SECRET) || r.stderr.includes(ACCOUNT_SECRET), 'account key in output').toBe(false);
  for (const e of readdirSync(stateDir, { recursive: true, withFileTypes: true }).filter((x) => x.isFile())) {
    expect(readFileSync(join(e.parentPath, e.name), 'utf8').includes(ACCOUNT_SECRET), e.name).toBe(false);
  }
}

beforeAll(async () => {
  mkdirSync(certsDir, { recursive: true });
  // mailcerts refuses an acme.json below a directory that others may write (but for a root-owned
  // sticky one, /tmp): the test's own are not.
  for (let d = work; dirname(d) !== d; d = dirname(d)) {
    const st = lstatSync(d);
    if (st.uid !== 0 || (st.mode & 0o022 && !(st.mode & 0o1000)) || st.isSymbolicLink())
      throw new Error(
        `${d} must be a directory owned by root and writable by it only (mode ${(st.mode & 0o777).toString(8)}, uid ${st.uid}): mailcerts refuses an acme.json below it`,
      );
  }
  pairs.older = await issue('older', 'mail.tr.test,smtp.tr.test');
  await delay(1_100); // a later notAfter, to the second
  pairs.newer = await issue('newer', 'mail.tr.test,smtp.tr.test');
  pairs.other = await issue('other', 'smtp.tr.test');
  const wild = makeChain(['*.tr.test', 'tr.test'], { days: 20 });
  pairs.wild = { fullchain: wild.fullchain, key: wild.key, serial: new X509Certificate(wild.leaf).serialNumber };
  const expired = makeChain(['mail.tr.test', 'smtp.tr.test', 'late.tr.test'], { days: 0 });
  pairs.expired = {
    fullchain: expired.fullchain,
    key: expired.key,
    serial: new X509Certificate(expired.leaf).serialNumber,
  };
  writeFileSync(roots, [inject('pebble').root, wild.root, expired.root].join('\n'));
  await delay(1_100); // days 0: expired a second after it was made
});
afterAll(async () => {
  await removeTestContainers();
});

describe("certificates from Traefik's acme.json", () => {
  it('of several entries for the names, the valid one that expires last wins; broken entries are named and skipped; Postfix and Dovecot serve it', async () => {
    writeFileSync(
      file,
      acmeJson({
        le: [
          entry(pairs.older!, 'mail.tr.test', ['smtp.tr.test']),
          entry(pairs.expired!, 'mail.tr.test', ['smtp.tr.test', 'late.tr.test']),
          {
            domain: { main: 'mail.tr.test' },
            certificate: 'not base64!',
            key: b64(pairs.older!.key),
            Store: 'default',
          },
          entry({ fullchain: pairs.newer!.fullchain, key: pairs.other!.key }, 'mail.tr.test', ['smtp.tr.test']),
        ],
        other: [entry(pairs.newer!, 'mail.tr.test', ['smtp.tr.test']), entry(pairs.wild!, '*.tr.test', ['tr.test'])],
      }),
    );
    await seedSelfSigned(certsDir);
    const stack = await startMailStack(certsDir);
    const r = await runCli(['run', '--once'], env({ DOCKER_RELOAD: 'true' }));
    expect(
      r.code,
      r.stdout
        .split('\n')
        .filter((l) => /"level":"(warn|error)"/.test(l))
        .join('\n'),
    ).toBe(0);
    expect(servedSerial()).toBe(pairs.newer!.serial);
    expect(logsWith(r, { msg: 'published the certificate from Traefik' })).toHaveLength(1);
    expect(new X509Certificate(await servedCertificate('smtp', 'mail.tr.test')).serialNumber).toBe(pairs.newer!.serial);
    expect(new X509Certificate(await servedCertificate('imaps', 'smtp.tr.test')).serialNumber).toBe(
      pairs.newer!.serial,
    );
    expect(logsWith(r, { container: stack.postfix, msg: 'serves the published certificate' })).toHaveLength(1);
    const skipped = logsWith(r, { msg: "an entry of Traefik's acme.json was not used" }).map((l) => String(l.skipped));
    expect(skipped).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^entry 1 of resolver "le" expired on /),
        'entry 2 of resolver "le": its certificate is not base64',
        'entry 3 of resolver "le": the private key does not match the certificate',
      ]),
    );
    noAccountKey(r, join(work, 'state'));
    const status = JSON.parse((await runCli(['status', '--json'], env())).stdout) as {
      source: string;
      nextReason: string;
    }[];
    expect(status[0]).toMatchObject({
      source: 'traefik',
      nextReason: `from Traefik's acme.json (${file}): Traefik renews it, mailcerts publishes each new one`,
    });
    await removeTestContainers();
  });

  it('TRAEFIK_RESOLVER takes one resolver only; a wildcard entry covers a name one label below it', async () => {
    const onlyLe = await runCli(
      ['run', '--once'],
      env({ TRAEFIK_RESOLVER: 'le', CERTS_DIR: join(work, 'le-certs'), STATE_DIR: join(work, 'le-state') }),
    );
    expect(onlyLe.code).toBe(0);
    expect(servedSerial(join(work, 'le-certs'))).toBe(pairs.older!.serial);
    const wild = await runCli(
      ['run', '--once'],
      env({ ACME_DOMAINS: 'imap.tr.test', CERTS_DIR: join(work, 'wild-certs'), STATE_DIR: join(work, 'wild-state') }),
    );
    expect(wild.code, wild.stdout).toBe(0);
    expect(servedSerial(join(work, 'wild-certs'))).toBe(pairs.wild!.serial);
    const deep = await runCli(
      ['run', '--once'],
      env({ ACME_DOMAINS: 'a.b.tr.test', CERTS_DIR: join(work, 'deep-certs'), STATE_DIR: join(work, 'deep-state') }),
    );
    expect(deep.code).toBe(1);
    expect(deep.logs.find((l) => l.msg === "no usable certificate in Traefik's acme.json")?.error).toBe(
      `Traefik's acme.json at ${file}: no entry covers a.b.tr.test (Traefik requests a certificate only for the hosts a router uses: add a router with Host(\`a.b.tr.test\`), or a domains list to its TLS options); nothing was published, the current certificate is kept`,
    );
    expect(existsSync(join(work, 'deep-certs', 'cert.pem'))).toBe(false);
    const unknown = await runCli(
      ['run', '--once'],
      env({ TRAEFIK_RESOLVER: 'nope', CERTS_DIR: join(work, 'nope-certs'), STATE_DIR: join(work, 'nope-state') }),
    );
    expect(unknown.logs.find((l) => l.msg === "no usable certificate in Traefik's acme.json")?.error).toBe(
      `${file} has no resolver "nope" (TRAEFIK_RESOLVER); it has le, other`,
    );
  });

  it('only an expired entry, a v1 file, a missing file: reported, nothing published, the current certificate kept', async () => {
    const before = servedSerial();
    const cases: [string | undefined, RegExp][] = [
      [
        acmeJson({ le: [entry(pairs.expired!, 'mail.tr.test', ['smtp.tr.test'])] }),
        /no usable entry covers all of mail\.tr\.test, smtp\.tr\.test; not usable: entry 0 of resolver "le" expired on /,
      ],
      [
        JSON.stringify({
          Account: { Email: 'a@tr.test', PrivateKey: ACCOUNT_SECRET },
          Certificates: [
            { Domain: { Main: 'mail.tr.test' }, Certificate: b64(pairs.newer!.fullchain), Key: b64(pairs.newer!.key) },
          ],
          HTTPChallenges: {},
        }),
        /is a Traefik v1 acme\.json, which mailcerts does not read/,
      ],
      [
        undefined,
        /cannot read Traefik's acme\.json at .* \(ENOENT\); mount it read-only there, or fix TRAEFIK_ACME_JSON/,
      ],
    ];
    for (const [text, error] of cases) {
      const path = text === undefined ? join(work, 'missing.json') : join(work, 'case.json');
      if (text !== undefined) writeFileSync(path, text);
      const r = await runCli(['run', '--once'], env({ TRAEFIK_ACME_JSON: path }));
      expect(r.code).toBe(1);
      expect(String(r.logs.find((l) => l.msg === "no usable certificate in Traefik's acme.json")?.error)).toMatch(
        error,
      );
      expect(servedSerial()).toBe(before);
      noAccountKey(r, join(work, 'state'));
    }
    // Counted as failures, so that a lasting one is alerted; the file readable again clears them.
    const failing = JSON.parse((await runCli(['status', '--json'], env())).stdout) as {
      failures: number;
      lastError?: string;
    }[];
    expect(failing[0]!.failures).toBe(3);
    const back = await runCli(['run', '--once'], env());
    expect(back.code, back.stdout).toBe(0);
    const rows = JSON.parse((await runCli(['status', '--json'], env())).stdout) as {
      failures: number;
      lastError?: string;
    }[];
    expect(rows[0]).toMatchObject({ failures: 0 });
    expect(rows[0]!.lastError).toBeUndefined();
  });

  it('the daemon watches the file: a rewrite in place seen half-written publishes nothing; the finished file is published once', async () => {
    writeFileSync(file, acmeJson({ le: [entry(pairs.older!, 'mail.tr.test', ['smtp.tr.test'])] }));
    const lines: Record<string, unknown>[] = [];
    let pid = 0;
    const running = runCli(
      ['run'],
      env({ STATE_DIR: join(work, 'daemon-state'), CERTS_DIR: join(work, 'daemon-certs') }),
      {
        onLine: (l, p) => {
          lines.push(l);
          pid = p;
        },
      },
    );
    const until = async (pred: (l: Record<string, unknown>) => boolean, ms = 20_000) => {
      const end = Date.now() + ms;
      while (!lines.some(pred)) {
        if (Date.now() > end) throw new Error(`timed out; saw: ${lines.map((l) => l.msg).join(' | ')}`);
        await delay(50);
      }
    };
    await until((l) => l.msg === 'waiting for the next pass');
    expect(servedSerial(join(work, 'daemon-certs'))).toBe(pairs.older!.serial);
    // Traefik rewrites the file in place: first the half of it, then the rest a moment later.
    const full = acmeJson({
      le: [
        entry(pairs.older!, 'mail.tr.test', ['smtp.tr.test']),
        entry(pairs.newer!, 'mail.tr.test', ['smtp.tr.test']),
      ],
    });
    writeFileSync(file, full.slice(0, Math.floor(full.length / 2)));
    // The watcher fires on the half file and the pass starts reading it; the rest comes meanwhile.
    await until((l) => l.msg === "Traefik's acme.json changed");
    await delay(1_000);
    writeFileSync(file, full);
    await until((l) => l.msg === 'published the certificate from Traefik' && l.serial === pairs.newer!.serial);
    await delay(2_500); // a late second publish would show here
    process.kill(pid, 'SIGTERM');
    const r = await running;
    expect(r.code).toBe(0);
    expect(logsWith(r, { msg: 'published the certificate from Traefik' }).map((l) => l.serial)).toEqual([
      pairs.older!.serial,
      pairs.newer!.serial,
    ]);
    expect(logsWith(r, { msg: "no usable certificate in Traefik's acme.json" }).map((l) => l.error)).toEqual([]);
    expect(
      logsWith(r, { msg: "Traefik's acme.json was being rewritten; read again until it settled" }).length,
    ).toBeGreaterThan(0);
    expect(servedSerial(join(work, 'daemon-certs'))).toBe(pairs.newer!.serial);
    noAccountKey(r, join(work, 'daemon-state'));
  });
});

describe('what an acme.json and its entries must be before anything in it is published', () => {
  const refusals = (r: CliRun) =>
    r.logs.filter((l) => l.msg === "no usable certificate in Traefik's acme.json").map((l) => String(l.error));
  const KEPT = '; nothing was published, the current certificate is kept';
  /** A good acme.json (root's, 0600, as Traefik writes it) in its own directory under work/files. */
  const place = (name: string) => {
    const d = join(work, 'files', name);
    mkdirSync(d, { recursive: true });
    const f = join(d, 'acme.json');
    writeFileSync(f, acmeJson({ le: [entry(pairs.newer!, 'mail.tr.test', ['smtp.tr.test'])] }), { mode: 0o600 });
    return f;
  };

  it("entries no trusted CA issued (a self-signed 100-year certificate, a chain to an unknown root) are refused with the reason, nothing is published; TRAEFIK_VERIFY_CHAIN=false takes a private CA's", async () => {
    const before = servedSerial();
    const planted = makeSelfSigned(['mail.tr.test', 'smtp.tr.test'], 36_500);
    const privateCa = makeChain(['mail.tr.test', 'smtp.tr.test'], { days: 60 });
    const path = join(work, 'planted.json');
    writeFileSync(
      path,
      acmeJson({
        le: [
          entry({ fullchain: planted.cert, key: planted.key }, 'mail.tr.test', ['smtp.tr.test']),
          entry(privateCa, 'mail.tr.test', ['smtp.tr.test']),
        ],
      }),
    );
    const r = await runCli(['run', '--once'], env({ TRAEFIK_ACME_JSON: path }));
    expect(r.code).toBe(1);
    const hint = " (trust a private ACME CA's root with NODE_EXTRA_CA_CERTS, or set TRAEFIK_VERIFY_CHAIN=false)";
    expect(refusals(r)).toEqual([
      `Traefik's acme.json at ${path}: no usable entry covers all of mail.tr.test, smtp.tr.test; not usable: ` +
        `entry 0 of resolver "le": it is self-signed, issued by no CA${hint}; ` +
        `entry 1 of resolver "le": its chain does not lead to a trusted root (the last certificate is issued by "CN=Test Root", which is not trusted)${hint}${KEPT}`,
    ]);
    expect(logsWith(r, { step: 'publish' })).toHaveLength(0);
    expect(servedSerial()).toBe(before);

    // The opt-out, for a private ACME CA whose root is not given to mailcerts.
    const privateOnly = join(work, 'private-ca.json');
    writeFileSync(privateOnly, acmeJson({ le: [entry(privateCa, 'mail.tr.test', ['smtp.tr.test'])] }));
    const optOut = await runCli(
      ['run', '--once'],
      env({
        TRAEFIK_ACME_JSON: privateOnly,
        TRAEFIK_VERIFY_CHAIN: 'false',
        CERTS_DIR: join(work, 'private-certs'),
        STATE_DIR: join(work, 'private-state'),
      }),
    );
    expect(optOut.code, optOut.stdout).toBe(0);
    expect(servedSerial(join(work, 'private-certs'))).toBe(new X509Certificate(privateCa.leaf).serialNumber);
  });

  it('a file someone else could have written or swapped is refused unparsed: world-writable, a link, another owner, an open or linked directory above it; nothing is published', async () => {
    const before = servedSerial();
    const worldWritable = place('world-writable');
    chmodSync(worldWritable, 0o666);
    const linked = join(work, 'files', 'linked.json');
    symlinkSync(place('link-target'), linked);
    const foreign = place('foreign');
    chownSync(foreign, 12345, 12345);
    const openDir = dirname(place('open-dir'));
    chmodSync(openDir, 0o777);
    const linkedDir = join(work, 'files', 'linked-dir');
    symlinkSync(dirname(place('dir-target')), linkedDir);
    const cases: [string, string][] = [
      [
        worldWritable,
        `file ${worldWritable} is writable by group and others (mode 0666); anyone who can write it could put any certificate there: chmod go-w ${worldWritable}`,
      ],
      [linked, 'it is a symbolic link, which mailcerts does not follow; mount the file itself there'],
      [
        foreign,
        `file ${foreign} is owned by uid 12345, neither root nor mailcerts (uid 0); its owner could put any certificate there: make root its owner (chown root ${foreign})`,
      ],
      [
        join(openDir, 'acme.json'),
        `directory ${openDir} is writable by group and others (mode 0777); anyone who can write it could put any certificate there: chmod go-w ${openDir}`,
      ],
      [
        join(linkedDir, 'acme.json'),
        `${linkedDir} is a symbolic link, which mailcerts does not follow there; mount acme.json at a path without links`,
      ],
    ];
    for (const [path, why] of cases) {
      const r = await runCli(['run', '--once'], env({ TRAEFIK_ACME_JSON: path }));
      expect(r.code, path).toBe(1);
      expect(refusals(r), path).toEqual([`Traefik's acme.json at ${path} is refused: ${why}${KEPT}`]);
      expect(logsWith(r, { step: 'publish' }), path).toHaveLength(0);
      expect(servedSerial(), path).toBe(before);
    }
  });

  it("a file mailcerts may not read (root's, 0600, as Traefik writes it) says how to let uid 10001 read it: the image, as a user runs it", async () => {
    const path = place('root-only');
    // The image runs mailcerts as uid 10001: the file mounted read-only, as the README says, not yet made readable.
    const r = await run('docker', [
      'run',
      '--rm',
      '--network',
      'none',
      '--label',
      TEST_MARKER,
      '-v',
      `${dirname(path)}:/traefik:ro`,
      '-e',
      'ACME_DOMAINS=mail.tr.test,smtp.tr.test',
      '-e',
      'TRAEFIK_ACME_JSON=/traefik/acme.json',
      '-e',
      'DOCKER_RELOAD=false',
      '-e',
      'STATUS_ADDRESS=off',
      '-e',
      'LOG_FORMAT=json',
      inject('mailcertsImage'),
      'run',
      '--once',
    ]).then(
      () => ({ code: 0, out: '' }),
      (err: { code?: number; stdout?: string; stderr?: string }) => ({
        code: err.code ?? 1,
        out: `${err.stdout ?? ''}${err.stderr ?? ''}`,
      }),
    );
    expect(r.code, r.out).toBe(1);
    const logs = r.out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(
      logs.filter((l) => l.msg === "no usable certificate in Traefik's acme.json").map((l) => String(l.error)),
    ).toEqual([
      `cannot read Traefik's acme.json at /traefik/acme.json (EACCES); make it readable by uid 10001 (mailcerts), for example a read-only bind mount with an ACL (setfacl -m u:10001:r on the file, u:10001:x on the directories above it), or a copy job that copies it into a file mailcerts can read`,
    ]);
    expect(logs.filter((l) => l.msg === 'published')).toEqual([]);
  });
});
