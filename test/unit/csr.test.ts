import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCsr } from '../../src/pki/csr.js';

/** What openssl reads in the request: it verifies the self-signature, or throws. */
function opensslReads(pem: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'mailcerts-csr-')), 'req.pem');
  writeFileSync(file, pem);
  return execFileSync('openssl', ['req', '-in', file, '-noout', '-verify', '-text'], { stdio: 'pipe' }).toString();
}
const pemKey = (type: 'ec' | 'rsa', opts: object) =>
  generateKeyPairSync(type as 'ec', opts as { namedCurve: string }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;

describe('the certificate request sent at finalize', () => {
  it.each([
    ['ec-256', pemKey('ec', { namedCurve: 'P-256' }), 'ecdsa-with-SHA256'],
    ['ec-384', pemKey('ec', { namedCurve: 'P-384' }), 'ecdsa-with-SHA384'],
    ['rsa-2048', pemKey('rsa', { modulusLength: 2048 }), 'sha256WithRSAEncryption'],
  ])('%s: openssl verifies it, and reads every name as a dNSName and the first as the CN', (_, key, algorithm) => {
    const text = opensslReads(createCsr(['mail.example.test', '*.example.test', 'xn--bcher-kva.example'], key));
    expect(text).toMatch(/Subject: CN\s?=\s?mail\.example\.test/);
    expect(text).toContain('DNS:mail.example.test, DNS:*.example.test, DNS:xn--bcher-kva.example');
    expect(text).toContain(`Signature Algorithm: ${algorithm}`);
  });

  it('leaves the CN out when the first name is longer than the 64 characters a CN may hold, and keeps it in the names', () => {
    const long = `${'a'.repeat(60)}.example.test`;
    const text = opensslReads(createCsr([long, 'mail.example.test'], pemKey('ec', { namedCurve: 'P-256' })));
    expect(text).not.toMatch(/Subject:.*CN/);
    expect(text).toContain(`DNS:${long}, DNS:mail.example.test`);
  });

  it('refuses what cannot be a request: no name, a name not in A-label form, a key type ACME certificates do not use', () => {
    const key = pemKey('ec', { namedCurve: 'P-256' });
    expect(() => createCsr([], key)).toThrow('a certificate request needs at least one name');
    expect(() => createCsr(['bücher.example'], key)).toThrow('"bücher.example" is not an ASCII DNS name');
    const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(() => createCsr(['mail.example.test'], ed)).toThrow(
      'cannot sign a certificate request with a key of type ed25519; use KEY_TYPE ec-256, ec-384 or rsa-N',
    );
  });
});
