#!/usr/bin/env node
// @ts-check
/*
 * `npm run bench`: how fast synthesis and the tests are, measured side by side in temporary
 * copies of this project (the working tree as it is, with node_modules linked), so that dist/ and
 * every tracked file stay untouched. Prints medians with min and max, ratios, and the target
 * each figure is checked against (PASS or MISS). The figures inform; the exit code is 0 unless
 * the harness itself failed (a command timed out, or the compared paths wrote different files).
 *
 *   node scripts/bench.js [--runs N] [--stock-runs N] [--scale-runs N] [--no-test] [--max-minutes M]
 *
 * Timings are wall-clock times of whole processes, from spawn to exit, unless a figure says it is
 * measured inside the process. Fast figures are interleaved round by round, so that a busy
 * machine slows every column alike rather than one.
 */
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { filesUnder } = require('./stamps');
const { esbuildOptions } = require('./synth');

const root = path.resolve(__dirname, '..');

/** The lib file edited to make the fast path bundle again (any file of the bundle would do). */
const EDITED_FILE = 'lib/vergabe-chart.ts';
const SCALE_COUNTS = [1, 5, 20];

/** A failure of the harness itself, as opposed to a figure that misses its target. */
class HarnessError extends Error {}
/** The time budget (--max-minutes) is spent; the remaining figures are skipped. */
class BudgetSpent extends Error {}

// ---------------------------------------------------------------------------------------------
// Options

const USAGE = 'usage: node scripts/bench.js [--runs N] [--stock-runs N] [--scale-runs N] [--no-test] '
  + '[--max-minutes M]';

/**
 * @param {string[]} argv
 * @returns {{ runs: number, stockRuns: number, scaleRuns: number, test: boolean, maxMinutes: number }}
 */
function parseOptions(argv) {
  const options = { runs: 11, stockRuns: 3, scaleRuns: 5, test: true, maxMinutes: 10 };
  /** @type {Record<string, 'runs' | 'stockRuns' | 'scaleRuns' | 'maxMinutes'>} */
  const numeric = {
    '--runs': 'runs', '--stock-runs': 'stockRuns', '--scale-runs': 'scaleRuns', '--max-minutes': 'maxMinutes',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--no-test') {
      options.test = false;
    } else if (arg in numeric) {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < 1) {
        throw new HarnessError(`${arg} ${argv[i]} is not a whole number >= 1\n${USAGE}`);
      }
      options[numeric[arg]] = value;
    } else {
      throw new HarnessError(`unknown option ${arg}\n${USAGE}`);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Running commands

/** @type {import('child_process').ChildProcess | undefined} the command running now */
let current;
let deadline = Infinity;

/** Child environment: no npm update check or funding notice (network calls that are not the work). */
const childEnv = {
  ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', NO_COLOR: '1',
};

/**
 * @typedef {{ status: number | null, stdout: string, stderr: string, ms: number }} RunResult
 */

/**
 * Runs a command in its own process group (so that a timeout or an interrupt ends all of it)
 * and measures its wall-clock time.
 * @param {string} command
 * @param {string[]} args
 * @param {{ cwd: string, timeoutSeconds: number }} options
 * @returns {Promise<RunResult>}
 */
function run(command, args, options) {
  const remaining = deadline - Date.now();
  if (remaining <= 0) return Promise.reject(new BudgetSpent());
  const timeout = Math.min(options.timeoutSeconds * 1000, remaining);
  const shown = [command, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args,
      { cwd: options.cwd, env: childEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    /** @type {Buffer[]} */ const stdout = [];
    /** @type {Buffer[]} */ const stderr = [];
    child.stdout?.on('data', (chunk) => stdout.push(chunk));
    child.stderr?.on('data', (chunk) => stderr.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, timeout);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new HarnessError(`cannot run ${shown}: ${error.message}`));
    });
    child.on('close', (status) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      clearTimeout(timer);
      current = undefined;
      if (timedOut) {
        reject(remaining < options.timeoutSeconds * 1000 ? new BudgetSpent()
          : new HarnessError(`${shown} (in ${options.cwd}) took longer than ${options.timeoutSeconds} s`));
        return;
      }
      const text = (/** @type {Buffer[]} */ chunks) => Buffer.concat(chunks).toString();
      resolve({ status, ms, stdout: text(stdout), stderr: text(stderr) });
    });
  });
}

