import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'fs';
import { dirname, join } from 'path';
import { App } from 'cdk8s';
import { ConfigError, Environment, loadEnvironment } from './config';
import { EnvironmentOutput, OutputFile, renderEnvironment } from './phases';

/** Builds the output description of one environment inside `app`. */
export type BuildEnvironment = (app: App, environment: Environment) => EnvironmentOutput;

/** Every `config/*.yaml`, loaded and validated; all problems of all files in one ConfigError. */
export function loadEnvironments(configDir: string): Environment[] {
  let files: string[];
  try {
    files = readdirSync(configDir).filter((f) => /\.ya?ml$/.test(f)).sort();
  } catch {
    throw new ConfigError([`config: cannot read the folder ${configDir}`]);
  }
  if (files.length === 0) throw new ConfigError([`config: ${configDir} holds no <environment>.yaml`]);
  const environments: Environment[] = [];
  const problems: string[] = [];
  for (const file of files) {
    try {
      environments.push(loadEnvironment(join(configDir, file)));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return environments;
}

/** Builds every environment and renders its files; construct validations run first. */
export function renderAll(environments: Environment[], build: BuildEnvironment): OutputFile[] {
  const app = new App({ outdir: '/nonexistent' });
  const outputs = environments.map((environment) => build(app, environment));
  const problems = app.node.findAll().flatMap((c) => c.node.validate().map((p) => `${c.node.path}: ${p}`));
  if (problems.length > 0) throw new ConfigError(problems);
  return outputs.flatMap(renderEnvironment);
}

/**
 * Replaces `outDir` with exactly `files`. Everything is written to a fresh sibling folder first
 * and swapped in whole, so a failure leaves the previous output untouched.
 */
export function writeOutput(outDir: string, files: OutputFile[]): void {
  const staging = `${outDir}.new-${process.pid}`;
  const previous = `${outDir}.old-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  try {
    for (const file of files) {
      const target = join(staging, file.path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, file.content);
    }
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
  if (existsSync(outDir)) renameSync(outDir, previous);
  renameSync(staging, outDir);
  rmSync(previous, { recursive: true, force: true });
}

/** A few aligned lines: each file and the kinds of its objects. */
export function summary(outDir: string, files: OutputFile[]): string {
  const width = Math.max(...files.map((f) => f.path.length)) + outDir.length + 3;
  return files.map((file) => {
    const kinds = [...file.content.matchAll(/^kind: (\S+)$/gm)].map((m) => m[1]);
    const objects = `${kinds.length} object${kinds.length === 1 ? '' : 's'} (${kinds.join(', ')})`;
    const what = kinds.length > 0 ? objects : 'data';
    return `${join(outDir, file.path).padEnd(width)}${what}`;
  }).join('\n');
}

/** The command: load, build, write; expected problems are printed one per line, exit code 1. */
export function runSynth(options: { configDir: string; outDir: string; build: BuildEnvironment }): void {
  try {
    const files = renderAll(loadEnvironments(options.configDir), options.build);
    writeOutput(options.outDir, files);
    console.log(summary(options.outDir, files));
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) console.error(problem);
      console.error(`synth: nothing written; ${options.outDir}/ is unchanged`);
      process.exitCode = 1;
      return;
    }
    throw error;
  }
}
