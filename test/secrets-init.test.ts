/*
 * scripts/secrets-init.sh (make vergabe-secrets-init) over a throw-away tree, with a STAND-IN
 * for sops on PATH (test/stand-ins/secrets-init/sops): a bash script that records its arguments,
 * checks that the manifest reaches it through a pipe, and prints fake ENC[...] leaves. For each
 * value it logs only a SHA-256, the length and the character class, so these tests compare
 * values without a plaintext copy anywhere on disk.
 * What the stand-in cannot prove: real encryption, that the real sops >= 3.9 accepts the call
 * (documented: `--filename-override` with `/dev/stdin`, since sops 3.9.0) and matches the
 * creation rule of .sops.yaml.
 * A run is a few node processes; a scenario that starts where another ended (the files exist,
 * one is deleted) starts from a copy of that scenario's tree instead of running it again.
 */
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import {
  closeSync, cpSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync,
  writeFileSync,
} from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { cli as contractCheck } from '../scripts/secret-contract';
import { allFiles, expectNoFragment, makeTree, ROOT } from './secret-test-tree';

const INIT = join(ROOT, 'scripts/secrets-init.sh');
const STAND_INS = join(ROOT, 'test/stand-ins/secrets-init');
const BASH = spawnSync('bash', ['-c', 'command -v bash'], { encoding: 'utf8' }).stdout.trim();
const APP = 'secrets/production/vergabe-teilnahme-app.sops.yaml';
const DB = 'secrets/production/vergabe-db-credentials.sops.yaml';
const REGISTRY = 'secrets/production/vergabe-teilnahme-registry.sops.yaml';

interface ValueRecord {
  file: string;
  section: string;
  key: string;
  sha256: string;
  length: number;
  urlSafe: boolean;
  distinct: number;
}

const trees: string[] = [];
afterAll(() => {
  for (const dir of trees) rmSync(dir, { recursive: true, force: true });
});

function tree(options: Parameters<typeof makeTree>[0] = {}): string {
  const root = makeTree(options);
  trees.push(root);
  return root;
}

/** A copy of the tree `root` (its stand-in log included), for a scenario that continues from it. */
function copyOf(root: string): string {
  const copy = mkdtempSync(join(tmpdir(), 'vergabe-secrets-'));
  trees.push(copy);
  cpSync(root, copy, { recursive: true });
  return copy;
}

/** `make()` on the first call, its result on every later one: a scenario that several tests read. */
function once<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => {
    made ??= { value: make() };
    return made.value;
  };
}

/** Runs secrets-init for production in `root` with the sops stand-in first on PATH. */
function init(root: string, env: Record<string, string> = {}, path = `${STAND_INS}:${process.env.PATH}`) {
  const base = { ...process.env };
  delete base.REGISTRY_USER;
  delete base.REGISTRY_TOKEN;
  const result = spawnSync(BASH, [INIT, 'production', '--root', root], {
    encoding: 'utf8',
    env: { ...base, PATH: path, SOPS_STANDIN_LOG: join(root, 'sops-standin.log'), ...env },
  });
  return {
    status: result.status, stdout: result.stdout, stderr: result.stderr, output: result.stdout + result.stderr,
  };
}

function standInLog(root: string): { argv: string[]; values: ValueRecord[] } {
  let text = '';
  try {
    text = readFileSync(join(root, 'sops-standin.log'), 'utf8');
  } catch {
    return { argv: [], values: [] };
  }
  const lines = text.trim().split('\n').filter(Boolean);
  return {
    argv: lines.filter((l) => l.startsWith('argv')).map((l) => l.slice(5)),
    values: lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as ValueRecord),
  };
}

