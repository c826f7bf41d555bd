import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestChain {
  key: string;
  leaf: string;
  intermediate: string;
  root: string;
  fullchain: string;
  otherKey: string;
}

/** A root, an intermediate and a leaf for the names, made with openssl. */
export function makeChain(
  names: string[],
  opts: { days?: number; leafKey?: 'ec' | 'rsa-1024' | 'rsa-2048' } = {},
): TestChain {
  const dir = mkdtempSync(join(tmpdir(), 'mailcerts-pki-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', 'root.key', '-out', 'root.pem', '-days', '30', '-subj', '/CN=Test Root');
  writeFileSync(join(dir, 'ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  ssl('req', ...ec, '-keyout', 'int.key', '-out', 'int.csr', '-subj', '/CN=Test Intermediate');
  ssl(
    'x509',
    '-req',
    '-in',
    'int.csr',
    '-CA',
    'root.pem',
    '-CAkey',
    'root.key',
    '-CAcreateserial',
    '-out',
    'int.pem',
    '-days',
    '30',
    '-extfile',
    'ca.ext',
  );
  writeFileSync(
    join(dir, 'leaf.ext'),
    `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nbasicConstraints=CA:FALSE\n`,
  );
  const leafKey = opts.leafKey?.startsWith('rsa-') ? ['-newkey', `rsa:${opts.leafKey.slice(4)}`, '-nodes'] : ec;
  ssl('req', ...leafKey, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=${names[0]}`);
  ssl(
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'int.pem',
    '-CAkey',
    'int.key',
    '-CAcreateserial',
    '-out',
    'leaf.pem',
    '-days',
    String(opts.days ?? 10),
    '-extfile',
    'leaf.ext',
  );
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'other.key');
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return {
    key: read('leaf.key'),
    leaf: read('leaf.pem'),
    intermediate: read('int.pem'),
    root: read('root.pem'),
    fullchain: read('leaf.pem') + read('int.pem'),
    otherKey: read('other.key'),
  };
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
  ssl(
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'key.pem',
    '-out',
    'csr.pem',
    '-subj',
    `/CN=${name}`,
  );
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
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
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
