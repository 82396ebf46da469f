/*
 * `npm test` runs the type check beside Jest (scripts/test.js). Here with small Node programs in
 * their place: the exit code must say whether both passed, the held-back report must come after the
 * other command has ended, and a failure must be named.
 */
import { existsSync, mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { sideBySide as run } from '../scripts/test';

let dir: string;
let runs = 0;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'vergabe-test-runner-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A Node program as a command: `code` is its source. */
const program = (title: string, code: string) => ({ title, file: process.execPath, args: ['-e', code] });

/** Runs both; returns the exit code and what was written, in order. */
async function sideBySide(main: string, beside: string) {
  const written: Array<{ stream: string; text: string; mainEnded: boolean }> = [];
  const marker = join(dir, `main-ended-${++runs}`);
  const mainCode = `${main}; require('fs').writeFileSync(${JSON.stringify(marker)}, '')`;
  const code = await run(program('main', mainCode), program('beside', beside), {
    out: (text) => written.push({ stream: 'out', text, mainEnded: existsSync(marker) }),
    err: (text) => written.push({ stream: 'err', text, mainEnded: existsSync(marker) }),
  });
  return { code, written };
}

test('both pass: exit code 0, the held report after the other command ended, then a summary', async () => {
  const { code, written } = await sideBySide('setTimeout(() => {}, 300)', "console.log('held report')");
  expect(code).toBe(0);
  expect(written.map((w) => w.text.trim())).toEqual(['held report', 'npm test: beside and main passed']);
  expect(written.every((w) => w.mainEnded)).toBe(true);
});

test('the command beside fails: exit code 1, its report shown, and it is named', async () => {
  const { code, written } = await sideBySide('0', "console.error('error TS2322: bad'); process.exit(2)");
  expect(code).toBe(1);
  expect(written[0].text).toContain('error TS2322: bad');
  expect(written[written.length - 1]).toMatchObject({ stream: 'err', text: 'npm test: failed: beside\n' });
});

test('the main command fails: exit code 1 and it is named', async () => {
  const { code, written } = await sideBySide('process.exitCode = 1', '0');
  expect(code).toBe(1);
  expect(written).toEqual([expect.objectContaining({ stream: 'err', text: 'npm test: failed: main\n' })]);
});

test('a command that cannot start counts as failed', async () => {
  const code = await run(program('main', '0'),
    { title: 'missing', file: join(dir, 'no-such-program'), args: [] }, { out: () => {}, err: () => {} });
  expect(code).toBe(1);
});
