/*
 * `node scripts/bump.js` (make vergabe-bump) as the operator runs it, in a temporary copy of the
 * project made a git repository, so that `git diff` (not the script's own comparison) shows
 * exactly what a bump changed. Each test starts from the baseline commit; one chain of valid
 * bumps runs once, and several tests read what each changed. Runs that stop before synthesis
 * (bad input, --dry-run, the kept bundle's checks) call the script's cli() in this process; the
 * others, and an unknown environment, run it as a command.
 */
import { readFileSync, statSync, writeFileSync } from 'fs';
import { join } from 'path';
import { copyKeptBundles, copyProject, ProjectCopy, RunResult } from './project-copy';

const REPOSITORY = 'gitea.coulomb.social/coulomb/vergabe-teilnahme';
const OLD_TAG = '0000000';
const COMMIT = '3f2c1e0a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e';
const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

let project: ProjectCopy;
let copy: string;

function bump(...args: string[]) {
  return project.run(process.execPath, ['scripts/bump.js', ...args]);
}

/** The copy's scripts/bump.js through its cli(), in this process: its exit code and output. */
function bumpHere(...args: string[]): RunResult {
  const { cli } = require(join(copy, 'scripts', 'bump.js')) as typeof import('../scripts/bump');
  let stdout = '';
  let stderr = '';
  const status = cli(args, {
    out: (line) => { stdout += `${line}\n`; },
    err: (line) => { stderr += `${line}\n`; },
  });
  return { status, stdout, stderr };
}

const changedFiles = () => project.changedFiles();