function value(values: ValueRecord[], file: string, key: string): ValueRecord {
  const found = values.filter((v) => v.file === file && v.key === key);
  if (found.length !== 1) throw new Error(`expected one value ${key} of ${file}, found ${found.length}`);
  return found[0];
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const URL_SAFE = /^[A-Za-z0-9_-]+$/;

/**
 * Fails when any text holds a string whose digest is one of the recorded secret values. Each
 * piece of text as long as a value is hashed once for all values of that length, and not at all
 * when it cannot be one of them: when they are all URL-safe and the piece is not.
 */
function expectNoValueIn(texts: Array<{ where: string; content: string }>, values: ValueRecord[]): void {
  const secrets = values.filter((v) => v.key !== 'username'); // the role name is no secret
  expect(secrets.length).toBeGreaterThan(0);
  const byLength = new Map<number, ValueRecord[]>();
  for (const secret of secrets) byLength.set(secret.length, [...(byLength.get(secret.length) ?? []), secret]);
  for (const { where, content } of texts) {
    for (const [length, group] of byLength) {
      const urlSafeOnly = group.every((secret) => secret.urlSafe);
      for (let i = 0; i + length <= content.length; i++) {
        const piece = content.slice(i, i + length);
        if (urlSafeOnly && !URL_SAFE.test(piece)) continue;
        const digest = sha256(piece);
        const secret = group.find((candidate) => candidate.sha256 === digest);
        if (secret) throw new Error(`${where} holds the plaintext of ${secret.key} of ${secret.file}`);
      }
    }
  }
}

/** What is in secrets/production/ (hidden temp files included). */
const secretsDir = (root: string) => readdirSync(join(root, 'secrets/production')).sort();

const ENCRYPT_CALL = (file: string) =>
  `--encrypt --filename-override ${file} --input-type yaml --output-type yaml /dev/stdin`;

/** A run on a fresh tree: both Secrets are created. */
const fresh = once(() => {
  const root = tree();
  const run = init(root);
  return { root, run, log: standInLog(root) };
});

describe('secrets-init on a fresh tree', () => {
  let root: string;
  let run: ReturnType<typeof init>;
  let log: ReturnType<typeof standInLog>;
  beforeAll(() => {
    ({ root, run, log } = fresh());
  });

  test('creates both sops Secrets of dist/, each encrypted by sops from a pipe with the creation rules', () => {
    expect(run.status).toBe(0);
    expect(secretsDir(root)).toEqual(['vergabe-db-credentials.sops.yaml', 'vergabe-teilnahme-app.sops.yaml']);
    // The stand-in itself fails unless stdin is a pipe; the target path selects the creation rule.
    expect(log.argv).toEqual(['--version', ENCRYPT_CALL(APP), ENCRYPT_CALL(DB)]);
    expect(run.stdout).toContain(`created ${APP} (encrypted)`);
    expect(run.stdout).toContain(`created ${DB} (encrypted)`);
  });

  test('the files it writes pass the secret contract check', () => {
    const check = contractCheck(['--env', 'production', '--root', root]);
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  test('ONE strong URL-safe database password is in both the app Secret and the role Secret', () => {
    const app = value(log.values, APP, 'database-password');
    const role = value(log.values, DB, 'password');
    expect(app.sha256).toBe(role.sha256);
    expect(app.length).toBeGreaterThanOrEqual(32);
    expect(app.urlSafe).toBe(true);
    expect(app.distinct).toBeGreaterThan(15);
  });

  test('the Django secret key has at least 50 random characters; username is the role name', () => {
    const key = value(log.values, APP, 'django-secret-key');
    expect(key.length).toBeGreaterThanOrEqual(50);
    expect(key.distinct).toBeGreaterThan(25);
    expect(value(log.values, DB, 'username').sha256).toBe(sha256('vergabe'));
  });

  test('no plaintext value lands in any file of the tree, nor in the output', () => {
    expectNoValueIn([
      ...allFiles(root).map((f) => ({ where: f.path, content: f.content })),
      { where: 'stdout/stderr', content: run.output },
    ], log.values);
  });

  test('values are fresh on every run (another tree gets other ones)', () => {
    // Another tree with its own run, which creates an app and a role Secret too.
    const other = registrySkipped();
    expect(other.run.status).toBe(0);
    const again = other.log.values;
    for (const record of log.values.filter((v) => v.key !== 'username')) {
      expect(value(again, record.file, record.key).sha256).not.toBe(record.sha256);
    }
  });
});

describe('secrets-init refuses', () => {
  test('never overwrites: a second run keeps both files byte for byte and encrypts nothing', () => {
    expect(fresh().run.status).toBe(0);
    const root = copyOf(fresh().root);
    const before = [readFileSync(join(root, APP), 'utf8'), readFileSync(join(root, DB), 'utf8')];
    const calls = standInLog(root).argv.length;
    const again = init(root);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain(`kept ${APP}: it exists and is never overwritten`);
    expect(again.stdout).toContain('nothing to create for production');
    expect([readFileSync(join(root, APP), 'utf8'), readFileSync(join(root, DB), 'utf8')]).toEqual(before);
    expect(standInLog(root).argv.length).toBe(calls);
  });

  test('when the app Secret exists but the role Secret does not: no second password, nothing written', () => {
    expect(fresh().run.status).toBe(0);
    const root = copyOf(fresh().root);
    unlinkSync(join(root, DB));
    const app = readFileSync(join(root, APP), 'utf8');
    const calls = standInLog(root).argv.length;
    const result = init(root);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`refusing: ${APP} exists but ${DB} does not; both must hold the same database password`);
    expect(result.stderr).toContain(`Either delete ${APP} and run again`);
    expect(secretsDir(root)).toEqual(['vergabe-teilnahme-app.sops.yaml']);
    expect(readFileSync(join(root, APP), 'utf8')).toBe(app);
    expect(standInLog(root).argv.length).toBe(calls);
  });

  test('while .sops.yaml still holds the placeholder recipient, before calling sops', () => {
    const root = tree({ sopsYaml: readFileSync(join(ROOT, '.sops.yaml'), 'utf8') });
    const result = init(root);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^secrets-init: .sops.yaml still holds the placeholder recipient \(age1replace...\)/m);
    expect(secretsDir(root)).toEqual([]);
    expect(standInLog(root).argv).toEqual([]);
  });

  test('a sops older than 3.9 (no --filename-override)', () => {
    const root = tree();
    const result = init(root, { SOPS_STANDIN_VERSION: '3.8.1' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('sops 3.8 is too old: --filename-override needs sops >= 3.9');
    expect(secretsDir(root)).toEqual([]);
  });

  test('no sops on PATH', () => {
    const root = tree();
    const bin = mkdtempSync(join(tmpdir(), 'vergabe-bin-'));
    trees.push(bin);
    const tools = ['node', 'dirname', 'grep', 'head', 'mktemp', 'mkdir', 'mv', 'rm'];
    const lookup = spawnSync(BASH, ['-c', 'command -v "$@"', '-', ...tools], { encoding: 'utf8' });
    const found = lookup.stdout.trim().split('\n');
    expect(found).toHaveLength(tools.length);
    tools.forEach((tool, i) => symlinkSync(found[i], join(bin, tool)));
    const result = init(root, {}, bin);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('sops not found on PATH: install sops >= 3.9');
    expect(secretsDir(root)).toEqual([]);
  });

  test('a failing sops: no file is moved into place and no temp file is left (all or none)', () => {
    const root = tree();
    // The app Secret encrypts fine, the role Secret fails: the app's must not be kept alone.
    const result = init(root, { SOPS_STANDIN_FAIL_FOR: 'vergabe-db-credentials' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`encrypting ${DB} failed; nothing was written`);
    expect(secretsDir(root)).toEqual([]);
    expect(standInLog(root).argv).toEqual(['--version', ENCRYPT_CALL(APP), ENCRYPT_CALL(DB)]);
  });

  test('sops output with a plaintext value is never moved into place, and the temp file is removed', () => {
    const root = tree();
    const result = init(root, { SOPS_STANDIN_LEAK: '1' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/key django-secret-key: value under stringData is not encrypted/);
    expect(secretsDir(root)).toEqual([]);
    expectNoValueIn([
      ...allFiles(root).map((f) => ({ where: f.path, content: f.content })),
      { where: 'stdout/stderr', content: result.output },
    ], standInLog(root).values);
  });

  test('a manifest that cannot be made (plan.tsv lacks the role): nothing is encrypted or written', () => {
    const root = tree({ plan: (plan) => plan.replace(/^setting\tdatabaseRole\t.*\n/m, '') });
    const result = init(root);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('secret-manifest: dist plan.tsv has no setting databaseRole: run npm run synth');
    expect(result.stderr).toContain(`cannot make the manifests of ${APP} ${DB} (see above); nothing was written`);
    expect(secretsDir(root)).toEqual([]);
    expect(standInLog(root).argv).toEqual(['--version']);
  });

  test('usage errors exit 2: an unknown environment, dist/ not synthesized', () => {
    const root = tree();
    const unknown = spawnSync(BASH, [INIT, 'nowhere', '--root', root], { encoding: 'utf8' });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown environment nowhere: there is no config/nowhere.yaml');
    unlinkSync(join(root, 'dist/production/secrets.yaml'));
    const unsynthesized = init(root);
    expect(unsynthesized.status).toBe(2);
    expect(unsynthesized.stderr).toContain('dist/production/secrets.yaml or plan.tsv not found: run npm run synth');
  });
});

/** A tree whose contract also asks for a registry pull Secret. */
const withRegistry = () => tree({
  contract: (contract) => contract.secrets.push({
    namespace: 'vergabe-teilnahme', name: 'vergabe-teilnahme-registry', type: 'kubernetes.io/dockerconfigjson',
    keys: ['.dockerconfigjson'], source: 'sops', file: REGISTRY, purpose: 'credentials of the image registry',
  }),
});

/** A run on such a tree without REGISTRY_USER / REGISTRY_TOKEN. */
const registrySkipped = once(() => {
  const root = withRegistry();
  const run = init(root);
  return { root, run, log: standInLog(root) };
});

const USER = 'ci-reader';
const TOKEN = 'Tk4vQ9zLm2Xw7Rb5Hn8Jc3Fd';

/** Then, on a copy of that tree, a run with REGISTRY_USER / REGISTRY_TOKEN. */
const registryMade = once(() => {
  const root = copyOf(registrySkipped().root);
  const run = init(root, { REGISTRY_USER: USER, REGISTRY_TOKEN: TOKEN });
  return { root, run, log: standInLog(root) };
});

describe('secrets-init with a registry pull Secret in the contract', () => {

  test('is skipped with a clear message when REGISTRY_USER / REGISTRY_TOKEN are unset; the others are made', () => {
    const { root, run: result } = registrySkipped();
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`skipped ${REGISTRY}: a registry pull Secret needs REGISTRY_USER and REGISTRY_TOKEN`);
    expect(secretsDir(root)).toEqual(['vergabe-db-credentials.sops.yaml', 'vergabe-teilnahme-app.sops.yaml']);
  });

  test('is made from REGISTRY_USER / REGISTRY_TOKEN for the image registry, the token never in a file or the output', () => {
    const { root, run: result, log } = registryMade();
    expect(result.status).toBe(0);
    expect(secretsDir(root)).toContain('vergabe-teilnahme-registry.sops.yaml');
    const auth = Buffer.from(`${USER}:${TOKEN}`).toString('base64');
    const expected = JSON.stringify({
      auths: { 'gitea.coulomb.social': { username: USER, password: TOKEN, auth } },
    });
    expect(value(log.values, REGISTRY, '.dockerconfigjson').sha256).toBe(sha256(expected));
    for (const file of allFiles(root)) {
      expectNoFragment(file.content, TOKEN);
      expect(file.content).not.toContain(auth);
    }
    expectNoFragment(result.output, TOKEN);
  });

  test('once the app and role Secrets exist, only the missing registry Secret is made', () => {
    expect(registrySkipped().run.status).toBe(0);
    const { root, run: result } = registryMade();
    expect(result.status).toBe(0);
    expect(secretsDir(root)).toEqual([
      'vergabe-db-credentials.sops.yaml', 'vergabe-teilnahme-app.sops.yaml',
      'vergabe-teilnahme-registry.sops.yaml',
    ]);
    expect(standInLog(root).argv.slice(-1)).toEqual([ENCRYPT_CALL(REGISTRY)]);
  });
});

test('the sops stand-in refuses a manifest that comes from a file, so the pipe assertion means something', () => {
  const root = tree();
  writeFileSync(join(root, 'manifest.yaml'), 'kind: Secret\n');
  const manifest = openSync(join(root, 'manifest.yaml'), 'r');
  const result = spawnSync(join(STAND_INS, 'sops'), ENCRYPT_CALL(APP).split(' '), {
    cwd: root, encoding: 'utf8', stdio: [manifest, 'pipe', 'pipe'],
    env: { ...process.env, SOPS_STANDIN_LOG: join(root, 'sops-standin.log') },
  });
  closeSync(manifest);
  expect(result.status).toBe(1);
  expect(result.stderr).toContain('stdin is not a pipe');
});
