// @ts-check
// Snapshots live in the top-level __snapshots__/, one file per test file, for easy review.
const path = require('path');

const root = path.resolve(__dirname, '..');
const snapshots = path.join(root, '__snapshots__');

module.exports = {
  /** @param {string} testPath @param {string} extension */
  resolveSnapshotPath: (testPath, extension) => path.join(snapshots, path.basename(testPath) + extension),
  /** @param {string} snapshotPath @param {string} extension */
  resolveTestPath: (snapshotPath, extension) => path.join(root, 'test', path.basename(snapshotPath, extension)),
  testPathForConsistencyCheck: path.join(root, 'test', 'example.test.ts'),
};
