#!/usr/bin/env node
// @ts-check
/*
 * `npm run synth`: bundles main.ts with lib/, imports/ and the libraries it uses into one file
 * with esbuild (no type check: that is `npm test`'s job), then runs it. config/*.yaml is data,
 * read by the bundle on every run, never bundled.
 *
 * Speed, because the operator's loop is edit, synth, read the diff:
 * - The bundle in .cache/synth/ is reused while every file it was built from, and every file
 *   that shapes the build (BUILD_INPUTS), has the size and times it had then. A new file only
 *   enters the bundle once an input imports it, and that edit changes the input.
 * - Loading one file instead of a few hundred modules saves module resolution, and V8's code
 *   cache of the bundle (made after the first run, like Node 22's module.enableCompileCache())
 *   saves parsing and compiling it again. The cache names the exact bundle and Node version
 *   it belongs to; any other cache is ignored and replaced.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const { createRequire } = require('module');

const root = path.resolve(__dirname, '..');
const cacheDir = path.join(root, '.cache', 'synth');
const bundle = path.join(cacheDir, 'main.js');
const stampsFile = path.join(cacheDir, 'inputs.json');
const codeCacheFile = path.join(cacheDir, 'main.js.v8');

/** Files that change the bundle without being part of it (a missing one is recorded as missing). */
const BUILD_INPUTS = [
  path.relative(root, __filename),
  'tsconfig.json',
  'package.json',
  'node_modules/.package-lock.json',
  'node_modules/esbuild/package.json',
];

/**
 * The esbuild options for bundling `entry` (relative to `projectRoot`) into `outfile`; shared with
 * the benchmark so that it measures the same kind of bundle.
 * @param {string} projectRoot
 * @param {string} entry
 * @param {string} outfile
 * @returns {import('esbuild').BuildOptions & { metafile: true, write: false }}
 */
function esbuildOptions(projectRoot, entry, outfile) {
  return {
    absWorkingDir: projectRoot,
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // Not keepNames: it costs about 60 ms a run (cdk8s-plus has thousands of classes), and esbuild
    // renames only top-level names that collide between our own files, which ours do not.
    outfile,
    write: false,
    metafile: true,
    logLevel: 'error',
  };
}

/**
 * What identifies a file's content without reading it: size, modification and change time
 * (the change time moves on every write, even when a tool restores the modification time).
 * @param {string} file absolute path
 * @returns {string}
 */
function stamp(file) {
  try {
    const stat = fs.statSync(file);
    return `${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
  } catch {
    return 'missing';
  }
}

/** @returns {string | undefined} why the bundle must be built (e.g. `lib/config.ts changed`), if it must. */
function rebuildReason() {
  /** @type {Record<string, string>} */
  let stamps;
  try {
    stamps = JSON.parse(fs.readFileSync(stampsFile, 'utf8'));
  } catch {
    return 'no bundle yet';
  }
  if (!fs.existsSync(bundle)) return 'no bundle yet';
  for (const [file, recorded] of Object.entries(stamps)) {
    if (stamp(path.join(root, file)) !== recorded) return `${file} changed`;
  }
  return undefined;
}

/**
 * Writes `content` to `file` through a temporary sibling and a rename, so a reader never sees
 * half a file (two synths may run at once).
 * @param {string} file
 * @param {string | Uint8Array} content
 */
function writeWhole(file, content) {
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, content);
  fs.renameSync(temporary, file);
}

/** Bundles main.ts; on a build error esbuild has printed the errors, and nothing is replaced. */
function build() {
  const esbuild = require('esbuild');
  let result;
  try {
    result = esbuild.buildSync(esbuildOptions(root, 'main.ts', bundle));
  } catch (error) {
    // A build failure carries the errors esbuild has already printed; anything else is printed here.
    const printed = error instanceof Error && 'errors' in error;
    console.error(`synth: bundling main.ts failed${printed ? ' (errors above)' : `: ${error}`}; dist/ is unchanged`);
    process.exit(1);
  }
  /** @type {Record<string, string>} */
  const stamps = {};
  for (const file of [...BUILD_INPUTS, ...Object.keys(result.metafile.inputs)]) {
    stamps[file] = stamp(path.join(root, file));
  }
  fs.mkdirSync(cacheDir, { recursive: true });
  fs.rmSync(stampsFile, { force: true });
  fs.rmSync(codeCacheFile, { force: true });
  writeWhole(bundle, result.outputFiles[0].contents);
  writeWhole(stampsFile, JSON.stringify(stamps, null, 1));
}

/**
 * Runs the bundle like `require` would, with V8's code cache when there is one for exactly this
 * bundle and this Node; otherwise makes one when the run ends.
 */
function run() {
  const source = fs.readFileSync(bundle, 'utf8');
  const key = Buffer.from(`${process.version} ${process.arch} ${stamp(bundle)}\n`);
  /** @type {Buffer | undefined} */
  let cachedData;
  try {
    const file = fs.readFileSync(codeCacheFile);
    if (file.subarray(0, key.length).equals(key)) cachedData = file.subarray(key.length);
  } catch {
    // no cache yet
  }

  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    cachedData,
  });
  if (cachedData === undefined || script.cachedDataRejected) {
    // After the run, so that the cache also holds the functions compiled while running.
    process.once('exit', () => {
      try {
        writeWhole(codeCacheFile, Buffer.concat([key, script.createCachedData()]));
      } catch {
        // a missing cache only costs time
      }
    });
  }
  const bundleModule = { exports: {} };
  script.runInThisContext()(bundleModule.exports, createRequire(bundle), bundleModule, bundle, cacheDir);
}

if (require.main === module) {
  process.chdir(root);
  const reason = rebuildReason();
  if (reason !== undefined) {
    const started = Date.now();
    build();
    console.error(`synth: bundled main.ts in ${Date.now() - started} ms (${reason})`);
  }
  run();
}

module.exports = { esbuildOptions, BUILD_INPUTS };
