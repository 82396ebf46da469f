/*
 * scripts/image.sh (make vergabe-image) in a temporary copy of the project, against a throwaway
 * app checkout, with test/stand-ins/docker first on PATH: there is no docker engine here. The
 * stand-in records its calls and prints what docker build and docker push print. So these tests
 * prove the order of the steps, the reference that is built and pushed, which digest lands in
 * the configuration and where the script stops; they cannot prove that the app's image really
 * builds, that the registry accepts the push (authentication included), or that a real
 * registry reports its digest in the line the script reads.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { parse } from 'yaml';
import { ROOT } from './root';
import { copyKeptBundles, copyProject, git, ProjectCopy, run } from './project-copy';

const REPOSITORY = 'gitea.coulomb.social/coulomb/vergabe-teilnahme';
const DIGEST = `sha256:${'fedcba9876543210'.repeat(4)}`;
const STAND_INS = join(ROOT, 'test', 'stand-ins');
/** bash by its full path, so that a test may run the script with a PATH that lacks it. */
const BASH = run('bash', ['-c', 'command -v bash'], {}).stdout.trim();

let project: ProjectCopy;
let scratch: string;
let app: string;
let commit: string;
let dockerLog: string;
let contextList: string;

/** `scripts/image.sh args` in the project copy, the docker stand-in first on PATH. */
function image(args: string[], env: NodeJS.ProcessEnv = {}) {
  return project.run(BASH, ['scripts/image.sh', ...args], {
    PATH: `${STAND_INS}:${process.env.PATH}`,
    DOCKER_STAND_IN_LOG: dockerLog,
    DOCKER_STAND_IN_DIGEST: DIGEST,
    DOCKER_STAND_IN_CONTEXT: contextList,
    ...env,
  });
}

/** The docker calls the stand-in recorded, each as its arguments. */
function dockerCalls(): string[][] {
  if (!existsSync(dockerLog)) return [];
  return readFileSync(dockerLog, 'utf8').split('\n').filter(Boolean).map((line) => line.split('\t'));
}

const config = (environment: string) =>
  parse(readFileSync(join(project.dir, `config/${environment}.yaml`), 'utf8'));

beforeAll(() => {
  project = copyProject('vergabe-image-');
  copyKeptBundles(project.dir);
  scratch = mkdtempSync(join(tmpdir(), 'vergabe-image-app-'));
  app = join(scratch, 'vergabe-teilnahme');
  mkdirSync(app);
  writeFileSync(join(app, 'Dockerfile'), 'FROM python:3.12-slim\n');
  writeFileSync(join(app, '.gitignore'), '.env\n');
  git(app, 'init', '-q');
  git(app, 'add', 'Dockerfile', '.gitignore');
  git(app, 'commit', '-q', '-m', 'the app');
  // A developer's local settings: ignored by git, so the checkout is clean with it.
  writeFileSync(join(app, '.env'), 'SECRET_KEY=only-on-this-laptop\n');
  commit = git(app, 'rev-parse', 'HEAD').trim();
  dockerLog = join(scratch, 'docker.log');
  contextList = join(scratch, 'docker-context.txt');
});

afterEach(() => {
  project.reset();
  if (git(app, 'status', '--porcelain') !== '') {
    git(app, 'reset', '-q', '--hard');
    git(app, 'clean', '-fdq');
  }
  rmSync(dockerLog, { force: true });
  rmSync(contextList, { force: true });
});

afterAll(() => {
  project.remove();
  rmSync(scratch, { recursive: true, force: true });
});

describe('a clean checkout', () => {
  /** One run for production, and what it left: the docker calls, the configuration, the app's manifest. */
  let result: ReturnType<typeof image>;
  let calls: string[][];
  let configured: unknown;
  let app60: string;
  let context: string[];
  beforeAll(() => {
    result = image([app]);
    calls = dockerCalls();
    context = readFileSync(contextList, 'utf8').split('\n').filter(Boolean).sort();
    configured = config('production').image;
    app60 = readFileSync(join(project.dir, 'dist', 'production', '60-app.yaml'), 'utf8');
  });

  test('is built and pushed as <repository>:<full commit>, then config gets that tag and the pushed digest', () => {
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(commit).toMatch(/^[0-9a-f]{40}$/);

    const reference = `${REPOSITORY}:${commit}`;
    expect(calls).toEqual([['build', '-t', reference, '-'], ['push', reference]]);
    expect(configured).toEqual(expect.objectContaining({ tag: commit, digest: DIGEST }));
    expect(app60).toContain(`image: ${reference}@${DIGEST}\n`);
  });

  test('announces each step in one line', () => {
    const { stdout } = result;
    const steps = stdout.split('\n').filter((l) => l.startsWith('==> '));
    expect(steps).toEqual([
      `==> checking that ${app} is a clean git checkout`,
      `==> checking that config/production.yaml accepts tag ${commit}`,
      `==> git -C ${app} archive ${commit} | docker build -t ${REPOSITORY}:${commit} -`,
      `==> docker push ${REPOSITORY}:${commit}`,
      `==> bumping config/production.yaml to ${REPOSITORY}:${commit}@${DIGEST}`,
    ]);
  });

  test('the build context is the commit\'s files: a file git ignores (.env) is not in it', () => {
    expect(existsSync(join(app, '.env'))).toBe(true);
    expect(context).toEqual(['.gitignore', 'Dockerfile']);
  });

  test('ENV=staging bumps staging and leaves production alone', () => {
    expect(image([app, 'staging']).status).toBe(0);
    expect(config('staging').image).toEqual(expect.objectContaining({ tag: commit, digest: DIGEST }));
    expect(project.changedFiles().filter((f) => f.includes('production'))).toEqual([]);
  });
});

