// @ts-check
/*
 * `npm run synth`: compiles main.ts and lib/ with esbuild (no type check: that is `npm test`'s
 * job) into .cache/, then runs it. The compiled file is reused while no source file changed,
 * so a synth costs little more than loading cdk8s.
 */
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const cacheDir = path.join(root, '.cache', 'synth');
const bundle = path.join(cacheDir, 'main.js');
const inputsFile = path.join(cacheDir, 'inputs.json');

/** @returns {boolean} whether the bundle exists and every input is as it was when built. */
function upToDate() {
  let inputs;
  try {
    inputs = JSON.parse(fs.readFileSync(inputsFile, 'utf8'));
  } catch {
    return false;
  }
  return Object.entries(inputs).every(([file, stamp]) => {
    try {
      const stat = fs.statSync(path.join(root, file));
      return `${stat.mtimeMs}:${stat.size}` === stamp;
    } catch {
      return false;
    }
  }) && fs.existsSync(bundle);
}

function build() {
  const esbuild = require('esbuild');
  const result = esbuild.buildSync({
    absWorkingDir: root,
    entryPoints: ['main.ts'],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    packages: 'external',
    outfile: bundle,
    metafile: true,
    logLevel: 'error',
  });
  /** @type {Record<string, string>} */
  const inputs = {};
  for (const file of Object.keys(result.metafile.inputs)) {
    const stat = fs.statSync(path.join(root, file));
    inputs[file] = `${stat.mtimeMs}:${stat.size}`;
  }
  fs.writeFileSync(inputsFile, JSON.stringify(inputs));
}

process.chdir(root);
if (!upToDate()) build();
require(bundle);
