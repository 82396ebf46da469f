/*
 * The deploy path as the operator runs it: `make <target>` in a temporary, committed copy of the
 * project, with stand-ins for kubectl, sops and getent first on PATH (test/stand-ins/, plain bash).
 * The stand-ins record every call (argv; stdin of `-f -` with decrypted values masked) and answer
 * like the real tools for the calls the scripts make; environment variables make them fail a call.
 *
 * What the stand-ins cannot prove: server-side apply field conflicts, Job immutability, the API
 * server's validation and admission, real waits (a condition changes when a stand-in says so),
 * real ApplySet pruning (they see the flags and the objects, nothing is deleted), real
 * decryption with an age key, and real DNS. Those need a first deploy against railiance01, with
 * `make vergabe-diff` beforehand.
 *
 * Nothing here touches the network, a cluster or the working tree of the repository.
 */
import { spawn, spawnSync } from 'child_process';
import {
  accessSync, appendFileSync, constants, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync,
  realpathSync, renameSync, rmSync, statfsSync, statSync, symlinkSync, writeFileSync,
} from 'fs';
import { cpus, tmpdir } from 'os';
import { join } from 'path';
import { parse, parseAllDocuments } from 'yaml';
import { kubectlResource } from '../lib/phases';
import { copyKeptBundles } from './project-copy';
import { ROOT } from './root';

const STAND_INS = join(ROOT, 'test', 'stand-ins');
/** What the sops stand-in puts where a decrypted value would be. */
const MARKER = 'STANDIN-DECRYPTED-VALUE';
const TAG = '3f2a9c1';
const ENV = 'production';

/** Top-level entries of the project that a deploy does not need in its copy (fewer files to copy). */
const NOT_COPIED = new Set(['node_modules', '.git', '.cache', 'test', 'coverage', '__snapshots__', 'docs',
  '.ci', 'README.md', 'cdk8s.yaml', 'jest.config.js', 'package-lock.json']);

/**
 * Where the copies and logs go: thousands of small files, which a tmpfs keeps in memory at a
 * fraction of a disk's cost. Linux's /dev/shm when TMPDIR names no other place and it is a
 * writable tmpfs that lets the scripts run (no noexec, as containers often mount it) and has 1 GB
 * to spare; the system's temporary folder otherwise.
 */
function scratch(): string {
  const shm = '/dev/shm';
  if (process.env.TMPDIR || !existsSync('/proc/mounts')) return tmpdir();
  const mount = readFileSync('/proc/mounts', 'utf8').split('\n').map((line) => line.split(' '))
    .find(([, point, type]) => point === shm && type === 'tmpfs');
  if (!mount || mount[3].split(',').some((option) => ['noexec', 'ro'].includes(option))) return tmpdir();
  try {
    accessSync(shm, constants.W_OK);
    const { bavail, bsize } = statfsSync(shm);
    return bavail * bsize >= 1024 ** 3 ? shm : tmpdir();
  } catch {
    return tmpdir();
  }
}

let base: string;
let template: string;
let plan: Plan;

// ---------------------------------------------------------------------------------------------
// The copy, the runs and what the stand-ins recorded

function git(cwd: string, ...args: string[]): string {
  const result = spawnSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid',
    '-c', 'commit.gpgsign=false', ...args], { cwd, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
  return result.stdout.trim();
}

/** A Secret as sops writes it with the creation rules of .sops.yaml: only the values encrypted. */
function encryptedSecret(secret: { namespace: string; name: string; type: string; keys: string[];
  labels?: Record<string, string> }): string {
  const value = 'ENC[AES256_GCM,data:c3RhbmQtaW4=,iv:aXZpdml2aXZpdml2aXY=,tag:dGFndGFndGFndGFn,type:str]';
  const labels = Object.entries(secret.labels ?? {}).map(([k, v]) => `    ${k}: "${v}"\n`).join('');
  return `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${secret.name}\n  namespace: ${secret.namespace}\n`
    + (labels ? `  labels:\n${labels}` : '')
    + `type: ${secret.type}\nstringData:\n${secret.keys.map((k) => `  ${k}: ${value}\n`).join('')}`
    + 'sops:\n  age:\n    - recipient: age1je6kjhzuhdjy3fqptpttxjh5k8q46vygzlgtpuq3030c947pc5tqz9dqvr\n'
    + '      enc: |\n        -----BEGIN AGE ENCRYPTED FILE-----\n        YWdlLWVuY3J5cHRpb24ub3JnL3YxCg==\n'
    + '        -----END AGE ENCRYPTED FILE-----\n  lastmodified: "2025-01-01T00:00:00Z"\n'
    + `  mac: ${value}\n  encrypted_regex: ^(data|stringData)$\n  version: 3.9.4\n`;
}

/**
 * The project as committed after an image bump: a real tag, fresh dist/, encrypted secrets. Its
 * .cache/ links to one folder that the copies share (a copy whose files a scenario changes gets
 * its own), seeded with the repository's synth cache, so no synthesis in the copies bundles again.
 */
function makeTemplate(dir: string): void {
  mkdirSync(dir);
  for (const entry of readdirSync(ROOT)) {
    if (NOT_COPIED.has(entry) || /^dist\.(new|old)-/.test(entry)) continue;
    cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  const cache = join(base, 'cache');
  mkdirSync(cache);
  if (existsSync(join(ROOT, '.cache', 'synth'))) {
    cpSync(join(ROOT, '.cache', 'synth'), join(cache, 'synth'),
      { recursive: true, filter: (file) => !file.endsWith('.tmp') });
  }
  symlinkSync(cache, join(dir, '.cache'));
  // The scenarios run at the same time: they find yaml's kept bundle here instead of each making it.
  copyKeptBundles(dir);

  const config = join(dir, 'config', `${ENV}.yaml`);
  writeFileSync(config, readFileSync(config, 'utf8').replace(/^(\s+tag:\s*).*$/m, `$1"${TAG}"`));
  const synth = spawnSync(process.execPath, ['scripts/synth.js'], { cwd: dir, encoding: 'utf8' });
  if (synth.status !== 0) throw new Error(`synth of the test copy failed: ${synth.stderr}`);

  for (const folder of readdirSync(join(dir, 'secrets'))) {
    const path = join(dir, 'secrets', folder);
    if (!statSync(path).isDirectory()) continue;
    for (const file of readdirSync(path)) if (file.endsWith('.sops.yaml')) rmSync(join(path, file));
  }
  const contract = parse(readFileSync(join(dir, 'dist', ENV, 'secrets.yaml'), 'utf8'));
  for (const secret of contract.secrets.filter((s: { source: string }) => s.source === 'sops')) {
    mkdirSync(join(dir, 'secrets', ENV), { recursive: true });
    writeFileSync(join(dir, secret.file), encryptedSecret(secret));
  }

  // No hook samples, no maintenance (which could prune the shared objects) after commits.
  git(dir, 'init', '--quiet', '--template=');
  appendFileSync(join(dir, '.git', 'config'), '[maintenance]\n\tauto = false\n');
  // Links, which .gitignore's "node_modules/" and ".cache/" (folders) do not match.
  mkdirSync(join(dir, '.git', 'info'));
  writeFileSync(join(dir, '.git', 'info', 'exclude'), 'node_modules\n.cache\n');
  git(dir, 'add', '--all');
  git(dir, 'commit', '--quiet', '--message', 'the project after an image bump');
  // One object store for the template and its copies: objects never change and a commit in a copy
  // only adds some, so a copy needs none of its own.
  renameSync(join(dir, '.git', 'objects'), join(base, 'objects'));
  symlinkSync(join(base, 'objects'), join(dir, '.git', 'objects'));
}

interface Plan {
  settings: Record<string, string>;
  phases: Array<{ id: string; file: string; source: string }>;
  secrets: Array<{ phase: string; namespace: string; name: string; file: string }>;
  objects: Array<{
    phase: string; resource: string; namespace: string; name: string; wait: string; prune: string;
  }>;
}

function readPlan(dir: string): Plan {
  const rows = readFileSync(join(dir, 'dist', ENV, 'plan.tsv'), 'utf8').split('\n')
    .filter((line) => line && !line.startsWith('#')).map((line) => line.split('\t'));
  return {
    settings: Object.fromEntries(rows.filter((r) => r[0] === 'setting').map((r) => [r[1], r[2]])),
    phases: rows.filter((r) => r[0] === 'phase').map(([, id, file, source]) => ({ id, file, source })),
    secrets: rows.filter((r) => r[0] === 'secret')
      .map(([, phase, namespace, name, file]) => ({ phase, namespace, name, file })),
    objects: rows.filter((r) => r[0] === 'object')
      .map(([, phase, resource, namespace, name, wait, prune]) =>
        ({ phase, resource, namespace, name, wait, prune })),
  };
}

interface Call {
  tool: string;
  args: string[];
  stdin?: string;
  env?: string;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  calls: Call[];
  repo: string;
}

/** The calls the stand-ins recorded, in the order they were made. */
function readCalls(log: string): Call[] {
  const dir = join(log, 'calls');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.argv')).sort().map((file) => {
    const stem = join(dir, file.slice(0, -'.argv'.length));
    const read = (ext: string) => (existsSync(stem + ext) ? readFileSync(stem + ext, 'utf8') : undefined);
    return {
      tool: file.slice(0, -'.argv'.length).split('-').pop() as string,
      args: (read('.argv') as string).split('\0').slice(0, -1),
      stdin: read('.stdin'),
      env: read('.env'),
    };
  });
}

