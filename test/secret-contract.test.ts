/*
 * The secret contract check (scripts/secret-contract.js) over throw-away trees: through its
 * command line, `cli(argv)` (what the command prints and its exit code), in this process; and as
 * the deploy runs it, a child process, for the exit codes and output streams of a pass, a
 * problem and a usage error. The encrypted-value recognition is tested against real sops
 * output (test/fixtures/sops, written by sops 3.8.1); the Secret-shaped files are made by hand
 * from those real encrypted leaves and sops block, then broken one way at a time.
 */
import { spawnSync } from 'child_process';
import { readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'fs';
import { join } from 'path';
import { parse, stringify } from 'yaml';
import { checkSopsBlock, cli, isEncryptedValue } from '../scripts/secret-contract';
import { expectNoFragment, FIXTURE_RECIPIENTS, makeTree, ROOT, sopsConfig } from './secret-test-tree';

const SCRIPT = join(ROOT, 'scripts/secret-contract.js');
const FIXTURES = join(ROOT, 'test/fixtures/sops');
const encYaml = parse(readFileSync(join(FIXTURES, 'secret.enc.yaml'), 'utf8'));
const encJson = JSON.parse(readFileSync(join(FIXTURES, 'secret.enc.json'), 'utf8'));
const plainJson = JSON.parse(readFileSync(join(FIXTURES, 'secret.json'), 'utf8'));

/** Real encrypted leaves written by sops, handed out one after another. */
const realLeaves: string[] = [encYaml.secret, encYaml.string, encYaml.complex.value, ...encYaml.complex.array];
let nextLeaf = 0;
const leaf = () => realLeaves[nextLeaf++ % realLeaves.length];

/** Plain values that must never show up in any output, not even in part. */
const PLAIN = {
  django: 'Zq7xKv93wQ8jRt2mLp5nHs4G', password: 'Xw9fTq2Lk8vBn3Rm7JpC', two: 'Yh6Dc1Vb8Nm4Kq2Wz7Tf',
};

const APP = 'secrets/production/vergabe-teilnahme-app.sops.yaml';
const DB = 'secrets/production/vergabe-db-credentials.sops.yaml';

function appSecret(): any {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'vergabe-teilnahme-app', namespace: 'vergabe-teilnahme' },
    type: 'Opaque',
    stringData: { 'django-secret-key': leaf(), 'database-password': leaf() },
    sops: structuredClone(encYaml.sops),
  };
}

function dbSecret(): any {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'vergabe-db-credentials', namespace: 'databases', labels: { 'cnpg.io/reload': 'true' } },
    type: 'kubernetes.io/basic-auth',
    data: { username: leaf(), password: leaf() },
    sops: structuredClone(encYaml.sops),
  };
}

const trees: string[] = [];
/** A tree with both Secrets present and valid, after `change` edits their documents. */
function tree(change: (docs: { app: any; db: any }) => void = () => undefined, options = {}): string {
  const root = makeTree(options);
  trees.push(root);
  const docs = { app: appSecret(), db: dbSecret() };
  change(docs);
  if (docs.app) writeFileSync(join(root, APP), stringify(docs.app));
  if (docs.db) writeFileSync(join(root, DB), stringify(docs.db));
  return root;
}

/** What the check prints and exits with for `root` (through cli, in this process). */
function check(root: string, ...args: string[]) {
  return checked(cli(['--env', 'production', '--root', root, ...args]));
}

/** The same, as a child process: `node scripts/secret-contract.js`, as the deploy runs it. */
function checkAsCommand(root: string, ...extra: string[]) {
  const args = [SCRIPT, '--env', 'production', '--root', root, ...extra];
  return checked(spawnSync(process.execPath, args, { encoding: 'utf8' }));
}

/** Fails when the output shows any piece of a plain value; the result with stderr's lines. */
function checked(result: { status: number | null; stdout: string; stderr: string }) {
  const output = result.stdout + result.stderr;
  for (const value of Object.values(PLAIN)) expectNoFragment(output, value);
  return {
    status: result.status, stdout: result.stdout, stderr: result.stderr,
    lines: result.stderr.trim().split('\n'),
  };
}

afterAll(() => {
  for (const root of trees) rmSync(root, { recursive: true, force: true });
});

/** Every leaf of a parsed document except under `sops`. */
function leaves(value: unknown, out: unknown[] = []): unknown[] {
  if (Array.isArray(value)) value.forEach((v) => leaves(v, out));
  else if (value !== null && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) if (key !== 'sops') leaves(v, out);
  } else out.push(value);
  return out;
}

describe('encrypted-value recognition, against real sops output', () => {
  test('every value sops encrypted (YAML and JSON, all types, and the MAC) is recognised as encrypted', () => {
    const encrypted = [
      ...leaves(encYaml), ...leaves(encJson).filter((v) => v !== encJson.sops), encYaml.sops.mac,
    ];
    expect(encrypted.length).toBeGreaterThan(15);
    for (const value of encrypted) expect(isEncryptedValue(value)).toBe(true);
  });

  test('no plaintext value they decrypt to is taken for an encrypted one', () => {
    const plain = leaves(plainJson);
    expect(plain.length).toBeGreaterThan(8);
    for (const value of plain) expect(isEncryptedValue(value)).toBe(false);
    expect(isEncryptedValue('ENC[AES256_GCM,data:abc')).toBe(false);
    expect(isEncryptedValue(`${encYaml.secret} trailing`)).toBe(false);
  });

  test('the sops block that sops wrote passes: age recipients with their data keys and a MAC', () => {
    expect(checkSopsBlock(encYaml.sops)).toEqual([]);
    expect(checkSopsBlock(encJson.sops)).toEqual([]);
  });
});

