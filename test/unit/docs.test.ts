/**
 * The docs cannot rot: docs/configuration.md is what the schema's docs render, every setting has a
 * description (and a default the schema agrees with), every included block equals the file it
 * names, and every relative link points at a file and a heading that exist.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { collectSettings, docProblems, renderConfigPage, SOURCES } from '../../scripts/lib/config-docs.js';
import { OTHER_SETTINGS } from '../../src/config/setting-doc.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

describe('docs/configuration.md', () => {
  it('is what scripts/config-docs.mjs renders from the schema (run npm run docs after changing a setting)', () => {
    const { page, problems } = renderConfigPage(ROOT);
    expect(problems).toEqual([]);
    expect(read('docs/configuration.md')).toBe(page);
  });

  it('lists every variable of the schemas, the DNS providers and the proxy', () => {
    const page = read('docs/configuration.md');
    const s = collectSettings(ROOT);
    const names = [...s.env, ...s.proxy].map((x) => x.name);
    expect(names).toEqual(
      expect.arrayContaining(['ACME_DOMAINS', 'CLOUDFLARE_API_TOKEN', 'RFC2136_SERVER', 'PROXY_BIND']),
    );
    for (const name of names) expect(page, name).toContain(`\`${name}\``);
  });

  describe('a setting without its doc', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'mailcerts-docs-'));
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));
    const copy = () => {
      const root = mkdtempSync(join(tmp, 'root-'));
      for (const file of [SOURCES.schema, SOURCES.proxy, ...['cloudflare', 'rfc2136'].map(SOURCES.provider)])
        mkdirSync(dirname(join(root, file)), { recursive: true }), cpSync(join(ROOT, file), join(root, file));
      return root;
    };
    const edit = (root: string, file: string, from: RegExp, to: string) => {
      const text = readFileSync(join(root, file), 'utf8');
      expect(text).toMatch(from);
      writeFileSync(join(root, file), text.replace(from, to));
    };

    it('is found: no description', () => {
      const root = copy();
      edit(root, SOURCES.schema, /\/\*\*\n\s+\* How long to wait for the TXT records[\s\S]*?\*\/\n/, '');
      expect(docProblems(collectSettings(root))).toEqual([
        'DNS01_PROPAGATION_TIMEOUT (src/config/schema.ts): has no description; write a JSDoc comment on its definition',
      ]);
    });

    it('is found in a DNS provider and in the proxy too', () => {
      const root = copy();
      edit(root, SOURCES.provider('rfc2136'), /\/\*\*\n\s+\* The TSIG algorithm[\s\S]*?\*\/\n/, '');
      edit(root, SOURCES.proxy, /\/\*\*\n\s+\* The engine's socket[\s\S]*?\*\/\n/, '');
      expect(docProblems(collectSettings(root))).toEqual([
        'RFC2136_TSIG_ALGORITHM (src/dns/providers/rfc2136/index.ts): has no description; write a JSDoc comment on its definition',
        'PROXY_SOCKET (src/proxy/index.ts): has no description; write a JSDoc comment on its definition',
      ]);
    });

    it('is found: a default the schema does not have, a group that does not exist', () => {
      const root = copy();
      edit(root, SOURCES.schema, /@default 180s/, '@default 120s');
      edit(root, SOURCES.schema, /(Time between renewal checks[^@]*)@group schedule/, '$1@group timing');
      expect(docProblems(collectSettings(root))).toEqual([
        expect.stringMatching(/^DNS01_PROPAGATION_TIMEOUT .*: @default 120s is not the schema's default \(180000\)$/),
        expect.stringMatching(/^RENEW_CHECK_INTERVAL .*: @group must be one of certificates, ca, /),
      ]);
    });
  });

  it('knows every variable that src/ reads outside the schema', () => {
    const s = collectSettings(ROOT);
    const known = new Set([...s.env, ...s.proxy].map((x) => x.name));
    const files = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.ts'),
    );
    const read = new Set<string>();
    for (const f of files)
      for (const m of readFileSync(join(ROOT, 'src', f), 'utf8').matchAll(/process\.env\.([A-Z][A-Z0-9_]+)/g))
        read.add(m[1]!);
    expect(read.size).toBeGreaterThan(0);
    for (const name of read) expect(known.has(name), `${name} is read in src/ but documented nowhere`).toBe(true);
    for (const [name, o] of Object.entries(OTHER_SETTINGS))
      if (o.readBy.startsWith('src/')) expect(read.has(name), `${name}: ${o.readBy} no longer reads it`).toBe(true);
  });
});