let runs = 0;

/** Runs a command to its end without holding up the other runs; rejects when it fails. */
function exec(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.on('error', reject);
    child.on('close', (status) => (status === 0 ? resolve()
      : reject(new Error(`${command} ${args.join(' ')}: ${stderr}`))));
  });
}

/**
 * A copy of the template, times and links kept (.cache/ stays the shared link): the synthesis reuses
 * the bundles.
 */
const copyTemplate = (repo: string) => exec('cp', ['-a', template, repo]);

/**
 * The targets that write nothing into the project: they read dist/ and call the cluster. Their
 * runs (and dry runs of the deploy) share one copy, which a test checks is unchanged at the end;
 * every other run gets its own.
 */
const READ_ONLY_TARGETS = new Set(['', 'vergabe-diff', 'vergabe-status', 'vergabe-migrate', 'vergabe-rollback',
  'vergabe-restart', 'vergabe-secrets-edit', 'vergabe-logs', 'vergabe-seed', 'vergabe-smoke']);
let shared: string;

const readsOnly = (target: string, options: MakeOptions) => !options.prepare && (READ_ONLY_TARGETS.has(target)
  || (target === 'vergabe-deploy' && (options.vars ?? []).includes('DRY_RUN=1')));

/**
 * A folder for one run (its log, HOME and TMPDIR) and the project it runs in: its own copy or the
 * shared one.
 */
async function runFolder(target: string, options: MakeOptions): Promise<{ dir: string; repo: string }> {
  const dir = join(base, `run-${++runs}`);
  for (const sub of ['log/calls', 'log/state', 'home', 'tmp']) mkdirSync(join(dir, sub), { recursive: true });
  if (readsOnly(target, options)) return { dir, repo: shared };
  const repo = join(dir, 'repo');
  await copyTemplate(repo);
  if (options.prepare) {
    // A cache of its own: a synth of changed files would record a last run that fits no other
    // copy, and the synths of the others would then each do the whole work again.
    const cache = join(repo, '.cache');
    const shared = realpathSync(cache);
    rmSync(cache);
    cpSync(shared, cache, { recursive: true, filter: (file) => !file.endsWith('.tmp') });
    options.prepare(repo);
  }
  return { dir, repo };
}

interface MakeOptions {
  /** Variables for the stand-ins (STANDIN_*) and the scripts, as in the environment. */
  scenario?: Record<string, string>;
  /** VAR=value arguments of make. */
  vars?: string[];
  /** Changes to the copy before make runs. */
  prepare?: (repo: string) => void;
  /** Stand-ins left off PATH, as if the tool were not installed. */
  without?: string[];
}

/** `make [target] [VAR=value ...]` in a copy of the project, with the stand-ins and scenario variables. */
async function make(target: string, options: MakeOptions): Promise<Run> {
  const { dir, repo } = await runFolder(target, options);
  let standIns = STAND_INS;
  if (options.without) {
    standIns = join(dir, 'stand-ins');
    mkdirSync(standIns);
    for (const tool of readdirSync(STAND_INS).filter((t) => !options.without?.includes(t))) {
      symlinkSync(join(STAND_INS, tool), join(standIns, tool));
    }
  }
  const child = spawn('make', target ? [target, ...(options.vars ?? [])] : [], {
    cwd: repo,
    // No stdin: on a socket (node's pipes), bash would read /etc/bash.bashrc as if run by a remote shell.
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
    env: {
      PATH: `${standIns}:${process.env.PATH}`,
      HOME: join(dir, 'home'),
      TMPDIR: join(dir, 'tmp'),
      USER: 'operator',
      LANG: 'C.UTF-8',
      STANDIN_LOG: join(dir, 'log'),
      POLL_INTERVAL: '0',
      SMOKE: '0',
      ...options.scenario,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) =>
      resolve({ status, stdout, stderr, calls: readCalls(join(dir, 'log')), repo }));
  });
}

/**
 * The make runs of the tests, registered while the tests are collected and run before them, a
 * few at a time (each with its own log; runFolder says which copy). A test reads its run through the getter.
 */
const scenarios: Array<{ target: string; options: MakeOptions | (() => MakeOptions); run?: Run }> = [];

function scenario(target: string, options: MakeOptions | (() => MakeOptions) = {}): () => Run {
  const entry: (typeof scenarios)[number] = { target, options };
  scenarios.push(entry);
  return () => {
    if (!entry.run) throw new Error(`make ${target} did not run`);
    return entry.run;
  };
}

