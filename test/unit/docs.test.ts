/**
 * The docs cannot rot: docs/configuration.md is what the schema's docs render, every setting has a
 * description (and a default the schema agrees with), every included block equals the file it
 * names, and every relative link points at a file and a heading that exist.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { collectSettings, docProblems, renderConfigPage, SOURCES } from '../../scripts/lib/config-docs.js';
import { renderErrorsPage } from '../../scripts/lib/error-docs.js';
import { anchors, brokenLinks, docPages, includes } from '../../scripts/lib/docs.js';
import { loadConfig } from '../../src/config/load.js';
import * as yamlParser from '../../src/config/yaml.js';
import { renderSni } from '../../src/deploy/kinds/index.js';
import { OTHER_SETTINGS } from '../../src/config/setting-doc.js';
import { CONFIG_PARTS } from '../../src/parts.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

describe('docs/errors.md', () => {
  it('is what npm run docs renders from the catalogue of error codes (src/util/error-codes.ts)', () => {
    expect(read('docs/errors.md')).toBe(renderErrorsPage());
  });
});

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
      for (const file of [SOURCES.schema, ...SOURCES.env, SOURCES.proxy, ...SOURCES.parts.map((p) => p.file)])
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
      edit(root, SOURCES.envFile('dns01'), /\/\*\*\n\s+\* How long to wait for the TXT records[\s\S]*?\*\/\n/, '');
      expect(docProblems(collectSettings(root))).toEqual([
        'DNS01_PROPAGATION_TIMEOUT (src/config/env/dns01.ts): has no description; write a JSDoc comment on its definition',
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
      edit(root, SOURCES.envFile('dns01'), /@default 180s/, '@default 120s');
      edit(root, SOURCES.envFile('schedule'), /(Time between renewal checks[^@]*)@group schedule/, '$1@group timing');
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

interface Checked {
  kind: string;
  env: Record<string, string>;
  args: string[];
  body: string;
  /** The page up to the block: a sni-map is checked against the config file above it. */
  before: string;
}

