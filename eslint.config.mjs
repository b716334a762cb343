// Lint: typescript-eslint recommended rules plus the layer boundaries of ARCHITECTURE.md.
import tseslint from 'typescript-eslint';

const PROTOCOLS = ['rtmp', 'rtsp', 'mpegts', 'hls'];

const noProtocols = {
  group: ['**/protocols/**'],
  message: 'The core never imports adapters; src/main.ts (the CLI) wires them.',
};
const noIo = {
  group: ['node:net', 'node:dgram', 'node:http', 'node:https', 'node:tls', 'node:fs', 'node:child_process'],
  message: 'wire/ is sans-IO: take bytes, return values; the adapter does I/O.',
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
  ...PROTOCOLS.flatMap((p) => {
    const others = {
      group: PROTOCOLS.filter((o) => o !== p).map((o) => `**/protocols/${o}/**`),
      message: `protocols/${p} must not import another adapter; share through src/.`,
    };
    return [
      {
        files: [`protocols/${p}/**/*.ts`],
        ignores: [`protocols/${p}/wire/**`],
        rules: { 'no-restricted-imports': ['error', { patterns: [others] }] },
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
                { group: ['**/src/*', '!**/src/media'], message: 'wire/ may use pure media formats only.' },
              ],
            },
          ],
        },
      },
    ];
  }),
);