async function runScenarios(parallel: number): Promise<void> {
  const queue = [...scenarios];
  const worker = async () => {
    for (let entry = queue.shift(); entry; entry = queue.shift()) {
      const options = typeof entry.options === 'function' ? entry.options() : entry.options;
      entry.run = await make(entry.target, options);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

// ---------------------------------------------------------------------------------------------
// Reading the calls

const kubectl = (run: Run) => run.calls.filter((c) => c.tool === 'kubectl');

/** The words of a kubectl call without --context, -n and their values: the verb first. */
function words(call: Call): string[] {
  const out: string[] = [];
  for (let i = 0; i < call.args.length; i++) {
    if (['--context', '-n', '--namespace'].includes(call.args[i])) i++;
    else out.push(call.args[i]);
  }
  return out;
}

const verb = (call: Call) => words(call)[0];
const isApply = (call: Call) => call.tool === 'kubectl' && verb(call) === 'apply';
/** Calls that change the cluster, and the decryption that would feed one. */
const isChange = (call: Call) => (call.tool === 'kubectl'
  && ['apply', 'create', 'delete', 'annotate', 'patch', 'replace', 'label', 'scale'].includes(verb(call)))
  || (call.tool === 'sops' && call.args.includes('--decrypt'));

/** What an apply applied: the file after -f, or the objects of its stdin. */
function target(call: Call): string {
  const file = call.args[call.args.indexOf('-f') + 1];
  return file === '-' ? 'stdin' : file;
}

interface Applied {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

function objectsOf(call: Call): Applied[] {
  const text = target(call) === 'stdin' ? call.stdin ?? '' : '';
  return parseAllDocuments(text).map((d) => d.toJS()).filter(Boolean);
}

/** The plan's resource name of an object. */
const resourceOf = (object: { apiVersion: string; kind: string }) =>
  kubectlResource(object.apiVersion, object.kind);

function flag(call: Call, name: string): string | undefined {
  const arg = call.args.find((a) => a === name || a.startsWith(`${name}=`));
  if (arg === undefined) return undefined;
  return arg.includes('=') ? arg.slice(name.length + 1) : call.args[call.args.indexOf(arg) + 1];
}

/** Every file under `dir` (symlinks not followed) whose content contains `text`. */
function filesContaining(dir: string, text: string): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && readFileSync(full).includes(text)) found.push(full);
    }
  };
  walk(dir);
  return found;
}

/** The error lines a script printed: exactly one is expected for an expected failure. */
const errorLines = (run: Run) => run.stderr.split('\n').filter((l) => l.startsWith('error: '));

/** Sets the backup method (and plugin) in the copy's config, synthesizes and commits. */
function configureBackup(repo: string, method: string, plugin: string): void {
  const file = join(repo, 'config', `${ENV}.yaml`);
  const text = readFileSync(file, 'utf8');
  if (!/^ {2}backupMethod: .*$/m.test(text)) throw new Error(`no backupMethod line in ${file}`);
  writeFileSync(file, text.replace(/^ {2}backupMethod: .*$/m,
    `  backupMethod: ${method}\n  backupPlugin: ${plugin}`));
  const synth = spawnSync(process.execPath, ['scripts/synth.js'], { cwd: repo, encoding: 'utf8' });
  if (synth.status !== 0) throw new Error(`synth of the test copy failed: ${synth.stderr}`);
  git(repo, 'commit', '--quiet', '--all', '--message', `backups by ${method}`);
}

function expectStoppedBeforeAnyChange(run: Run, reason: RegExp): void {
  expect(run.status).not.toBe(0);
  expect(run.calls.filter(isChange).map((c) => c.args.join(' '))).toEqual([]);
  expect(errorLines(run)).toHaveLength(1);
  expect(errorLines(run)[0]).toMatch(reason);
}

beforeAll(async () => {
  base = mkdtempSync(join(scratch(), 'deploy-test-'));
  template = join(base, 'template');
  makeTemplate(template);
  plan = readPlan(template);
  shared = join(base, 'shared');
  await copyTemplate(shared);
  await runScenarios(Math.max(2, cpus().length));
}, 180_000);

afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('make help', () => {
  const help = scenario('');

  test('is the default goal and lists every target of the Makefile with a one-line description', () => {
    const targets = [...readFileSync(join(ROOT, 'Makefile'), 'utf8').matchAll(/^([a-z][a-z-]*):/gm)]
      .map((m) => m[1]);

    expect(help().status).toBe(0);
    expect(targets).toEqual(expect.arrayContaining(['help', 'synth', 'test', 'vergabe-diff', 'vergabe-deploy',
      'vergabe-status', 'vergabe-migrate', 'vergabe-seed', 'vergabe-superuser', 'vergabe-logs', 'vergabe-smoke',
      'vergabe-restart', 'vergabe-rollback', 'vergabe-secrets-edit', 'vergabe-secrets-init']));
    for (const name of targets) expect(help().stdout).toMatch(new RegExp(`^  ${name} +\\S.*$`, 'm'));
    expect(help().calls).toEqual([]);
  });
});

describe('the copies of the project', () => {
  test('the runs of read-only targets and dry runs leave the copy they share as committed', () => {
    expect(scenarios.filter((entry) => entry.run?.repo === shared).length).toBeGreaterThan(10);
    expect(git(shared, 'status', '--porcelain', '--untracked-files=all')).toBe('');
    expect(git(shared, 'rev-parse', 'HEAD')).toBe(git(template, 'rev-parse', 'HEAD'));
  });
});

