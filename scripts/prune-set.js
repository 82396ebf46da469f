#!/usr/bin/env node
// @ts-check
/*
 * Prints the members of the environment's ApplySet as one YAML stream on stdout: the objects that
 * dist/<env>/plan.tsv marks `prune`, taken unchanged from their phase files. Objects marked `keep`
 * (the Namespace, volumes, the database and its role) never appear, and Secrets are not in dist/.
 * The deploy pipes this into `kubectl apply --applyset ... --prune` at the end of a good deploy.
 *
 *   node scripts/prune-set.js --env <env>
 *
 * Exit 0 ok; 1 the plan and the phase files disagree (run npm run synth); 2 usage.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { loadPackage } = require('./ts-module');

const YAML = /** @type {typeof import('yaml')} */ (loadPackage('yaml'));

const root = path.resolve(__dirname, '..');

/** The same rule as kubectlResource in lib/phases.ts: `kind.group`, lower case. */
function kubectlResource(/** @type {string} */ apiVersion, /** @type {string} */ kind) {
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  return group ? `${kind.toLowerCase()}.${group}` : kind.toLowerCase();
}

/**
 * @param {string} env
 * @returns {string} the YAML stream
 */
function pruneSet(env) {
  const dist = path.join('dist', env);
  const planFile = path.join(dist, 'plan.tsv');
  const rows = fs.readFileSync(path.join(root, planFile), 'utf8').split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split('\t'));

  /** @type {Map<string, string>} phase id to file */
  const files = new Map(rows.filter((r) => r[0] === 'phase').map((r) => [r[1], r[2]]));
  /** @type {Map<string, Set<string>>} file to the keys (resource, namespace, name) of its prune objects */
  const wanted = new Map();
  for (const [type, phase, resource, namespace, name, , prune] of rows) {
    if (type !== 'object' || prune !== 'prune') continue;
    const file = files.get(phase);
    if (!file || file === '-') {
      throw new Error(`${planFile}: object ${resource} ${name} is in phase ${phase}, which has no file`);
    }
    wanted.set(file, (wanted.get(file) ?? new Set()).add(`${resource} ${namespace} ${name}`));
  }

  const documents = [];
  for (const [file, keys] of wanted) {
    const shown = path.join(dist, file);
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(root, shown), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${shown} does not parse as YAML`);
      const object = doc.toJS();
      if (!object) continue;
      const resource = kubectlResource(object.apiVersion, object.kind);
      if (keys.delete(`${resource} ${object.metadata.namespace ?? '-'} ${object.metadata.name}`)) {
        documents.push(doc.toString({ lineWidth: 0 }));
      }
    }
    for (const key of keys) throw new Error(`${planFile}: object ${key} is not in ${shown}`);
  }
  return documents.join('---\n');
}

function main() {
  const args = process.argv.slice(2);
  if (args.length !== 2 || args[0] !== '--env' || !/^[a-z][a-z0-9-]*$/.test(args[1])) {
    console.error('usage: node scripts/prune-set.js --env <environment>');
    process.exit(2);
  }
  try {
    process.stdout.write(pruneSet(args[1]));
  } catch (error) {
    const message = /** @type {NodeJS.ErrnoException} */ (error).code === 'ENOENT'
      ? `${/** @type {NodeJS.ErrnoException} */ (error).path} not found`
      : /** @type {Error} */ (error).message;
    console.error(`prune-set: ${message}: run npm run synth`);
    process.exit(1);
  }
}

main();
