#!/usr/bin/env node
// @ts-check
/*
 * `make vergabe-bump TAG=<commit> [DIGEST=sha256:...] [ENV=production]`:
 *   node scripts/bump.js --env <environment> --tag <commit> [--digest sha256:<64 hex>] [--dry-run]
 *
 * Writes the image into config/<environment>.yaml (comments and layout kept; the whole file
 * validated against the schema first), synthesizes, and prints what changed in
 * dist/<environment>/. Invalid input changes nothing. When the synthesis fails, the previous
 * configuration is put back, so config/ and dist/ always belong together. `--dry-run` only
 * validates and shows the configuration change and the image it names (used by scripts/image.sh
 * before a long build, which reads the repository from that last line).
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { filesUnder } = require('./stamps');
const { BundleError, loadTypeScript } = require('./ts-module');

const root = path.resolve(__dirname, '..');
const USAGE = 'usage: node scripts/bump.js --env <environment> --tag <commit> '
  + '[--digest sha256:<64 hex>] [--dry-run]';

/** A problem the operator can fix: printed as one line (or a few), exit code 1, no stack trace. */
class BumpError extends Error {
  /** @param {string[]} lines */
  constructor(lines) {
    super(lines.join('\n'));
    this.lines = lines;
  }
}

/**
 * @typedef {{ environment: string, tag: string, digest: string | null, dryRun: boolean }} Options
 * @typedef {{ tag: string, digest?: string | null }} ImageVersion
 * @typedef {{ text: string, before: { tag: unknown, digest: unknown },
 *   environment: { config: { image: { repository: string } } } }} ImageBump
 * @typedef {(text: string, environment: string, image: ImageVersion) => ImageBump} PlanImageBump
 * @typedef {{ planImageBump: PlanImageBump }} ImageBumpModule
 */

/**
 * @param {string[]} argv
 * @returns {Options}
 */
function parseArguments(argv) {
  /** @type {Record<string, string>} */
  const values = {};
  let dryRun = false;
  for (let i = 0; i < argv.length; i += 1) {
    const argument = argv[i];
    if (argument === '--dry-run') {
      dryRun = true;
      continue;
    }
    const match = /^--(env|tag|digest)(?:=(.*))?$/.exec(argument);
    if (!match) throw new BumpError([`bump: unknown argument ${JSON.stringify(argument)}`, USAGE]);
    const value = match[2] ?? argv[i + 1];
    if (match[2] === undefined) i += 1;
    if (value === undefined) throw new BumpError([`bump: --${match[1]} needs a value`, USAGE]);
    values[match[1]] = value;
  }
  for (const required of ['env', 'tag']) {
    if (!values[required]) throw new BumpError([`bump: --${required} is required`, USAGE]);
  }
  // An empty --digest (e.g. `DIGEST=` on make's command line) means "no digest".
  return { environment: values.env, tag: values.tag, digest: values.digest || null, dryRun };
}

/**
 * lib/image-bump.ts bundled with esbuild (no type check, as `npm run synth`), kept in
 * .cache/bump/ for the next run (scripts/image.sh makes two); the libraries it imports (yaml,
 * ajv) are loaded from node_modules.
 * @returns {ImageBumpModule}
 */
function loadImageBump() {
  try {
    return /** @type {ImageBumpModule} */ (loadTypeScript('lib/image-bump.ts', 'bump'));
  } catch (error) {
    if (!(error instanceof BundleError)) throw error;
    throw new BumpError([`bump: ${error.message}; nothing written`]);
  }
}

/** @returns {string[]} the environments, from config/*.yaml */
function environments() {
  try {
    const files = fs.readdirSync(path.join(root, 'config'));
    return files.filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -5)).sort();
  } catch {
    return [];
  }
}

/**
 * Writes `content` through a temporary sibling and a rename, so a crash never leaves half a
 * file; the file keeps its permissions.
 * @param {string} file
 * @param {string} content
 */
