import { Chart } from 'cdk8s';
import { Document, stringify } from 'yaml';
import { RequiredSecret } from './required-secret';

/*
 * The apply order, defined once. The output step writes one file per phase (`NN-name.yaml`, so
 * that sorting the names gives the order) and a plan (`plan.tsv`) that the deploy reads: which
 * file to apply, what to wait for after it, and which Secrets to bring from SOPS. Nobody keeps a
 * second list.
 */

/** A step of the deploy. */
export interface Phase {
  /** `NN-name`; the file name without `.yaml`, sorted in apply order. */
  readonly id: string;
  /** One line for the operator. */
  readonly title: string;
  /**
   * Where the phase's objects come from: `dist` (a synthesized file), `sops` (the encrypted
   * Secrets, decrypted by the deploy) or `deploy` (made by the deploy itself when asked).
   */
  readonly source: 'dist' | 'sops' | 'deploy';
}

export const PHASES: readonly Phase[] = [
  { id: '00-namespace', title: 'the app namespace', source: 'dist' },
  { id: '10-secrets', title: 'Secrets from SOPS (the role\'s password before the role)', source: 'sops' },
  { id: '20-config', title: 'service account, settings, network policy, volumes', source: 'dist' },
  { id: '30-database', title: 'PostgreSQL role and database in the shared cluster', source: 'dist' },
  { id: '40-backup', title: 'optional backup of the cluster before migrations', source: 'deploy' },
  { id: '50-migrate', title: 'migrations and seed, before the new version serves', source: 'dist' },
  { id: '60-app', title: 'the web Deployment and its Service', source: 'dist' },
  { id: '70-certificate', title: 'the TLS certificate, which must be Ready before exposure', source: 'dist' },
  { id: '80-ingress', title: 'HTTPS redirect, security headers and the Ingress, last', source: 'dist' },
];

/**
 * What the deploy waits for after applying an object:
 * `active` a Namespace's phase; `applied` a cnpg object's `.status.applied` at its current
 * generation; `complete` a Job's Complete (or Failed, which stops the deploy); `rollout` a
 * Deployment's rollout; `ready` a cert-manager Ready condition; `none` nothing.
 */
export type WaitRule = 'none' | 'active' | 'applied' | 'complete' | 'rollout' | 'ready';

/** Where objects of one kind go and how the deploy treats them. */
export interface KindRule {
  /** The phase the kind belongs to. */
  readonly phase: string;
  /** What the deploy waits for after applying it. */
  readonly wait: WaitRule;
  /**
   * Objects whose loss loses data or access (Namespace, volumes, the database and its role,
   * Secrets) are never pruned automatically; removing them is a manual step.
   */
  readonly prune: boolean;
}

export const KINDS: Readonly<Record<string, KindRule>> = {
  'Namespace': { phase: '00-namespace', wait: 'active', prune: false },
  'Secret': { phase: '10-secrets', wait: 'none', prune: false },
  'ServiceAccount': { phase: '20-config', wait: 'none', prune: true },
  'ConfigMap': { phase: '20-config', wait: 'none', prune: true },
  'NetworkPolicy': { phase: '20-config', wait: 'none', prune: true },
  'PersistentVolumeClaim': { phase: '20-config', wait: 'none', prune: false },
  'DatabaseRole': { phase: '30-database', wait: 'applied', prune: false },
  'Database': { phase: '30-database', wait: 'applied', prune: false },
  'Backup': { phase: '40-backup', wait: 'none', prune: false },
  'Job': { phase: '50-migrate', wait: 'complete', prune: true },
  'Deployment': { phase: '60-app', wait: 'rollout', prune: true },
  'Service': { phase: '60-app', wait: 'none', prune: true },
  'Certificate': { phase: '70-certificate', wait: 'ready', prune: true },
  'Middleware': { phase: '80-ingress', wait: 'none', prune: true },
  'Ingress': { phase: '80-ingress', wait: 'none', prune: true },
};

/** A file for someone else, never applied: its path in the environment folder, a header and a body. */
export interface ExtraFile {
  readonly path: string;
  readonly header: string;
  readonly body: unknown;
}

/** A file of the output, relative to `dist/`. */
export interface OutputFile {
  readonly path: string;
  readonly content: string;
}

/** What the output step needs from one environment's chart. */
export interface EnvironmentOutput {
  /** Environment name, the folder under `dist/`. */
  readonly environment: string;
  /** The chart with every object of the environment. */
  readonly chart: Chart;
  /** Settings the deploy needs, in the order they are written. */
  readonly settings: ReadonlyArray<readonly [string, string]>;
  /** Secrets the objects reference. */
  readonly requiredSecrets: readonly RequiredSecret[];
  /**
   * Files that are handed to someone else and never applied by the deploy
   * (e.g. a Cluster fragment for the platform team), by path relative to the environment folder.
   */
  readonly extraFiles?: readonly ExtraFile[];
}