/** The removed and added lines of `paths` since the baseline commit, per `git diff -U0`. */
function diffLines(...paths: string[]): { removed: string[]; added: string[] } {
  const lines = project.git('diff', '--no-color', '-U0', '--', ...paths).split('\n');
  return {
    removed: lines.filter((l) => l.startsWith('-') && !l.startsWith('--- ')).map((l) => l.slice(1)),
    added: lines.filter((l) => l.startsWith('+') && !l.startsWith('+++ ')).map((l) => l.slice(1)),
  };
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Every line a bump may change in dist/<environment>/ (app `vergabe-teilnahme`, production): the
 * image references, the migration Job's name and image-tag annotation, the plan's image and
 * migrationJob settings and the Job's object line.
 */
function allowedLines(tag: string, digest?: string): Record<string, RegExp> {
  const reference = escape(`${REPOSITORY}:${tag}${digest ? `@${digest}` : ''}`);
  const job = 'vergabe-teilnahme-migrate-[0-9a-f]{8}';
  return {
    'image of a container': new RegExp(`^ +image: ${reference}$`),
    'image-tag annotation of the Job':
      new RegExp(`^ +vergabe-teilnahme\\.whywhynot\\.de/image-tag: "?${escape(tag)}"?$`),
    'name of the Job': new RegExp(`^ +name: ${job}$`),
    'plan: setting image': new RegExp(`^setting\timage\t${reference}$`),
    'plan: setting migrationJob': new RegExp(`^setting\tmigrationJob\t${job}$`),
    'plan: object of the Job':
      new RegExp(`^object\t50-migrate\tjob\\.batch\tvergabe-teilnahme\t${job}\tcomplete\tprune$`),
  };
}

/** Which allowed pattern each line matches; a line matching none fails the test, naming it. */
function classify(lines: string[], allowed: Record<string, RegExp>): Set<string> {
  const used = new Set<string>();
  for (const line of lines) {
    const name = Object.keys(allowed).find((key) => allowed[key].test(line));
    expect({ line, allowed: name !== undefined }).toEqual({ line, allowed: true });
    if (name) used.add(name);
  }
  return used;
}

const jobNames = (lines: string[]) => new Set(lines.flatMap((l) => l.match(/-migrate-[0-9a-f]{8}/g) ?? []));

beforeAll(() => {
  project = copyProject('vergabe-bump-');
  copy = project.dir;
  copyKeptBundles(copy);
});

afterEach(() => project.reset());

afterAll(() => project.remove());

/** What a bump did, read right after it: its result and the changes since the baseline commit. */
interface Bumped {
  result: RunResult;
  files: string[];
  dist: { removed: string[]; added: string[] };
  config: { removed: string[]; added: string[] };
  configText: string;
}

function bumped(...args: string[]): Bumped {
  return {
    result: bump('--env', 'production', ...args),
    files: changedFiles(),
    dist: diffLines('dist/production'),
    config: diffLines('config'),
    configText: readFileSync(join(copy, 'config', 'production.yaml'), 'utf8'),
  };
}

describe('a valid bump', () => {
  /**
   * One chain of bumps, each read against the baseline: to COMMIT without a digest, then to COMMIT
   * with DIGEST, then to a new tag without a digest.
   */
  let tagOnly: Bumped;
  let withDigest: Bumped;
  let newTag: Bumped;
  beforeAll(() => {
    tagOnly = bumped('--tag', COMMIT);
    withDigest = bumped('--tag', COMMIT, '--digest', DIGEST);
    newTag = bumped('--tag', 'abcdef0');
    project.reset();
  });

  test('changes only image references, the Job name and annotation, and the plan lines naming them', () => {
    const { result, files } = withDigest;
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);

    for (const file of files) expect(file).toMatch(/^(config\/production\.yaml|dist\/production\/[^/]+)$/);
    const { removed, added } = withDigest.dist;
    expect(added.length).toBeGreaterThan(0);
    expect(removed.length).toBe(added.length);
    const everyKind = Object.keys(allowedLines(COMMIT));
    expect([...classify(removed, allowedLines(OLD_TAG))].sort()).toEqual([...everyKind].sort());
    expect([...classify(added, allowedLines(COMMIT, DIGEST))].sort()).toEqual([...everyKind].sort());

    const [oldJob] = jobNames(removed);
    expect(jobNames(removed).size).toBe(1);
    expect(jobNames(added).size).toBe(1);
    expect(jobNames(added)).not.toContain(oldJob);
  });

  test('writes exactly the tag and digest lines of the configuration', () => {
    expect(withDigest.result.status).toBe(0);
    expect(withDigest.config).toEqual({
      removed: [`  tag: "${OLD_TAG}"`, '  digest: null'],
      added: [`  tag: "${COMMIT}"`, `  digest: "${DIGEST}"`],
    });
  });

  test('prints the configuration change and each changed line of dist/<environment>/, old and new', () => {
    const { stdout } = tagOnly.result;
    expect(stdout).toContain(`config/production.yaml: image.tag "${OLD_TAG}" → "${COMMIT}", image.digest null → null`);
    expect(stdout).toMatch(/^ {2}dist\/production\/60-app\.yaml$/m);
    expect(stdout).toMatch(/^ {4}line [0-9]+:\n {6}- image: .*:0000000\n {6}\+ image: .*:3f2c1e0a9b8d/m);
    expect(stdout).not.toMatch(/dist\/production\/(00|20|30|70|80)-/);
  });

  test('a new tag without a digest drops the old digest from config and every image reference', () => {
    expect(withDigest.result.status).toBe(0);
    expect(newTag.result.status).toBe(0);
    expect(newTag.configText).toMatch(/^ {2}digest: null$/m);
    const { added } = newTag.dist;
    classify(added, allowedLines('abcdef0'));
    expect(added.join('\n')).not.toContain('sha256:');
  });

  test('a bump of staging leaves production\'s configuration and output untouched', () => {
    expect(bump('--env', 'staging', '--tag', COMMIT).status).toBe(0);
    const files = changedFiles();
    expect(files).toContain('config/staging.yaml');
    expect(files.filter((f) => f.includes('production'))).toEqual([]);
  });

  test('--dry-run validates and shows the change, writes nothing', () => {
    const result = bumpHere('--env', 'production', '--tag', COMMIT, '--dry-run');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^bump: valid, would write config\/production\.yaml: image\.tag "0000000" → "3f2c/m);
    // scripts/image.sh reads the repository it pushes to from this line.
    expect(result.stdout.split('\n')).toContain(`bump: the image would be ${REPOSITORY}:${COMMIT}`);
    expect(changedFiles()).toEqual([]);
  });
});

