// Bundles dist/ into bundle/ for the image: only the code mailcerts runs, split so that the
// ACME, Docker and Cloudflare parts still load only when a pass needs them.
import { build } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';

// Node's builtins reach the bundle as process.getBuiltinModule(), not as ESM imports. An ESM
// import of a builtin builds its namespace from every export, lazy getters included: importing
// node:http that way loads undici (for http.WebSocket), http2, zlib and worker_threads, 13 MB of
// RSS in a daemon that uses none of them; node:fs and node:util add 3 MB each. A CommonJS-style
// module keeps each property read where the code reads it (esbuild's interop defines getters).
const builtinsAsModules = {
  name: 'builtins-as-modules',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z][a-z0-9_/]*$/ }, (a) =>
      isBuiltin(a.path)
        ? { path: a.path.startsWith('node:') ? a.path : `node:${a.path}`, namespace: 'builtin' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (a) => ({
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(a.path)});`,
      loader: 'js',
    }));
  },
};

rmSync('bundle', { recursive: true, force: true });
const result = await build({
  entryPoints: { mailcerts: 'dist/cli.js' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  outdir: 'bundle',
  outExtension: { '.js': '.mjs' }, // ESM without a package.json beside it
  minify: true,
  legalComments: 'linked',
  metafile: true,
  // CommonJS dependencies (acme-client, dockerode) call require(); give ESM chunks one.
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);",
  },
  // Optional native speed-ups of ssh2 (DOCKER_HOST=ssh:// only); their absence is handled by ssh2.
  external: ['cpu-features', '*.node'],
  plugins: [builtinsAsModules],
  logLevel: 'warning',
});
const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
console.log(`bundle: ${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024 / 1024).toFixed(1)} MB`);

// Which chunk each lazily loaded module became, for bench/footprint.mjs (not shipped: dist/ is the build's).
mkdirSync('dist', { recursive: true });
writeFileSync('dist/bundle-meta.json', JSON.stringify(result.metafile.outputs));