describe('refused before docker is called; config and dist unchanged', () => {
  function expectRefused(result: { status: number | null; stderr: string }, message: RegExp) {
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(dockerCalls()).toEqual([]);
    expect(project.changedFiles()).toEqual([]);
  }

  test('a folder that is not a git checkout', () => {
    const plain = join(scratch, 'plain');
    mkdirSync(plain, { recursive: true });
    writeFileSync(join(plain, 'Dockerfile'), 'FROM scratch\n');
    expectRefused(image([plain]),
      new RegExp(`^image: ${plain} is not a git checkout; APP_DIR must be a clone`, 'm'));
  });

  test('a checkout with a modified file, naming the checkout and the file', () => {
    writeFileSync(join(app, 'Dockerfile'), 'FROM python:3.13-slim\n');
    const result = image([app]);
    expectRefused(result, new RegExp(`^image: ${app} has uncommitted changes \\(above\\)`, 'm'));
    expect(result.stderr).toMatch(/^ M Dockerfile$/m);
  });

  test('a commit without a Dockerfile', () => {
    git(app, 'rm', '-q', 'Dockerfile');
    git(app, 'commit', '-q', '-m', 'no Dockerfile');
    try {
      expectRefused(image([app]), new RegExp(`^image: ${app} has no Dockerfile in its commit`, 'm'));
    } finally {
      git(app, 'reset', '-q', '--hard', commit);
    }
  });

  test('a checkout with an untracked file (most likely meant to be committed)', () => {
    writeFileSync(join(app, 'local.env'), 'SECRET_KEY=not-in-git\n');
    expectRefused(image([app]), new RegExp(`^image: ${app} has uncommitted changes`, 'm'));
  });

  test('no APP_DIR', () => {
    expectRefused(image([]), /^image: APP_DIR is required; usage: scripts\/image\.sh <APP_DIR> \[ENV\]/m);
  });

  test('an unknown environment', () => {
    expectRefused(image([app, 'prod']),
      /^bump: there is no environment "prod" \(no config\/prod\.yaml\); environments: production, staging$/m);
  });

  test('docker missing: one clear line', () => {
    // A PATH with only what the script needs before it looks for docker.
    const bin = join(scratch, 'bin-without-docker');
    mkdirSync(bin, { recursive: true });
    for (const tool of ['git', 'dirname']) {
      const found = run('bash', ['-c', `command -v ${tool}`], {}).stdout.trim();
      if (!existsSync(join(bin, tool))) symlinkSync(found, join(bin, tool));
    }
    if (!existsSync(join(bin, 'node'))) symlinkSync(process.execPath, join(bin, 'node'));
    const result = image([app], { PATH: bin });
    const line = `image: docker is not installed (or not on PATH); it is needed to build and push ${REPOSITORY}:${commit}`;
    expectRefused(result, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  });
});

describe('a failing step stops the rest; config and dist unchanged', () => {
  test('a failing build: nothing pushed', () => {
    const result = image([app], { DOCKER_STAND_IN_FAIL: 'build' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^image: docker build failed \(above\); nothing pushed, config\/production\.yaml unchanged$/m);
    expect(dockerCalls().map((call) => call[0])).toEqual(['build']);
    expect(project.changedFiles()).toEqual([]);
  });

  test('a failing push: no bump', () => {
    const result = image([app], { DOCKER_STAND_IN_FAIL: 'push' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^image: docker push failed \(above\); config\/production\.yaml unchanged$/m);
    expect(result.stdout).not.toContain('==> bumping');
    expect(dockerCalls().map((call) => call[0])).toEqual(['build', 'push']);
    expect(project.changedFiles()).toEqual([]);
  });

  test('a push that reports no digest: no bump', () => {
    const result = image([app], { DOCKER_STAND_IN_DIGEST: 'unknown' });
    expect(result.status).toBe(1);
    expect(result.stderr.split('\n'))
      .toContain(`image: docker push printed no "${commit}: digest: sha256:... size: ..." line; config/production.yaml unchanged`);
    expect(project.changedFiles()).toEqual([]);
  });
});
