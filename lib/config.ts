import { readFileSync } from 'fs';
import { basename } from 'path';
import type { ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';
import { EnvironmentConfig, environmentSchema } from './config-schema';
import validator = require('./config-validator');
import { bytes, cpuMillis } from './quantity';
import { schemaHash } from './schema-hash';

export type { EnvironmentConfig } from './config-schema';

/** A validated environment: its name (the file's base name) and its settings. */
export interface Environment {
  readonly name: string;
  readonly config: EnvironmentConfig;
}

/** Bad configuration: one line per problem, each naming the environment, field path and value. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

const ENVIRONMENT_NAME = /^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/;

let checked = false;

/** Validates with the generated validator, once it is known to match the schema. */
function validate(data: unknown): ErrorObject[] {
  if (!checked && validator.schemaHash !== schemaHash(environmentSchema)) {
    throw new ConfigError([
      'config: lib/config-validator.js was made from another schema: run npm run validator',
    ]);
  }
  checked = true;
  return validator(data) ? [] : [...(validator.errors ?? [])];
}

/** `image.tag` from ajv's `/image/tag`. */
function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  const path = parts.map((p, i) => (/^[0-9]+$/.test(p) ? `[${p}]` : (i === 0 ? p : `.${p}`))).join('');
  return path || '(top level)';
}

function describeError(error: ErrorObject): string | undefined {
  const value = JSON.stringify(error.data);
  const hint = (error.parentSchema as { hint?: string } | undefined)?.hint;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = (error.params as { additionalProperty: string }).additionalProperty;
      return `${fieldPath(error.instancePath, key)} is not a known setting`;
    }
    case 'required': {
      const key = (error.params as { missingProperty: string }).missingProperty;
      return `${fieldPath(error.instancePath, key)} is required but missing`;
    }
    case 'propertyNames':
      return undefined; // the nested pattern error names the offending key
    case 'enum':
      return `${fieldPath(error.instancePath)} ${value} is not one of ${JSON.stringify(error.schema)}`;
    case 'type': {
      const quote = typeof error.data === 'number' && JSON.stringify(error.schema).includes('string')
        ? ' (YAML read it as a number: put it in quotes)' : '';
      return `${fieldPath(error.instancePath)} ${value} is not of type ${JSON.stringify(error.schema)}${quote}`;
    }
    default: {
      const name = (error as { propertyName?: string }).propertyName;
      if (name !== undefined) {
        return `${fieldPath(error.instancePath)}: key ${JSON.stringify(name)} is not ${hint ?? 'allowed'}`;
      }
      if (hint && ['pattern', 'maxLength', 'minLength'].includes(error.keyword)) {
        return `${fieldPath(error.instancePath)} ${value} is not ${hint}`;
      }
      return `${fieldPath(error.instancePath)} ${value}: ${error.message}`;
    }
  }
}

/** Rules that tie several fields together, which a JSON schema cannot say. */
function crossFieldProblems(config: EnvironmentConfig): string[] {
  const problems: string[] = [];
  const { requests, limits } = config.app.resources;
  for (const [resource, parse] of [['cpu', cpuMillis], ['memory', bytes]] as const) {
    const request = parse(requests[resource]);
    const limit = parse(limits[resource]);
    if (request !== undefined && limit !== undefined && limit < request) {
      problems.push(`app.resources.limits.${resource} "${limits[resource]}" is below `
        + `app.resources.requests.${resource} "${requests[resource]}"`);
    }
  }

  const { workers, threads } = config.app.gunicorn;
  const needed = requiredConnections(config);
  if (config.database.connectionLimit < needed) {
    problems.push(`database.connectionLimit ${config.database.connectionLimit} is too small: `
      + `${config.app.replicas + 1} pods during a rollout x ${workers} workers x ${threads} threads `
      + `+ the migration Job + a shell need at least ${needed}`);
  }

  if (config.app.media.enabled && config.app.replicas !== 1) {
    problems.push(`app.replicas ${config.app.replicas} is not 1, but app.media.enabled is true `
      + '(a ReadWriteOnce volume attaches to one pod only)');
  }

  const { backupMethod, backupPlugin } = config.migration;
  if (backupMethod === 'plugin' && backupPlugin === undefined) {
    problems.push('migration.backupPlugin is required but missing: migration.backupMethod "plugin" '
      + 'needs the plugin\'s name, as the Cluster\'s spec.plugins lists it');
  }
  if (backupMethod !== 'plugin' && backupPlugin !== undefined) {
    problems.push(`migration.backupPlugin "${backupPlugin}" is set, but migration.backupMethod is `
      + `"${backupMethod}", not "plugin"`);
  }

  if (!/^[a-z0-9]/.test(config.database.role) || config.database.role.endsWith('_')) {
    problems.push(`database.role "${config.database.role}" cannot name a Kubernetes object `
      + '(it must start with a letter or digit and not end with "_")');
  }
  return problems;
}

/**
 * Connections the role needs: every gunicorn thread of every pod while a rollout runs one pod
 * more than `replicas`, plus the migration Job and an operator's shell.
 */
export function requiredConnections(config: EnvironmentConfig): number {
  const { workers, threads } = config.app.gunicorn;
  return (config.app.replicas + 1) * workers * threads + 2;
}

/**
 * Validates parsed YAML as the environment `name`; fills in defaults. Throws a ConfigError that
 * lists every problem.
 */
export function parseEnvironment(name: string, data: unknown): Environment {
  const prefix = `config ${name}:`;
  if (!ENVIRONMENT_NAME.test(name)) {
    throw new ConfigError([
      `${prefix} the environment name "${name}" is not a DNS-1123 label of 1 to 32 characters`,
    ]);
  }
  const errors = validate(data);
  const problems = errors.map(describeError).filter((p): p is string => p !== undefined);
  if (problems.length === 0) problems.push(...crossFieldProblems(data as EnvironmentConfig));
  if (problems.length > 0) {
    throw new ConfigError([...new Set(problems)].map((p) => `${prefix} ${p}`));
  }
  return { name, config: data as EnvironmentConfig };
}

/** Reads and validates `config/<name>.yaml`. */
export function loadEnvironment(file: string): Environment {
  const name = basename(file).replace(/\.ya?ml$/, '');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ConfigError([`config ${name}: cannot read ${file} (${code})`]);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => {
      const where = e.linePos ? `${file}:${e.linePos[0].line}:${e.linePos[0].col}` : file;
      const message = e.message.split('\n')[0].replace(/ at line [0-9]+, column [0-9]+:?$/, '');
      return `config ${name}: ${where}: YAML syntax error: ${message}`;
    }));
  }
  return parseEnvironment(name, doc.toJS());
}
