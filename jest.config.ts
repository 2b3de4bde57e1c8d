import type { Config } from 'jest';

// One file for every supported Node line. Where Node does not strip types (20, and 22 before 22.18), Jest loads
// this through ts-node, compiled to CommonJS; Node 22.18+ and 24 strip the types natively and load it as an ES
// module, where `module.exports` does not exist. An ES default export with only erasable TypeScript (a type
// import and annotations) is valid both ways.
//
// jose 6 ships ESM only. Node (20.19+, 22.12+) can require() it at run time, but Jest's module loader cannot,
// so ts-jest transpiles jose (and our TypeScript) to CommonJS. isolatedModules: type checking is
// `tsc --noEmit`'s job in `npm test`, which keeps each test file's transform fast.
const config: Config = {
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

export default config;
