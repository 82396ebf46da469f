/*
 * The fast path of `npm run synth` (scripts/synth.js) reuses two bundles, main.js (main.ts and
 * lib/) and vendor.js (the packages and the generated code: imports/, lib/config-validator.js),
 * and V8's code cache of each. Reuse must never serve stale code or stale data: these tests edit a
 * temporary copy of the project and check what is bundled again and what is written. The copy
 * gets the repository's packages bundle when there is one (it takes a few hundred milliseconds to
 * build); its first synth bundles main.ts.
 */
import { spawnSync } from 'child_process';
import {
  cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'fs';
import { tmpdir } from 'os';
import { join, relative } from 'path';
import { parse, parseDocument } from 'yaml';
import { ROOT, synth } from './helpers';
import { copySynthCache } from './project-copy';

// Every test runs the synth once or twice, bundling included; a busy machine needs more than 5 s.
jest.setTimeout(60_000);

let copy: string;
const bundle = () => join(copy, '.cache', 'synth', 'main.js');
const codeCache = () => join(copy, '.cache', 'synth', 'main.js.v8');

/**
 * Runs the synth in the copy; fails the test when it does not exit 0. `rebuilt`: any bundle was
 * built; `skipped`: nothing had changed, so it did no work.
 */
function runSynth(...args: string[]): { stdout: string; stderr: string; rebuilt: boolean; skipped: boolean } {
  const result = spawnSync(process.execPath, ['scripts/synth.js', ...args], { cwd: copy, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`synth exited ${result.status}:\n${result.stderr}`);
  return {
    stdout: result.stdout,
    stderr: result.stderr,
    rebuilt: /^synth: bundled /m.test(result.stderr),
    skipped: /^synth: nothing changed since the last synth/m.test(result.stderr),
  };
}

/** Each dist/ file's identity (inode, time, size): changes when a file is written again. */
function distIdentity(): string {
  return Object.keys(distFiles()).map((file) => {
    const stat = statSync(join(copy, 'dist', file));
    return `${file}:${stat.ino}:${stat.mtimeMs}:${stat.size}`;
  }).join('\n');
}

/** The bundle file's identity: changes whenever the bundle is written again. */
function bundleIdentity(): string {
  const stat = statSync(bundle());
  return `${stat.ino}:${stat.mtimeMs}:${stat.size}`;
}

/** Every file under the copy's dist/, by path relative to dist/. */
function distFiles(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else out[relative(join(copy, 'dist'), path)] = readFileSync(path, 'utf8');
    }
  };
  walk(join(copy, 'dist'));
  return out;
}

/** Every input the current `main` or `vendor` bundle was built from, as its stamps record it. */
function bundleInputs(name: 'main' | 'vendor'): string[] {
  const stamps = JSON.parse(readFileSync(join(copy, '.cache', 'synth', `${name}.inputs.json`), 'utf8'));
  return Object.keys(stamps.files);
}

/** The project's .ts files under `prefix` that the current `main` or `vendor` bundle was built from. */
function bundledProjectFiles(name: 'main' | 'vendor', prefix: string): string[] {
  return bundleInputs(name).filter((file) => file.startsWith(prefix) && file.endsWith('.ts')).sort();
}

