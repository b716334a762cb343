// Lint: typescript-eslint recommended rules plus the layer boundaries of ARCHITECTURE.md.
import tseslint from 'typescript-eslint';

const PROTOCOLS = ['rtmp', 'rtsp', 'mpegts', 'hls', 'dvr'];

const noProtocols = {
  group: ['**/protocols/**'],
  message: 'The core never imports adapters; src/main.ts (the CLI) wires them.',
};
const noIo = {
  group: ['node:net', 'node:dgram', 'node:http', 'node:https', 'node:tls', 'node:fs', 'node:child_process'],
  message: 'wire/ is sans-IO: take bytes, return values; the adapter does I/O.',
};

/**
 * The core's layers, bottom up (ARCHITECTURE.md "Layers"): a module may import its own layer
 * and the ones below, never one above. `core` is the shared vocabulary and imports nothing.
 * Above `sessions` sit http/, api/, admin/, the adapters and the composition root.
 */
const ROOT_MODULES = ['server', 'main', 'adapter', 'client-conn', 'tcp-listener'];
const UPPER_DIRS = ['sessions', 'http', 'api', 'admin', 'cli', 'sql'];
const LAYERS = {
  media: ['config', 'tokens', 'auth', 'streams', ...UPPER_DIRS],
  config: ['media', 'tokens', 'auth', 'streams', ...UPPER_DIRS],
  tokens: ['media', 'auth', 'streams', ...UPPER_DIRS],
  auth: ['media', 'streams', ...UPPER_DIRS],
  streams: ['tokens', 'auth', ...UPPER_DIRS],
  sessions: ['media', 'streams', 'http', 'api', 'admin', 'cli', 'sql'],
};
const layerRules = [
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../*'],
              message: 'src/core is the vocabulary every layer speaks; it imports nothing.',
            },
          ],
        },
      ],
    },
  },
  ...Object.entries(LAYERS).map(([layer, above]) => ({
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            noProtocols,
            {
              group: [...above.map((d) => `**/${d}/**`), ...ROOT_MODULES.map((m) => `../${m}.js`)],
              message: `src/${layer} must not import a layer above it (ARCHITECTURE.md "Layers").`,
            },
          ],
        },
      ],
    },
  })),
];

/** Adapters see the core through its interfaces: never the composition root or the session internals. */
const adapterContract = {
  group: [
    '**/src/server.js',
    '**/src/main.js',
    '**/src/api/**',
    '**/src/admin/**',
    '**/src/cli/**',
    '**/src/sessions/*',
    '!**/src/sessions/types.js',
  ],
  message:
    'adapters receive the core through src/adapter.ts and src/sessions/types.ts, never the root or internals.',
};

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'test-artifacts/**', 'data/**', 'test/fixtures/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      curly: ['error', 'multi-line'],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/main.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [noProtocols] }] },
  },
  ...layerRules,
  {
    // The SQL endpoint's wire code (src/sql/wire) is sans-IO like an adapter's; it may use the core vocabulary only.
    files: ['src/sql/wire/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            noIo,
            noProtocols,
            { group: ['../*.js', '../../*', '!../../core'], message: 'src/sql/wire may use src/core only.' },
          ],
        },
      ],
    },
  },
  ...PROTOCOLS.flatMap((p) => {
    const others = {
      group: PROTOCOLS.filter((o) => o !== p).map((o) => `**/protocols/${o}/**`),
      message: `protocols/${p} must not import another adapter; share through src/.`,
    };
    return [
      {
        files: [`protocols/${p}/**/*.ts`],
        ignores: [`protocols/${p}/wire/**`],
        rules: { 'no-restricted-imports': ['error', { patterns: [others, adapterContract] }] },
      },
      {
        files: [`protocols/${p}/wire/**/*.ts`],
        rules: {
          'no-restricted-imports': [
            'error',
            {
              patterns: [
                noIo,
                others,
                adapterContract,
                { group: ['**/src/*', '!**/src/media'], message: 'wire/ may use pure media formats only.' },
              ],
            },
          ],
        },
      },
    ];
  }),
);
