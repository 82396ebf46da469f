#!/usr/bin/env node
// @ts-check
/*
 * `npm run synth`: bundles main.ts with lib/ and imports/ using esbuild (no type check: that is
 * `npm test`'s job), then runs it. config/*.yaml is data, read by the bundle on every run, never
 * bundled.
 *
 * Speed, because the operator's loop is edit, synth, read the diff:
 * - Two bundles in .cache/synth/: main.js (the code we write, about 60 kB, rebuilt in tens of
 *   milliseconds after an edit) and vendor.js (the packages main.js imports and the generated
 *   code of GENERATED, rebuilt only when node_modules or a generated file changes). Each is
 *   reused while every file it was built from, and every file
 *   that shapes the build (BUILD_INPUTS), is as it was then: same size and times, or for our own
 *   files, same content (a hash, read only when the times differ, as in a copy of the project).
 *   A new file only enters a bundle once an input imports it, and that edit changes the input.
 * - Loading one file instead of a few hundred modules saves module resolution, and V8's code
 *   cache of each bundle (made after its first run, like Node 22's module.enableCompileCache())
 *   saves parsing and compiling it again. A cache names the exact bundle (a hash of its content)
 *   and Node it belongs to; any other cache is ignored and replaced.
 * - A synth with nothing changed does no work: the last full synth recorded what it read (the
 *   bundles, every file in config/) and a hash of every file it wrote to dist/. While all of them
 *   are as recorded, dist/ is what the code synthesizes, and the synth prints the recorded report
 *   without loading cdk8s. `--force` synthesizes anyway.
 */
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { createRequire, isBuiltin } = require('module');
const {
  contentHash, fileClock, filesUnder, inputKey, stamp, times, unchanged, writeWhole,
} = require('./stamps');
const { run } = require('./ts-module');

const root = path.resolve(__dirname, '..');
const cacheDir = path.join(root, '.cache', 'synth');
/** The folders main.ts reads its data from and writes to, relative to the project. */
const CONFIG_DIR = 'config';
const OUT_DIR = 'dist';
/** What the last full synth read and wrote (see LastRun). */
const LAST_RUN = path.join(cacheDir, 'last-run.json');
const USAGE = 'usage: node scripts/synth.js [--force]   (--force: synthesize even when nothing changed)';

/**
 * Generated code main.ts imports (esbuild's `external` patterns): `npm run import`'s CRD classes and
 * `npm run validator`'s config validator, 180 kB that change only when generated again. They go
 * into vendor.js, so an edit of our code bundles and compiles only the files we write.
 */
const GENERATED = ['./imports/*', './lib/config-validator.js'];

/** Files that change a bundle without being part of it (a missing one is recorded as missing). */
const BUILD_INPUTS = [
  path.relative(root, __filename),
  'scripts/stamps.js',
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
  title: 'the packages and generated code',
  file: path.join(cacheDir, 'vendor.js'),
  stampsFile: path.join(cacheDir, 'vendor.inputs.json'),
  codeCacheFile: path.join(cacheDir, 'vendor.js.v8'),
};

/**
 * @typedef {object} Stamps
 * @property {string[]} packages the modules main.js imports from vendor.js, as main.js names them:
 *   packages (e.g. `cdk8s`) and generated files (e.g. `../../imports/traefik-middleware-traefik.io`)
 * @property {Record<string, string>} files every input, by path (see scripts/stamps.js)
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
    if (!unchanged(root, file, recorded)) return `${file} changed`;
  }
  return undefined;
}

/** Bundling failed; the message says so and why (esbuild has printed its errors). */
class BundleError extends Error {}

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
  // Without a clock (the cache cannot be written) every input counts as changed while in use.
  const buildStart = fileClock(cacheDir) ?? 0;
  // One build per process: esbuild's worker thread for synchronous calls would only add its own
  // start-up (about 30 ms) to the call of the esbuild binary.
  process.env.ESBUILD_WORKER_THREADS = '0';
  let result;
  try {
    result = require('esbuild').buildSync(options);
  } catch (error) {
    // A build failure carries the errors esbuild has already printed; anything else is printed here.
    const printed = error instanceof Error && 'errors' in error;
    const why = printed ? ' (errors above)' : `: ${error}`;
    throw new BundleError(`synth: bundling ${bundle.title} failed${why}; `
      + 'dist/ is unchanged');
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
    if (file.startsWith('<')) continue;
    const key = inputKey(root, file);
    stamps.files[key] = stamp(root, key, buildStart);
  }
  fs.rmSync(bundle.stampsFile, { force: true });
  fs.rmSync(bundle.codeCacheFile, { force: true });
  writeWhole(bundle.file, result.outputFiles[0].contents);
  writeWhole(bundle.stampsFile, JSON.stringify(stamps, null, 1));
  console.error(`synth: bundled ${bundle.title} in ${Date.now() - started} ms (${reason})`);
  return stamps;
}

