#!/usr/bin/env node
// @ts-check
/*
 * `npm run synth`: bundles main.ts with lib/ and imports/ using esbuild (no type check: that is
 * `npm test`'s job), then runs it. config/*.yaml is data, read by the bundle on every run, never
 * bundled.
 *
 * Speed, because the operator's loop is edit, synth, read the diff:
 * - Two bundles in .cache/synth/: main.js (our code, a few hundred kB, rebuilt in tens of
 *   milliseconds after an edit) and vendor.js (the packages main.js imports, rebuilt only when
 *   node_modules changes). Each is reused while every file it was built from, and every file
 *   that shapes the build (BUILD_INPUTS), is as it was then: same size and times, or for our own
 *   files, same content (a hash, read only when the times differ, as in a copy of the project).
 *   A new file only enters a bundle once an input imports it, and that edit changes the input.
 * - Loading one file instead of a few hundred modules saves module resolution, and V8's code
 *   cache of each bundle (made after its first run, like Node 22's module.enableCompileCache())
 *   saves parsing and compiling it again. A cache names the exact bundle and Node it belongs to;
 *   any other cache is ignored and replaced.
 */
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const { createRequire, isBuiltin } = require('module');

const root = path.resolve(__dirname, '..');
const cacheDir = path.join(root, '.cache', 'synth');

/** Files that change a bundle without being part of it (a missing one is recorded as missing). */
const BUILD_INPUTS = [
  path.relative(root, __filename),
  'tsconfig.json',
  'package.json',
  'node_modules/.package-lock.json',
  'node_modules/esbuild/package.json',
];

/**
 * @typedef {object} Bundle
 * @property {string} title how messages name it
 * @property {string} file the bundle
 * @property {string} stampsFile what it was built from: `{ packages, files: { path: stamp } }`
 * @property {string} codeCacheFile V8's code cache of it
 */

/** @type {Bundle} */
const APP = {
  title: 'main.ts',
  file: path.join(cacheDir, 'main.js'),
  stampsFile: path.join(cacheDir, 'main.inputs.json'),
  codeCacheFile: path.join(cacheDir, 'main.js.v8'),
};

/** @type {Bundle} */
const VENDOR = {
  title: 'the packages',
  file: path.join(cacheDir, 'vendor.js'),
  stampsFile: path.join(cacheDir, 'vendor.inputs.json'),
  codeCacheFile: path.join(cacheDir, 'vendor.js.v8'),
};

/**
 * @typedef {object} Stamps
 * @property {string[]} packages the packages (e.g. `cdk8s`, `ajv/dist/standalone`) main.js imports
 * @property {Record<string, string>} files every input, by path relative to the project
 */

/**
 * The esbuild options for one self-contained bundle of `entry` (relative to `projectRoot`);
 * shared with the benchmark so that it measures the same kind of bundle.
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
 * @param {fs.Stats} stat
 * @returns {string}
 */
