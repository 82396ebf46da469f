/*
 * `npm run synth` as the operator runs it, in a temporary copy of the project: bad input exits
 * non-zero with one line per problem and leaves dist/ byte-for-byte as it was. The copy starts
 * with the repository's synth bundles (the synth checks them against its inputs).
 */
import { spawnSync } from 'child_process';
import {
  cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'fs';
import { tmpdir } from 'os';
import { join, relative } from 'path';
import { ROOT } from './root';
import { copySynthCache } from './project-copy';

let copy: string;
/** The copy's first two synths: what each wrote to dist/, and the second one's result. */
let firstDist: Record<string, string>;
let second: ReturnType<typeof runSynth>;
let secondDist: Record<string, string>;

function runSynth(...args: string[]) {
  const result = spawnSync(process.execPath, ['scripts/synth.js', ...args], { cwd: copy, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Every file under dist/ with its content, to compare byte for byte. */
function snapshotDist(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else out[relative(copy, path)] = readFileSync(path, 'latin1');
    }
  };
  walk(join(copy, 'dist'));
  return out;
}

function editConfig(environment: string, edit: (text: string) => string) {
  const file = join(copy, 'config', `${environment}.yaml`);
  writeFileSync(file, edit(readFileSync(file, 'utf8')));
}

beforeAll(() => {
  copy = mkdtempSync(join(tmpdir(), 'vergabe-synth-'));
  for (const entry of ['main.ts', 'lib', 'imports', 'scripts', 'config', 'package.json', 'tsconfig.json']) {
    cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
  copySynthCache(copy);
  const first = runSynth();
  if (first.status !== 0) throw new Error(`synth of the committed configuration failed:\n${first.stderr}`);
  firstDist = snapshotDist();
  // Forced: with nothing changed, a synth would only compare and print the first one's report.
  second = runSynth('--force');
  secondDist = snapshotDist();
});

afterAll(() => rmSync(copy, { recursive: true, force: true }));

test('a good configuration writes dist/<environment>/ and prints what it wrote', () => {
  const result = second;
  expect(result.status).toBe(0);
  expect(result.stdout).toMatch(/^dist\/production\/00-namespace\.yaml +1 object \(Namespace\)$/m);
  expect(result.stdout).toMatch(/^dist\/production\/plan\.tsv +data$/m);
});

test.each<[string, string, (text: string) => string, RegExp]>([
  ['an invalid image tag', 'production', (t) => t.replace(/tag: "[0-9a-f]+"/, 'tag: latest'),
    /^config production: image\.tag "latest" is not a git commit hash/m],
  ['a YAML syntax error', 'production', (t) => `${t}\n  broken: [\n`,
    /^config production: .*production\.yaml:[0-9]+:[0-9]+: YAML syntax error/m],
  ['an unknown key', 'production', (t) => t.replace('kubeContext:', 'kubeContxt:'),
    /^config production: kubeContxt is not a known setting/m],
])('%s exits 1 with a clear line, no stack trace, dist/ untouched', (_case, environment, edit, message) => {
  const before = snapshotDist();
  const original = readFileSync(join(copy, 'config', `${environment}.yaml`), 'utf8');
  editConfig(environment, edit);
  try {
    const result = runSynth();
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/^synth: nothing written; dist\/ is unchanged$/m);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(snapshotDist()).toEqual(before);
  } finally {
    writeFileSync(join(copy, 'config', `${environment}.yaml`), original);
  }
});

test('one bad environment among good ones writes nothing at all', () => {
  const before = snapshotDist();
  const good = readFileSync(join(copy, 'config', 'production.yaml'), 'utf8');
  writeFileSync(join(copy, 'config', 'zz-broken.yaml'),
    good.replace('host: vergabe-teilnahme.whywhynot.de', 'host: not a host'));
  try {
    const result = runSynth();
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^config zz-broken: app\.host "not a host" is not a fully qualified DNS name/m);
    expect(snapshotDist()).toEqual(before);
  } finally {
    rmSync(join(copy, 'config', 'zz-broken.yaml'));
  }
});

test('an empty config folder is an error, not an empty dist/', () => {
  const before = snapshotDist();
  const saved = join(copy, 'config-saved');
  cpSync(join(copy, 'config'), saved, { recursive: true });
  rmSync(join(copy, 'config'), { recursive: true });
  try {
    const result = runSynth();
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^config: cannot read the folder config$/m);
    expect(snapshotDist()).toEqual(before);
  } finally {
    cpSync(saved, join(copy, 'config'), { recursive: true });
    rmSync(saved, { recursive: true });
  }
});

test('an unknown argument exits 2 naming it and the usage, dist/ untouched', () => {
  const before = snapshotDist();
  const result = runSynth('--froce');
  expect(result.status).toBe(2);
  expect(result.stderr).toMatch(/^synth: unknown argument "--froce"; usage: node scripts\/synth\.js \[--force\]/m);
  expect(snapshotDist()).toEqual(before);
});

test('two synths give identical bytes', () => {
  expect(second.status).toBe(0);
  expect(Object.keys(firstDist).length).toBeGreaterThan(0);
  expect(secondDist).toEqual(firstDist);
});