function writeWhole(file, content) {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(temporary, content, { mode: fs.statSync(file).mode & 0o777 });
    fs.renameSync(temporary, file);
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

/**
 * Every file under `dir` (relative path → content); empty when `dir` does not exist.
 * @param {string} dir
 * @returns {Map<string, string>}
 */
function readTree(dir) {
  return new Map(filesUnder(dir).map((file) => [file, fs.readFileSync(path.join(dir, file), 'utf8')]));
}

/**
 * The lines that differ between two versions of a file, as runs of removed and added lines
 * (a longest-common-subsequence diff; the files are a few hundred lines).
 * @param {string[]} a
 * @param {string[]} b
 * @returns {{ line: number, removed: string[], added: string[] }[]} `line`: 1-based, in `b`
 */
function changedRuns(a, b) {
  const n = a.length;
  const m = b.length;
  // common[i][j]: length of the longest common subsequence of a[i..] and b[j..]
  const common = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i -= 1) {
    for (let j = m - 1; j >= 0; j -= 1) {
      common[i][j] = a[i] === b[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1]);
    }
  }
  /** @type {{ line: number, removed: string[], added: string[] }[]} */
  const runs = [];
  /** @type {{ line: number, removed: string[], added: string[] } | undefined} */
  let run;
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      run = undefined;
      i += 1;
      j += 1;
      continue;
    }
    if (!run) {
      run = { line: j + 1, removed: [], added: [] };
      runs.push(run);
    }
    if (j < m && (i >= n || common[i][j + 1] >= common[i + 1][j])) {
      run.added.push(b[j]);
      j += 1;
    } else {
      run.removed.push(a[i]);
      i += 1;
    }
  }
  return runs;
}

/**
 * What changed in an output folder, for the operator: each file, then each changed place with
 * its old (-) and new (+) lines.
 * @param {string} label the folder as the operator names it, e.g. dist/production
 * @param {Map<string, string>} before
 * @param {Map<string, string>} after
 * @returns {string[]}
 */
function describeChanges(label, before, after) {
  const lines = [];
  const names = [...new Set([...before.keys(), ...after.keys()])].sort();
  for (const name of names) {
    const old = before.get(name);
    const now = after.get(name);
    if (old === now) continue;
    if (old === undefined) {
      lines.push(`  ${label}/${name}: new file`);
      continue;
    }
    if (now === undefined) {
      lines.push(`  ${label}/${name}: removed`);
      continue;
    }
    lines.push(`  ${label}/${name}`);
    for (const run of changedRuns(old.split('\n'), now.split('\n'))) {
      lines.push(`    line ${run.line}:`);
      for (const removed of run.removed) lines.push(`      - ${removed.trim()}`);
      for (const added of run.added) lines.push(`      + ${added.trim()}`);
    }
  }
  return lines;
}

/**
 * `npm run synth`; on failure its messages are returned, not printed. Ctrl-C reaches synth
 * (same process group) and counts as a failure here, so the caller can put the config back.
 * @returns {{ ok: boolean, output: string }}
 */
function synthesize() {
  const ignore = () => {};
  process.on('SIGINT', ignore);
  try {
    const synth = path.join(root, 'scripts', 'synth.js');
    const result = spawnSync(process.execPath, [synth], { cwd: root, encoding: 'utf8' });
    const output = `${result.stderr ?? ''}${result.error ? `${result.error.message}\n` : ''}`;
    if (result.status === 0) return { ok: true, output: '' };
    const how = result.signal ? `was stopped by ${result.signal}` : `exited with ${result.status}`;
    const separator = output === '' || output.endsWith('\n') ? '' : '\n';
    return { ok: false, output: `${output}${separator}synth ${how}` };
  } finally {
    process.off('SIGINT', ignore);
  }
}

/** @param {unknown} value */
function show(value) {
  return value === undefined ? '(absent)' : JSON.stringify(value);
}

/**
 * Where the lines of a run go: `out` what was done, `err` why nothing was.
 * @typedef {{ out: (line: string) => void, err: (line: string) => void }} Output
 */