describe('a good deploy', () => {
  const pendingReads = 2;
  const olderJob = 'job.batch/vergabe-teilnahme-migrate-0ldc0de0';
  const good = scenario('vergabe-deploy', () => ({ scenario: {
    STANDIN_CERT_PENDING: String(pendingReads),
    STANDIN_JOBS: `${olderJob} job.batch/${plan.settings.migrationJob}`,
  } }));
  const object = (wait: string) => plan.objects.find((o) => o.wait === wait) as Plan['objects'][number];
  const fileOf = (phaseId: string) => plan.phases.find((p) => p.id === phaseId)?.file;
  /** Whether a kubectl call names the object, alone or as resource/name. */
  const names = (call: Call, name: string) => words(call).some((w) => w === name || w.endsWith(`/${name}`));

  test('succeeds', () => {
    expect(errorLines(good())).toEqual([]);
    expect(good().status).toBe(0);
  });

  test('applies the phases in the order of the plan: each file, each SOPS Secret via stdin', () => {
    const expected = plan.phases.flatMap((phase) => {
      if (phase.source === 'sops') {
        return plan.secrets.filter((s) => s.phase === phase.id).map((s) => `stdin ${s.namespace}`);
      }
      return phase.file === '-' ? [] : [`dist/${ENV}/${phase.file} -`];
    });
    const applied = kubectl(good()).filter(isApply).filter((c) => !flag(c, '--applyset'))
      .map((c) => `${target(c)} ${flag(c, '--namespace') ?? '-'}`);

    expect(applied).toEqual(expected);
  });

  test('waits for each object as the plan says before the next phase is applied', () => {
    const calls = kubectl(good());
    for (const waited of plan.objects.filter((o) => o.wait !== 'none')) {
      const phase = plan.phases.findIndex((p) => p.id === waited.phase);
      const ownApply = calls.findIndex(
        (c) => isApply(c) && target(c) === `dist/${ENV}/${fileOf(waited.phase)}`);
      const wait = calls.findIndex((c, i) => i > ownApply && names(c, waited.name)
        && (waited.wait === 'rollout' ? words(c).slice(0, 2).join(' ') === 'rollout status'
          : verb(c) === 'get' && words(c).includes(waited.resource)));
      const nextFile = plan.phases.slice(phase + 1).find((p) => p.file !== '-')?.file;
      const nextApply = calls.findIndex((c) => isApply(c) && target(c) === `dist/${ENV}/${nextFile}`);

      expect([waited.name, ownApply, wait > ownApply]).toEqual([waited.name, expect.any(Number), true]);
      if (nextFile) expect([waited.name, wait < nextApply]).toEqual([waited.name, true]);
    }
  });

  test('passes --context with the plan\'s kubeContext to every kubectl call, in every run of this file', () => {
    const calls = scenarios.flatMap((entry) => kubectl(entry.run as Run));

    expect(kubectl(good()).length).toBeGreaterThan(20);
    expect(calls.filter((c) => c.args[0] !== '--context' || c.args[1] !== plan.settings.kubeContext))
      .toEqual([]);
  });

  test('applies the Ingress only after the Certificate reported Ready', () => {
    const calls = kubectl(good());
    const certificate = object('ready');
    const ingressFile = fileOf(plan.objects.find((o) => o.resource.startsWith('ingress.'))?.phase ?? '');
    const ingressApply = calls.findIndex((c) => isApply(c) && target(c) === `dist/${ENV}/${ingressFile}`);
    const readyReads = calls.slice(0, ingressApply).filter((c) => verb(c) === 'get'
      && names(c, certificate.name) && words(c).includes(certificate.resource)
      && (flag(c, '-o') ?? '').includes('Ready'));

    expect(ingressApply).toBeGreaterThan(-1);
    expect(readyReads).toHaveLength(pendingReads + 1);
  });

  test('decrypts each SOPS Secret with sops --decrypt straight into kubectl apply -f - in its namespace', () => {
    const decrypts = good().calls.filter((c) => c.tool === 'sops');
    const secretApplies = kubectl(good())
      .filter((c) => isApply(c) && objectsOf(c).some((o) => o.kind === 'Secret'));

    expect(decrypts.map((c) => c.args)).toEqual(plan.secrets.map((s) => ['--decrypt', s.file]));
    expect(secretApplies.map((c) => [flag(c, '--namespace'), objectsOf(c).map((o) => o.metadata.name)]))
      .toEqual(plan.secrets.map((s) => [s.namespace, [s.name]]));
    for (const call of secretApplies) expect(call.stdin).toContain('<decrypted>');
  });

  test('never lets decrypted content land in a file (repo copies, test tree) or in the output of any run', () => {
    expect(filesContaining(base, MARKER)).toEqual([]);
    for (const entry of scenarios) expect(`${entry.run?.stdout}${entry.run?.stderr}`).not.toContain(MARKER);
  });

  test('applies server-side with the field manager vergabe-deploy and takes fields back with --force-conflicts', () => {
    for (const call of kubectl(good()).filter(isApply).filter((c) => !flag(c, '--applyset'))) {
      expect(call.args).toEqual(
        expect.arrayContaining(['--server-side', '--field-manager=vergabe-deploy', '--force-conflicts']));
    }
  });

  test('never applies a kept object (Namespace, volumes, database, role) or a Secret under an ApplySet', () => {
    const kept = plan.objects.filter((o) => o.prune === 'keep');
    const keptFiles = new Set(kept.map((o) => `dist/${ENV}/${fileOf(o.phase)}`));
    const holdsKept = (call: Call) => keptFiles.has(target(call))
      || objectsOf(call).some((o) => o.kind === 'Secret'
        || kept.some((k) => k.name === o.metadata.name && k.resource === resourceOf(o)));
    const keptApplies = kubectl(good()).filter((c) => isApply(c) && holdsKept(c));

    expect(keptApplies.length).toBe(keptFiles.size + plan.secrets.length);
    for (const call of keptApplies) {
      expect(call.args.filter((a) => a.startsWith('--applyset') || a.startsWith('--prune'))).toEqual([]);
      expect(call.env).toBeUndefined();
    }
  });

  test('prunes once, at the end: exactly the prune objects, as one ApplySet, with its own field manager', () => {
    const applies = kubectl(good()).filter(isApply);
    const last = applies[applies.length - 1];
    const members = objectsOf(last)
      .map((o) => `${resourceOf(o)} ${o.metadata.namespace ?? '-'} ${o.metadata.name}`);

    expect(applies.filter((c) => c.args.some((a) => a.startsWith('--applyset') || a === '--prune')))
      .toEqual([last]);
    expect(flag(last, '--applyset')).toBe(`configmaps/applyset-${ENV}`);
    expect(last.args).toEqual(expect.arrayContaining(['--prune', '--server-side',
      '--field-manager=vergabe-deploy-applyset', '--force-conflicts', '-n', plan.settings.namespace]));
    expect(last.args.some((a) => a.startsWith('--prune-allowlist'))).toBe(false);
    expect(last.env).toBe('KUBECTL_APPLYSET=true\n');
    expect(members.sort()).toEqual(plan.objects.filter((o) => o.prune === 'prune')
      .map((o) => `${o.resource} ${o.namespace} ${o.name}`).sort());
  });

  test('removes the older migration Jobs of the app, not the current one, once the current one completed', () => {
    const calls = kubectl(good());
    const deletes = calls.filter((c) => verb(c) === 'delete'
      && words(c).some((w) => w.startsWith('job.batch/')));
    const appApply = calls.findIndex(
      (c) => isApply(c) && target(c) === `dist/${ENV}/${fileOf(object('rollout').phase)}`);

    expect(deletes.map((c) => words(c).filter((w) => w.startsWith('job.batch/')))).toEqual([[olderJob]]);
    expect(calls.indexOf(deletes[0])).toBeLessThan(appApply);
  });

  test('records the deploying commit on the Deployment after its rollout, not in dist/', () => {
    const calls = kubectl(good());
    const deployment = object('rollout');
    const annotate = calls.findIndex((c) => verb(c) === 'annotate');
    const rollout = calls.findIndex((c) => words(c).slice(0, 2).join(' ') === 'rollout status');
    const commit = git(good().repo, 'rev-parse', '--short=12', 'HEAD');

    expect(words(calls[annotate])).toEqual(['annotate', `${deployment.resource}/${deployment.name}`,
      `vergabe-teilnahme.whywhynot.de/deployed-commit=${commit}`, '--overwrite']);
    expect(annotate).toBeGreaterThan(rollout);
    expect(filesContaining(join(good().repo, 'dist'), 'deployed-commit')).toEqual([]);
  });

  test('takes the deploy lock (a Lease with holder and time) before the first apply and releases it after the last', () => {
    const calls = kubectl(good());
    const create = calls.findIndex((c) => verb(c) === 'create' && (c.stdin ?? '').includes('kind: Lease'));
    const release = calls.findIndex((c) => verb(c) === 'delete' && words(c).includes('lease'));
    const applies = calls.map((c, i) => (isApply(c) ? i : -1)).filter((i) => i > -1);
    const lease = parse(calls[create].stdin as string);

    expect(create).toBeLessThan(applies[0]);
    expect(release).toBeGreaterThan(applies[applies.length - 1]);
    expect(lease.metadata.namespace).toBe(plan.settings.namespace);
    expect(lease.spec.holderIdentity).toMatch(/^operator@/);
    expect(lease.metadata.annotations['vergabe-teilnahme.whywhynot.de/locked-since'])
      .toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  test('ends with a summary: image, URL and certificate expiry', () => {
    expect(good().stdout).toContain(`image        ${plan.settings.image}`);
    expect(good().stdout).toContain(`url          https://${plan.settings.host}/`);
    expect(good().stdout).toMatch(/certificate {2}expires 2026-03-01T00:00:00Z/);
  });

  test('announces every phase of the plan', () => {
    for (const phase of plan.phases) {
      expect(good().stdout).toMatch(new RegExp(`^==> phase \\d+/\\d+ ${phase.id}: `, 'm'));
    }
  });

  test('asks kubectl auth can-i --list once per namespace it writes to, nothing singly when the lists grant all', () => {
    const canI = kubectl(good()).filter((c) => words(c).slice(0, 2).join(' ') === 'auth can-i');
    const namespaces = new Set([...plan.objects, ...plan.secrets].map((o) => o.namespace));

    expect(canI.map((c) => `${flag(c, '-n') ?? '-'} ${c.args.includes('--list')}`).sort())
      .toEqual([...namespaces].map((ns) => `${ns} true`).sort());
    expect(good().stdout).toMatch(/ok {2}permissions: \d+ checked .*0 asked singly/);
  });
});

describe('the permission check', () => {
  /** What `kubectl auth can-i --list --no-headers` prints: a resource, its names, its verbs per line. */
  const list = [
    'secrets                                []          []              [get list]',
    'secrets                                []          []              [create]',
    'jobs.batch/status                      []          []              [patch]',
    'leases.coordination.k8s.io             []          [deploy-lock]   [delete]',
    '*.apps                                 []          []              [patch]',
    'configmaps.*                           []          []              [delete]',
    '                                       [/api/*]    []              [get]',
    '                                       [*]         []              [*]',
  ].join('\n');
  const asked = ['create secrets', 'get secrets', 'patch secrets', 'patch jobs.batch',
    'delete leases.coordination.k8s.io', 'patch deployments.apps', 'create deployments.apps',
    'delete configmaps', 'delete configmaps.example.io'];

  test('grants by name and by wildcard, never by a rule for some names, a subresource or a URL', () => {
    const script = `source scripts/lib.sh && source scripts/waits.sh && source scripts/preflight.sh
      grants_from_list app <<<"$LIST"
      grants_from_list core <<<'*  []  []  [*]'
      grants_from_list all <<<'*.*  []  []  [create]'
      while read -r verb resource ns; do
        answer=no
        if granted "$verb" "$resource" "$ns"; then answer=yes; fi
        echo "$answer $verb $resource $ns"
      done <<<"$ASKED"`;
    const questions = [...asked.map((a) => `${a} app`), 'create secrets core', 'create jobs.batch core',
      'create jobs.batch all', 'delete jobs.batch all', 'create secrets other'];
    const result = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: template, encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, LANG: 'C.UTF-8', LIST: list, ASKED: questions.join('\n') } });

    expect(result.stderr).toBe('');
    expect(result.stdout.trim().split('\n')).toEqual(['yes create secrets app', 'yes get secrets app',
      'no patch secrets app', 'no patch jobs.batch app', 'no delete leases.coordination.k8s.io app',
      'yes patch deployments.apps app', 'no create deployments.apps app', 'yes delete configmaps app',
      'yes delete configmaps.example.io app', 'yes create secrets core', 'no create jobs.batch core',
      'yes create jobs.batch all', 'no delete jobs.batch all', 'no create secrets other']);
  });
});