/**
 * Bundles the modules main.js imports from vendor.js (packages and generated files) into one module
 * that exports each by the name main.js uses. Getters keep loading lazy and in main.js's order, as
 * separate `require` calls would. Names are resolved from main.js's folder, as main.js's own
 * `require` would resolve them.
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
    resolveDir: cacheDir,
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
  const bytes = fs.readFileSync(bundle.file);
  // By content, so that a copy of the project (new file times, same bundle) uses the cache too.
  const digest = crypto.createHash('sha1').update(bytes).digest('base64url');
  const code = {
    source: bytes.toString('utf8'),
    codeCache: bundle.codeCacheFile,
    version: `${process.version} ${process.arch} ${digest}\n`,
  };
  return run(code, bundle.file, requireFn);
}

/**
 * @typedef {object} LastRun
 * @property {string} node the Node version that ran it
 * @property {Record<string, string>} bundles each bundle file's times (a rebuilt bundle changes them)
 * @property {Record<string, string>} inputs every file in config/, stamped as bundle inputs are
 * @property {Record<string, string>} outputs every file under dist/ with a hash of its content
 * @property {string} report what the synth printed on standard output
 */

/**
 * Every file under `dir` (relative to the project) with a hash of its content, by path; an empty
 * record when `dir` does not exist.
 * @param {string} dir
 * @returns {Record<string, string>}
 */
function digestTree(dir) {
  return Object.fromEntries(filesUnder(path.join(root, dir))
    .map((file) => [path.join(dir, file), contentHash(path.join(root, dir, file))]));
}

/**
 * Every entry of config/ (sorted names; a subfolder counts as an entry), stamped with its times and
 * content hash.
 * @param {number} since the file clock when the synth started
 * @returns {Record<string, string>}
 */
function stampConfig(since) {
  /** @type {Record<string, string>} */
  const stamps = {};
  /** @type {string[]} */
  let names = [];
  try {
    names = fs.readdirSync(path.join(root, CONFIG_DIR)).sort();
  } catch {
    // no config/: main.ts says so, and nothing is recorded
  }
  for (const name of names) {
    const file = path.join(CONFIG_DIR, name);
    stamps[file] = fs.statSync(path.join(root, file)).isDirectory() ? 'folder' : stamp(root, file, since);
  }
  return stamps;
}

/**
 * The last full synth's report, when nothing it depends on changed since: same Node, same bundles,
 * the same files in config/ with the same content, and dist/ exactly as it wrote it.
 * @returns {string | undefined}
 */
function currentReport() {
  /** @type {LastRun} */
  let last;
  try {
    last = JSON.parse(fs.readFileSync(LAST_RUN, 'utf8'));
  } catch {
    return undefined;
  }
  if (last.node !== process.version) return undefined;
  for (const bundle of [APP, VENDOR]) {
    let stat;
    try {
      stat = fs.statSync(bundle.file);
    } catch {
      return undefined;
    }
    if (last.bundles[path.basename(bundle.file)] !== times(stat)) return undefined;
  }

  let names;
  try {
    names = fs.readdirSync(path.join(root, CONFIG_DIR)).sort().map((name) => path.join(CONFIG_DIR, name));
  } catch {
    return undefined;
  }
  if (names.join('\n') !== Object.keys(last.inputs).join('\n')) return undefined;
  for (const [file, recorded] of Object.entries(last.inputs)) {
    if (recorded === 'folder' || !unchanged(root, file, recorded)) return undefined;
  }

  const outputs = digestTree(OUT_DIR);
  const files = Object.keys(outputs);
  if (files.length !== Object.keys(last.outputs).length) return undefined;
  if (files.some((file) => last.outputs[file] !== outputs[file])) return undefined;
  return last.report;
}

