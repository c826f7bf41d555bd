import { execFile, execFileSync } from 'node:child_process';
import { generateKeyPair, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inject } from 'vitest';

export interface TestChain {
  key: string;
  leaf: string;
  intermediate: string;
  root: string;
  fullchain: string;
  otherKey: string;
}

type LeafKey = 'ec' | 'rsa-1024' | 'rsa-2048';

/**
 * Each chain has a CA of its own (a root and an intermediate), as if made afresh: a test may need
 * one CA not to have signed another's leaf. Making CAs and RSA keys is what took the time, so a run
 * makes a pool of them once (makeTestPki, a vitest globalSetup), and each file takes the next unused
 * ones; past the pool, or without it, they are made on the spot. A chain then costs one openssl call.
 */
export const POOL = { cas: 32, 'rsa-2048': 8, 'rsa-1024': 2 } as const;

/** One config for every call: the extensions of each kind of certificate, as openssl x509 -req made them. */
const REQ_CNF = `[req]
distinguished_name = dn
[dn]
[root]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
basicConstraints = critical,CA:TRUE
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** The openssl calls of a CA in dir (which holds req.cnf): a root, and an intermediate it signs. */
function caCalls(dir: string): string[][] {
  const at = (f: string) => join(dir, f);
  const req = (key: string, out: string, cn: string) => [
    'req',
    '-config',
    at('req.cnf'),
    ...EC,
    '-keyout',
    at(key),
    '-out',
    at(out),
    '-days',
    '30',
    '-subj',
    `/CN=${cn}`,
  ];
  const signedByRoot = ['-CA', at('root.pem'), '-CAkey', at('root.key')];
  return [
    [...req('root.key', 'root.pem', 'Test Root'), '-x509', '-extensions', 'root'],
    [...req('int.key', 'int.pem', 'Test Intermediate'), ...signedByRoot, '-extensions', 'ca'],
  ];
}

function rsaKey(bits: string): string {
  return generateKeyPairSync('rsa', { modulusLength: Number(bits) }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
}

/** What this file took from the pool so far (vitest gives each file its own modules). */
const taken: Record<string, number> = {};
function fromPool(kind: keyof typeof POOL): string | undefined {
  const dir: string | undefined = inject('testPki'); // not provided: a project without pki-setup
  const i = (taken[kind] = (taken[kind] ?? -1) + 1);
  return dir && i < POOL[kind] ? join(dir, `${kind}-${i}`) : undefined;
}

/** A root, an intermediate and a leaf for the names, signed by openssl. */
export function makeChain(names: string[], opts: { days?: number; leafKey?: LeafKey } = {}): TestChain {
  const dir = mkdtempSync(join(tmpdir(), 'mailcerts-pki-'));
  const ssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  writeFileSync(join(dir, 'req.cnf'), REQ_CNF);
  let ca = fromPool('cas');
  if (!ca) {
    ca = dir;
    for (const call of caCalls(dir)) ssl(call);
  }
  const leafKey = opts.leafKey ?? 'ec';
  if (leafKey !== 'ec') {
    const pooled = fromPool(leafKey);
    writeFileSync(join(dir, 'leaf.key'), pooled ? readFileSync(`${pooled}.key`) : rsaKey(leafKey.slice(4)));
  }
  const keyArgs = leafKey === 'ec' ? [...EC, '-keyout', 'leaf.key'] : ['-key', 'leaf.key'];
  const san = `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`;
  const signer = ['-CA', join(ca, 'int.pem'), '-CAkey', join(ca, 'int.key')];
  const days = opts.days ?? 10;
  if (days > 0) {
    ssl([
      'req',
      '-config',
      'req.cnf',
      ...keyArgs,
      '-out',
      'leaf.pem',
      '-days',
      String(days),
      '-subj',
      `/CN=${names[0]}`,
      ...signer,
      '-extensions',
      'leaf',
      '-addext',
      san,
    ]);
  } else {
    // Expired as it is made: `openssl req` refuses -days 0, `openssl x509 -req` takes it.
    writeFileSync(join(dir, 'leaf.ext'), `${REQ_CNF.split('[leaf]\n')[1]}${san}\n`);
    ssl(['req', '-config', 'req.cnf', ...keyArgs, '-out', 'leaf.csr', '-subj', `/CN=${names[0]}`]);
    ssl([
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      ...signer,
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '0',
      '-extfile',
      'leaf.ext',
      '-out',
      'leaf.pem',
    ]);
  }
  const read = (f: string) => readFileSync(f, 'utf8');
  const leaf = read(join(dir, 'leaf.pem'));
  const intermediate = read(join(ca, 'int.pem'));
  return {
    key: read(join(dir, 'leaf.key')),
    leaf,
    intermediate,
    root: read(join(ca, 'root.pem')),
    fullchain: leaf + intermediate,
    otherKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }) as string,
  };
}

/** Makes the pool of CAs and RSA keys in dir, several at a time; a globalSetup hands dir to the files. */
export async function makeTestPki(dir: string): Promise<void> {
  const run = promisify(execFile);
  const rsa = promisify(generateKeyPair);
  const jobs: (() => Promise<unknown>)[] = [];
  for (let i = 0; i < POOL.cas; i++)
    jobs.push(async () => {
      const ca = join(dir, `cas-${i}`);
      mkdirSync(ca, { recursive: true });
      writeFileSync(join(ca, 'req.cnf'), REQ_CNF);
      for (const call of caCalls(ca)) await run('openssl', call, { cwd: ca });
    });
  for (const kind of ['rsa-2048', 'rsa-1024'] as const)
    for (let i = 0; i < POOL[kind]; i++)
      jobs.push(async () => {
        const { privateKey } = await rsa('rsa', { modulusLength: Number(kind.slice(4)) });
        writeFileSync(join(dir, `${kind}-${i}.key`), privateKey.export({ type: 'pkcs8', format: 'pem' }));
      });
  // Two at a time: the machine has two cores, and the files wait for all of it.
  const next = async (): Promise<void> => {
    const job = jobs.shift();
    if (job) await job().then(next);
  };
  await Promise.all([next(), next()]);
  if (!existsSync(join(dir, `cas-${POOL.cas - 1}`, 'int.pem')))
    throw new Error(`the test CA pool in ${dir} is incomplete`);
}

/** A self-signed certificate that expired in January 2020 (openssl ca takes explicit dates); `san`: the name as its subjectAltName too. */
export function makeExpired(name: string, opts: { san?: boolean } = {}): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mailcerts-expired-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '01\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    '[ca]\ndefault_ca=d\n[d]\ndir=.\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n',
  );
  ssl('req', '-new', ...EC, '-keyout', 'key.pem', '-out', 'csr.pem', '-subj', `/CN=${name}`);
  writeFileSync(join(dir, 'san.ext'), `subjectAltName=DNS:${name}\n`);
  ssl(
    'ca',
    '-config',
    'ca.cnf',
    '-selfsign',
    '-keyfile',
    'key.pem',
    '-in',
    'csr.pem',
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200102000000Z',
    '-batch',
    '-notext',
    ...(opts.san ? ['-extfile', 'san.ext'] : []),
    '-out',
    'cert.pem',
  );
  return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
}

/** A self-signed certificate for the names (no CA above it), valid for `days`. */
export function makeSelfSigned(names: string[], days: number): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mailcerts-selfsigned-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      'key.pem',
      '-out',
      'cert.pem',
      '-days',
      String(days),
      '-subj',
      `/CN=${names[0]}`,
      '-addext',
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
    ],
    { cwd: dir, stdio: 'pipe' },
  );
  return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
}

/** A certificate and key as mailcerts publishes them (the layout's file names and modes) into `dir`. */
export function writePublished(dir: string, c: { key: string; cert: string }): void {
  mkdirSync(dir, { recursive: true });
  const files = {
    'fullchain.pem': c.cert,
    'cert.pem': c.cert,
    'chain.pem': '',
    'privkey.pem': c.key,
    'privkey-fullchain.pem': c.key + c.cert,
  };
  for (const [name, data] of Object.entries(files))
    writeFileSync(join(dir, name), data, { mode: name.startsWith('privkey') ? 0o600 : 0o644 });
}
