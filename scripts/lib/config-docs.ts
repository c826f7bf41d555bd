// Renders docs/configuration.md from the configuration schema: each variable's JSDoc (description,
// @group, @default, @values), read with the TypeScript parser from the file that defines it (the
// central variables: src/config/env/<group>.ts; a part's: its index.ts), and
// what the schema itself knows (defaults, enums, the bounds its helpers check). scripts/config-docs.mjs
// writes the page; test/unit/docs.test.ts fails when the page differs or a variable has no doc.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { slug } from 'github-slugger';
import ts from 'typescript';
import type * as z from 'zod/mini';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { envSchema, fileSchema, SECRET_KEYS } from '../../src/config/schema.js';
import { OTHER_SETTINGS, settingBounds } from '../../src/config/setting-doc.js';
import { DEPLOY_MODES } from '../../src/deploy/modes/index.js';
import { DNS_PROVIDER_DEFINITIONS } from '../../src/dns/providers/index.js';
import { CERTIFICATE_SOURCES } from '../../src/obtain/sources/index.js';
import { CONFIG_PARTS } from '../../src/parts.js';
import { ProxyEnv } from '../../src/proxy/index.js';

/** The sections of the page, in order. A variable's @group names one. */
export const GROUPS: Record<string, { title: string; intro: string }> = {
  certificates: { title: 'Certificates', intro: 'Which certificates mailcerts keeps, and how the CA checks them.' },
  ca: { title: 'The CA and the ACME account', intro: 'Which CA issues them, and how mailcerts talks to it.' },
  http01: {
    title: 'HTTP-01',
    intro: 'The default challenge: a token served on port 80 of each name. See [renewal](renewal.md#http-01).',
  },
  dns01: {
    title: 'DNS-01',
    intro:
      'TXT records at `_acme-challenge.NAME`, for wildcards and hosts without port 80. See [DNS-01](dns-01.md). Each provider owns its variables.',
  },
  dane: { title: 'DANE', intro: 'TLSA records kept in step with the key. See [DANE](dane.md).' },
  files: {
    title: 'Files and the volume',
    intro: 'Where the certificates are published, and who may read the keys. See [the volume](volume.md).',
  },
  supplied: {
    title: 'Supplied certificates and Traefik',
    intro:
      'Certificates that mailcerts does not obtain itself. See [Traefik and supplied certificates](traefik-and-supplied.md).',
  },
  deploy: {
    title: 'Reloading and deploying',
    intro:
      'Which containers or services get the certificates, and how. See [reload and verify](reload-and-verify.md) and [Swarm](swarm.md).',
  },
  schedule: { title: 'Schedule', intro: 'When mailcerts looks again. See [renewal](renewal.md).' },
  alerts: { title: 'Alerts', intro: 'Who is told when something is wrong. See [alerts](alerts.md).' },
  report: {
    title: 'Status and logs',
    intro: 'What mailcerts says, and where. See [status and metrics](status-and-metrics.md).',
  },
};

/** The groups whose central variables have a file in src/config/env/ (`supplied` has only the sources' own). */
const ENV_GROUPS = Object.keys(GROUPS).filter((g) => g !== 'supplied');

/** Where the settings are defined, relative to the repository. */
export const SOURCES = {
  /** The config file's keys (fileSchema). */
  schema: 'src/config/schema.ts',
  /** The central variables, one file per @group. */
  envFile: (group: string) => `src/config/env/${group}.ts`,
  env: ENV_GROUPS.map((g) => `src/config/env/${g}.ts`),
  proxy: 'src/proxy/index.ts',
  provider: (name: string) => `src/dns/providers/${name}/index.ts`,
  /** The parts that bring variables of their own, each in its folder's index.ts. */
  parts: [
    ...DNS_PROVIDER_DEFINITIONS.map((d) => ({
      file: `src/dns/providers/${d.name}/index.ts`,
      env: d.env,
      provider: d.name,
    })),
    ...CERTIFICATE_SOURCES.map((s) => ({ file: `src/obtain/sources/${s.name}/index.ts`, env: s.env })),
    ...DEPLOY_MODES.map((m) => ({ file: `src/deploy/modes/${m.name}/index.ts`, env: m.env ?? {} })),
  ] as { file: string; env: Record<string, unknown>; provider?: string }[],
};

