// @ts-check
/*
 * Runs once before any test file. The tests start a few hundred Node processes (the operator's
 * scripts, synth, the CLIs). None of them talks to a TLS server outside the tests (the smoke tests
 * pass their own CA with --ca), so none needs the extra CA bundle that NODE_EXTRA_CA_CERTS may name,
 * which Node reads and parses at every start (tens of milliseconds each on a slow machine).
 */
'use strict';

module.exports = () => {
  delete process.env.NODE_EXTRA_CA_CERTS;
};