/**
 * @param {Options} options
 * @param {Output} output
 */
function main(options, output) {
  const { environment } = options;
  const relativeFile = `config/${environment}.yaml`;
  const file = path.join(root, relativeFile);
  if (!/^[a-z0-9][-a-z0-9]*$/.test(environment) || !fs.existsSync(file)) {
    const known = environments();
    throw new BumpError([`bump: there is no environment ${JSON.stringify(environment)} (no ${relativeFile}); `
      + `environments: ${known.length > 0 ? known.join(', ') : 'none in config/'}`]);
  }

  const original = fs.readFileSync(file, 'utf8');
  /** @type {ImageBump} */
  let bump;
  try {
    bump = loadImageBump().planImageBump(original, environment, { tag: options.tag, digest: options.digest });
  } catch (error) {
    const problems = /** @type {{ name?: string, problems?: string[] }} */ (error);
    if (problems.name === 'ConfigError' && problems.problems) {
      const unchanged = `bump: nothing written; ${relativeFile} and dist/ are unchanged`;
      throw new BumpError([...problems.problems, unchanged]);
    }
    throw error;
  }

  const change = `${relativeFile}: image.tag ${show(bump.before.tag)} → ${JSON.stringify(options.tag)}, `
    + `image.digest ${show(bump.before.digest)} → ${JSON.stringify(options.digest)}`;
  if (options.dryRun) {
    const { repository } = bump.environment.config.image;
    const digest = options.digest ? `@${options.digest}` : '';
    output.out(`bump: valid, would write ${change} (dry run: nothing written)`);
    output.out(`bump: the image would be ${repository}:${options.tag}${digest}`);
    return;
  }

  const distLabel = `dist/${environment}`;
  const distBefore = readTree(path.join(root, 'dist'));
  if (bump.text === original) {
    output.out(`bump: ${relativeFile} already names this image; synthesizing anyway`);
  } else {
    writeWhole(file, bump.text);
    output.out(`bump: ${change}`);
  }

  const synth = synthesize();
  if (!synth.ok) {
    if (bump.text !== original) writeWhole(file, original);
    throw new BumpError([synth.output.trimEnd(),
      `bump: synthesis failed; ${relativeFile} is restored, dist/ is as before`]);
  }

  const distAfter = readTree(path.join(root, 'dist'));
  /** @param {Map<string, string>} tree @param {boolean} mine */
  const part = (tree, mine) => new Map([...tree]
    .filter(([name]) => name.startsWith(`${environment}/`) === mine)
    .map(([name, content]) => [mine ? name.slice(environment.length + 1) : name, content]));
  const changes = describeChanges(distLabel, part(distBefore, true), part(distAfter, true));
  if (changes.length === 0) {
    output.out(`bump: ${distLabel}/ is unchanged`);
  } else {
    output.out(`bump: ${distLabel}/ changed (review, then commit ${relativeFile} with ${distLabel}/):`);
    for (const line of changes) output.out(line);
  }
  const others = [...new Set([...part(distBefore, false).keys(), ...part(distAfter, false).keys()])]
    .filter((name) => distBefore.get(name) !== distAfter.get(name));
  if (others.length > 0) {
    // Synthesis writes every environment: these were not up to date with their configuration.
    const list = others.map((name) => `dist/${name}`).join(', ');
    output.out(`bump: also changed (they were out of date with the code or their config): ${list}`);
  }
}

/**
 * The command line `argv` (the arguments after the script's name).
 * @param {string[]} argv
 * @param {Output} output
 * @returns {0 | 1} the exit code
 */
function cli(argv, output) {
  try {
    main(parseArguments(argv), output);
    return 0;
  } catch (error) {
    if (!(error instanceof BumpError)) throw error;
    output.err(error.lines.join('\n'));
    return 1;
  }
}

if (require.main === module) {
  process.exitCode = cli(process.argv.slice(2), {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
  });
}

module.exports = { changedRuns, describeChanges, cli };
