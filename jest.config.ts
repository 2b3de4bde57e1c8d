/** @jest-config-loader-options {"transpileOnly": true, "compilerOptions": {"module": "CommonJS", "moduleResolution": "node10"}} */
import type { Config } from 'jest';

// One file for every supported Node line. Where Node does not strip types (20, and 22 before 22.18), Jest loads
// this through ts-node, compiled to CommonJS (transpile only, the docblock above: `npm test`'s tsc checks its types,
// and type-checking it again took about 4 s on every run); Node 22.18+ and 24 strip the types natively and load it as an ES
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
  // Dynamic imports in src name the built file (`./local/local-mode.js`), as Node's resolver needs; here the
  // source is TypeScript, so a relative `.js` specifier resolves to the `.ts` file beside it.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  // No test reaches the network: a connect or DNS lookup to anything but loopback throws (tests/setup/network-guard.ts).
  setupFilesAfterEnv: ['<rootDir>/tests/setup/block-network.ts'],
  // Real RSA keys and a CA made once per run (a week's reuse) instead of once per emulator: tests/helpers/key-pool.ts.
  globalSetup: '<rootDir>/tests/setup/key-pool.ts',
  testTimeout: 30_000,
  reporters: ['default', '<rootDir>/tests/plain-summary-reporter.cjs'],
  // Two test files at a time: the suites mostly wait on loopback I/O to the emulators, and the ones that
  // time upstream calls (deadlines of a few hundred ms) stay reliable when the CPU is not oversubscribed.
  maxWorkers: 2,
};

export default config;
