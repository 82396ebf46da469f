/*
 * A temporary copy of the project as a git repository of its own, with dist/ synthesized and
 * committed, so that a test can run the operator's commands and ask `git` exactly what they
 * changed (and reset it) without touching the real tree. The repository's synth bundles are
 * copied along (.cache/synth/, ignored by git and kept by reset), so no synth in the copy
 * bundles again unless the copy's sources differ.
 */
import { spawnSync, SpawnSyncOptions } from 'child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { basename, join } from 'path';
import { ROOT } from './root';

/** What a command did. */
export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A project copy and the commands a test needs in it. */
export interface ProjectCopy {
  /** The copy's root folder. */
  readonly dir: string;
  /** Runs `command` in the copy; `env` is added to this process's environment. */
  run(command: string, args: string[], env?: NodeJS.ProcessEnv): RunResult;
  /** `git` in the copy; throws when it fails. */
  git(...args: string[]): string;
  /** Files changed, added or removed since the baseline (paths relative to the copy). */
  changedFiles(): string[];
  /** Back to the baseline commit, untracked files removed. */
  reset(): void;
  /** Removes the copy. */
  remove(): void;
}

/** What the copy holds: the sources synthesis and the scripts need, no tests, no dist/. */
const ENTRIES = ['main.ts', 'lib', 'imports', 'scripts', 'config', 'package.json', 'tsconfig.json'];

/** Runs a command; throws only when it cannot start. */
export function run(command: string, args: string[], options: SpawnSyncOptions): RunResult {
  const result = spawnSync(command, args, { ...options, encoding: 'utf8' });
  if (result.error) throw result.error;
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** `git` with a fixed identity (the copy's commits are throwaway). */
export function git(cwd: string, ...args: string[]): string {
  const identity = ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid'];
  const result = run('git', [...identity, ...args], { cwd });
  if (result.status !== 0) throw new Error(`git ${args.join(' ')} failed in ${cwd}:\n${result.stderr}`);
  return result.stdout;
}

/** Each file of `dir` with its inode, time and size (a file written again changes it); undefined: none. */
function identity(dir: string): string | undefined {
  try {
    const files = readdirSync(dir).sort().map((name) => {
      const stat = statSync(join(dir, name));
      return `${name}:${stat.ino}:${stat.mtimeMs}:${stat.size}`;
    });
    return files.length > 0 ? files.join('\n') : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Copies the repository's synth bundles, their input stamps and V8's code caches of them into
 * `dir` (`bundles`: only those named, e.g. `['vendor']`). The synth there checks them against the
 * copy's own inputs by content, as in the repository, and bundles again on any difference; a code
 * cache names its bundle's content, so a copy uses it. The record of the repository's last synth
 * is left out. When a synth in the repository rewrites the folder meanwhile, the copy is dropped.
 */
export function copySynthCache(dir: string, bundles: readonly string[] = ['main', 'vendor']): void {
  const from = join(ROOT, '.cache', 'synth');
  const to = join(dir, '.cache', 'synth');
  const before = identity(from);
  if (before === undefined) return;
  const wanted = new Set(bundles.flatMap((name) => [`${name}.js`, `${name}.inputs.json`, `${name}.js.v8`]));
  cpSync(from, to, { recursive: true, filter: (file) => file === from || wanted.has(basename(file)) });
  if (identity(from) !== before) rmSync(to, { recursive: true, force: true });
}

/**
 * Copies the repository's kept bundles of the scripts (by default yaml's and lib/image-bump.ts's,
 * from .cache/packages/ and .cache/bump/) into `dir`, so that the scripts there do not bundle them
 * again: each run checks them against its own inputs, as in the repository, and bundles again on
 * any difference. V8's code caches stay behind (they name the bundle file's times, which a copy
 * changes).
 */
export function copyKeptBundles(dir: string, folders: readonly string[] = ['packages', 'bump']): void {
  for (const folder of folders) {
    const from = join(ROOT, '.cache', folder);
    if (!existsSync(from)) continue;
    cpSync(from, join(dir, '.cache', folder), { recursive: true, filter: (file) => !file.endsWith('.v8') });
  }
}

/** Copies the project into a new temporary folder, synthesizes and commits the baseline. */
export function copyProject(prefix: string): ProjectCopy {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const entry of ENTRIES) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  copySynthCache(dir);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, '.gitignore'), 'node_modules\n.cache/\n');

  const synth = run(process.execPath, ['scripts/synth.js'], { cwd: dir });
  if (synth.status !== 0) throw new Error(`synth of the committed configuration failed:\n${synth.stderr}`);
  git(dir, 'init', '-q');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'baseline');

  return {
    dir,
    run: (command, args, env) => run(command, args, { cwd: dir, env: { ...process.env, ...env } }),
    git: (...args) => git(dir, ...args),
    changedFiles: () => git(dir, 'status', '--porcelain', '--untracked-files=all')
      .split('\n').filter(Boolean).map((l) => l.slice(3)).sort(),
    reset: () => {
      if (git(dir, 'status', '--porcelain', '--untracked-files=all') === '') return;
      git(dir, 'reset', '-q', '--hard');
      git(dir, 'clean', '-fdq');
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
