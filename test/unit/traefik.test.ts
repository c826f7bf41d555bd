import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readAcmeJsonOnce } from '../../src/obtain/sources/traefik/file.js';
import { pickTraefikEntry, type TraefikEntry, traefikEntries } from '../../src/obtain/sources/traefik/acme-json.js';
import { untrustedChain } from '../../src/pki/trust.js';
import { parseBundle } from '../../src/pki/bundle.js';
import { makeChain, makeSelfSigned } from '../helpers/pki.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe("picking an entry of Traefik's acme.json", () => {
  it('among entries that expire at the same moment, the configured key type wins', async () => {
    const ec = makeChain(['mail.tr.test'], { days: 30 });
    const rsa = makeChain(['mail.tr.test'], { days: 30, leafKey: 'rsa-2048' });
    const bundles = [parseBundle(rsa.fullchain, rsa.key), parseBundle(ec.fullchain, ec.key)];
    const notAfter = new Date(Math.max(...bundles.map((b) => b.notAfter.getTime())));
    const entries: TraefikEntry[] = bundles.map((b, index) => ({ resolver: 'le', index, bundle: { ...b, notAfter } }));
    expect((await pickTraefikEntry(entries, ['mail.tr.test'], 'ec-256', '/acme.json')).entry.index).toBe(1);
    expect((await pickTraefikEntry(entries, ['mail.tr.test'], 'rsa-2048', '/acme.json')).entry.index).toBe(0);
  });

  it('the configured key type comes first, then the latest expiry: an RSA resolver renewing later does not take over', async () => {
    const ec = makeChain(['mail.tr.test'], { days: 20 });
    const rsa = makeChain(['mail.tr.test'], { days: 40, leafKey: 'rsa-2048' });
    const entries: TraefikEntry[] = [parseBundle(rsa.fullchain, rsa.key), parseBundle(ec.fullchain, ec.key)].map(
      (bundle, index) => ({ resolver: index ? 'ec' : 'rsa', index, bundle }),
    );
    expect((await pickTraefikEntry(entries, ['mail.tr.test'], 'ec-256', '/acme.json')).entry.resolver).toBe('ec');
    expect((await pickTraefikEntry(entries, ['mail.tr.test'], 'ec-384', '/acme.json')).entry.resolver).toBe('rsa'); // none of that type: the latest
  });

  it('reads every resolver, skips a resolver without certificates, and refuses what is not an acme.json', () => {
    const c = makeChain(['mail.tr.test']);
    const data = {
      a: { Account: {}, Certificates: null },
      b: {
        Account: {},
        Certificates: [
          { domain: { main: 'mail.tr.test' }, certificate: b64(c.fullchain), key: b64(c.key), Store: 'default' },
        ],
      },
    };
    expect(
      traefikEntries(data, '/acme.json').map((e) => `${e.resolver} ${e.index} ${e.bundle?.names.join(',')}`),
    ).toEqual(['b 0 mail.tr.test']);
    expect(() => traefikEntries([], '/acme.json')).toThrow('/acme.json is not a Traefik acme.json (not an object)');
    expect(() => traefikEntries({ le: { Certificates: 'x' } }, '/acme.json')).toThrow(
      '/acme.json: resolver "le" has Certificates that are not a list; not a Traefik v2/v3 acme.json',
    );
  });

  it('"expires last" counts at most 398 days of lifetime: an old long-lived entry does not win over a fresh renewal', async () => {
    const long = makeChain(['mail.tr.test'], { days: 30 });
    const fresh = makeChain(['mail.tr.test'], { days: 30 });
    const day = 86_400_000;
    const now = Date.now();
    const entries: TraefikEntry[] = [
      // Issued 500 days ago for 100 years: by its notAfter it would win for ever.
      {
        resolver: 'le',
        index: 0,
        bundle: {
          ...parseBundle(long.fullchain, long.key),
          notBefore: new Date(now - 500 * day),
          notAfter: new Date(now + 36_500 * day),
        },
      },
      {
        resolver: 'le',
        index: 1,
        bundle: {
          ...parseBundle(fresh.fullchain, fresh.key),
          notBefore: new Date(now - day),
          notAfter: new Date(now + 89 * day),
        },
      },
    ];
    expect((await pickTraefikEntry(entries, ['mail.tr.test'], 'ec-256', '/acme.json')).entry.index).toBe(1);
    // Alone, the long-lived one is still usable: valid now, only ranked as if it ended at 398 days.
    expect((await pickTraefikEntry(entries.slice(0, 1), ['mail.tr.test'], 'ec-256', '/acme.json')).entry.index).toBe(0);
  });
});

describe("whether an entry's chain leads to a trusted root", () => {
  it('says why OpenSSL does not trust it: self-signed, an unknown root, a root served in the chain', async () => {
    const self = makeSelfSigned(['mail.tr.test'], 36_500);
    expect(await untrustedChain({ privateKey: self.key, certificates: [self.cert] })).toBe(
      'it is self-signed, issued by no CA',
    );
    const c = makeChain(['mail.tr.test']);
    expect(await untrustedChain({ privateKey: c.key, certificates: [c.leaf, c.intermediate] })).toBe(
      'its chain does not lead to a trusted root (the last certificate is issued by "CN=Test Root", which is not trusted)',
    );
    expect(await untrustedChain({ privateKey: c.key, certificates: [c.leaf, c.intermediate, c.root] })).toBe(
      'its chain ends in a root that is not trusted ("CN=Test Root")',
    );
  });

  it('is skipped in the choice with its reason, and the next entry is taken', async () => {
    const self = makeSelfSigned(['mail.tr.test'], 36_500);
    const c = makeChain(['mail.tr.test'], { days: 5 });
    const entries: TraefikEntry[] = [parseBundle(self.cert, self.key), parseBundle(c.fullchain, c.key)].map(
      (bundle, index) => ({ resolver: 'le', index, bundle }),
    );
    const distrust = async (b: { certificates: string[] }) =>
      b.certificates.length === 1 ? 'it is self-signed, issued by no CA' : undefined;
    const picked = await pickTraefikEntry(entries, ['mail.tr.test'], 'ec-256', '/acme.json', { distrust });
    expect(picked.entry.index).toBe(1);
    expect(picked.skipped).toEqual(['entry 0 of resolver "le": it is self-signed, issued by no CA']);
    await expect(
      pickTraefikEntry(entries.slice(0, 1), ['mail.tr.test'], 'ec-256', '/acme.json', { distrust }),
    ).rejects.toThrow(
      'Traefik\'s acme.json at /acme.json: no usable entry covers all of mail.tr.test; not usable: entry 0 of resolver "le": it is self-signed, issued by no CA; nothing was published, the current certificate is kept',
    );
  });
});

describe('the directories above acme.json', () => {
  it('a root-owned sticky directory (/tmp) is trusted, since no one else can swap what is in it; a world-writable one without the sticky bit is not', () => {
    const root = mkdtempSync(join(tmpdir(), 'mc-acme-'));
    try {
      for (const [dir, mode] of [
        ['sticky', 0o1777],
        ['open', 0o777],
      ] as const) {
        mkdirSync(join(root, dir, 'traefik'), { recursive: true });
        chmodSync(join(root, dir), mode);
        writeFileSync(join(root, dir, 'traefik', 'acme.json'), '{}', { mode: 0o600 });
      }
      expect(readAcmeJsonOnce(join(root, 'sticky', 'traefik', 'acme.json'))).toBe('{}');
      expect(() => readAcmeJsonOnce(join(root, 'open', 'traefik', 'acme.json'))).toThrow(
        /is writable by group and others \(mode 0777\)/,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
