import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ariCertId, safeAriCertId } from '../../src/pki/identity.js';

/** A CA whose key identifier is set, and a leaf it signs with the serial given (hex), with or without an AKI. */
function leafWith(serialHex: string, caKeyId: string, aki: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'mailcerts-ari-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  writeFileSync(
    join(dir, 'ca.cnf'),
    `[req]\ndistinguished_name = dn\n[dn]\n[ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign\nsubjectKeyIdentifier = ${caKeyId}\n`,
  );
  ssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=ARI Test CA',
    '-config',
    'ca.cnf',
    '-extensions',
    'ca',
  );
  writeFileSync(
    join(dir, 'leaf.ext'),
    `subjectAltName=DNS:mail.example.test\n${aki ? 'authorityKeyIdentifier=keyid:always' : 'authorityKeyIdentifier=none\nsubjectKeyIdentifier=none'}\n`,
  );
  ssl('req', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=mail.example.test');
  ssl(
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-set_serial',
    `0x${serialHex}`,
    '-out',
    'leaf.pem',
    '-days',
    '2',
    '-extfile',
    'leaf.ext',
  );
  return readFileSync(join(dir, 'leaf.pem'), 'utf8');
}

describe('the RFC 9773 certificate identifier, read from the DER', () => {
  it('is the example of RFC 9773 section 4.1 (AKI 69:88:5B:…:C8:D4, serial 0x87654321 with its leading zero byte)', () => {
    const leaf = leafWith('87654321', '69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4', true);
    expect(ariCertId(leaf)).toBe('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
  });

  it('keeps a serial without a leading zero as it is, and a long one whole', () => {
    expect(ariCertId(leafWith('1234', '01:02:03:04', true))).toBe(
      `${Buffer.from([1, 2, 3, 4]).toString('base64url')}.${Buffer.from([0x12, 0x34]).toString('base64url')}`,
    );
    const long = '7f'.padEnd(40, 'a5'); // 20 bytes, the longest serial RFC 5280 allows
    expect(ariCertId(leafWith(long, '0A:0B:0C:0D', true)).split('.')[1]).toBe(
      Buffer.from(long, 'hex').toString('base64url'),
    );
  });

  it('says so for a certificate without an Authority Key Identifier (the CA cannot be asked about it)', () => {
    const leaf = leafWith('0102', '01:02', false);
    expect(() => ariCertId(leaf)).toThrow('the certificate has no Authority Key Identifier, so ARI cannot name it');
    expect(safeAriCertId(leaf)).toBeUndefined();
    expect(safeAriCertId('not a certificate')).toBeUndefined();
  });
});
