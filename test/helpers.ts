import { readFileSync } from 'fs';
import { join } from 'path';
import { parseAllDocuments, parse } from 'yaml';
import { Environment, parseEnvironment } from '../lib/config';
import { OutputFile } from '../lib/phases';
import { renderAll } from '../lib/synth';
import { VergabeChart } from '../lib/vergabe-chart';
import { ROOT } from './root';

export { ROOT };

/** A Kubernetes object as synthesized. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: any;
  data?: Record<string, string>;
}

/** Each committed environment file, parsed once per test file (the tests never change them). */
const committedConfig = new Map<string, unknown>();

/** The parsed content of a committed environment file, e.g. `config/production.yaml` (a fresh copy). */
export function configData(environment: string): any {
  if (!committedConfig.has(environment)) {
    committedConfig.set(environment, parse(readFileSync(join(ROOT, 'config', `${environment}.yaml`), 'utf8')));
  }
  return structuredClone(committedConfig.get(environment));
}

/** A deep copy of production's configuration with `change` applied to it. */
export function productionWith(change: (config: any) => void): any {
  const config = configData('production');
  change(config);
  return config;
}

/** Everything the output step writes for the given environments (name → parsed YAML data). */
export function synth(...environments: Array<[string, unknown]>): OutputFile[] {
  const parsed: Environment[] = environments.map(
    ([name, data]) => parseEnvironment(name, structuredClone(data)));
  return renderAll(parsed,
    (app, environment) => new VergabeChart(app, environment.name, { environment }).output());
}

/** The objects of each phase file text seen so far: many variants of a chart share most files. */
const parsedPhaseFiles = new Map<string, Manifest[]>();

/** The objects of the phase files among `files` (plan, secrets list and fragments excluded), fresh copies. */
export function manifests(files: OutputFile[]): Manifest[] {
  return files
    .filter((f) => /\/[0-9]{2}-[a-z-]+\.yaml$/.test(f.path))
    .flatMap((f) => {
      if (!parsedPhaseFiles.has(f.content)) {
        parsedPhaseFiles.set(f.content, parseAllDocuments(f.content).map((d) => d.toJS() as Manifest));
      }
      return structuredClone(parsedPhaseFiles.get(f.content) as Manifest[]);
    });
}

/** The single object of a kind (and optional name); fails the test when there is not exactly one. */
export function one(objects: Manifest[], kind: string, name?: string): Manifest {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  }
  return found[0];
}

/** Production as committed. */
export function productionFiles(): OutputFile[] {
  return synth(['production', configData('production')]);
}
