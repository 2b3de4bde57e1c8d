// Lint for src, client, tests, bench and deploy: ESLint's and typescript-eslint's recommended rules with type
// information (the TypeScript program of tsconfig.json), a few rules this codebase depends on, and
// eslint-config-prettier last so that formatting is Prettier's job alone (`npm run format`).
import eslint from '@eslint/js';
import comments from '@eslint-community/eslint-plugin-eslint-comments/configs';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'dist-package/', 'coverage/', '.ci/', '.local-azure/', 'bench/results/', 'node_modules/'] },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  comments.recommended,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A disabled rule says why (`-- reason`).
      '@eslint-community/eslint-comments/require-description': ['error', { ignore: [] }],
      '@eslint-community/eslint-comments/disable-enable-pair': ['error', { allowWholeFile: true }],
      // Promises are awaited or handed over on purpose; a dropped one hides a failure.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      eqeqeq: ['error', 'always'],
      'no-console': 'error',
    },
  },
  {
    // Small functions a reader can hold in their head; the limit of issue 12 (about 80 lines).
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: false, skipComments: false, IIFEs: true }],
    },
  },
  {
    // Command-line entry points and benchmarks write to the terminal by design.
    files: ['src/cli/**/*.ts', 'bench/**/*.ts', 'deploy/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
  {
    // Client code runs in browsers (the token refresher in Node too): none of Node's own globals.
    files: ['client/**/*.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        ...['Buffer', 'process', 'require', 'module', '__dirname', '__filename', 'global', 'setImmediate'].map((name) => ({
          name,
          message: 'not available in browsers',
        })),
      ],
    },
  },
  {
    // Apps copy the token refresher as it is: one file, no imports at all (no Node modules, no dependencies).
    files: ['client/token-refresher/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['*'], message: 'client code imports nothing: it must run in browsers and Node as one file' }] },
      ],
    },
  },
  {
    // The sign-in page is browser code, bundled by esbuild (client/web/build.mjs, which itself runs on Node).
    files: ['client/web/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['**/*.cjs', '**/*.mjs', '**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { sourceType: 'commonjs' },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module' },
  },
  prettier,
);