/**
 * Records a full synth that succeeded, for the next one to compare with.
 * @param {Record<string, string>} inputs config/ as stamped when the synth started
 * @param {string} report what it printed on standard output
 */
function recordRun(inputs, report) {
  /** @type {Record<string, string>} */
  const bundles = {};
  for (const bundle of [APP, VENDOR]) bundles[path.basename(bundle.file)] = times(fs.statSync(bundle.file));
  /** @type {LastRun} */
  const last = { node: process.version, bundles, inputs, outputs: digestTree(OUT_DIR), report };
  try {
    writeWhole(LAST_RUN, JSON.stringify(last, null, 1));
  } catch {
    // without a record the next synth only does the work again
  }
}

/**
 * Passes everything written to standard output through, and keeps a copy.
 * @returns {() => string} what was written so far
 */
function teeStdout() {
  /** @type {string[]} */
  const chunks = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = /** @type {typeof process.stdout.write} */ ((chunk, ...rest) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return write(chunk, .../** @type {[any]} */ (rest));
  });
  return () => chunks.join('');
}

/**
 * @param {string[]} args the command-line arguments
 * @returns {boolean} whether `--force` was given
 */
function parseArgs(args) {
  for (const arg of args) {
    if (arg === '-h' || arg === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    if (arg !== '--force') {
      console.error(`synth: unknown argument ${JSON.stringify(arg)}; ${USAGE}`);
      process.exit(2);
    }
  }
  return args.includes('--force');
}

/**
 * Makes both bundles current, building each one that is not; writes nothing outside .cache/synth/.
 * Throws a BundleError when esbuild fails.
 * @returns {{ app: Stamps, rebuilt: boolean }} what main.js was built from, and whether any bundle was built
 */
function prepareBundles() {
  const appStamps = readStamps(APP);
  const appReason = rebuildReason(appStamps);
  const app = appReason === undefined
    ? /** @type {Stamps} */ (appStamps)
    : build(APP, { ...esbuildOptions(root, 'main.ts', APP.file), packages: 'external', external: GENERATED },
      appReason);

  const vendorStamps = readStamps(VENDOR);
  const vendorReason = rebuildReason(vendorStamps)
    ?? (vendorStamps?.packages.join() === app.packages.join() ? undefined : 'main.ts imports other modules');
  if (vendorReason !== undefined) buildVendor(app.packages, vendorReason);
  return { app, rebuilt: appReason !== undefined || vendorReason !== undefined };
}

function synth() {
  const force = parseArgs(process.argv.slice(2));
  process.chdir(root);
  let prepared;
  try {
    prepared = prepareBundles();
  } catch (error) {
    if (!(error instanceof BundleError)) throw error;
    console.error(error.message);
    process.exit(1);
  }

  if (!force && !prepared.rebuilt) {
    const report = currentReport();
    if (report !== undefined) {
      process.stdout.write(report);
      console.error('synth: nothing changed since the last synth, dist/ is current '
        + '(--force synthesizes anyway)');
      return;
    }
  }

  fs.rmSync(LAST_RUN, { force: true });
  const inputs = stampConfig(fileClock(cacheDir) ?? 0);
  const printed = teeStdout();
  const nodeRequire = createRequire(APP.file);
  const vendor = /** @type {Record<string, unknown>} */ (load(VENDOR, createRequire(VENDOR.file)));
  const packages = new Set(prepared.app.packages);
  load(APP, (id) => (packages.has(id) ? vendor[id] : nodeRequire(id)));
  // main.ts sets the exit code when the configuration is bad; it has then written nothing.
  if (!process.exitCode) recordRun(inputs, printed());
}

if (require.main === module) synth();

module.exports = { esbuildOptions, prepareBundles, BundleError };