/** @param {import('child_process').ChildProcess} child */
function killGroup(child) {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Runs a command that must succeed.
 * @param {string} command @param {string[]} args @param {{ cwd: string, timeoutSeconds: number }} options
 */
async function runOk(command, args, options) {
  const result = await run(command, args, options);
  if (result.status !== 0) {
    throw new HarnessError(`${[command, ...args].join(' ')} (in ${options.cwd}) exited ${result.status}:\n`
      + `${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Temporary copies

let workDir = '';

/** Removes the temporary copies; safe to call twice. */
function cleanUp() {
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  workDir = '';
}

/**
 * A copy of the project's working tree (without .git, .cache and node_modules, which is linked).
 * @param {string} name
 * @returns {string} its path
 */
function makeCopy(name) {
  const copy = path.join(workDir, name);
  const skipped = new Set(['.git', '.cache', 'node_modules']);
  fs.cpSync(root, copy, {
    recursive: true,
    // Top-level entries only; dist.new-*/dist.old-* are a synth's staging folders of the moment.
    filter: (source) => {
      const relative = path.relative(root, source);
      const top = relative.split(path.sep)[0];
      return !skipped.has(top) && !/^dist\.(new|old)-/.test(top);
    },
  });
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(copy, 'node_modules'));
  return copy;
}

/**
 * Every file under `dir`, relative path to content; a harness error when there is none.
 * @param {string} dir
 * @returns {Record<string, string>}
 */
function readTree(dir) {
  const files = filesUnder(dir);
  if (files.length === 0) throw new HarnessError(`${dir} holds no file: the synth wrote nothing`);
  return Object.fromEntries(files.map((file) => [file, fs.readFileSync(path.join(dir, file), 'utf8')]));
}

/**
 * Why two trees differ, or undefined when they are the same.
 * @param {Record<string, string>} a @param {Record<string, string>} b
 */
function treeDifference(a, b) {
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const differing = names.filter((name) => a[name] !== b[name]);
  return differing.length === 0 ? undefined : differing.slice(0, 5).join(', ');
}

/**
 * Appends a comment line to the copy's EDITED_FILE: a new size and time, so the bundle is built again.
 * @param {string} copy @param {number} round
 */
function editSource(copy, round) {
  fs.appendFileSync(path.join(copy, EDITED_FILE), `// benchmark edit ${round}\n`);
}

// ---------------------------------------------------------------------------------------------
// Statistics and printing

/** @typedef {{ label: string, samples: number[], note?: string }} Figure */

/** @param {number[]} values */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** @param {number} ms */
function formatMs(ms) {
  return ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** @param {Figure} figure */
function formatFigure(figure) {
  const { samples } = figure;
  const cells = [median(samples), Math.min(...samples), Math.max(...samples)]
    .map((v) => formatMs(v).padStart(9));
  return `  ${figure.label.padEnd(58)}${cells.join('')}${String(samples.length).padStart(6)}`
    + (figure.note ? `  ${figure.note}` : '');
}

/** @param {string} title @param {Figure[]} figures */
function printTable(title, figures) {
  console.log(`\n${title}`);
  const heads = ['median', 'min', 'max'].map((head) => head.padStart(9)).join('');
  console.log(`  ${''.padEnd(58)}${heads}${'runs'.padStart(6)}`);
  for (const figure of figures) console.log(formatFigure(figure));
}

/** @typedef {{ pass: boolean, text: string, target: string }} Check */
/** @type {Check[]} */
const checks = [];

/** @param {boolean} pass @param {string} text @param {string} target */
function check(pass, text, target) {
  checks.push({ pass, text, target });
  console.log(`  ${pass ? 'PASS' : 'MISS'}  ${text}  (target: ${target})`);
}

// ---------------------------------------------------------------------------------------------
// The figures

/**
 * Time to load the libraries vs a synth with nothing changed, directly and through npm; and the
 * whole synth forced to run with nothing changed (bundles and code caches reused).
 * @param {number} runs
 */
async function nothingChanged(runs) {
  const copy = makeCopy('fast');
  await runOk(process.execPath, ['scripts/synth.js'], { cwd: copy, timeoutSeconds: 120 }); // bundles
  await runOk(process.execPath, ['scripts/synth.js', '--force'], { cwd: copy, timeoutSeconds: 60 });

  /** @type {Figure[]} */
  const figures = [
    { label: "require('cdk8s') + require('cdk8s-plus-28') (baseline)", samples: [] },
    { label: 'node scripts/synth.js, nothing changed', samples: [] },
    { label: 'npm run synth, nothing changed', samples: [] },
    { label: 'node scripts/synth.js --force (the whole synth)', samples: [] },
    { label: "npm run env (npm's own start-up)", samples: [] },
  ];
  const commands = [
    () => run(process.execPath, ['-e', "require('cdk8s'); require('cdk8s-plus-28')"],
      { cwd: copy, timeoutSeconds: 60 }),
    () => run(process.execPath, ['scripts/synth.js'], { cwd: copy, timeoutSeconds: 60 }),
    () => run('npm', ['run', 'synth'], { cwd: copy, timeoutSeconds: 60 }),
    () => run(process.execPath, ['scripts/synth.js', '--force'], { cwd: copy, timeoutSeconds: 60 }),
    () => run('npm', ['run', 'env'], { cwd: copy, timeoutSeconds: 60 }),
  ];
  /** Whether figure i is a synth that must find nothing changed, or one forced to do the work. */
  const skips = [false, true, true, false, false];
  const forced = 3;
  for (let round = 0; round < runs; round++) {
    for (const [i, command] of commands.entries()) {
      const result = await command();
      if (result.status !== 0) {
        throw new HarnessError(`${figures[i].label} exited ${result.status}:\n${result.stderr}`);
      }
      if (/^synth: bundled/m.test(result.stderr)) {
        throw new HarnessError(`${figures[i].label} bundled again though nothing changed:\n${result.stderr}`);
      }
      const skipped = /^synth: nothing changed since the last synth/m.test(result.stderr);
      if (skips[i] !== skipped || (i === forced && !/^dist\/production\/plan\.tsv/m.test(result.stdout))) {
        throw new HarnessError(`${figures[i].label} ${skipped ? 'did no work' : 'synthesized'}, `
          + `which it should not have:\n${result.stderr}`);
      }
      figures[i].samples.push(result.ms);
    }
  }
  printTable('Synth with nothing changed (dist/ and everything it is made from as the last synth left them)',
    figures);
  const [baseline, direct, viaNpm, whole, npmAlone] = figures.map((f) => median(f.samples));
  check(viaNpm / baseline <= 2, `npm run synth / baseline = ${(viaNpm / baseline).toFixed(2)}x`,
    `<= 2x; npm's own start-up is ${formatMs(npmAlone)} of it`);
  check(direct / baseline <= 2, `node scripts/synth.js / baseline = ${(direct / baseline).toFixed(2)}x`,
    '<= 2x; without npm');
  console.log(`        node scripts/synth.js --force / baseline = ${(whole / baseline).toFixed(2)}x `
    + '(loads the bundles, builds, validates and writes everything)');
  return { copy, baseline };
}

/**
 * The fast path after a source edit vs the stock cdk8s path on the same sources, interleaved.
 * @param {number} runs @param {number} stockRuns
 */
async function afterEdit(runs, stockRuns) {
  const fast = makeCopy('edit-fast');
  const stock = makeCopy('edit-stock');
  // The stock cdk8s TypeScript template: cdk8s synth runs the app with ts-node, which type-checks.
  const config = path.join(stock, 'cdk8s.yaml');
  fs.writeFileSync(config, fs.readFileSync(config, 'utf8').replace(/^app: .*$/m, 'app: npx ts-node main.ts'));
  if (!/^app: npx ts-node main\.ts$/m.test(fs.readFileSync(config, 'utf8'))) {
    throw new HarnessError('cdk8s.yaml has no "app:" line to point at ts-node');
  }
  await runOk(process.execPath, ['scripts/synth.js'], { cwd: fast, timeoutSeconds: 120 });

  /** @type {Figure[]} */
  const figures = [
    { label: 'npm run synth after an edit of a lib file', samples: [] },
    { label: 'node scripts/synth.js after an edit of a lib file', samples: [] },
    { label: 'cdk8s synth, app: npx ts-node main.ts (stock)', samples: [] },
    { label: 'npx ts-node main.ts alone (the stock app, no CLI)', samples: [] },
  ];
  const cdk8s = path.join(stock, 'node_modules', '.bin', 'cdk8s');
  let round = 0;
  for (let i = 0; i < Math.max(runs, stockRuns); i++) {
    /** @type {Array<[number, string, () => Promise<RunResult>]>} */
    const steps = [];
    if (i < runs) {
      steps.push([0, fast, () => run('npm', ['run', 'synth'], { cwd: fast, timeoutSeconds: 120 })]);
      steps.push([1, fast,
        () => run(process.execPath, ['scripts/synth.js'], { cwd: fast, timeoutSeconds: 120 })]);
    }
    if (i < stockRuns) {
      // The upgrade check is a network call to the npm registry, not synthesis: left out (in the
      // stock path's favour).
      steps.push([2, stock,
        () => run(cdk8s, ['synth', '--no-check-upgrade'], { cwd: stock, timeoutSeconds: 180 })]);
      steps.push([3, stock, () => run('npx', ['ts-node', 'main.ts'], { cwd: stock, timeoutSeconds: 180 })]);
    }
    for (const [figure, copy, command] of steps) {
      editSource(copy, ++round);
      const result = await command();
      const { label } = figures[figure];
      if (result.status !== 0) throw new HarnessError(`${label} exited ${result.status}:\n${result.stderr}`);
      if (figure < 2 && !/^synth: bundled main\.ts/m.test(result.stderr)) {
        throw new HarnessError(`${label} did not bundle again after the edit:\n${result.stderr}`);
      }
      figures[figure].samples.push(result.ms);
    }
  }
  const difference = treeDifference(readTree(path.join(fast, 'dist')), readTree(path.join(stock, 'dist')));
  if (difference) throw new HarnessError(`the fast and the stock path wrote different files: ${difference}`);

  printTable('After a source edit: the fast path bundles main.ts again; the stock path type-checks '
    + 'and compiles', figures);
  console.log('  Both paths ran the same main.ts, lib/ and config/ and wrote identical dist/ trees.');
  const [viaNpm, direct, stockPath] = figures.map((f) => median(f.samples));
  check(stockPath / viaNpm >= 10, `stock / npm run synth = ${(stockPath / viaNpm).toFixed(1)}x faster`,
    '>= 10x');
  console.log(`        stock / node scripts/synth.js = ${(stockPath / direct).toFixed(1)}x faster`);
}

/** A small program that synthesizes N instances derived from config/production.yaml in memory. */
const SCALE_ENTRY = `
import { readFileSync } from 'fs';
import { parse } from 'yaml';
import { parseEnvironment } from './lib/config';
import { renderAll, writeOutput } from './lib/synth';
import { VergabeChart } from './lib/vergabe-chart';

const count = Number(process.argv[2]);
const outDir = process.argv[3];
const base = parse(readFileSync('config/production.yaml', 'utf8'));

/** Instance i: every name, namespace and host of production with its own suffix. */
function variant(i: number): any {
  const config = structuredClone(base);
  const tag = 'b' + String(i).padStart(2, '0');
  const suffix = (object: any, key: string, separator: string) => {
    if (typeof object?.[key] === 'string') object[key] = object[key] + separator + tag;
  };
  suffix(config.app, 'name', '-');
  suffix(config.app, 'namespace', '-');
  config.app.host = config.app.host.replace(/^[^.]+/, (label: string) => label + '-' + tag);
  suffix(config.ingress, 'tlsSecretName', '-');
  suffix(config.database, 'name', '_');
  suffix(config.database, 'role', '_');
  suffix(config.database, 'resourceName', '-');
  suffix(config.database, 'credentialsSecret', '-');
  return config;
}

const started = performance.now();
const environments = Array.from({ length: count },
  (_, i) => parseEnvironment('bench-' + String(i + 1).padStart(2, '0'), variant(i + 1)));
const files = renderAll(environments,
  (app, environment) => new VergabeChart(app, environment.name, { environment }).output());
writeOutput(outDir, files);
const ms = performance.now() - started;
const namespaces = new Set(environments.map((e) => e.config.app.namespace)).size;
console.log(JSON.stringify({ count, ms, files: files.length, namespaces }));
`;

/**
 * Synthesizing 1, 5 and 20 instances, one process per count.
 * @param {string} copy @param {number} runs
 */
async function scale(copy, runs) {
  const entry = path.join(copy, 'bench-scale.ts');
  const bundle = path.join(copy, '.cache', 'bench-scale.js');
  fs.writeFileSync(entry, SCALE_ENTRY);
  const result = require('esbuild').buildSync(esbuildOptions(copy, 'bench-scale.ts', bundle));
  fs.mkdirSync(path.dirname(bundle), { recursive: true });
  fs.writeFileSync(bundle, result.outputFiles[0].contents);
  const outDir = path.join(workDir, 'scale-out');

  /** @type {Map<number, { wall: number[], inside: number[] }>} */
  const samples = new Map(SCALE_COUNTS.map((n) => [n, { wall: [], inside: [] }]));
  /** @type {Map<number, number>} */
  const filesPerCount = new Map();
  for (let round = 0; round < runs; round++) {
    for (const count of SCALE_COUNTS) {
      const done = await runOk(process.execPath, [bundle, String(count), outDir],
        { cwd: copy, timeoutSeconds: 120 });
      const report = JSON.parse(done.stdout.trim().split('\n').pop() ?? '{}');
      if (report.count !== count || report.namespaces !== count) {
        throw new HarnessError(`the scale program for ${count} instances reported ${done.stdout}`);
      }
      samples.get(count)?.wall.push(done.ms);
      samples.get(count)?.inside.push(report.ms);
      filesPerCount.set(count, report.files);
    }
  }
  /** @type {Figure[]} */
  const figures = [];
  for (const [count, { wall, inside }] of samples) {
    const instances = `${count} instance${count === 1 ? '' : 's'}`;
    figures.push({
      label: `${instances}: whole process`, samples: wall, note: `${filesPerCount.get(count)} files`,
    });
    figures.push({ label: `${instances}: validate, build, render, write (inside)`, samples: inside });
  }
  printTable('Scale: N instances derived in memory from config/production.yaml, one process per N', figures);
  const first = SCALE_COUNTS[0];
  const last = SCALE_COUNTS[SCALE_COUNTS.length - 1];
  const slope = (/** @type {'wall' | 'inside'} */ kind) => {
    const a = samples.get(first)?.[kind] ?? [];
    const b = samples.get(last)?.[kind] ?? [];
    return (median(b) - median(a)) / (last - first);
  };
  check(slope('wall') <= 30, `per extra instance, whole process: ${slope('wall').toFixed(1)} ms`, '<= 30 ms');
  console.log(`        per extra instance, measured inside the process: ${slope('inside').toFixed(1)} ms`);
}

/**
 * npm test from a cold Jest cache, tsc --noEmit alone, and npm test once more after an edit.
 */
async function tests() {
  const copy = makeCopy('test');
  const report = path.join(workDir, 'jest-report.json');
  fs.rmSync(path.join(copy, '.cache', 'jest'), { recursive: true, force: true });
  const npmTest = await run('npm', ['test', '--', '--json', `--outputFile=${report}`],
    { cwd: copy, timeoutSeconds: 600 });
  const tsc = await run(path.join(copy, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', '.'],
    { cwd: copy, timeoutSeconds: 300 });
  // The operator's loop: the caches the first run left (Jest's, tsc's incremental record) are warm.
  editSource(copy, 0);
  const again = await run('npm', ['test'], { cwd: copy, timeoutSeconds: 600 });

  /** @type {Figure[]} */
  const figures = [
    { label: 'npm test, cold Jest cache (tsc --noEmit beside jest)', samples: [npmTest.ms] },
    { label: 'tsc --noEmit -p . alone', samples: [tsc.ms] },
    { label: 'npm test again after an edit of a lib file (warm caches)', samples: [again.ms] },
  ];
  /** @type {any} */
  const jest = readJson(report);
  if (jest) {
    const end = Math.max(...jest.testResults.map((/** @type {any} */ t) => t.endTime));
    figures.splice(1, 0, { label: '  of which: jest, from its start to the last result',
      samples: [end - jest.startTime] });
  }
  printTable('Tests', figures);
  if (npmTest.status !== 0) {
    const last = npmTest.stderr.trim().split('\n').pop();
    console.log(`  npm test exited ${npmTest.status} (${last}); its time is that of the failing run.`);
    if (tsc.status !== 0) console.log(`  ${tsc.stdout.trim().split('\n').slice(0, 5).join('\n  ')}`);
  }
  if (jest) {
    console.log(`  ${jest.numTotalTests} tests in ${jest.numTotalTestSuites} files: `
      + `${jest.numPassedTests} passed, ${jest.numFailedTests} failed.`);
    /** @type {Array<{ ms: number, name: string }>} */
    const files = jest.testResults.map((/** @type {any} */ t) => ({
      ms: t.endTime - t.startTime,
      name: path.relative(copy, t.name),
    }));
    const slowest = files.sort((a, b) => b.ms - a.ms).slice(0, 5);
    console.log('  slowest test files:');
    for (const f of slowest) console.log(`    ${formatMs(f.ms).padStart(9)}  ${f.name}`);
    /** @type {string[]} */
    const failed = jest.testResults.flatMap((/** @type {any} */ t) => t.assertionResults
      .filter((/** @type {any} */ a) => a.status === 'failed')
      .map((/** @type {any} */ a) => `${path.relative(copy, t.name)}: ${a.fullName}`));
    for (const name of failed.slice(0, 5)) console.log(`  failed: ${name}`);
  }
  if (again.status !== 0) console.log(`  npm test after the edit exited ${again.status}.`);
  check(npmTest.status === 0 && npmTest.ms <= 20000,
    `npm test, cold: ${formatMs(npmTest.ms)}${npmTest.status === 0 ? '' : ` (exit ${npmTest.status})`}`,
    '<= 20 s, all tests passing');
}

/**
 * @param {string} file
 * @returns {any} the parsed file, or undefined when it is missing or not JSON
 */
function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------

/** The commit and whether the working tree differs from it, for the record. */
async function revision() {
  try {
    const head = await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, timeoutSeconds: 30 });
    const status = await run('git', ['status', '--porcelain'], { cwd: root, timeoutSeconds: 30 });
    return `${head.stdout.trim()}${status.stdout.trim() ? ' with uncommitted changes' : ''}`;
  } catch {
    return 'unknown';
  }
}

/** The load average over 1, 5 and 15 minutes: how busy the machine was besides the benchmark. */
function loadAverage() {
  return os.loadavg().map((load) => load.toFixed(2)).join(' ');
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  deadline = Date.now() + options.maxMinutes * 60000;
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vergabe-bench-'));
  const npmVersion = (await run('npm', ['--version'], { cwd: root, timeoutSeconds: 60 })).stdout.trim();
  const started = new Date().toISOString();
  console.log(`Benchmark of vergabe-teilnahme-deploy, ${started}, revision ${await revision()}`);
  console.log(`Machine: ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? 'unknown CPU'}, `
    + `node ${process.version}, npm ${npmVersion}, load average ${loadAverage()}`);
  console.log(`Runs: ${options.runs} per fast figure, ${options.stockRuns} per stock figure, `
    + `${options.scaleRuns} per scale figure, 1 for the tests; at most ${options.maxMinutes} minutes.`);

  const sections = [
    async () => {
      const { copy } = await nothingChanged(options.runs);
      await afterEdit(options.runs, options.stockRuns);
      await scale(copy, options.scaleRuns);
    },
    ...(options.test ? [tests] : []),
  ];
  for (const section of sections) {
    try {
      await section();
    } catch (error) {
      if (!(error instanceof BudgetSpent)) throw error;
      console.log(`\nThe time budget of ${options.maxMinutes} minutes is spent; `
        + 'the remaining figures are skipped.');
      break;
    }
  }

  const misses = checks.filter((c) => !c.pass).length;
  console.log(`\nTargets: ${checks.length - misses} PASS, ${misses} MISS (informative; see above). `
    + `Load average at the end ${loadAverage()}.`);
}

for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    if (current) killGroup(current);
    cleanUp();
    console.error(`bench: interrupted by ${signal}; temporary copies removed`);
    process.exit(130);
  });
}

main().then(cleanUp, (error) => {
  cleanUp();
  console.error(`bench: ${error instanceof HarnessError ? error.message : error?.stack ?? error}`);
  process.exit(1);
});
