// @ts-check
const os = require('os');

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // swc strips the types (fast); `tsc --noEmit` in `npm test` does the type check once.
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' } }] },
  // A worker per core. Jest's default keeps one core for its main process, which only waits; on a
  // 2-core machine that runs the test files one after another.
  maxWorkers: Math.max(2, os.availableParallelism()),
  snapshotResolver: '<rootDir>/test/snapshot-resolver.js',
  globalSetup: '<rootDir>/test/global-setup.js',
  cacheDirectory: '<rootDir>/.cache/jest',
};