beforeAll(() => {
  copy = mkdtempSync(join(tmpdir(), 'vergabe-synth-cache-'));
  for (const entry of ['main.ts', 'lib', 'imports', 'scripts', 'config', 'package.json', 'tsconfig.json']) {
    cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
  copySynthCache(copy, ['vendor']);
  const first = runSynth();
  if (!first.rebuilt) throw new Error(`the first synth of a fresh copy did not bundle:\n${first.stderr}`);
});

afterAll(() => rmSync(copy, { recursive: true, force: true }));

test('the bundles write exactly what lib/ writes when run from its sources', () => {
  const environments = readdirSync(join(copy, 'config'))
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .map((file): [string, unknown] => [
      file.replace(/\.yaml$/, ''),
      parse(readFileSync(join(copy, 'config', file), 'utf8')),
    ]);
  const expected = Object.fromEntries(synth(...environments).map((f) => [f.path, f.content]));
  expect(distFiles()).toEqual(expected);
});

test('with nothing changed a synth does no work: same report, dist/ not written again', () => {
  const full = runSynth('--force');
  expect(full.skipped).toBe(false);
  const before = distIdentity();

  const again = runSynth();
  expect(again.skipped).toBe(true);
  expect(again.rebuilt).toBe(false);
  expect(again.stdout).toBe(full.stdout);
  expect(again.stdout).toMatch(/^dist\/production\/00-namespace\.yaml +1 object \(Namespace\)$/m);
  expect(distIdentity()).toBe(before);
});

test.each<[string, () => void]>([
  ['a hand-edited dist/ file', () => {
    const file = join(copy, 'dist', 'production', 'plan.tsv');
    writeFileSync(file, `${readFileSync(file, 'utf8')}# edited by hand\n`);
  }],
  ['a removed dist/ file', () => rmSync(join(copy, 'dist', 'staging', '60-app.yaml'))],
  ['an extra file in dist/', () => {
    writeFileSync(join(copy, 'dist', 'production', '99-extra.yaml'), 'kind: X\n');
  }],
  ['a config file saved with other content', () => {
    const file = join(copy, 'config', 'staging.yaml');
    writeFileSync(file, `${readFileSync(file, 'utf8')}# a comment\n`);
  }],
])('%s makes the next synth write dist/ again, as the code synthesizes it', (_case, change) => {
  // Each case starts where the one before ended: dist/ current, as the last synth recorded it.
  const files = distFiles();
  change();
  const result = runSynth();
  expect(result.skipped).toBe(false);
  expect(distFiles()).toEqual(files);
  expect(runSynth().skipped).toBe(true);
});

test('a new file in config/ is read by the next synth', () => {
  runSynth('--force');
  const file = join(copy, 'config', 'zz-new.yaml');
  writeFileSync(file, 'app: [\n');
  try {
    const result = spawnSync(process.execPath, ['scripts/synth.js'], { cwd: copy, encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^config zz-new: /m);
  } finally {
    rmSync(file);
  }
  // The failed synth wrote nothing and recorded nothing: the next one does the work again.
  expect(runSynth().skipped).toBe(false);
});

test('a copy of the project with the same bundles uses their code caches', () => {
  runSynth('--force');
  const other = mkdtempSync(join(tmpdir(), 'vergabe-synth-cache-copy-'));
  try {
    for (const entry of ['main.ts', 'lib', 'imports', 'scripts', 'config', 'package.json', 'tsconfig.json']) {
      cpSync(join(copy, entry), join(other, entry), { recursive: true });
    }
    symlinkSync(join(ROOT, 'node_modules'), join(other, 'node_modules'));
    cpSync(join(copy, '.cache'), join(other, '.cache'), { recursive: true });
    const caches = ['main.js.v8', 'vendor.js.v8'].map((name) => join(other, '.cache', 'synth', name));
    const identities = caches.map((file) => `${statSync(file).ino}:${statSync(file).mtimeMs}`);

    const result = spawnSync(process.execPath, ['scripts/synth.js'], { cwd: other, encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stderr).not.toMatch(/^synth: bundled /m);
    // A cache that V8 rejected, or that named another bundle, would have been written again.
    expect(caches.map((file) => `${statSync(file).ino}:${statSync(file).mtimeMs}`)).toEqual(identities);
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test('--force: the bundles are reused, from their code caches, and write the same files', () => {
  // The first synth (in beforeAll) bundled, and made the code caches when it ended.
  expect(statSync(codeCache()).size).toBeGreaterThan(0);
  const before = bundleIdentity();
  const files = distFiles();
  const second = runSynth('--force');
  expect(second.skipped).toBe(false);
  expect(second.rebuilt).toBe(false);
  expect(bundleIdentity()).toBe(before);
  expect(statSync(codeCache()).size).toBeGreaterThan(0);
  expect(statSync(join(copy, '.cache', 'synth', 'vendor.js.v8')).size).toBeGreaterThan(0);
  expect(distFiles()).toEqual(files);
});

test('a changed config/*.yaml is read again on the next synth, without a rebuild', () => {
  const file = join(copy, 'config', 'production.yaml');
  const doc = parseDocument(readFileSync(file, 'utf8'));
  const tag = doc.getIn(['image', 'tag']) === 'abcdef1' ? '1234567' : 'abcdef1';
  doc.setIn(['image', 'tag'], tag);
  writeFileSync(file, doc.toString());
  const before = bundleIdentity();

  const result = runSynth();
  expect(result.rebuilt).toBe(false);
  expect(bundleIdentity()).toBe(before);
  expect(readFileSync(join(copy, 'dist', 'production', 'plan.tsv'), 'utf8'))
    .toMatch(new RegExp(`^setting\timage\t\\S+:${tag}$`, 'm'));
});

test('a lib file saved again with the same content is not bundled again', () => {
  const file = join(copy, 'lib', 'synth.ts');
  writeFileSync(file, readFileSync(file));
  const before = bundleIdentity();

  const result = runSynth();
  expect(result.rebuilt).toBe(false);
  expect(bundleIdentity()).toBe(before);
});

test('an edited lib/*.ts file is bundled again and its change reaches dist/', () => {
  // The first phase's title, as the current sources write it into plan.tsv, edited at its source.
  const plan = readFileSync(join(copy, 'dist', 'production', 'plan.tsv'), 'utf8');
  const title = plan.split('\n').find((line) => line.startsWith('phase\t'))?.split('\t')[4];
  if (!title) throw new Error('plan.tsv has no phase line');
  const source = join(copy, 'lib', 'phases.ts');
  const text = readFileSync(source, 'utf8');
  const edited = text.replace(`'${title}'`, `'${title} (edited)'`);
  if (edited === text) throw new Error(`lib/phases.ts does not contain the title '${title}' as a literal`);
  writeFileSync(source, edited);
  const before = bundleIdentity();

  const result = runSynth();
  expect(result.stderr).toMatch(/^synth: bundled main\.ts in [0-9]+ ms \(lib\/phases\.ts changed\)$/m);
  expect(bundleIdentity()).not.toBe(before);
  const newPlan = readFileSync(join(copy, 'dist', 'production', 'plan.tsv'), 'utf8');
  expect(newPlan).toContain(`\t${title} (edited)\n`);
});

test('generated code is bundled with the packages, not with the code we write', () => {
  expect(bundledProjectFiles('main', 'imports/')).toEqual([]);
  expect(bundledProjectFiles('vendor', 'imports/')).not.toEqual([]);
  expect(bundleInputs('main')).not.toContain('lib/config-validator.js');
  expect(bundleInputs('vendor')).toContain('lib/config-validator.js');
  expect(bundleInputs('main')).toContain('lib/config.ts');
});

test('an edited imports/*.ts file is bundled again, with the packages', () => {
  const [file] = bundledProjectFiles('vendor', 'imports/');
  if (!file) throw new Error('no imports/*.ts file is part of the packages bundle');
  const probe = `synth-cache-probe-${process.pid}`;
  const source = readFileSync(join(copy, file), 'utf8');
  const before = bundleIdentity();
  writeFileSync(join(copy, file), `${source}\n(globalThis as any).probe = '${probe}';\n`);

  const result = runSynth();
  const reason = `(${file} changed)`.replace(/[.()]/g, '\\$&');
  expect(result.stderr)
    .toMatch(new RegExp(`^synth: bundled the packages and generated code in [0-9]+ ms ${reason}$`, 'm'));
  expect(readFileSync(join(copy, '.cache', 'synth', 'vendor.js'), 'utf8')).toContain(probe);
  expect(bundleIdentity()).toBe(before);
});

test('a lib file that does not compile: exit 1 with esbuild\'s error, dist/ and the bundle unchanged', () => {
  const file = join(copy, 'lib', 'labels.ts');
  const source = readFileSync(file, 'utf8');
  const files = distFiles();
  const before = bundleIdentity();
  writeFileSync(file, `${source}\nexport const broken = ;\n`);
  try {
    const result = spawnSync(process.execPath, ['scripts/synth.js'], { cwd: copy, encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/lib\/labels\.ts:[0-9]+:[0-9]+:/);
    expect(result.stderr).toMatch(/^synth: bundling main\.ts failed \(errors above\); dist\/ is unchanged$/m);
    expect(distFiles()).toEqual(files);
    expect(bundleIdentity()).toBe(before);
  } finally {
    writeFileSync(file, source);
  }
});

test('a package newly imported by lib/ joins the packages bundle', () => {
  const file = join(copy, 'lib', 'synth.ts');
  const files = distFiles();
  writeFileSync(file, `import 'ajv/dist/compile/codegen';\n${readFileSync(file, 'utf8')}`);

  const result = runSynth();
  expect(result.stderr).toMatch(
    /^synth: bundled the packages and generated code in [0-9]+ ms \(main\.ts imports other modules\)$/m);
  const vendor = readFileSync(join(copy, '.cache', 'synth', 'vendor.js'), 'utf8');
  expect(vendor).toContain('get "ajv/dist/compile/codegen"()');
  expect(distFiles()).toEqual(files);
});

test('a code cache that belongs to another bundle or Node is replaced, never used', () => {
  const files = distFiles();
  writeFileSync(codeCache(), 'v0.0.0 x64 1:2:3\nnot a V8 code cache');
  const result = runSynth('--force');
  expect(result.rebuilt).toBe(false);
  expect(distFiles()).toEqual(files);
  const header = readFileSync(codeCache()).subarray(0, 40).toString('latin1');
  expect(header.startsWith(`${process.version} `)).toBe(true);
});

test('bundled code uses __dirname only in cdk8s\'s URL loader, which a synth never calls', () => {
  // The bundles run from .cache/synth/, so __dirname there is not the folder of the source file.
  const uses = ['main.js', 'vendor.js']
    .flatMap((name) => readFileSync(join(copy, '.cache', 'synth', name), 'utf8').split('\n'))
    .filter((line) => /\b__(dirname|filename)\b/.test(line))
    .map((line) => line.trim());
  expect(uses).toEqual(['const script = path.join(__dirname, "_loadurl.mjs");']);
});
