import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BundleError, checkBundle, covers, digestOf, parseBundle } from '../../src/pki/bundle.js';
import { layoutFiles as bundleFiles, FILE_NAMES } from '../../src/publish/layout.js';
import { SNI_FILE_NAMES } from '../../src/deploy/kinds/index.js';
import { makeChain } from '../helpers/pki.js';

const chain = makeChain(['mail.example.com', '*.example.org']);

describe('validating a certificate before it is published', () => {
  it('accepts a matching key and chain, and reads names, dates and key type', () => {
    const b = parseBundle(chain.fullchain, chain.key);
    expect(b.names).toEqual(['mail.example.com', '*.example.org']);
    expect(b.keyType).toBe('ec-256');
    expect(b.certificates).toHaveLength(2);
    expect(b.notAfter.getTime() - b.notBefore.getTime()).toBe(10 * 86_400_000);
    expect(() => checkBundle(b, ['mail.example.com', 'imap.example.org'])).not.toThrow();
  });

  it('refuses a key that does not match the certificate', () => {
    expect(() => parseBundle(chain.fullchain, chain.otherKey, 'new.pem')).toThrow(
      new BundleError('new.pem: the private key does not match the certificate'),
    );
  });

  it('refuses a chain whose intermediate did not sign the leaf', () => {
    const other = makeChain(['mail.example.com']);
    expect(() => parseBundle(chain.leaf + other.intermediate, chain.key)).toThrow(
      /certificate 1 of the chain is not signed by certificate 2 \("CN=Test Intermediate"\)/,
    );
  });

  it('refuses garbage, truncated PEM and a missing key with a message naming the file', () => {
    expect(() => parseBundle('hello', chain.key, 'fullchain.pem')).toThrow(
      'fullchain.pem: the chain holds no PEM certificate',
    );
    const truncated = chain.leaf.replace(/[A-Za-z0-9+/]{40}\n/, '\n');
    expect(() => parseBundle(truncated, chain.key, 'fullchain.pem')).toThrow(
      /certificate 1 of the chain cannot be parsed/,
    );
    expect(() => parseBundle(chain.fullchain, 'not a key', 'x')).toThrow(
      'x: the private key cannot be parsed (expected a PEM private key)',
    );
  });

  it('refuses a certificate that misses a configured name', () => {
    const b = parseBundle(chain.fullchain, chain.key);
    expect(() => checkBundle(b, ['mail.example.com', 'smtp.example.com', 'a.b.example.org'])).toThrow(
      'the certificate does not cover smtp.example.com, a.b.example.org (it has mail.example.com, *.example.org)',
    );
  });

  it('refuses a certificate that is expired or not valid for minutes yet; a few seconds of clock skew only warn', () => {
    const b = parseBundle(chain.fullchain, chain.key);
    expect(() => checkBundle(b, [], new Date(b.notAfter.getTime() + 1000))).toThrow(/expired on/);
    expect(() => checkBundle(b, [], new Date(b.notBefore.getTime() - 6 * 60_000))).toThrow(
      /is not valid before .*, 6 min from now by this host's clock; check the clock of this host/,
    );
    // A host a minute behind the CA (which does not backdate) must not refuse every new certificate.
    expect(checkBundle(b, [], new Date(b.notBefore.getTime() - 60_000))).toMatch(
      /becomes valid 60s from now by this host's clock: the clock of this host seems to be behind; check NTP/,
    );
    expect(checkBundle(b, [], new Date(b.notBefore.getTime() + 1000))).toBeUndefined();
  });

  it('wildcards cover exactly one label', () => {
    expect(covers(['*.example.org'], 'imap.example.org')).toBe(true);
    expect(covers(['*.example.org'], 'example.org')).toBe(false);
    expect(covers(['*.example.org'], 'a.b.example.org')).toBe(false);
    expect(covers(['imap.example.org'], '*.example.org')).toBe(false);
  });

  it('builds the published files: the combined file holds the key first, then the full chain', () => {
    const files = Object.fromEntries(
      bundleFiles({ primary: parseBundle(chain.fullchain, chain.key) }).map((f) => [f.name, f]),
    );
    expect(Object.keys(files).sort()).toEqual([
      'cert.pem',
      'chain.pem',
      'fullchain.pem',
      'privkey-fullchain.pem',
      'privkey.pem',
    ]);
    expect(files['privkey-fullchain.pem']!.data).toBe(files['privkey.pem']!.data + files['fullchain.pem']!.data);
    expect(files['chain.pem']!.data).toBe(chain.intermediate);
    expect(files['privkey.pem']!.secret && files['privkey-fullchain.pem']!.secret).toBe(true);
    expect(files['fullchain.pem']!.secret).toBe(false);
  });
});

describe('the digest of a published set', () => {
  it('orders the files as before (localeCompare), so that the digests state files hold stay valid', () => {
    const names = [...FILE_NAMES, ...SNI_FILE_NAMES];
    expect([...names].sort()).toEqual([...names].sort((a, b) => a.localeCompare(b)));
    const files = names.map((name, i) => ({ name, data: `content ${i}` }));
    const before = createHash('sha256');
    for (const f of [...files].sort((a, b) => a.name.localeCompare(b.name)))
      before.update(f.name).update('\0').update(f.data).update('\0');
    expect(digestOf(files.reverse())).toBe(before.digest('hex'));
  });
});