describe('secret contract check', () => {
  test('passes when every sops Secret of dist/ is present, encrypted, with all keys', () => {
    const result = checkAsCommand(tree());
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/secret contract of production ok: 2 Secrets/);
    expect(result.stderr).toBe('');
  });

  test('a plaintext value left in fails, naming file, Secret and key but not the value', () => {
    const result = check(tree(({ app }) => { app.stringData['django-secret-key'] = PLAIN.django; }));
    expect(result.status).toBe(1);
    expect(result.lines).toContainEqual(expect.stringMatching(
      new RegExp(`^secret-contract: ${APP}: Secret vergabe-teilnahme/vergabe-teilnahme-app, key django-secret-key: `
        + 'value under stringData is not encrypted')));
  });

  test('a plaintext value under data (base64) fails the same way', () => {
    const result = check(tree(({ db }) => {
      db.data.password = Buffer.from(PLAIN.password).toString('base64');
    }));
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/vergabe-db-credentials, key password: value under data is not encrypted/);
    expectNoFragment(result.stderr, Buffer.from(PLAIN.password).toString('base64'));
  });

  test('a required key that is missing fails, naming the key', () => {
    const result = checkAsCommand(tree(({ db }) => { delete db.data.username; }));
    expect(result.status).toBe(1);
    expect(result.lines).toEqual([
      `secret-contract: ${DB}: Secret databases/vergabe-db-credentials, key username: is missing `
        + '(neither under data nor stringData); add it with make vergabe-secrets-edit',
      expect.stringMatching(/production: 1 problem /),
    ]);
  });

  test('a file without a sops block fails (it was never encrypted)', () => {
    const result = check(tree(({ app }) => {
      delete app.sops;
      app.stringData = { 'django-secret-key': PLAIN.django, 'database-password': PLAIN.password };
    }));
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/vergabe-teilnahme-app: has no sops block/);
    expect(result.stderr).toMatch(/key database-password: value under stringData is not encrypted/);
  });

  test('a sops block without an age recipient or without a MAC fails', () => {
    const noAge = check(tree(({ app }) => { app.sops.age = []; }));
    expect(noAge.status).toBe(1);
    expect(noAge.stderr).toMatch(/vergabe-teilnahme-app: sops block has no age recipient/);
    const noMac = check(tree(({ db }) => { delete db.sops.mac; }));
    expect(noMac.status).toBe(1);
    expect(noMac.stderr).toMatch(/vergabe-db-credentials: sops block has no MAC/);
  });

  test('a wrong namespace, type or missing cnpg reload label fails, naming the field', () => {
    const result = check(tree(({ db }) => {
      db.metadata.namespace = 'vergabe-teilnahme';
      db.type = 'Opaque';
      delete db.metadata.labels;
    }));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('metadata.namespace must be "databases"');
    expect(result.stderr).toContain('type must be "kubernetes.io/basic-auth"');
    expect(result.stderr).toContain('metadata.labels.cnpg.io/reload must be "true"');
  });

  test('metadata encrypted too (sops without the creation rules) is named as such', () => {
    const result = check(tree(({ app }) => { app.metadata.namespace = leaf(); }));
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/metadata.namespace is encrypted, so the file was not encrypted with the creation rules/);
  });

  test('a file holding two YAML documents fails: one Secret per file', () => {
    const root = tree();
    writeFileSync(join(root, APP), `${stringify(appSecret())}---\n${stringify(dbSecret())}`);
    const result = check(root);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`${APP}: Secret vergabe-teilnahme/vergabe-teilnahme-app: holds 2 YAML documents`);
  });

  test('a file that does not parse is reported by line and column, without quoting the line', () => {
    const root = tree();
    writeFileSync(join(root, APP),
      `apiVersion: v1\nkind: Secret\nstringData:\n  password: "${PLAIN.two}\n  : [\n`);
    const result = check(root);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/vergabe-teilnahme-app: does not parse as YAML \([A-Z_]+ at line \d+, column \d+\)/);
  });

  test('a missing file says to run make vergabe-secrets-init', () => {
    const result = check(tree((docs) => { docs.db = undefined; }));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`${DB}: Secret databases/vergabe-db-credentials: is missing; `
      + 'run make vergabe-secrets-init ENV=production');
  });

  test('an encrypted file no Secret needs is a warning, not a failure', () => {
    const root = tree();
    writeFileSync(join(root, 'secrets/production/old-thing.sops.yaml'), stringify(appSecret()));
    const result = check(root);
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/warning: secrets\/production\/old-thing.sops.yaml: no Secret of dist\/production/);
  });

  test('any other file in the secrets folder (e.g. a decrypted copy) is an error; examples are fine', () => {
    const root = tree();
    writeFileSync(join(root, 'secrets/production/vergabe-teilnahme-app.yaml'), 'stringData: {}\n');
    writeFileSync(join(root, 'secrets/production/vergabe-teilnahme-app.example.yaml'), 'stringData: {}\n');
    const result = check(root);
    expect(result.status).toBe(1);
    expect(result.lines).toEqual([
      expect.stringMatching(/^secret-contract: secrets\/production\/vergabe-teilnahme-app.yaml: only <name>.sops.yaml/),
      expect.stringMatching(/production: 1 problem /),
    ]);
  });

  test('a file encrypted for other recipients than .sops.yaml lists warns to run sops updatekeys', () => {
    const root = tree(() => undefined, { sopsYaml: sopsConfig(FIXTURE_RECIPIENTS.slice(0, 2)) });
    const result = check(root);
    expect(result.status).toBe(0);
    expect(result.stderr).toContain(`warning: ${APP}: encrypted for other recipients than .sops.yaml lists `
      + `(0 missing, 1 not listed); run: sops updatekeys ${APP}`);
  });

  test('the placeholder recipient in .sops.yaml is warned about', () => {
    const root = tree(() => undefined, { sopsYaml: readFileSync(join(ROOT, '.sops.yaml'), 'utf8') });
    const result = check(root);
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/warning: .sops.yaml still holds the placeholder recipient/);
  });

  test('--check-file checks one file (e.g. fresh sops output) as the named Secret', () => {
    const root = tree();
    const other = join(root, 'secrets/production/.fresh');
    writeFileSync(other, stringify(dbSecret()));
    expect(check(root, '--check-file', other, '--secret', 'vergabe-db-credentials').status).toBe(0);
    const wrong = check(root, '--check-file', other, '--secret', 'vergabe-teilnahme-app');
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain('metadata.name must be "vergabe-teilnahme-app"');
  });

  test('usage errors exit 2: no --env, an unknown environment, dist/ not synthesized', () => {
    const root = tree();
    const noEnv = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    expect(noEnv.status).toBe(2);
    expect(noEnv.stderr)
      .toMatch(/^secret-contract: --env is required\nusage: node scripts\/secret-contract\.js --env/);
    expect(cli([]).status).toBe(2);
    const unknown = check(root, '--env', 'nowhere');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown environment nowhere: there is no config/nowhere.yaml (known: production)');
    unlinkSync(join(root, 'dist/production/secrets.yaml'));
    const unsynthesized = check(root);
    expect(unsynthesized.status).toBe(2);
    expect(unsynthesized.stderr).toContain('dist/production/secrets.yaml not found: run npm run synth');
  });
});

