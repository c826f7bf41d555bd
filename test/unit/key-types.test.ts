import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { keyTypesProblem } from '../../src/config/schema.js';
import { createCsr } from '../../src/pki/csr.js';
import { algorithmOf, KEY_TYPES } from '../../src/pki/key-types.js';
import { generatePrivateKey, keyTypeOf } from '../../src/pki/keys.js';

describe('the key types: one table', () => {
  it.each(KEY_TYPES.filter((k) => k !== 'rsa-4096'))(
    '%s: made, recognised as itself, and signs a request openssl verifies',
    async (type) => {
      const key = await generatePrivateKey(type);
      expect(keyTypeOf(createPublicKey(key))).toBe(type);
      const file = join(mkdtempSync(join(tmpdir(), 'mailcerts-kt-')), 'req.pem');
      writeFileSync(file, createCsr(['mail.example.test'], key));
      expect(() => execFileSync('openssl', ['req', '-in', file, '-noout', '-verify'], { stdio: 'pipe' })).not.toThrow();
    },
  );

  it('the configuration takes every one of them, one of each algorithm at a time', () => {
    for (const type of KEY_TYPES) expect(keyTypesProblem([type])).toBeUndefined();
    expect(algorithmOf('rsa-1024')).toBe('rsa'); // a supplied weak key is still RSA
    expect(keyTypesProblem(['ec-256', 'ec-384'])).toMatch(/are both ECDSA/);
  });
});