/** Where the deploy finds the encrypted manifest of a SOPS Secret. */
export function sopsFile(environment: string, secretName: string): string {
  return `secrets/${environment}/${secretName}.sops.yaml`;
}

/** The kubectl resource of an object, e.g. `job.batch` or `database.postgresql.cnpg.io`. */
export function kubectlResource(apiVersion: string, kind: string): string {
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  return group ? `${kind.toLowerCase()}.${group}` : kind.toLowerCase();
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

function toYaml(documents: unknown[], header: string): string {
  const body = documents
    .map((doc) => new Document(doc).toString({ lineWidth: 0, indentSeq: true }))
    .join('---\n');
  return `${header.split('\n').map((line) => `# ${line}`.trimEnd()).join('\n')}\n${body}`;
}

/** Splits one environment into phase files and its plan. */
export function renderEnvironment(output: EnvironmentOutput): OutputFile[] {
  const env = output.environment;
  const manifests = output.chart.toJson() as Manifest[];
  const byPhase = new Map<string, Manifest[]>();
  for (const manifest of manifests) {
    const rule = KINDS[manifest.kind];
    if (!rule) {
      throw new Error(`environment ${env}: ${manifest.kind} ${manifest.metadata.name} has no phase; `
        + 'add its kind to KINDS in lib/phases.ts');
    }
    if (manifest.kind === 'Secret') {
      throw new Error(`environment ${env}: Secret ${manifest.metadata.name} would be written to dist/; `
        + 'Secrets come only from the SOPS files');
    }
    byPhase.set(rule.phase, [...(byPhase.get(rule.phase) ?? []), manifest]);
  }

  const files: OutputFile[] = [];
  const plan: string[][] = [];
  for (const [key, value] of output.settings) plan.push(['setting', key, value]);

  for (const phase of PHASES) {
    const objects = byPhase.get(phase.id) ?? [];
    const file = objects.length > 0 ? `${phase.id}.yaml` : '-';
    plan.push(['phase', phase.id, file, phase.source, phase.title]);
    if (phase.source === 'sops') {
      const sopsSecrets = output.requiredSecrets.filter((s) => s.source === 'sops');
      const names = sopsSecrets.map((s) => s.name);
      const duplicate = names.find((name, i) => names.indexOf(name) !== i);
      if (duplicate) throw new Error(`environment ${env}: two SOPS Secrets are named ${duplicate}`);
      for (const secret of sopsSecrets) {
        plan.push(['secret', phase.id, secret.namespace, secret.name, sopsFile(env, secret.name)]);
      }
    }
    for (const object of objects) {
      const rule = KINDS[object.kind];
      plan.push(['object', phase.id, kubectlResource(object.apiVersion, object.kind),
        object.metadata.namespace ?? '-', object.metadata.name, rule.wait, rule.prune ? 'prune' : 'keep']);
    }
    if (objects.length > 0) {
      files.push({
        path: `${env}/${file}`,
        content: toYaml(objects, `${env}, phase ${phase.id}: ${phase.title}.\n`
          + `Generated by \`npm run synth\` from config/${env}.yaml; do not edit.`),
      });
    }
  }

  files.push({ path: `${env}/plan.tsv`, content: renderPlan(env, plan) });
  files.push({ path: `${env}/secrets.yaml`, content: renderSecrets(env, output.requiredSecrets) });
  for (const extra of output.extraFiles ?? []) {
    files.push({ path: `${env}/${extra.path}`, content: toYaml([extra.body], extra.header) });
  }
  return files;
}

function renderPlan(env: string, rows: string[][]): string {
  for (const row of rows) {
    for (const cell of row) {
      if (/[\t\n]/.test(cell) || cell === '') {
        throw new Error(`environment ${env}: plan value ${JSON.stringify(cell)} is empty or has a tab`);
      }
    }
  }
  return [
    `# Deploy plan of ${env}, generated by \`npm run synth\`; do not edit. Read top to bottom by the deploy.`,
    '# setting KEY VALUE | phase ID FILE SOURCE TITLE | secret PHASE NAMESPACE NAME SOPS-FILE',
    '# object PHASE RESOURCE NAMESPACE NAME WAIT PRUNE (tab-separated; "-" is empty)',
    ...rows.map((row) => row.join('\t')),
    '',
  ].join('\n');
}

/** The Secret contract: what must exist, with which keys, from where. Never any value. */
function renderSecrets(env: string, secrets: readonly RequiredSecret[]): string {
  const header = `# Secrets that ${env} references but never contains. `
    + 'Generated by `npm run synth`; do not edit.\n'
    + '# The deploy applies the sops ones from their file; cert-manager writes the others.\n';
  return header + stringify({
    secrets: secrets.map((s) => ({
      namespace: s.namespace,
      name: s.name,
      type: s.type,
      keys: [...s.keys],
      ...(s.labels ? { labels: { ...s.labels } } : {}),
      source: s.source,
      ...(s.source === 'sops' ? { file: sopsFile(env, s.name) } : {}),
      purpose: s.purpose,
    })),
  }, { lineWidth: 0 });
}
