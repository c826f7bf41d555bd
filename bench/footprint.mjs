// bench/footprint.mjs: what each footprint trick of mailcerts still buys, measured in fresh node
// processes with the image's node flags. For each trick: the RSS a process holds after doing a
// thing the plain way, against the way mailcerts does it (median of RUNS processes each); then
// every module the bundle loads lazily (each dynamic import() in src/), against not loading it.
//   node bench/footprint.mjs [--runs 5] [--json out.json]
// Printed as a markdown table; bench/run.sh (PARTS=footprint) puts it into bench/results.md.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, json: { type: 'string' } } });
const RUNS = Number(values.runs);
const FLAGS = (process.env.MAILCERTS_NODE_FLAGS ?? '--max-semi-space-size=1 --max-opt=0 --regexp-interpret-all')
  .split(' ')
  .filter(Boolean);
const ROOT = new URL('..', import.meta.url).pathname;

/** RSS in MiB after `code` ran in a fresh process (after a GC, so that only what stays counts). */
function rssAfter(code) {
  const script = `${code}; await new Promise((r) => setTimeout(r, 50)); globalThis.gc?.(); console.log(process.memoryUsage.rss());`;
  const out = execFileSync(process.execPath, [...FLAGS, '--expose-gc', '--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return Number(out.trim()) / 1024 / 1024;
}

const median = (xs) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)];
const measure = (code) => median(Array.from({ length: RUNS }, () => rssAfter(code)));

/** Each trick: what the plain code does, and what mailcerts does instead. The lazy loaders follow. */
const TRICKS = [
  {
    trick: 'builtins through process.getBuiltinModule() (scripts/bundle.mjs)',
    plain: "const m = await import('node:http'); void m.request",
    ours: "const m = process.getBuiltinModule('node:http'); void m.request",
  },
  {
    trick: 'node:fs and node:util through process.getBuiltinModule()',
    plain: "const a = await import('node:fs'); const b = await import('node:util'); void a.readFileSync; void b.format",
    ours: "const a = process.getBuiltinModule('node:fs'); const b = process.getBuiltinModule('node:util'); void a.readFileSync; void b.format",
  },
  {
    trick: 'the monotonic clock from process.hrtime (src/util/clock.ts)',
    plain: 'void performance.now()',
    ours: 'void process.hrtime()',
  },
  {
    trick: 'zod/mini instead of zod (a schema built and used)',
    plain:
      "const { z } = await import('zod'); z.object({ a: z.string().min(1), b: z.array(z.string()).optional(), c: z.enum(['x', 'y']).default('x') }).parse({ a: 'v' })",
    ours: "const z = await import('zod/mini'); z.object({ a: z.string().check(z.minLength(1)), b: z.optional(z.array(z.string())), c: z._default(z.enum(['x', 'y']), 'x') }).parse({ a: 'v' })",
  },
  {
    trick: "ARI over node:https, not Node's fetch",
    plain: "await fetch('data:,x')",
    ours: "process.getBuiltinModule('node:https')",
  },
];

/**
 * Every module that src/ loads with a dynamic import(), found in the bundle's metafile (written by
 * scripts/bundle.mjs): what loading its chunk adds to a process that holds the chunks the program
 * loads at start. A lazy loader that saves nothing should become a plain import.
 */
function lazyModules() {
  const metaFile = `${ROOT}dist/bundle-meta.json`;
  if (!existsSync(metaFile)) throw new Error(`${metaFile} is missing: run npm run build && node scripts/bundle.mjs`);
  const outputs = JSON.parse(readFileSync(metaFile, 'utf8'));
  const name = (out) => out.replace(/^bundle\//, '');
  const staticClosure = (out, seen = new Set()) => {
    for (const i of outputs[out].imports)
      if (i.kind === 'import-statement' && !i.external && !seen.has(i.path)) {
        seen.add(i.path);
        staticClosure(i.path, seen);
      }
    return seen;
  };
  const main = Object.keys(outputs).find((o) => outputs[o].entryPoint === 'dist/main.js');
  // What every command holds before it runs: main's static imports (not main itself, which would run).
  const start = [...staticClosure(main)].map((o) => `await import('./${o}');`).join(' ');
  return Object.entries(outputs)
    .filter(([, o]) => o.entryPoint && !['dist/cli.js', 'dist/main.js'].includes(o.entryPoint))
    .map(([out, o]) => ({
      trick: `${o.entryPoint.replace(/^dist\/(.*)\.js$/, 'src/$1.ts')} loaded lazily (${name(out)})`,
      plain: `${start} await import('./${out}')`,
      ours: start,
    }))
    .sort((a, b) => a.trick.localeCompare(b.trick));
}

const rows = [...TRICKS, ...lazyModules()].map((t) => {
  const plain = measure(t.plain);
  const ours = measure(t.ours);
  return { trick: t.trick, plainMiB: plain, oursMiB: ours, savedMiB: plain - ours };
});
const fmt = (x) => x.toFixed(1);
console.log(
  `Footprint tricks: RSS of a fresh node ${process.version} process (${FLAGS.join(' ')}), median of ${RUNS}.`,
);
console.log('');
console.log('| trick | plain | as mailcerts does it | saved |');
console.log('| --- | ---: | ---: | ---: |');
for (const r of rows)
  console.log(`| ${r.trick} | ${fmt(r.plainMiB)} MiB | ${fmt(r.oursMiB)} MiB | ${fmt(r.savedMiB)} MiB |`);
if (values.json) writeFileSync(values.json, JSON.stringify(rows, null, 2));
