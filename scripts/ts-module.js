// @ts-check
/*
 * Loads a TypeScript module of lib/ for a plain-JS script: esbuild bundles it (no type check,
 * as `npm run synth`; the packages it imports stay in node_modules) and the bundle is kept in
 * .cache/<folder>/ with a hash of every file it was built from, so the next run needs no esbuild
 * call while they are unchanged. A bundle that cannot be kept (e.g. a read-only checkout) only
 * costs the next run its esbuild call.
 */
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const { createRequire } = require('module');

const root = path.resolve(__dirname, '..');

/** Files that shape a bundle without being part of it. */
const BUILD_INPUTS = [
  path.relative(root, __filename), 'package.json', 'tsconfig.json', 'node_modules/esbuild/package.json',
];

/** Bundling failed; esbuild has printed its errors. */
class BundleError extends Error {}

/**
 * @param {string} file relative to the project
 * @returns {string} a hash of its content, or `missing`
 */
function contentHash(file) {
  try {
    return crypto.createHash('sha1').update(fs.readFileSync(path.join(root, file))).digest('base64url');
  } catch {
    return 'missing';
  }
}

/**
 * @param {{ bundle: string, inputs: string }} kept
 * @returns {string | undefined} the kept bundle, when every file it was built from is as it was then
 */
function keptBundle(kept) {
  try {
    /** @type {Record<string, string>} */
    const inputs = JSON.parse(fs.readFileSync(kept.inputs, 'utf8'));
    const code = fs.readFileSync(kept.bundle, 'utf8');
    const unchanged = Object.entries(inputs).every(([file, hash]) => contentHash(file) === hash);
    return unchanged ? code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Keeps `code` with the hashes of `files`, unless one of them was written after the file clock
 * read `since` (esbuild may have read it before): then the next run bundles again.
 * @param {{ bundle: string, inputs: string }} kept
 * @param {string} code
 * @param {string[]} files relative to the project
 * @param {number} since
 */
function keepBundle(kept, code, files, since) {
  try {
    /** @type {Record<string, string>} */
    const inputs = {};
    for (const file of files) {
      if (fs.existsSync(path.join(root, file)) && fs.statSync(path.join(root, file)).ctimeMs >= since) return;
      inputs[file] = contentHash(file);
    }
    fs.rmSync(kept.inputs, { force: true });
    for (const [file, content] of [[kept.bundle, code], [kept.inputs, JSON.stringify(inputs, null, 1)]]) {
      const temporary = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(temporary, content);
      fs.renameSync(temporary, file);
    }
  } catch {
    // not kept: the next run bundles again
  }
}

/**
 * The file system's clock now, for comparing with file times (which the kernel takes from a
 * coarser clock than Date.now()); undefined when `dir` cannot be written.
 * @param {string} dir
 * @returns {number | undefined}
 */
function fileClock(dir) {
  const marker = path.join(dir, `clock.${process.pid}.tmp`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(marker, '');
    return fs.statSync(marker).ctimeMs;
  } catch {
    return undefined;
  } finally {
    fs.rmSync(marker, { force: true });
  }
}

/**
 * @param {string} entry relative to the project, e.g. `lib/image-bump.ts`
 * @param {{ bundle: string, inputs: string }} kept
 * @returns {string} the entry bundled by esbuild, and kept for the next run
 */
function bundle(entry, kept) {
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
      logLevel: 'error',
    });
  } catch {
    throw new BundleError(`bundling ${entry} failed (errors above)`);
  }
  const code = result.outputFiles[0].text;
  if (since !== undefined) keepBundle(kept, code, [...BUILD_INPUTS, ...Object.keys(result.metafile.inputs)], since);
  return code;
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
  const kept = {
    bundle: path.join(root, '.cache', folder, `${name}.js`),
    inputs: path.join(root, '.cache', folder, `${name}.inputs.json`),
  };
  const code = keptBundle(kept) ?? bundle(entry, kept);
  const filename = path.join(root, path.dirname(entry), `${name}.bundle.js`);
  const wrapper = vm.runInThisContext(
    `(function (exports, require, module, __filename, __dirname) {${code}\n})`,
    { filename },
  );
  const bundleModule = { exports: {} };
  wrapper(bundleModule.exports, createRequire(filename), bundleModule, filename, path.dirname(filename));
  return bundleModule.exports;
}

module.exports = { loadTypeScript, BundleError };
