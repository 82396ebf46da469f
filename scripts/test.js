#!/usr/bin/env node
// @ts-check
/*
 * `npm test`: the type check (`tsc --noEmit -p .`, incremental) and the tests (Jest) side by side.
 * tsc is single-threaded and Jest leaves a core idle at its start and end, so together they end
 * sooner than one after the other. Jest's output passes through as it comes; tsc's report is printed
 * after Jest is done, never mixed into it. Arguments go to Jest (`npm test -- test/config.test.ts`;
 * for `--watch`, run `npx jest --watch`, as tsc's report would wait for it). The exit code is 0
 * only when both pass; otherwise the last line names what failed.
 */
'use strict';
const { spawn } = require('child_process');

/**
 * @typedef {object} Command
 * @property {string} title how the summary names it
 * @property {string} file the program
 * @property {string[]} args
 */

/**
 * @param {Command} command
 * @param {boolean} quiet keep its output for later instead of passing it through
 * @returns {{ done: Promise<{ code: number, output: string }>, stop: () => void }}
 */
function start(command, quiet) {
  const child = spawn(command.file, command.args, { stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
  /** @type {Buffer[]} */
  const chunks = [];
  child.stdout?.on('data', (chunk) => chunks.push(chunk));
  child.stderr?.on('data', (chunk) => chunks.push(chunk));
  /** @type {Promise<{ code: number, output: string }>} */
  const done = new Promise((resolve) => {
    child.on('error', (error) => {
      resolve({ code: 127, output: `${command.title}: cannot start: ${error.message}\n` });
    });
    child.on('close', (code, signal) => resolve({
      code: code ?? (signal ? 128 : 1),
      output: Buffer.concat(chunks).toString('utf8'),
    }));
  });
  return { done, stop: () => child.kill('SIGTERM') };
}

/**
 * Runs `main` with its output passing through and `beside` at the same time with its output held
 * back, then writes the held output and one summary line.
 * @param {Command} main
 * @param {Command} beside
 * @param {{ out: (text: string) => void, err: (text: string) => void }} write
 * @returns {Promise<number>} the exit code: 0 when both passed
 */
async function sideBySide(main, beside, write) {
  const quiet = start(beside, true);
  const loud = start(main, false);
  const stop = () => {
    quiet.stop();
    loud.stop();
  };
  process.once('SIGTERM', stop);

  const mainResult = await loud.done;
  const besideResult = await quiet.done;
  process.removeListener('SIGTERM', stop);
  if (besideResult.output.trim() !== '') write.out(`\n${besideResult.output.trimEnd()}\n`);
  const failed = [{ command: beside, result: besideResult }, { command: main, result: mainResult }]
    .filter(({ result }) => result.code !== 0)
    .map(({ command }) => command.title);
  if (failed.length > 0) {
    write.err(`npm test: failed: ${failed.join(', ')}\n`);
    return 1;
  }
  write.out(`npm test: ${beside.title} and ${main.title} passed\n`);
  return 0;
}

if (require.main === module) {
  const node = process.execPath;
  sideBySide(
    { title: 'the tests (jest)', file: node,
      args: [require.resolve('jest/bin/jest'), ...process.argv.slice(2)] },
    // --incremental: tsc keeps what it checked in .cache/tsc/ and checks again only what an edit
    // can affect (about half the time after an edit of lib/; a fresh clone checks everything).
    { title: 'the type check (tsc --noEmit -p .)', file: node, args: [require.resolve('typescript/bin/tsc'),
      '--noEmit', '-p', '.', '--incremental', '--tsBuildInfoFile', '.cache/tsc/tsconfig.tsbuildinfo'] },
    { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) },
  ).then((code) => {
    process.exitCode = code;
  });
}

module.exports = { sideBySide };