function times(stat) {
  return `${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
}

/** @param {string} file absolute path */
function contentHash(file) {
  return crypto.createHash('sha1').update(fs.readFileSync(file)).digest('base64url');
}

/** @param {string} file relative to the project: whether it is the project's own (not a package) */
function isOwn(file) {
  return !file.startsWith('..') && !file.startsWith(`node_modules${path.sep}`);
}

/**
 * How an input is recorded: its times, and for the project's own files also a hash of the
 * content, so that a copy of the project (new times, same content) reuses the bundles.
 * @param {string} file relative to the project
 * @param {number} since the file clock when bundling started
 * @returns {string}
 */
function stampInput(file, since) {
  const absolute = path.join(root, file);
  let stat;
  try {
    stat = fs.statSync(absolute);
  } catch {
    return 'missing';
  }
  // A file saved while esbuild ran may be in the bundle as it was before: build again next time.
  if (stat.ctimeMs >= since) return 'changed while bundling';
  return isOwn(file) ? `${times(stat)} ${contentHash(absolute)}` : times(stat);
}

/**
 * @param {string} file relative to the project
 * @param {string} recorded its stamp when the bundle was built
 * @returns {boolean} whether the file is as it was then (the hash is read only when the times differ)
 */
function unchanged(file, recorded) {
  const absolute = path.join(root, file);
  let stat;
  try {
    stat = fs.statSync(absolute);
  } catch {
    return recorded === 'missing';
  }
  const [recordedTimes, recordedHash] = recorded.split(' ');
  if (times(stat) === recordedTimes) return true;
  return recordedHash !== undefined && contentHash(absolute) === recordedHash;
}

/**
 * The file system's clock now, for comparing with file times (which the kernel takes from a
 * coarser clock than Date.now()).
 * @returns {number}
 */
function fileClock() {
  const marker = path.join(cacheDir, `clock.${process.pid}.tmp`);
  fs.writeFileSync(marker, '');
  const { ctimeMs } = fs.statSync(marker);
  fs.rmSync(marker);
  return ctimeMs;
}

/**
 * @param {Bundle} bundle
 * @returns {Stamps | undefined} what the bundle was built from, if it exists
 */
function readStamps(bundle) {
  try {
    const stamps = JSON.parse(fs.readFileSync(bundle.stampsFile, 'utf8'));
    return fs.existsSync(bundle.file) ? stamps : undefined;
  } catch {
    return undefined;
  }
}

/**
 * @param {Stamps | undefined} stamps
 * @returns {string | undefined} why the bundle must be built (e.g. `lib/config.ts changed`), if it must
 */
function rebuildReason(stamps) {
  if (stamps === undefined) return 'no bundle yet';
  for (const [file, recorded] of Object.entries(stamps.files)) {
    if (!unchanged(file, recorded)) return `${file} changed`;
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

/**
 * Runs esbuild and replaces the bundle and its stamps; on a build error esbuild has printed the
 * errors, and nothing is replaced.
 * @param {Bundle} bundle
 * @param {import('esbuild').BuildOptions & { metafile: true, write: false }} options
 * @param {string} reason
 * @param {string[]} [packages] the packages it exports (by default, those it imports)
 * @returns {Stamps}
 */
function build(bundle, options, reason, packages) {
  const started = Date.now();
  fs.mkdirSync(cacheDir, { recursive: true });
  const buildStart = fileClock();
  // One build per process: esbuild's worker thread for synchronous calls would only add its own
  // start-up (about 30 ms) to the call of the esbuild binary.
  process.env.ESBUILD_WORKER_THREADS = '0';
  let result;
  try {
    result = require('esbuild').buildSync(options);
  } catch (error) {
    // A build failure carries the errors esbuild has already printed; anything else is printed here.
    const printed = error instanceof Error && 'errors' in error;
    console.error(`synth: bundling ${bundle.title} failed${printed ? ' (errors above)' : `: ${error}`}; `
      + 'dist/ is unchanged');
    process.exit(1);
  }
  const [output] = Object.values(result.metafile.outputs);
  /** @type {Stamps} */
  const stamps = {
    packages: packages ?? [...new Set(output.imports
      .filter((i) => i.external && !isBuiltin(i.path))
      .map((i) => i.path))].sort(),
    files: {},
  };
  for (const file of [...BUILD_INPUTS, ...Object.keys(result.metafile.inputs)]) {
    if (!file.startsWith('<')) stamps.files[file] = stampInput(file, buildStart);
  }
  fs.rmSync(bundle.stampsFile, { force: true });
  fs.rmSync(bundle.codeCacheFile, { force: true });
  writeWhole(bundle.file, result.outputFiles[0].contents);
  writeWhole(bundle.stampsFile, JSON.stringify(stamps, null, 1));
  console.error(`synth: bundled ${bundle.title} in ${Date.now() - started} ms (${reason})`);
  return stamps;
}

/**
 * Bundles the packages main.js imports into one module that exports each by its name.
 * Getters keep loading lazy and in main.js's order, as separate `require` calls would.
 * @param {string[]} packages
 * @param {string} reason
 */
function buildVendor(packages, reason) {
  const getters = packages
    .map((name) => JSON.stringify(name))
    .map((name) => `  get ${name}() { return require(${name}); },`);
  /** @type {import('esbuild').BuildOptions & { metafile: true, write: false }} */
  const options = esbuildOptions(root, '', VENDOR.file);
  delete options.entryPoints;
  options.stdin = {
    contents: `module.exports = {\n${getters.join('\n')}\n};\n`,
    resolveDir: root,
    sourcefile: '<packages>',
  };
  return build(VENDOR, options, reason, packages);
}

/**
 * Runs a bundle like `require` would, with V8's code cache when there is one for exactly this
 * bundle and this Node; otherwise makes one when the run ends.
 * @param {Bundle} bundle
 * @param {(id: string) => unknown} requireFn what the bundle's `require` calls get
 * @returns {unknown} the bundle's exports
 */
function load(bundle, requireFn) {
  const source = fs.readFileSync(bundle.file, 'utf8');
  const key = Buffer.from(`${process.version} ${process.arch} ${times(fs.statSync(bundle.file))}\n`);
  /** @type {Buffer | undefined} */
  let cachedData;
  try {
    const file = fs.readFileSync(bundle.codeCacheFile);
    if (file.subarray(0, key.length).equals(key)) cachedData = file.subarray(key.length);
  } catch {
    // no cache yet
  }

  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle.file,
    cachedData,
  });
  if (cachedData === undefined || script.cachedDataRejected) {
    // After the run, so that the cache also holds the functions compiled while running.
    process.once('exit', () => {
      try {
        writeWhole(bundle.codeCacheFile, Buffer.concat([key, script.createCachedData()]));
      } catch {
        // a missing cache only costs time
      }
    });
  }
  const bundleModule = { exports: {} };
  script.runInThisContext()(bundleModule.exports, requireFn, bundleModule, bundle.file, cacheDir);
  return bundleModule.exports;
}

function synth() {
  process.chdir(root);
  const appStamps = readStamps(APP);
  const appReason = rebuildReason(appStamps);
  const app = appReason === undefined
    ? /** @type {Stamps} */ (appStamps)
    : build(APP, { ...esbuildOptions(root, 'main.ts', APP.file), packages: 'external' }, appReason);

  const vendorStamps = readStamps(VENDOR);
  const vendorReason = rebuildReason(vendorStamps)
    ?? (vendorStamps?.packages.join() === app.packages.join() ? undefined : 'main.ts imports other packages');
  if (vendorReason !== undefined) buildVendor(app.packages, vendorReason);

  const nodeRequire = createRequire(APP.file);
  const vendor = /** @type {Record<string, unknown>} */ (load(VENDOR, createRequire(VENDOR.file)));
  const packages = new Set(app.packages);
  load(APP, (id) => (packages.has(id) ? vendor[id] : nodeRequire(id)));
}

if (require.main === module) synth();

module.exports = { esbuildOptions };
