// What the configuration page is made of: every setting mailcerts reads, each with the JSDoc of its
// definition (description, @group, @default, @values), read with the TypeScript parser from the file
// that defines it: the central variables in src/config/env/<group>.ts, a part's in its index.ts, the
// config file's keys in src/config/schema.ts, the proxy's in src/proxy/index.ts. config-docs.ts
// checks and renders them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import type * as z from 'zod/mini';
import { envSchema, fileSchema, SECRET_KEYS } from '../../src/config/schema.js';
import { OTHER_SETTINGS } from '../../src/config/setting-doc.js';
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

export interface Doc {
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
