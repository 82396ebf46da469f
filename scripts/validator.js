#!/usr/bin/env node
// @ts-check
/*
 * `npm run validator`: writes lib/config-validator.js, ajv's standalone validator of the schema in
 * lib/config-schema.ts. Run it after every change of the schema (synth refuses a stale one).
 * `--check` writes nothing and exits 1 when the committed file is stale.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { loadTypeScript } = require('./ts-module');

const root = path.resolve(__dirname, '..');
const target = path.join(root, 'lib', 'config-validator.js');

/** @returns {string} what lib/config-validator.js must hold */
function generate() {
  const source = /** @type {{ configValidatorSource?: () => string }} */ (
    loadTypeScript('lib/config-validator-source.ts', 'validator'));
  if (!source.configValidatorSource) {
    throw new Error('lib/config-validator-source.ts exports no configValidatorSource');
  }
  return source.configValidatorSource();
}

const source = generate();
const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
if (process.argv.includes('--check')) {
  if (current !== source) {
    console.error('validator: lib/config-validator.js is stale: run npm run validator');
    process.exitCode = 1;
  }
} else if (current !== source) {
  fs.writeFileSync(`${target}.tmp`, source);
  fs.renameSync(`${target}.tmp`, target);
  console.log('validator: wrote lib/config-validator.js');
} else {
  console.log('validator: lib/config-validator.js is up to date');
}