interface Doc {
  description: string;
  tags: Record<string, string>;
}

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ').trim();

/** The JSDoc of each property of an object literal, by property name (undefined: it has none). */
function docsOf(obj: ts.ObjectLiteralExpression): Map<string, Doc | undefined> {
  const out = new Map<string, Doc | undefined>();
  for (const p of obj.properties) {
    if (!ts.isPropertyAssignment(p) || !(ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) continue;
    const jsdoc = ts.getJSDocCommentsAndTags(p).filter(ts.isJSDoc).at(-1);
    if (!jsdoc) {
      out.set(p.name.text, undefined);
      continue;
    }
    const tags: Record<string, string> = {};
    for (const t of jsdoc.tags ?? []) tags[t.tagName.text] = oneLine(ts.getTextOfJSDocComment(t.comment) ?? '');
    out.set(p.name.text, { description: oneLine(ts.getTextOfJSDocComment(jsdoc.comment) ?? ''), tags });
  }
  return out;
}

/** The first object literal in `file` that `pick` accepts, walking the tree in order. */
function findObject(root: string, file: string, pick: (o: ts.ObjectLiteralExpression) => boolean) {
  const text = readFileSync(join(root, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  let found: ts.ObjectLiteralExpression | undefined;
  const walk = (n: ts.Node): void => {
    if (found) return;
    if (ts.isObjectLiteralExpression(n) && pick(n)) found = n;
    else ts.forEachChild(n, walk);
  };
  walk(sf);
  if (!found) throw new Error(`${file}: the object that defines the settings was not found`);
  return docsOf(found);
}

const hasKey = (o: ts.ObjectLiteralExpression, key: string) =>
  o.properties.some((p) => p.name && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) && p.name.text === key);

type Schema = z.ZodMiniType;
const defOf = (s: Schema) => (s as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;

/** Allowed values or bounds as the schema knows them: the helpers' bounds, an enum's options, a boolean. */
function derivedValues(s: Schema): string | undefined {
  const bounds = settingBounds.get(s as never)?.values;
  if (bounds) return bounds;
  const def = defOf(s);
  if (def.type === 'default' || def.type === 'optional') return derivedValues(def.innerType as Schema);
  if (def.type === 'enum')
    return Object.values(def.entries as Record<string, string>)
      .map((v) => `\`${v}\``)
      .join(', ');
  if (def.type === 'pipe' && defOf(def.out as Schema).type === 'boolean') return '`true` or `false`';
  if (def.type === 'pipe') return derivedValues(def.in as Schema);
  if (def.type === 'string' && def.format === 'email') return 'a mail address';
  return undefined;
}

const hasDefault = (s: Schema) => defOf(s).type === 'default';
const unquote = (s: string) => s.replace(/^`(.*)`$/, '$1');

export interface Setting {
  name: string;
  schema?: Schema;
  doc?: Doc;
  /** Where it is defined. */
  source: string;
  secret: boolean;
  /** Read outside the schema (no _FILE form). */
  readBy?: string;
}

/** Every setting mailcerts reads, with its doc (or none: a problem). */
export function collectSettings(root: string) {
  // Each central variable is documented in its group's file, on the object that defines the group.
  const central = new Map<string, { file: string; doc?: Doc }>();
  for (const file of SOURCES.env)
    for (const [name, doc] of findObject(root, file, (o) => [...docsOf(o).values()].some(Boolean)))
      central.set(name, { file, doc });
  const fileDocs = findObject(root, SOURCES.schema, (o) => hasKey(o, 'domains') && hasKey(o, 'keyType'));
  const proxyDocs = findObject(root, SOURCES.proxy, (o) => hasKey(o, 'PROXY_BIND'));
  // Each variable a part brings is documented in the part's own file.
  const partOf = new Map<string, { file: string; provider?: string; doc?: Doc }>();
  for (const part of SOURCES.parts) {
    const keys = Object.keys(part.env);
    if (keys.length === 0) continue;
    const docs = findObject(root, part.file, (o) => hasKey(o, keys[0]!));
    for (const key of keys) partOf.set(key, { file: part.file, provider: part.provider, doc: docs.get(key) });
  }
  const shape = envSchema(CONFIG_PARTS).shape as Record<string, Schema>;
  const env: Setting[] = Object.entries(shape).map(([name, schema]) => {
    const p = partOf.get(name) ?? central.get(name);
    return {
      name,
      schema,
      doc: p?.doc,
      source: p?.file ?? `${SOURCES.env.join(', ')} (none of them documents it)`,
      secret: SECRET_KEYS.includes(name),
    };
  });
  for (const [name, o] of Object.entries(OTHER_SETTINGS))
    env.push({
      name,
      doc: { description: o.description, tags: { group: o.group, default: o.default } },
      source: 'src/config/setting-doc.ts',
      secret: false,
      readBy: o.readBy,
    });
  const item = (fileSchema(CONFIG_PARTS).shape.certificates as unknown as { _zod: { def: { element: unknown } } })._zod
    .def.element as { shape: Record<string, Schema> };
  const file: Setting[] = Object.entries(item.shape).map(([name, schema]) => ({
    name,
    schema,
    doc: fileDocs.get(name),
    source: SOURCES.schema,
    secret: false,
  }));
  const proxy: Setting[] = Object.entries(ProxyEnv.shape as Record<string, Schema>).map(([name, schema]) => ({
    name,
    schema,
    doc: proxyDocs.get(name),
    source: SOURCES.proxy,
    secret: false,
  }));
  const providers = Object.fromEntries([...partOf].filter(([, v]) => v.provider).map(([k, v]) => [k, v.provider!]));
  return { env, file, proxy, providers };
}

/** What is wrong with the docs: a setting without a description or group, a default that is not the schema's. */
export function docProblems(s: ReturnType<typeof collectSettings>): string[] {
  const problems: string[] = [];
  const check = (x: Setting, needsGroup: boolean) => {
    const where = `${x.name} (${x.source})`;
    if (!x.doc?.description) {
      problems.push(`${where}: has no description; write a JSDoc comment on its definition`);
      return;
    }
    const group = x.doc.tags.group;
    if (needsGroup && !(group && group in GROUPS) && !s.providers[x.name])
      problems.push(`${where}: @group must be one of ${Object.keys(GROUPS).join(', ')}`);
    const unknown = Object.keys(x.doc.tags).filter((t) => !['group', 'default', 'values'].includes(t));
    if (unknown.length > 0) problems.push(`${where}: unknown tag @${unknown.join(', @')}`);
    if (x.schema && hasDefault(x.schema)) {
      const written = x.doc.tags.default;
      if (written === undefined) problems.push(`${where}: has a default in the schema but no @default`);
      else {
        const doc = x.schema.safeParse(unquote(written));
        const real = x.schema.safeParse(undefined);
        if (!doc.success || JSON.stringify(doc.data) !== JSON.stringify(real.data))
          problems.push(`${where}: @default ${written} is not the schema's default (${JSON.stringify(real.data)})`);
      }
    } else if (x.doc.tags.default === undefined) problems.push(`${where}: say in @default what leaving it unset means`);
  };
  for (const x of s.env) check(x, true);
  for (const x of s.file) check(x, false);
  for (const x of s.proxy) check(x, false);
  return problems;
}

function defaultText(x: Setting): string {
  const d = x.doc?.tags.default ?? '';
  return x.schema && hasDefault(x.schema) ? `\`${unquote(d)}\`` : d;
}

function settingBlock(x: Setting, level: string): string[] {
  const values = x.doc?.tags.values ?? (x.schema ? derivedValues(x.schema) : undefined);
  const facts = [`Default: ${defaultText(x)}.`];
  if (values) facts.push(`Allowed: ${values}.`);
  if (x.secret) facts.push(`A secret: never logged; better given as \`${x.name}_FILE\`.`);
  if (x.readBy) facts.push(`Read by ${x.readBy}, not by the configuration schema (so no \`_FILE\` form).`);
  return [`${level} \`${x.name}\``, '', facts.join(' '), '', x.doc?.description ?? '', ''];
}

const PROVIDER_TITLES: Record<string, string> = {
  cloudflare: 'Cloudflare (`ACME_DNS_PROVIDER=cloudflare`)',
  rfc2136: 'Your own name server (`ACME_DNS_PROVIDER=rfc2136`)',
};

/** The "bad configuration" example, made by loadConfig itself so that it cannot drift. */
export function badConfigExample(): string {
  try {
    loadConfig(
      { ACME_DOMAINS: 'no_good', HTTP01_PORT: '99999', KEY_FILE_MODE: '0666' },
      { inContainer: true, parts: CONFIG_PARTS },
    );
  } catch (err) {
    if (err instanceof ConfigError) return `mailcerts: ${err.message}\nNothing was changed.`;
    throw err;
  }
  throw new Error('the bad configuration example was accepted');
}

const HEADER = (example: string) => `# Configuration

<!-- Generated by scripts/config-docs.mjs (npm run docs) from the JSDoc of each setting where it is
defined: src/config/env/<group>.ts (the central variables), src/config/schema.ts (the config file), the
index.ts of each part that brings its own (src/dns/providers/<name>/, src/obtain/sources/<name>/,
src/deploy/modes/<name>/), src/proxy/index.ts and src/config/setting-doc.ts. Do not edit it by hand;
test/unit/docs.test.ts fails when it differs. -->

All settings are environment variables. An empty value counts as unset, so \`FOO=\` in compose means
the default. Any variable of the schema can also be given as \`NAME_FILE\`, the path of a file that
holds the value (the Docker secrets convention). Setting both \`NAME\` and \`NAME_FILE\` is an error.

Bad configuration makes mailcerts exit with code 78, before it touches anything. It lists every
problem at once, each with the variable's name and what to change:

\`\`\`
${example}
\`\`\`

A value read from a \`NAME_FILE\` is never repeated in an error, since the path may point at a
secret. A secret value (the Cloudflare token, the TSIG secret, the EAB key, the alert URLs) never
appears in a log line, a state file, \`status\` or \`/status\`: one redaction covers all of them.
`;

/** The whole page. */
export function renderConfigPage(root: string): { page: string; problems: string[] } {
  const s = collectSettings(root);
  const problems = docProblems(s);
  const out: string[] = [HEADER(badConfigExample()), '## Contents', ''];
  for (const [id, g] of Object.entries(GROUPS))
    out.push(`- [${g.title}](#${id === 'dns01' ? 'dns-01' : slug(g.title)})`);
  out.push('- [The MAILCERTS_CONFIG file](#the-mailcerts_config-file)', '- [mailcerts proxy](#mailcerts-proxy)', '');
  for (const [id, g] of Object.entries(GROUPS)) {
    out.push(`## ${g.title}`, '', g.intro, '');
    for (const x of s.env.filter((v) => v.doc?.tags.group === id && !s.providers[v.name]))
      out.push(...settingBlock(x, '###'));
    if (id !== 'dns01') continue;
    for (const d of DNS_PROVIDER_DEFINITIONS) {
      out.push(`### ${PROVIDER_TITLES[d.name] ?? d.name}`, '');
      for (const x of s.env.filter((v) => s.providers[v.name] === d.name)) out.push(...settingBlock(x, '####'));
    }
  }
  out.push(
    '## The MAILCERTS_CONFIG file',
    '',
    'A YAML or JSON file that lists several certificates, named by `MAILCERTS_CONFIG`. Use either',
    '`ACME_DOMAINS` or the file, not both; the variables above still apply to every certificate.',
    'An error in the file names the exact entry, e.g.',
    '`MAILCERTS_CONFIG (/config/mailcerts.yml) certificates[0].domains[1]: "no_good" is not a valid DNS name`.',
    '',
    '```yaml',
    'certificates:',
    '  - name: mail',
    '    domains: [mail.example.com, smtp.example.com]',
    '```',
    '',
    'Each entry of `certificates`:',
    '',
    '| key | default | allowed | meaning |',
    '|---|---|---|---|',
  );
  for (const x of s.file) {
    const values = x.doc?.tags.values ?? (x.schema ? derivedValues(x.schema) : undefined) ?? '';
    out.push(`| \`${x.name}\` | ${defaultText(x)} | ${values} | ${x.doc?.description ?? ''} |`);
  }
  out.push(
    '',
    '## mailcerts proxy',
    '',
    'The Docker socket proxy (`mailcerts proxy`, the same image run as a service of its own) reads only',
    'these; none of the variables above. See [the security model](security.md#the-socket-proxy).',
    '',
  );
  for (const x of s.proxy) out.push(...settingBlock(x, '###'));
  return { page: `${out.join('\n').replace(/\n+$/, '')}\n`, problems };
}
