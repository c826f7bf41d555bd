// npm run docs: renders docs/configuration.md from the configuration schema (scripts/lib/config-docs.ts),
// docs/errors.md from the error catalogue (scripts/lib/error-docs.ts),
// and refreshes every included block in README.md and docs/*.md from the file it names
// (scripts/lib/docs.ts). With --check it changes nothing and exits 1 when a page is out of date.
// The TypeScript is bundled with esbuild into node_modules/.cache, where its imports resolve.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'node_modules', '.cache', 'mailcerts-docs', 'docs.mjs');
mkdirSync(dirname(out), { recursive: true });
await build({
  stdin: {
    contents:
      "export { renderConfigPage } from './scripts/lib/config-docs.ts'; export { renderErrorsPage } from './scripts/lib/error-docs.ts'; export { refreshIncludes, docPages } from './scripts/lib/docs.ts';",
    resolveDir: root,
    loader: 'ts',
  },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  packages: 'external',
  outfile: out,
  logLevel: 'warning',
});
const { renderConfigPage, renderErrorsPage, refreshIncludes, docPages } = await import(pathToFileURL(out).href);

const check = process.argv.includes('--check');
let stale = 0;
const update = (file, text) => {
  const path = join(root, file);
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return;
  stale++;
  if (check) console.error(`${file} is out of date: run npm run docs`);
  else {
    writeFileSync(path, text);
    console.log(`wrote ${file}`);
  }
};

const { page, problems } = renderConfigPage(root);
if (problems.length > 0) {
  console.error(`The settings' docs are incomplete:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  process.exit(1);
}
update('docs/configuration.md', page);
update('docs/errors.md', renderErrorsPage());
for (const file of docPages(root)) update(file, refreshIncludes(root, readFileSync(join(root, file), 'utf8'), file));
process.exit(check && stale > 0 ? 1 : 0);
