/**
 * The import directions of src/ (docs/import-rules.md says why), checked by `npm run deps`.
 * LAYERS runs from the bottom up: a folder imports from its own layer's folders and from those
 * below, never from one above. Type-only imports count (tsPreCompilationDeps), and so do loops.
 */
const LAYERS = [
  ['util'],
  ['log.ts'],
  ['pki'],
  ['dns'],
  ['config'],
  ['state'],
  ['plan'],
  ['obtain'],
  ['publish'],
  ['dane'],
  ['deploy'],
  ['report'],
  ['alerts'],
  ['proxy'],
  ['run'],
  ['parts.ts', 'main.ts', 'cli.ts', 'commands'],
];

const path = (names) => `^src/(${names.map((n) => n.replace('.', '\\.')).join('|')})($|/)`;

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `${layer.join('-').replace('.ts', '')}-not-upward`,
  comment: `${layer.join(', ')} may import only from ${LAYERS.slice(0, i).flat().join(', ') || 'node and npm packages'}`,
  severity: 'error',
  from: { path: path(layer) },
  to: { path: path(LAYERS.slice(i + 1).flat()) },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'no-circular',
      comment: 'An import loop, type-only ones included: move what both sides need below both.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'src-not-to-tests',
      comment: 'The shipped code does not reach into tests, scripts or benchmarks.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|scripts|bench)/' },
    },
    {
      name: 'src-not-to-dev-dependencies',
      comment: 'src/ is what the image ships, without devDependencies.',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to nothing.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
