// @ts-check
/*
 * Runs once before any test file.
 *
 * The tests start a few hundred Node processes (the operator's scripts, synth, the CLIs). None of
 * them talks to a TLS server outside the tests (the smoke tests pass their own CA with --ca), so
 * none needs the extra CA bundle that NODE_EXTRA_CA_CERTS may name, which Node reads and parses at
 * every start (tens of milliseconds each on a slow machine).
 *
 * Many tests work in copies of the project that start from the repository's kept bundles in
 * .cache/ (synth's two bundles, yaml's, lib/image-bump.ts's) and build again only what differs.
 * Bringing those bundles up to date here, once, spares every copy from building the same bundle
 * for itself (the packages bundle alone is more than a megabyte). Nothing outside .cache/ is
 * written: dist/ stays as it is. Code that does not bundle is left to the tests to report.
 */
'use strict';
const { prepareBundles } = require('../scripts/synth');
const { loadPackage, loadTypeScript } = require('../scripts/ts-module');

module.exports = () => {
  delete process.env.NODE_EXTRA_CA_CERTS;

  try {
    prepareBundles();
    loadPackage('yaml');
    loadTypeScript('lib/image-bump.ts', 'bump');
  } catch (error) {
    console.error(`\nglobal setup: the kept bundles are not up to date (${error}); the tests will say why\n`);
  }
};