describe('preflight stops before anything is applied', () => {
  const edit = (repo: string, file: string, change: (text: string) => string) =>
    writeFileSync(join(repo, file), change(readFileSync(join(repo, file), 'utf8')));
  const commit = (repo: string) => git(repo, 'commit', '--quiet', '--all', '--message', 'a change');

  const wrongContext = scenario('vergabe-deploy', { scenario: { STANDIN_CURRENT_CONTEXT: 'gitea-admin' } });
  test('when kubectl\'s current context is not the plan\'s, naming both', () => {
    expectStoppedBeforeAnyChange(wrongContext(), /current context is gitea-admin, but production deploys to railiance01/);
  });

  const missingCrd = scenario('vergabe-deploy', {
    scenario: { STANDIN_MISSING_RESOURCES: 'databaseroles.postgresql.cnpg.io' },
  });
  test('when the cluster does not serve a CRD the manifests use', () => {
    expectStoppedBeforeAnyChange(missingCrd(), /does not serve databaseroles\.postgresql\.cnpg\.io/);
  });

  const dirty = scenario('vergabe-deploy', {
    prepare: (repo) => edit(repo, `config/${ENV}.yaml`, (t) => `${t}# a change\n`),
  });
  test('when the working tree has uncommitted changes', () => {
    expectStoppedBeforeAnyChange(dirty(), /uncommitted changes \(config\/production\.yaml\).*ALLOW_DIRTY=1/);
  });

  const stale = scenario('vergabe-deploy', { prepare: (repo) => {
    edit(repo, `config/${ENV}.yaml`,
      (t) => t.replace(/^(\s+timeoutSeconds:\s*)(\d+)$/m, (_, key, value) => `${key}${+value + 15}`));
    commit(repo);
  } });
  test('when dist/ is not what the committed code synthesizes', () => {
    expectStoppedBeforeAnyChange(stale(), /dist\/ is stale: a fresh npm run synth changed dist\/production\//);
  });

  const plainText = scenario('vergabe-deploy', () => ({ prepare: (repo) => {
    edit(repo, plan.secrets[0].file,
      (t) => t.replace(/^( {2}[a-z-]+: )ENC\[.*$/m, '$1plain-text-password-123'));
    commit(repo);
  } }));
  test('when a secrets file holds a plain-text value, without printing it', () => {
    expectStoppedBeforeAnyChange(plainText(), /secret contract/);
    expect(plainText().stdout + plainText().stderr).toContain(plan.secrets[0].file);
    expect(plainText().stdout + plainText().stderr).not.toContain('plain-text-password-123');
  });

  let removedKey = '';
  const missingKey = scenario('vergabe-deploy', () => ({ prepare: (repo) => {
    edit(repo, plan.secrets[0].file, (t) => {
      removedKey = (/^ {2}([a-z-]+): ENC\[/m.exec(t) as RegExpExecArray)[1];
      return t.replace(new RegExp(`^ {2}${removedKey}: .*\\n`, 'm'), '');
    });
    commit(repo);
  } }));
  test('when a secrets file lacks a key the Secret needs', () => {
    expectStoppedBeforeAnyChange(missingKey(), /secret contract/);
    expect(missingKey().stdout + missingKey().stderr).toMatch(new RegExp(`${plan.secrets[0].file}.*key ${removedKey}.*missing`));
  });

  const noSops = scenario('vergabe-deploy', { without: ['sops'] });
  test('when a tool is missing (sops)', () => {
    expectStoppedBeforeAnyChange(noSops(), /sops not found on PATH/);
  });

  const lockHeld = scenario('vergabe-deploy', { scenario: { STANDIN_LOCK_HELD: '1' } });
  test('when the deploy lock is held, saying by whom, since when and how to break it', () => {
    const changes = lockHeld().calls.filter(isChange);

    expect(lockHeld().status).not.toBe(0);
    expect(changes.map((c) => [verb(c), c.stdin?.match(/^kind: (\w+)/m)?.[1]])).toEqual([['create', 'Lease']]);
    expect(errorLines(lockHeld())).toEqual([
      expect.stringMatching(/held by alice@laptop since 2025-01-01T09:00:00Z .*delete lease deploy-lock/)]);
  });

  const placeholder = scenario('vergabe-deploy', { prepare: (repo) =>
    edit(repo, `dist/${ENV}/plan.tsv`, (t) => t.replace(`:${TAG}`, ':0000000')) });
  test('when the image tag is the placeholder, pointing to make vergabe-bump', () => {
    expectStoppedBeforeAnyChange(placeholder(), /image tag 0000000 .* placeholder: run make vergabe-bump TAG=<sha>/);
  });

  const unknownWait = scenario('vergabe-deploy', { prepare: (repo) =>
    edit(repo, `dist/${ENV}/plan.tsv`, (t) => t.replace(/\tready\t/, '\teventually\t')) });
  test('when the plan names a WAIT rule the deploy does not know', () => {
    expectStoppedBeforeAnyChange(unknownWait(), /has WAIT eventually; known: none active applied complete rollout ready/);
  });

  const oldServer = scenario('vergabe-deploy', { scenario: { STANDIN_SERVER_VERSION: 'v1.27.9+k3s1' } });
  test('when the server runs a Kubernetes version outside 1.28 to 1.33', () => {
    expectStoppedBeforeAnyChange(oldServer(), /runs Kubernetes v1\.27\.9\+k3s1; the manifests are made for 1\.28 to 1\.33/);
  });

  const deniedNamespace = () => plan.secrets[plan.secrets.length - 1].namespace;
  // The stand-in names resources as the API does (plural); the message names them as the plan does.
  const denied = scenario('vergabe-deploy', () => ({ scenario: {
    STANDIN_DENY: `create secrets ${deniedNamespace()}` } }));
  test('when kubectl auth can-i denies a write the deploy needs', () => {
    expectStoppedBeforeAnyChange(denied(), new RegExp(`may not create secret in ${deniedNamespace()}: ask the cluster admin`));
  });

  const issuer = scenario('vergabe-deploy', { scenario: { STANDIN_ISSUER_READY: 'False' } });
  test('when the ClusterIssuer is not Ready', () => {
    expectStoppedBeforeAnyChange(issuer(), new RegExp(`ClusterIssuer ${plan.settings.clusterIssuer} is not Ready`));
  });

  const unhealthy = scenario('vergabe-deploy', { scenario: { STANDIN_CLUSTER_PHASE: 'Failing over' } });
  test('when the database cluster is not healthy', () => {
    expectStoppedBeforeAnyChange(unhealthy(), /Cluster databases\/apps-pg is not healthy \(phase: Failing over\)/);
  });

  const roleInCluster = scenario('vergabe-deploy', () => ({ scenario: {
    STANDIN_MANAGED_ROLES: `other ${plan.settings.databaseRole}` } }));
  test('when the database cluster declares the role itself in DatabaseRole mode', () => {
    expectStoppedBeforeAnyChange(roleInCluster(), new RegExp(`lists role ${plan.settings.databaseRole} in spec\\.managed\\.roles`));
  });

  const noBackupStore = scenario('vergabe-deploy',
    { vars: ['BACKUP=1'], scenario: { STANDIN_CLUSTER_BACKUP: 'none' } });
  test('when a backup is asked for and the Cluster is not set up for its method', () => {
    expectStoppedBeforeAnyChange(noBackupStore(), new RegExp(`the Cluster ${plan.settings.databaseNamespace}/`
      + `${plan.settings.databaseCluster} has no spec\\.backup\\.barmanObjectStore, so a Backup with method `
      + 'barmanObjectStore would fail: set migration\\.backupMethod in config/production\\.yaml'));
  });

  const otherPlugin = scenario('vergabe-deploy', { vars: ['BACKUP=1'],
    scenario: { STANDIN_CLUSTER_BACKUP: 'plugin:barman-cloud.cloudnative-pg.io' },
    prepare: (repo) => configureBackup(repo, 'plugin', 'other-backups.example.org') });
  test('when the backup plugin of the config is not one the Cluster lists', () => {
    expectStoppedBeforeAnyChange(otherPlugin(), new RegExp('does not list the backup plugin '
      + 'other-backups\\.example\\.org in spec\\.plugins \\(it lists: cnpg-i-other\\.example\\.org '
      + 'barman-cloud\\.cloudnative-pg\\.io\\)'));
  });

  const dns = scenario('vergabe-deploy', () => ({
    scenario: { STANDIN_DNS: `${plan.settings.ingressAddress} 203.0.113.7` },
  }));
  test('when the host does not resolve to the ingress address only', () => {
    expectStoppedBeforeAnyChange(dns(), /resolves to .*203\.0\.113\.7.*, not only to the ingress address/);
  });
});

describe('a failing phase stops the deploy', () => {
  const failingSecret = () => plan.secrets[plan.secrets.length - 1];
  const sopsFails = scenario('vergabe-deploy',
    () => ({ scenario: { STANDIN_SOPS_FAIL: failingSecret().name } }));
  test('a failing sops stops it: nothing after that Secret is applied and the lock is released', () => {
    const run = sopsFails();
    const applies = kubectl(run).filter(isApply).map(target);
    const secretsPhase = plan.phases.findIndex((p) => p.id === failingSecret().phase);

    expect(run.status).not.toBe(0);
    expect(errorLines(run).pop()).toMatch(new RegExp(`Secret ${failingSecret().namespace}/${failingSecret().name} was not applied`));
    for (const later of plan.phases.slice(secretsPhase + 1).filter((p) => p.file !== '-')) {
      expect(applies).not.toContain(`dist/${ENV}/${later.file}`);
    }
    expect(kubectl(run).filter((c) => verb(c) === 'delete' && words(c).includes('lease'))).toHaveLength(1);
  });

  const migrationFails = scenario('vergabe-deploy',
    { scenario: { STANDIN_JOB_RESULT: 'FailureTarget Failed' } });
  test('a failed migration prints its logs and leaves the Deployment unapplied', () => {
    const run = migrationFails();
    const appFile = plan.phases
      .find((p) => p.id === plan.objects.find((o) => o.wait === 'rollout')?.phase)?.file;

    expect(run.status).not.toBe(0);
    expect(run.stdout).toContain('the stand-in\'s log line');
    expect(errorLines(run)).toEqual([expect.stringMatching(/did not complete \(Failed; logs above\).*running version keeps serving/)]);
    expect(kubectl(run).filter(isApply).map(target)).not.toContain(`dist/${ENV}/${appFile}`);
    expect(kubectl(run).filter((c) => verb(c) === 'delete' && words(c).some((w) => w.startsWith('job.batch/'))))
      .toEqual([]);
    expect(kubectl(run).some((c) => flag(c, '--applyset'))).toBe(false);
  });

  const backupFails = scenario('vergabe-deploy',
    { vars: ['BACKUP=1'], scenario: { STANDIN_BACKUP_PHASE: 'failed' } });
  test('a failed backup (BACKUP=1) stops before the migrations', () => {
    const run = backupFails();
    const create = kubectl(run)
      .find((c) => verb(c) === 'create' && (c.stdin ?? '').includes('kind: Backup')) as Call;
    const backup = parse(create.stdin as string);
    const migrateFile = plan.phases
      .find((p) => p.id === plan.objects.find((o) => o.wait === 'complete')?.phase)?.file;

    expect(backup.apiVersion).toBe('postgresql.cnpg.io/v1');
    expect(backup.metadata.namespace).toBe(plan.settings.databaseNamespace);
    expect(backup.metadata.name).toMatch(new RegExp(`^${plan.settings.databaseCluster}-.*-\\d{14}$`));
    expect(backup.spec.cluster.name).toBe(plan.settings.databaseCluster);
    expect(backup.spec.method).toBe('barmanObjectStore');
    expect(backup.spec.pluginConfiguration).toBeUndefined();
    expect(run.stdout).toContain(`the Cluster ${plan.settings.databaseNamespace}/${plan.settings.databaseCluster} `
      + 'is set up for backups by barmanObjectStore');
    expect(run.status).not.toBe(0);
    expect(errorLines(run)).toEqual([expect.stringMatching(/backup .* did not complete \(failed\): the migrations did not run/)]);
    expect(kubectl(run).filter(isApply).map(target)).not.toContain(`dist/${ENV}/${migrateFile}`);
  });
});

describe('a backup through a cnpg-i plugin', () => {
  const plugin = 'barman-cloud.cloudnative-pg.io';
  const pluginBackup = scenario('vergabe-deploy', { vars: ['BACKUP=1'],
    scenario: { STANDIN_CLUSTER_BACKUP: `plugin:${plugin}` },
    prepare: (repo) => configureBackup(repo, 'plugin', plugin) });
  test('names the method and the plugin in the Backup, and the migrations run after it', () => {
    const run = pluginBackup();
    const create = kubectl(run)
      .find((c) => verb(c) === 'create' && (c.stdin ?? '').includes('kind: Backup')) as Call;
    const backup = parse(create.stdin as string);

    expect(run.status).toBe(0);
    expect(backup.spec).toEqual({
      cluster: { name: plan.settings.databaseCluster },
      method: 'plugin',
      pluginConfiguration: { name: plugin },
    });
    expect(run.stdout).toContain(`is set up for backups by plugin ${plugin}`);
    const migrateFile = plan.phases
      .find((p) => p.id === plan.objects.find((o) => o.wait === 'complete')?.phase)?.file;
    expect(kubectl(run).filter(isApply).map(target)).toContain(`dist/${ENV}/${migrateFile}`);
  });
});

describe('overrides', () => {
  const certificateLate = scenario('vergabe-deploy',
    { scenario: { STANDIN_CERT_PENDING: '1000', TIMEOUT_READY: '0' } });
  test('a wait that passes its timeout (TIMEOUT_READY=0 here) stops the deploy before the Ingress', () => {
    const run = certificateLate();
    const certificate = plan.objects.find((o) => o.wait === 'ready') as Plan['objects'][number];
    const ingressPhase = plan.objects.find((o) => o.resource.startsWith('ingress.'))?.phase;

    expect(run.status).not.toBe(0);
    expect(errorLines(run)).toEqual([expect.stringContaining(`${certificate.resource} ${certificate.namespace}/`
      + `${certificate.name} did not become ready (timed out after 0s, last seen: Ready False (Issuing)`)]);
    expect(kubectl(run).filter(isApply).map(target))
      .not.toContain(`dist/${ENV}/${plan.phases.find((p) => p.id === ingressPhase)?.file}`);
  });
});

describe('a first deploy of an uncommitted tree', () => {
  // One run for two independent things: the missing namespace only moves the lock, ALLOW_DIRTY=1
  // only skips the tree and synthesis checks and marks the commit.
  const first = scenario('vergabe-deploy', { vars: ['ALLOW_DIRTY=1'], scenario: { STANDIN_NO_NAMESPACE: '1' },
    prepare: (repo) => writeFileSync(join(repo, 'config', `${ENV}.yaml`),
      `${readFileSync(join(repo, 'config', `${ENV}.yaml`), 'utf8')}#\n`) });
  test('takes the lock right after the namespace phase, as the Lease needs the namespace', () => {
    const calls = kubectl(first());
    const applies = calls.map((c, i) => (isApply(c) ? i : -1)).filter((i) => i > -1);
    const lock = calls.findIndex((c) => verb(c) === 'create' && (c.stdin ?? '').includes('kind: Lease'));

    expect(first().status).toBe(0);
    expect(first().stdout).toMatch(/does not exist yet \(first deploy\)/);
    expect(target(calls[applies[0]])).toBe(`dist/${ENV}/${plan.phases[0].file}`);
    expect(lock).toBeGreaterThan(applies[0]);
    expect(lock).toBeLessThan(applies[1]);
  });

  test('ALLOW_DIRTY=1 deploys an uncommitted tree with a warning and marks the recorded commit dirty', () => {
    const annotate = kubectl(first()).find((c) => verb(c) === 'annotate') as Call;

    expect(first().status).toBe(0);
    expect(first().stderr).toMatch(/^warning: ALLOW_DIRTY=1: deploying dist\/production as it is on disk/m);
    expect(words(annotate).find((w) => w.includes('deployed-commit='))).toMatch(/-dirty$/);
  });
});

describe('DRY_RUN=1', () => {
  const dry = scenario('vergabe-deploy', { vars: ['DRY_RUN=1'], scenario: { SMOKE: '1' } });
  test('prints the phases and their commands and calls no cluster', () => {
    expect(dry().status).toBe(0);
    expect(dry().calls).toEqual([]);
    for (const phase of plan.phases.filter((p) => p.file !== '-')) {
      expect(dry().stdout).toContain('kubectl --context railiance01 apply --server-side --field-manager=vergabe-deploy '
        + `--force-conflicts -f dist/${ENV}/${phase.file}`);
    }
    expect(dry().stdout).toMatch(/sops --decrypt \S+ \| kubectl --context railiance01 apply/);
    expect(dry().stdout).toMatch(/KUBECTL_APPLYSET=true kubectl .* --applyset=configmaps\/applyset-production --prune/);
  });

  const smoke = scenario('vergabe-smoke',
    { vars: ['DRY_RUN=1', 'SMOKE_ARGS=--https-port 8443 --ca test-ca.pem'] });
  test('shows the smoke check with the host, address and health path of the plan', () => {
    const s = plan.settings;

    expect(smoke().status).toBe(0);
    expect(smoke().stdout).toContain(`node scripts/smoke.js --host ${s.host} --address ${s.ingressAddress} `
      + `--health-path ${s.healthPath} --https-port 8443 --ca test-ca.pem`);
    expect(smoke().stdout).not.toContain('--accept-untrusted');
  });
});

describe('ENV', () => {
  const staging = scenario('vergabe-deploy', { vars: ['ENV=staging', 'DRY_RUN=1'], scenario: { SMOKE: '1' } });
  test('selects dist/$(ENV)/ and its plan\'s context for every step: nothing is production-specific', () => {
    const planText = readFileSync(join(template, 'dist', 'staging', 'plan.tsv'), 'utf8');
    const settings = Object.fromEntries(planText.split('\n')
      .filter((l) => l.startsWith('setting\t')).map((l) => l.split('\t').slice(1)));
    const commands = staging().stdout.split('\n').filter((l) => l.trim().startsWith('$ '));

    expect(staging().status).toBe(0);
    expect(staging().calls).toEqual([]);
    expect(commands.length).toBeGreaterThan(5);
    for (const command of commands) expect(command).not.toMatch(/dist\/production|secrets\/production/);
    for (const command of commands.filter((c) => c.includes('kubectl'))) {
      expect(command).toContain(`kubectl --context ${settings.kubeContext} `);
    }
    expect(staging().stdout).toContain(`--host ${settings.host} --address ${settings.ingressAddress} `);
    expect(staging().stdout.includes('--accept-untrusted')).toBe(settings.acceptUntrustedChain === 'true');
  });
});

describe('make vergabe-diff', () => {
  const differences = scenario('vergabe-diff', { scenario: { STANDIN_DIFF_RC: '1' } });
  test('diffs every phase file server-side and succeeds when kubectl diff finds differences (exit 1)', () => {
    const diffs = kubectl(differences()).filter((c) => verb(c) === 'diff');

    expect(differences().status).toBe(0);
    expect(diffs.map(target))
      .toEqual(plan.phases.filter((p) => p.file !== '-').map((p) => `dist/${ENV}/${p.file}`));
    for (const call of diffs) expect(call.args).toContain('--server-side');
    expect(differences().stdout).toMatch(/differences in /);
  });

  const same = scenario('vergabe-diff');
  test('succeeds and says so when the cluster matches dist/ (exit 0)', () => {
    expect(same().status).toBe(0);
    expect(same().stdout).toContain(`the cluster matches dist/${ENV}`);
  });

  const broken = scenario('vergabe-diff', { scenario: { STANDIN_DIFF_RC: '2' } });
  test('fails when kubectl diff fails (exit above 1)', () => {
    expect(broken().status).not.toBe(0);
    expect(errorLines(broken()).pop()).toMatch(/kubectl diff of .* failed \(exit 2/);
  });
});

describe('make vergabe-status', () => {
  const status = scenario('vergabe-status', { scenario: { STANDIN_NO_NAMESPACE: '1' } });
  test('says "not found" for missing parts instead of failing', () => {
    expect(status().status).toBe(0);
    expect(status().stdout).toMatch(/last Job +not found/);
    expect(status().stdout).toMatch(/ingress +\S+: address not found/);
    expect(status().stdout).toMatch(/image +gitea\.coulomb\.social/);
    expect(status().stdout).toMatch(/deploy lock +free/);
    for (const call of kubectl(status())) {
      expect(call.args.slice(0, 2)).toEqual(['--context', plan.settings.kubeContext]);
    }
  });
});

describe('make vergabe-migrate', () => {
  const forced = scenario('vergabe-migrate', { vars: ['FORCE=1'] });
  test('FORCE=1 deletes the existing Job, applies it again, waits and prints its logs', () => {
    const calls = kubectl(forced());
    const remove = calls.findIndex(
      (c) => verb(c) === 'delete' && words(c).includes(plan.settings.migrationJob));
    const apply = calls.findIndex(isApply);

    expect(forced().status).toBe(0);
    expect(remove).toBeGreaterThan(-1);
    expect(apply).toBeGreaterThan(remove);
    expect(forced().stdout).toContain('the stand-in\'s log line');
  });

  const failed = scenario('vergabe-migrate', { scenario: { STANDIN_JOB_RESULT: 'Failed' } });
  test('exits non-zero when the Job failed, after printing its logs', () => {
    expect(failed().status).not.toBe(0);
    expect(failed().stdout).toContain('the stand-in\'s log line');
    expect(errorLines(failed())).toEqual([expect.stringMatching(/migration Job .* did not complete \(Failed; logs above\)/)]);
  });
});

describe('the other operator targets', () => {
  const digest = `sha256:${'ab'.repeat(32)}`;
  const bump = scenario('vergabe-bump', { vars: ['TAG=9c8b7a6', `DIGEST=${digest}`] });
  test('vergabe-bump passes ENV, TAG and DIGEST to scripts/bump.js, which writes config/ and dist/', () => {
    const bumped = readPlan(bump().repo);

    expect(bump().status).toBe(0);
    expect(readFileSync(join(bump().repo, 'config', `${ENV}.yaml`), 'utf8')).toMatch(/^\s+tag: "9c8b7a6"$/m);
    expect(bumped.settings.image).toBe(`gitea.coulomb.social/coulomb/vergabe-teilnahme:9c8b7a6@${digest}`);
    expect(bump().calls).toEqual([]);
  });

  const rollback = scenario('vergabe-rollback');
  test('vergabe-rollback runs kubectl rollout undo under the lock and says what it does not reverse', () => {
    const calls = kubectl(rollback());
    const undo = calls.findIndex((c) => words(c).slice(0, 2).join(' ') === 'rollout undo');

    expect(rollback().status).toBe(0);
    expect(words(calls[undo])).toEqual(['rollout', 'undo', `deployment.apps/${plan.settings.deployment}`]);
    expect(calls.findIndex((c) => verb(c) === 'create')).toBeLessThan(undo);
    expect(rollback().stdout).toMatch(/not reversed: the migrations/);
  });

  const restart = scenario('vergabe-restart');
  test('vergabe-restart rolls the Deployment under the lock and waits for it', () => {
    const calls = kubectl(restart());
    const target = `deployment.apps/${plan.settings.deployment}`;
    const index = calls.findIndex((c) => words(c).slice(0, 2).join(' ') === 'rollout restart');

    expect(restart().status).toBe(0);
    expect(words(calls[index])).toEqual(['rollout', 'restart', target]);
    expect(calls.findIndex((c) => verb(c) === 'create')).toBeLessThan(index);
    expect(words(calls[index + 1]).slice(0, 3)).toEqual(['rollout', 'status', target]);
  });

  const editWithoutName = scenario('vergabe-secrets-edit');
  test('vergabe-secrets-edit without NAME lists the valid names from the plan', () => {
    expect(editWithoutName().status).not.toBe(0);
    expect(errorLines(editWithoutName())).toEqual(['error: NAME is required: make vergabe-secrets-edit '
      + `NAME=<one of: ${plan.secrets.map((s) => s.name).join(' ')}>`]);
    expect(editWithoutName().calls).toEqual([]);
  });

  const edit = scenario('vergabe-secrets-edit', () => ({ vars: [`NAME=${plan.secrets[0].name}`] }));
  test('vergabe-secrets-edit NAME=<secret> opens that file with sops', () => {
    expect(edit().status).toBe(0);
    expect(edit().calls.map((c) => [c.tool, ...c.args])).toEqual([['sops', plan.secrets[0].file]]);
  });

  const init = scenario('vergabe-secrets-init');
  test('vergabe-secrets-init runs scripts/secrets-init.sh for ENV, which keeps existing files', () => {
    expect(init().status).toBe(0);
    expect(init().stdout).toContain(`nothing to create for ${ENV}`);
    for (const secret of plan.secrets) expect(init().stdout).toContain(`kept ${secret.file}`);
  });

  const logs = scenario('vergabe-logs', { vars: ['FOLLOW=0'] });
  const seed = scenario('vergabe-seed');
  test('vergabe-logs and vergabe-seed reach the running Deployment with --context', () => {
    const deployment = `deployment.apps/${plan.settings.deployment}`;

    expect(logs().status).toBe(0);
    expect(seed().status).toBe(0);
    expect(words(kubectl(logs())[0]))
      .toEqual(['logs', deployment, '--all-containers', '--prefix', '--tail=200']);
    expect(words(kubectl(seed())[0]))
      .toEqual(['exec', deployment, '--', plan.settings.python, plan.settings.managePy, 'seed']);
    for (const call of [...kubectl(logs()), ...kubectl(seed())]) {
      expect(call.args.slice(0, 2)).toEqual(['--context', plan.settings.kubeContext]);
    }
  });
});
