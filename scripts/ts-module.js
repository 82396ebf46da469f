// @ts-check
/*
 * Loads a TypeScript module of lib/ for a plain-JS script: esbuild bundles it (no type check,
 * as `npm run synth`; the packages it imports stay in node_modules) and the bundle is kept in
 * .cache/<folder>/ with a stamp of every file it was built from, so the next run needs no esbuild
 * call while they are unchanged. A bundle that cannot be kept (e.g. a read-only checkout) only
 * costs the next run its esbuild call.
 *
 * Also loads a package such as yaml from one bundled file kept in .cache/packages/: every script
 * start then reads and compiles one file instead of the package's many modules (for yaml, about
 * 40 ms of each start).
 */
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const { createRequire } = require('module');
const { fileClock, inputKey, stamp, times, unchanged, writeWhole } = require('./stamps');

const root = path.resolve(__dirname, '..');

/** Files that shape a bundle without being part of it. */
const BUILD_INPUTS = [
  path.relative(root, __filename), 'scripts/stamps.js', 'package.json', 'tsconfig.json',
  'node_modules/esbuild/package.json',
];

/** The packages a bundle of lib/ gets from their kept bundle (see loadPackage) when it requires them. */
const KEPT_PACKAGES = new Set(['yaml']);

/** Bundling failed; esbuild has printed its errors. */
class BundleError extends Error {}

/**
 * @typedef {object} Kept where a bundle is kept
 * @property {string} bundle the bundled code
 * @property {string} inputs the stamps of the files it was built from
 */

/**
 * @typedef {object} Code a bundle to run
 * @property {string} source
 * @property {string} [codeCache] where V8's code cache of it is kept (only for a kept bundle)
 * @property {string} [version] what a code cache must name to belong to exactly this bundle and Node
 */

/**
 * @param {Kept} kept
 * @returns {Code | undefined} the kept bundle, when every file it was built from is as it was then
 */
