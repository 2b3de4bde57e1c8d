import type { Config } from 'jest';

// jose 6 ships ESM only. Node 20 can require() it at run time, but Jest's module loader cannot,
// so ts-jest transpiles jose (and our TypeScript) to CommonJS. isolatedModules: type checking is
// `tsc --noEmit`'s job in `npm test`, which keeps each test file's transform fast.
export const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.[tj]s$': [
      'ts-jest',
      {
        tsconfig: { allowJs: true, module: 'commonjs', moduleResolution: 'node', esModuleInterop: true, isolatedModules: true },
      },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!jose/)'],
  testTimeout: 30_000,
  reporters: ['default', '<rootDir>/tests/plain-summary-reporter.cjs'],
  // CI has 2 cores; the suites are mostly waiting on loopback I/O, so two workers use them well.
  maxWorkers: 2,
};

module.exports = config;
