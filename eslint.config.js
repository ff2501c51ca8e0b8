// Lint: typescript-eslint's recommended rules, plus the architectural rule that keeps `core` pure.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ioModules = [
  'fs', 'fs/promises', 'net', 'http', 'https', 'http2', 'child_process', 'dgram', 'worker_threads',
  'dns', 'tls', 'cluster', 'readline', 'process', 'os',
].flatMap((m) => [m, `node:${m}`]);

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'testdata/**', 'tollgate-data/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Plain JavaScript helpers (child processes in tests) run on Node.
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: {
      globals: Object.fromEntries(['process', 'console', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Buffer', 'URL', 'fetch'].map((g) => [g, 'readonly'])),
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The decision core does no I/O, reads no clock and touches no globals: everything it needs is
    // passed in, so every decision is reproducible from its inputs.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ioModules.map((name) => ({ name, message: 'core is pure: do I/O in an adapter and pass the result in.' })),
        patterns: [{ group: ['**/cli/**', '**/server/**', 'fastify', 'kysely', 'pino', 'undici'], message: 'core must not depend on adapters.' }],
      }],
      'no-restricted-globals': ['error',
        { name: 'process', message: 'core must not read the environment.' },
        { name: 'fetch', message: 'core does no I/O.' },
        { name: 'setTimeout', message: 'core has no clock.' },
        { name: 'setInterval', message: 'core has no clock.' },
      ],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'core has no clock: take time as a parameter.' },
        { object: 'Math', property: 'random', message: 'core is deterministic.' },
      ],
      'no-restricted-syntax': ['error', {
        selector: "NewExpression[callee.name='Date'][arguments.length=0]",
        message: 'core has no clock: take time as a parameter.',
      }],
    },
  },
);