describe('bad input: a clear error, exit 1, config and dist byte for byte as before', () => {
  const hash = 'a git commit hash (7 to 40 lowercase hex digits)';
  test.each<[string, string[], string]>([
    ['a moving tag', ['--tag', 'latest'], `config production: image.tag "latest" is not ${hash}`],
    ['an upper-case commit', ['--tag', COMMIT.toUpperCase()],
      `config production: image.tag "${COMMIT.toUpperCase()}" is not ${hash}`],
    ['a too short commit', ['--tag', 'abc12'], `config production: image.tag "abc12" is not ${hash}`],
    ['a bad digest', ['--tag', COMMIT, '--digest', 'sha256:123'],
      'config production: image.digest "sha256:123" is not an image digest ("sha256:" and 64 lowercase hex digits)'],
  ])('%s', (_case, args, problem) => {
    const result = bumpHere('--env', 'production', ...args);
    expect(result.status).toBe(1);
    expect(result.stderr.split('\n')).toContain(problem);
    expect(result.stderr).toMatch(/^bump: nothing written; config\/production\.yaml and dist\/ are unchanged$/m);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(result.stdout).toBe('');
    expect(changedFiles()).toEqual([]);
  });

  test('an unknown environment lists the existing ones', () => {
    const result = bump('--env', 'prod', '--tag', COMMIT);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      'bump: there is no environment "prod" (no config/prod.yaml); environments: production, staging\n',
    );
    expect(changedFiles()).toEqual([]);
  });

  test('a missing --tag prints the usage', () => {
    const result = bumpHere('--env', 'production');
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^bump: --tag is required\nusage: node scripts\/bump\.js --env/);
    expect(changedFiles()).toEqual([]);
  });

  test('when synthesis fails, the configuration is put back and synth\'s message shown', () => {
    // Synthesis reads every environment: a broken second one makes it fail after the write.
    const production = readFileSync(join(copy, 'config', 'production.yaml'), 'utf8');
    writeFileSync(join(copy, 'config', 'zz-broken.yaml'), production.replace('kubeContext:', 'kubeContxt:'));
    const result = bump('--env', 'production', '--tag', COMMIT);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^config zz-broken: kubeContxt is not a known setting$/m);
    expect(result.stderr).toMatch(/^bump: synthesis failed; config\/production\.yaml is restored, dist\/ is as before$/m);
    expect(changedFiles()).toEqual(['config/zz-broken.yaml']);
  });
});

describe('the bundle of lib/image-bump.ts kept in .cache/bump/', () => {
  const hash = 'a git commit hash (7 to 40 lowercase hex digits)';
  const bundle = () => statSync(join(copy, '.cache', 'bump', 'image-bump.js'));
  // Each cli() call looks for the kept bundle on disk, as each run of the command does.
  const problem = () => bumpHere('--env', 'production', '--tag', 'latest').stderr.split('\n')[0];
  let first: string;
  let kept: ReturnType<typeof bundle>;
  beforeAll(() => {
    first = problem();
    kept = bundle();
  });

  test('is used again while its sources are unchanged', () => {
    expect(first).toBe(`config production: image.tag "latest" is not ${hash}`);
    expect(problem()).toBe(first);
    expect(bundle().ino).toBe(kept.ino);
    expect(bundle().mtimeMs).toBe(kept.mtimeMs);
  });

  test('is bundled again when a file it was built from changes, never run stale', () => {
    expect(first).toBe(`config production: image.tag "latest" is not ${hash}`);
    // The message of a value that breaks its pattern, as lib/config.ts writes it, edited at its source.
    const source = join(copy, 'lib', 'config.ts');
    const original = readFileSync(source, 'utf8');
    const edited = original.replace(' ${value} is not ${hint}`', ' ${value} is still not ${hint}`');
    if (edited === original) throw new Error('lib/config.ts has no "${value} is not ${hint}" to edit');
    writeFileSync(source, edited);
    expect(problem()).toBe(`config production: image.tag "latest" is still not ${hash}`);
    writeFileSync(source, original);
    expect(problem()).toBe(`config production: image.tag "latest" is not ${hash}`);
  });
});