describe('repository files', () => {
  test('.sops.yaml encrypts only data/stringData of secrets/**/*.sops.yaml and ships a placeholder recipient', () => {
    const config = parse(readFileSync(join(ROOT, '.sops.yaml'), 'utf8'));
    const [rule] = config.creation_rules;
    expect(rule.encrypted_regex).toBe('^(data|stringData)$');
    const pathRegex = new RegExp(rule.path_regex);
    expect(pathRegex.test(APP)).toBe(true);
    expect(pathRegex.test('secrets/production/vergabe-teilnahme-app.example.yaml')).toBe(false);
    expect(rule.key_groups[0].age).toEqual([expect.stringMatching(/^age1replace/)]);
  });

  test.each(readdirSync(join(ROOT, 'dist')))('an example shows each sops Secret of dist/%s with its keys, '
    + 'under a name the deploy never reads', (env) => {
    const contract = parse(readFileSync(join(ROOT, `dist/${env}/secrets.yaml`), 'utf8'));
    const plan = readFileSync(join(ROOT, `dist/${env}/plan.tsv`), 'utf8');
    const role = /^setting\tdatabaseRole\t(\S+)$/m.exec(plan)![1];
    const dir = join(ROOT, `secrets/${env}`);
    const examples = readdirSync(dir).filter((f) => f.endsWith('.example.yaml'))
      .map((f) => parse(readFileSync(join(dir, f), 'utf8')));
    for (const secret of contract.secrets.filter((s: any) => s.source === 'sops')) {
      const example = examples.find((e) => e.metadata.name === secret.name);
      expect(example).toMatchObject({
        apiVersion: 'v1', kind: 'Secret', type: secret.type,
        metadata: { namespace: secret.namespace, ...(secret.labels ? { labels: secret.labels } : {}) },
      });
      expect(Object.keys(example.stringData).sort()).toEqual([...secret.keys].sort());
      // Every secret value is an obvious fake; the role name is no secret.
      for (const [key, value] of Object.entries(example.stringData)) {
        expect(value).toMatch(key === 'username' ? new RegExp(`^${role}$`) : /EXAMPLE/);
      }
    }
    const registry = examples.find((e) => e.type === 'kubernetes.io/dockerconfigjson');
    expect(JSON.parse(registry.stringData['.dockerconfigjson']).auths).toHaveProperty(['gitea.coulomb.social']);
  });
});
