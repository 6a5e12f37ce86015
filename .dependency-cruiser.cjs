/** Layer rules from the architecture page: a lower layer never imports a higher one. */
const layers = [
  'core',
  'binary',
  'vhd',
  'nbd',
  'disk',
  'storage',
  'repository',
  'hypervisor',
  'jobs',
  'app',
  'cli',
  'server',
];
// What each layer may import (besides itself and node builtins / npm packages where allowed).
const allowed = {
  core: [],
  binary: ['core'],
  vhd: ['core', 'binary'],
  nbd: ['core', 'binary'],
  disk: ['core', 'binary', 'vhd', 'nbd'],
  storage: ['core'],
  repository: ['core', 'binary', 'disk', 'storage'],
  hypervisor: ['core', 'binary', 'vhd', 'nbd', 'disk', 'storage', 'repository'],
  jobs: ['core', 'binary', 'vhd', 'nbd', 'disk', 'storage', 'repository', 'hypervisor'],
  app: ['core', 'binary', 'vhd', 'nbd', 'disk', 'storage', 'repository', 'hypervisor', 'jobs'],
  cli: [
    'core',
    'binary',
    'vhd',
    'nbd',
    'disk',
    'storage',
    'repository',
    'hypervisor',
    'jobs',
    'app',
    // `vmdelta serve` and `vmdelta user` start and configure the service.
    'server',
  ],
  server: [
    'core',
    'binary',
    'vhd',
    'nbd',
    'disk',
    'storage',
    'repository',
    'hypervisor',
    'jobs',
    'app',
  ],
};
const forbidden = layers.map((layer) => {
  const ok = [layer, ...allowed[layer]];
  const banned = layers.filter((l) => !ok.includes(l));
  return {
    name: `layer-${layer}`,
    comment: `src/${layer} may only import ${ok.join(', ')}`,
    severity: 'error',
    from: { path: `^src/${layer}/` },
    to: { path: banned.length ? `^src/(${banned.join('|')})/` : '^$' },
  };
});
forbidden.push(
  {
    name: 'core-builtins-only',
    comment: 'src/core uses node builtins only',
    severity: 'error',
    from: { path: '^src/core/' },
    to: {
      dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown'],
    },
  },
  {
    name: 'aws-sdk-only-in-s3',
    comment: '@aws-sdk is used only by the s3 object store',
    severity: 'error',
    from: { path: '^src/', pathNot: '^src/storage/s3' },
    to: { path: '@aws-sdk' },
  },
  {
    name: 'no-test-imports-from-src',
    severity: 'error',
    from: { path: '^src/' },
    to: { path: '^(test|bench)/' },
  },
  {
    name: 'no-circular',
    severity: 'error',
    from: {},
    to: { circular: true },
  },
);
module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
  },
};