/** Every block after a "<!-- check: KIND [NAME=value…] [file…] -->" marker. */
function checkedBlocks(page: string): Checked[] {
  const text = read(page);
  return [...text.matchAll(/^<!-- check: (\S+)(.*?) -->\n(`{3,})[^\n]*\n([\s\S]*?)^\3$/gm)].map((m) => {
    const words = m[2]!.trim().split(/\s+/).filter(Boolean);
    const env = Object.fromEntries(words.filter((w) => w.includes('=')).map((w) => w.split(/=(.*)/s).slice(0, 2)));
    return {
      kind: m[1]!,
      env,
      args: words.filter((w) => !w.includes('=')),
      body: m[4]!,
      before: text.slice(0, m.index),
    };
  });
}

/** Values that a _FILE variable of an example points at: a secret the docs do not show. */
const SECRET_FILES: Record<string, string> = {
  CLOUDFLARE_API_TOKEN: 'a'.repeat(40),
  RFC2136_TSIG_SECRET: Buffer.from('a tsig secret of the docs').toString('base64'),
  ALERT_SMTP: 'smtp://mailcerts:secret@postfix:587?servername=mail.example.com',
};

const secretsDir = mkdtempSync(join(tmpdir(), 'mailcerts-doc-secrets-'));
afterAll(() => rmSync(secretsDir, { recursive: true, force: true }));

/** loadConfig on an example's variables, with each NAME_FILE pointing at a file of a valid value. */
function load(vars: Record<string, string>, configFile?: string) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(vars)) {
    const base = k.replace(/_FILE$/, '');
    if (k.endsWith('_FILE') && SECRET_FILES[base] !== undefined) {
      const file = join(secretsDir, base);
      writeFileSync(file, SECRET_FILES[base]!);
      env[k] = file;
    } else env[k] = String(v);
  }
  if (configFile !== undefined) {
    const file = join(secretsDir, 'mailcerts.yml');
    writeFileSync(file, configFile);
    env.MAILCERTS_CONFIG = file;
  }
  return loadConfig(env, { inContainer: true, yaml: yamlParser, parts: CONFIG_PARTS });
}

const stripComment = (line: string) => line.replace(/\s+#.*$/, '').trim();

const CHECKS: Record<string, (b: Checked) => void> = {
  'config-file': (b) => {
    load(b.env, b.body);
  },
  'compose-env': (b) => {
    const doc = parseYaml(b.body) as Record<string, any>;
    const vars = doc.services ? doc.services.mailcerts.environment : doc;
    expect(Object.keys(vars).length).toBeGreaterThan(0);
    load({ ...b.env, ...vars });
  },
  env: (b) => {
    const vars = Object.fromEntries(
      b.body
        .split('\n')
        .map(stripComment)
        .filter(Boolean)
        .map((l) => l.split(/=(.*)/s).slice(0, 2)),
    );
    load({ ACME_DOMAINS: 'mail.example.com', ...b.env, ...vars });
  },
  'sni-map': (b) => {
    const config = [...b.before.matchAll(/^<!-- check: config-file.*-->\n```yaml\n([\s\S]*?)^```$/gm)].at(-1)?.[1];
    expect(config, 'a config-file block above it').toBeDefined();
    const certs = (parseYaml(config!) as { certificates: { name: string; domains: string[] }[] }).certificates.map(
      (c) => ({ name: c.name, domains: c.domains, dir: c.name, files: ['privkey-fullchain.pem'] }),
    );
    const map = renderSni(certs, '/etc/ssl/mail').find((f) => f.name === 'postfix.map')!.data;
    const lines = (t: string) => t.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines(b.body)).toEqual(lines(map));
  },
  'lines-in': (b) => {
    const texts = b.args.map(read);
    for (const line of b.body.split('\n').map(stripComment).filter(Boolean)) {
      const value = line.split(/\s*=\s*(.*)/s)[1];
      const found = texts.some((t) => t.includes(line) || (value !== undefined && t.includes(value)));
      expect(found, `"${line}" is in none of ${b.args.join(', ')}`).toBe(true);
    }
  },
};

describe('README.md and docs/*.md', () => {
  const pages = docPages(ROOT);

  it('has the pages', () => {
    expect(pages).toContain('docs/configuration.md');
    expect(pages.length).toBeGreaterThan(10);
  });

  it('shows each included file as it is now (run npm run docs after changing one)', () => {
    let count = 0;
    for (const page of pages)
      for (const block of includes(ROOT, read(page))) {
        count++;
        expect(block.body, `${page}: the block of ${block.spec}`).toBe(block.expected);
      }
    expect(count).toBeGreaterThan(0);
  });

  it('links only to files and headings that exist', () => {
    expect(pages.flatMap((p) => brokenLinks(ROOT, p))).toEqual([]);
  });

  it('has every checked example load as it is written', () => {
    const checked = pages.flatMap((p) => checkedBlocks(p).map((b) => ({ ...b, page: p })));
    expect(checked.length).toBeGreaterThan(5);
    for (const b of checked)
      expect(() => CHECKS[b.kind]!(b), `${b.page}: the ${b.kind} block\n${b.body}`).not.toThrow();
  });

  it('names only scripts, files and npm scripts that exist in its shell blocks', () => {
    const scripts = JSON.parse(read('package.json')).scripts as Record<string, string>;
    for (const page of pages)
      for (const m of read(page).matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
        for (const f of m[1]!.matchAll(/(?:^|\s)((?:scripts|bench)\/[\w./-]+|[\w-]+\.example\.yml)/g))
          expect(existsSync(join(ROOT, f[1]!)), `${page}: ${f[1]} does not exist`).toBe(true);
        for (const n of m[1]!.matchAll(/npm run (?:-s )?([\w:-]+)/g))
          expect(scripts[n[1]!], `${page}: npm run ${n[1]} is not a script of package.json`).toBeDefined();
      }
  });

  it('finds a broken link and a missing heading', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'mailcerts-links-'));
    try {
      writeFileSync(
        join(tmp, 'a.md'),
        '# Title `X_Y`\n\n## Two words\n\n[ok](#title-x_y) [ok](#two-words) [bad](#nope) [gone](b.md) `[code](c.md)`\n',
      );
      expect(brokenLinks(tmp, 'a.md')).toEqual([
        'a.md: link to #nope: a.md has no heading with the anchor #nope',
        'a.md: link to b.md: b.md does not exist',
      ]);
      expect(anchors('# A\n# A\n```\n# not a heading\n```\n')).toEqual(new Set(['a', 'a-1']));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('keeps the README short: a mail admin reads it to decide and start', () => {
    expect(read('README.md').split('\n').length).toBeLessThanOrEqual(250);
  });
});
