import { describe, expect, it } from 'vitest';
import { pickTraefikEntry, type TraefikEntry, traefikEntries } from '../../src/obtain/traefik.js';
import { parseBundle } from '../../src/publish/bundle.js';
import { makeChain } from '../helpers/pki.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('picking an entry of Traefik\'s acme.json', () => {
  it('among entries that expire at the same moment, the configured key type wins', () => {
    const ec = makeChain(['mail.tr.test'], { days: 30 });
    const rsa = makeChain(['mail.tr.test'], { days: 30, leafKey: 'rsa-2048' });
    const bundles = [parseBundle(rsa.fullchain, rsa.key), parseBundle(ec.fullchain, ec.key)];
    const notAfter = new Date(Math.max(...bundles.map((b) => b.notAfter.getTime())));
    const entries: TraefikEntry[] = bundles.map((b, index) => ({ resolver: 'le', index, bundle: { ...b, notAfter } }));
    expect(pickTraefikEntry(entries, ['mail.tr.test'], 'ec-256', '/acme.json').entry.index).toBe(1);
    expect(pickTraefikEntry(entries, ['mail.tr.test'], 'rsa-2048', '/acme.json').entry.index).toBe(0);
  });

  it('the configured key type comes first, then the latest expiry: an RSA resolver renewing later does not take over', () => {
    const ec = makeChain(['mail.tr.test'], { days: 20 });
    const rsa = makeChain(['mail.tr.test'], { days: 40, leafKey: 'rsa-2048' });
    const entries: TraefikEntry[] = [parseBundle(rsa.fullchain, rsa.key), parseBundle(ec.fullchain, ec.key)].map((bundle, index) => ({ resolver: index ? 'ec' : 'rsa', index, bundle }));
    expect(pickTraefikEntry(entries, ['mail.tr.test'], 'ec-256', '/acme.json').entry.resolver).toBe('ec');
    expect(pickTraefikEntry(entries, ['mail.tr.test'], 'ec-384', '/acme.json').entry.resolver).toBe('rsa'); // none of that type: the latest
  });

  it('reads every resolver, skips a resolver without certificates, and refuses what is not an acme.json', () => {
    const c = makeChain(['mail.tr.test']);
    const data = { a: { Account: {}, Certificates: null }, b: { Account: {}, Certificates: [{ domain: { main: 'mail.tr.test' }, certificate: b64(c.fullchain), key: b64(c.key), Store: 'default' }] } };
    expect(traefikEntries(data, '/acme.json').map((e) => `${e.resolver} ${e.index} ${e.bundle?.names.join(',')}`)).toEqual(['b 0 mail.tr.test']);
    expect(() => traefikEntries([], '/acme.json')).toThrow('/acme.json is not a Traefik acme.json (not an object)');
    expect(() => traefikEntries({ le: { Certificates: 'x' } }, '/acme.json')).toThrow('/acme.json: resolver "le" has Certificates that are not a list; not a Traefik v2/v3 acme.json');
  });
});
