// @ts-check
/*
 * How the kept bundles under .cache/ (scripts/synth.js, scripts/ts-module.js) tell whether the
 * files they were built from are as they were: each input is recorded with its size and times,
 * and the project's own files also with a hash of their content, read only when the times differ
 * (a copy of the project has new times and the same content). Paths are recorded relative to the
 * project, or absolute for files outside it (node_modules as a link to another checkout), so that
 * copies at any depth agree on them. filesUnder() lists a folder's files for the scripts that
 * compare or record what a synth wrote.
 */
'use strict';
const fs = require('fs');
const path = require('path');

/**
 * What identifies a file's content without reading it: size, modification and change time
 * (the change time moves on every write, even when a tool restores the modification time).
 * @param {fs.Stats} stat
 * @returns {string}
 */
function times(stat) {
  return `${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
}

/**
 * @param {string} file absolute path
 * @returns {string}
 */
function contentHash(file) {
  // Loaded only when needed: most runs read no content, and loading crypto takes milliseconds.
  const crypto = require('crypto');
  return crypto.createHash('sha1').update(fs.readFileSync(file)).digest('base64url');
}

/**
 * How `file` (relative to `root`, as esbuild's metafile names inputs) is recorded.
 * @param {string} root
 * @param {string} file
 * @returns {string}
 */
function inputKey(root, file) {
  const absolute = path.resolve(root, file);
  const relative = path.relative(root, absolute);
  return relative.startsWith('..') || path.isAbsolute(relative) ? absolute : relative;
}

/** @param {string} key as inputKey records it: whether the file is the project's own (not a package's) */
function isOwn(key) {
  return !path.isAbsolute(key) && !key.startsWith(`node_modules${path.sep}`);
}

/**
 * An input's stamp: `missing`, `changed while in use` (written at or after `since`, so it may have
 * been read as it was before: the next run must redo the work), or its times and, for the
 * project's own files, a hash of the content.
 * @param {string} root
 * @param {string} key as inputKey records it
 * @param {number} since the file clock when the work started
 * @returns {string}
 */
function stamp(root, key, since) {
  const absolute = path.resolve(root, key);
  let stat;
  try {
    stat = fs.statSync(absolute);
  } catch {
    return 'missing';
  }
  if (stat.ctimeMs >= since) return 'changed while in use';
  return isOwn(key) ? `${times(stat)} ${contentHash(absolute)}` : times(stat);
}

/**
 * @param {string} root
 * @param {string} key as inputKey records it
 * @param {string} recorded its stamp then
 * @returns {boolean} whether the file is as it was then (its content is read only when its times differ)
 */
function unchanged(root, key, recorded) {
  const absolute = path.resolve(root, key);
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
 * coarser clock than Date.now()); undefined when `dir` cannot be written.
 * @param {string} dir made when missing
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
    try {
      fs.rmSync(marker, { force: true });
    } catch {
      // `dir` is not a folder: there is no marker to remove
    }
  }
}

/**
 * Every file under `dir`, as paths relative to it, in name order (folder by folder); empty when
 * `dir` does not exist.
 * @param {string} dir
 * @returns {string[]}
 */
function filesUnder(dir) {
  /** @type {string[]} */
  const files = [];
  /** @param {string} sub */
  const walk = (sub) => {
    let entries;
    try {
      entries = fs.readdirSync(path.join(dir, sub), { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const relative = path.join(sub, entry.name);
      if (entry.isDirectory()) walk(relative);
      else files.push(relative);
    }
  };
  walk('');
  return files;
}

/**
 * Writes `content` to `file` through a temporary sibling and a rename, so that a reader never sees
 * half a file (two runs may write at once).
 * @param {string} file
 * @param {string | Uint8Array} content
 */
function writeWhole(file, content) {
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, content);
  fs.renameSync(temporary, file);
}

module.exports = { contentHash, fileClock, filesUnder, inputKey, stamp, times, unchanged, writeWhole };