function keptBundle(kept) {
  try {
    /** @type {Record<string, string>} */
    const inputs = JSON.parse(fs.readFileSync(kept.inputs, 'utf8'));
    if (!Object.entries(inputs).every(([file, recorded]) => unchanged(root, file, recorded))) return undefined;
    // The times of the file read (a bundle is replaced by a rename: new times), for its code cache.
    const fd = fs.openSync(kept.bundle, 'r');
    try {
      const version = `${process.version} ${process.arch} ${times(fs.fstatSync(fd))}\n`;
      return { source: fs.readFileSync(fd, 'utf8'), codeCache: `${kept.bundle}.v8`, version };
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/**
 * Keeps `code` with the stamps of `files`, unless one of them was written after the file clock
 * read `since` (esbuild may have read it before): then the next run bundles again.
 * @param {Kept} kept
 * @param {string} code
 * @param {string[]} files relative to the project, as esbuild's metafile names them
 * @param {number} since
 */
function keepBundle(kept, code, files, since) {
  try {
    /** @type {Record<string, string>} */
    const inputs = {};
    for (const file of files) {
      const key = inputKey(root, file);
      inputs[key] = stamp(root, key, since);
      if (inputs[key] === 'changed while in use') return;
    }
    fs.rmSync(kept.inputs, { force: true });
    writeWhole(kept.bundle, code);
    writeWhole(kept.inputs, JSON.stringify(inputs, null, 1));
  } catch {
    // not kept: the next run bundles again
  }
}

/**
 * @param {string} folder under .cache/
 * @param {string} name
 * @returns {Kept}
 */
function keptFiles(folder, name) {
  return {
    bundle: path.join(root, '.cache', folder, `${name}.js`),
    inputs: path.join(root, '.cache', folder, `${name}.inputs.json`),
  };
}

/**
 * @param {string} entry relative to the project, e.g. `lib/image-bump.ts`
 * @param {Kept} kept
 * @param {'error' | 'silent'} logLevel whether esbuild prints its errors
 * @returns {Code} the entry bundled by esbuild, and kept for the next run
 */
function bundle(entry, kept, logLevel = 'error') {
  // One build per process: esbuild's worker thread for synchronous calls would only add its own
  // start-up (about 30 ms) to the call of the esbuild binary.
  process.env.ESBUILD_WORKER_THREADS = '0';
  const esbuild = require('esbuild');
  const since = fileClock(path.dirname(kept.bundle));
  let result;
  try {
    result = esbuild.buildSync({
      absWorkingDir: root,
      entryPoints: [entry],
      bundle: true,
      packages: 'external',
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      write: false,
      metafile: true,
      logLevel,
    });
  } catch {
    throw new BundleError(`bundling ${entry} failed (errors above)`);
  }
  const code = result.outputFiles[0].text;
  if (since !== undefined) {
    keepBundle(kept, code, [...BUILD_INPUTS, ...Object.keys(result.metafile.inputs)], since);
  }
  return { source: code };
}

/** The code caches this process writes when it ends. */
const pendingCodeCaches = new Set();

/**
 * Runs a bundle as the module `filename` would run (`requireFn` answers its require calls), with
 * V8's code cache of a kept bundle when there is one for exactly this bundle and this Node
 * (it saves parsing and compiling it again); otherwise makes one when the process ends, so that
 * it also holds the functions compiled while running.
 * @param {Code} code
 * @param {string} filename
 * @param {(id: string) => unknown} requireFn
 * @returns {unknown} its exports
 */
function run(code, filename, requireFn) {
  const { codeCache, version } = code;
  /** @type {Buffer | undefined} */
  let cachedData;
  if (codeCache !== undefined && version !== undefined) {
    try {
      const file = fs.readFileSync(codeCache);
      if (file.subarray(0, version.length).toString() === version) cachedData = file.subarray(version.length);
    } catch {
      // no code cache yet
    }
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${code.source}\n})`;
  const script = new vm.Script(wrapped, { filename, cachedData });
  if (codeCache !== undefined && (cachedData === undefined || script.cachedDataRejected)
    && !pendingCodeCaches.has(codeCache)) {
    pendingCodeCaches.add(codeCache);
    process.once('exit', () => {
      try {
        writeWhole(codeCache, Buffer.concat([Buffer.from(String(version)), script.createCachedData()]));
      } catch {
        // a missing code cache only costs time
      }
    });
  }
  const bundleModule = { exports: {} };
  script.runInThisContext()(bundleModule.exports, requireFn, bundleModule, filename, path.dirname(filename));
  return bundleModule.exports;
}

/**
 * The exports of `entry`, bundled (or the bundle kept in `.cache/<folder>/` from an earlier run).
 * Throws a BundleError when esbuild fails.
 * @param {string} entry relative to the project, e.g. `lib/image-bump.ts`
 * @param {string} folder the folder under .cache/ that keeps the bundle
 * @returns {unknown}
 */
function loadTypeScript(entry, folder) {
  const name = path.basename(entry, '.ts');
  const kept = keptFiles(folder, name);
  const code = keptBundle(kept) ?? bundle(entry, kept);
  const filename = path.join(root, path.dirname(entry), `${name}.bundle.js`);
  const requireFromBundle = createRequire(filename);
  return run(code, filename, (id) => (KEPT_PACKAGES.has(id) ? loadPackage(id) : requireFromBundle(id)));
}

/** @type {Map<string, unknown>} the packages loaded so far, by name */
const loadedPackages = new Map();

/**
 * The exports of the package `name` (e.g. `yaml`), the same on every call: from its bundle kept
 * in .cache/packages/ (made on first use). Where no bundle can be kept (a read-only checkout) or
 * made (esbuild is not installed), the package as `require` loads it.
 * @param {string} name
 * @returns {unknown}
 */
function loadPackage(name) {
  if (!loadedPackages.has(name)) {
    const kept = keptFiles('packages', name.replace(/\//g, '+'));
    let code = keptBundle(kept);
    if (code === undefined && fileClock(path.dirname(kept.bundle)) !== undefined) {
      try {
        code = bundle(path.relative(root, require.resolve(name)), kept, 'silent');
      } catch {
        code = undefined;
      }
    }
    // As if in the package's folder, for what the bundle still requires (e.g. its dependencies).
    const filename = path.join(root, 'node_modules', name, 'bundle.js');
    const exports = code === undefined ? require(name) : run(code, filename, createRequire(filename));
    loadedPackages.set(name, exports);
  }
  return loadedPackages.get(name);
}

module.exports = { loadTypeScript, loadPackage, run, BundleError };
