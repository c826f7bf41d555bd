import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CERTIFICATE_SOURCES, describeSource, isSupplied, sourceOf } from '../../src/obtain/sources/index.js';
import { collectStatus } from '../../src/report/status.js';
import { captureLog, engineWith, FakeDeployer, FakeIssuer, testConfig } from '../helpers/fakes.js';
import { makeChain } from '../helpers/pki.js';

describe('the certificate sources', () => {
  it('each is one folder and one line in the registry; the names and the variables that choose them come from there', () => {
    expect(CERTIFICATE_SOURCES.map((s) => [s.name, s.chosenBy, !!s.supplied])).toEqual([
      ['acme', undefined, false],
      ['custom', 'CUSTOM_CERTS_DIR', true],
      ['traefik', 'TRAEFIK_ACME_JSON', true],
    ]);
    const { config } = testConfig([{ name: 'mail', domains: ['mail.example.test'] }], { CUSTOM_CERTS_DIR: '/drop' });
    expect(config.certificates[0]).toMatchObject({ source: 'custom', customDir: '/drop' });
    expect(describeSource(config.certificates[0]!)).toBe('supplied in /drop');
    expect(isSupplied(config.certificates[0]!)).toBe(true);
    expect(() => sourceOf({ source: 'vault' })).toThrow(
      'certificate source "vault" is not known; use acme, custom, traefik',
    );
  });

  it('a supplied set refused (half a dual pair) is held with its error, and the error goes once the files are as published again', async () => {
    const { config } = testConfig([{ name: 'mail', domains: ['mail.example.test'] }], {
      CUSTOM_CERTS_DIR: join(mkdtempSync(join(tmpdir(), 'mailcerts-drop-')), 'drop'),
    });
    const drop = config.certificates[0]!.customDir!;
    mkdirSync(drop, { recursive: true });
    const chain = makeChain(['mail.example.test']);
    writeFileSync(join(drop, 'fullchain.pem'), chain.fullchain);
    writeFileSync(join(drop, 'privkey.pem'), chain.key);
    const { log } = captureLog();
    const engine = engineWith(config, new FakeIssuer(), new FakeDeployer([{ name: 'postfix', certs: ['mail'] }]), log);
    expect((await engine.pass()).certs[0]).toMatchObject({ ok: true, published: true });

    writeFileSync(join(drop, 'rsa-fullchain.pem'), chain.fullchain); // its key is missing
    const refused = await engine.pass();
    expect(refused.certs[0]!.error).toMatch(/rsa-privkey.pem is missing: a second certificate needs both/);
    expect((await collectStatus(config))[0]!.lastError).toMatch(/rsa-privkey.pem is missing/);

    rmSync(join(drop, 'rsa-fullchain.pem'));
    expect((await engine.pass()).certs[0]).toMatchObject({ ok: true, published: false });
    expect((await collectStatus(config))[0]).toMatchObject({ deployed: true, lastError: undefined });
  });
});
