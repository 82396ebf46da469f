#!/usr/bin/env node
// @ts-check
/*
 * Helper of scripts/secrets-init.sh: lists the SOPS Secrets an environment needs, and prints one
 * of them with freshly generated values as a Kubernetes Secret manifest on stdout, for
 * `sops --encrypt` to read from a pipe. It never writes a file and refuses to print a value to a
 * terminal.
 *
 *   node scripts/secret-manifest.js list --env <env> [--root <repo dir>]
 *       one line per SOPS Secret: NAME<TAB>FILE<TAB>NEEDS, NEEDS being database-password,
 *       registry-credentials or "-" (what the caller must supply besides generated values)
 *   node scripts/secret-manifest.js render --env <env> [--root <repo dir>] --name <name>
 *       the manifest; reads the database password (one line) from stdin when the Secret needs it,
 *       and REGISTRY_USER / REGISTRY_TOKEN from the environment for a registry pull Secret
 *   node scripts/secret-manifest.js render --env <env> [--root <repo dir>] --null --name <name> [--name ...]
 *       several manifests, in the order of the names, each ending with a NUL byte (for bash's
 *       `mapfile -d ''`): one process for all the Secrets an init creates; one password for all
 *
 * Exit 0 ok; 1 a Secret it cannot make or a missing input; 2 usage.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { loadPackage } = require('./ts-module');

/** yaml, from one kept bundle (see ts-module.js): a faster start than its many modules. */
const YAML = /** @type {typeof import('yaml')} */ (loadPackage('yaml'));

/** Django's own generator draws 50 characters from this alphabet; `$` is left out so no shell or
 *  env-file ever expands part of the key. */
const DJANGO_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@#%^&*(-_=+)';
const DJANGO_KEY_LENGTH = 64;
const PASSWORD = /^[A-Za-z0-9_-]{32,}$/;
const ENV_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** @typedef {'generated' | 'database-password' | 'role' | 'registry-credentials'} ValueSource */

/**
 * @typedef {object} RequiredSecret one sops entry of dist/<env>/secrets.yaml
 * @property {string} namespace
 * @property {string} name
 * @property {string} type
 * @property {string[]} keys
 * @property {Record<string, string>} [labels]
 * @property {string} file
 */

class Failure extends Error {
  /** @param {string} message @param {number} code */
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

/**
 * Where the value of a key comes from. The database password is one value shared by the app's
 * Secret and the role's basic-auth Secret, so the caller generates it once and hands it to both.
 * @param {RequiredSecret} secret
 * @param {string} key
 * @returns {ValueSource}
 */
function valueSource(secret, key) {
  if (key === 'django-secret-key') return 'generated';
  if (key === 'database-password') return 'database-password';
  if (secret.type === 'kubernetes.io/basic-auth' && key === 'password') return 'database-password';
  if (secret.type === 'kubernetes.io/basic-auth' && key === 'username') return 'role';
  if (secret.type === 'kubernetes.io/dockerconfigjson' && key === '.dockerconfigjson') {
    return 'registry-credentials';
  }
  throw new Failure(`${secret.file}: Secret ${secret.namespace}/${secret.name}, key ${key}: `
    + `no generator for this key; create the file by hand with sops (see secrets/*/*.example.yaml)`, 1);
}

/** @returns {string} a Django SECRET_KEY of DJANGO_KEY_LENGTH characters, each drawn uniformly. */
function djangoSecretKey() {
  // Loaded here, not at the start: `list` needs no random values.
  const crypto = require('crypto');
  let key = '';
  for (let i = 0; i < DJANGO_KEY_LENGTH; i++) key += DJANGO_ALPHABET[crypto.randomInt(DJANGO_ALPHABET.length)];
  return key;
}

/**
 * @param {string} root
 * @param {string} env
 * @returns {Map<string, string>} the settings of dist/<env>/plan.tsv
 */
function planSettings(root, env) {
  const file = path.join(root, 'dist', env, 'plan.tsv');
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new Failure(`dist/${env}/plan.tsv not found: run npm run synth`, 2);
  }
  const settings = new Map();
  for (const line of text.split('\n')) {
    const cells = line.split('\t');
    if (cells[0] === 'setting' && cells.length === 3) settings.set(cells[1], cells[2]);
  }
  return settings;
}

/**
 * @param {string} root
 * @param {string} env
 * @returns {RequiredSecret[]} the sops Secrets of dist/<env>/secrets.yaml
 */
function sopsSecrets(root, env) {
  if (!ENV_NAME.test(env)) throw new Failure(`--env ${JSON.stringify(env)} is not an environment name`, 2);
  if (!fs.existsSync(path.join(root, 'config', `${env}.yaml`))) {
    throw new Failure(`unknown environment ${env}: there is no config/${env}.yaml`, 2);
  }
  let contract;
  try {
    contract = YAML.parse(fs.readFileSync(path.join(root, 'dist', env, 'secrets.yaml'), 'utf8'));
  } catch {
    throw new Failure(`dist/${env}/secrets.yaml not found or unreadable: run npm run synth`, 2);
  }
  const list = contract && Array.isArray(contract.secrets) ? contract.secrets : [];
  return list.filter((/** @type {{ source?: string }} */ s) => s.source === 'sops');
}

/**
 * The registry host of an image reference, as docker config files key it.
 * @param {string} image
 */
function registryHost(image) {
  const first = image.split('/')[0];
  return image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')
    ? first : 'https://index.docker.io/v1/';
}

/**
 * @param {RequiredSecret} secret
 * @param {Map<string, string>} settings
 * @param {string | undefined} databasePassword
 * @returns {string} the manifest
 */
function render(secret, settings, databasePassword) {
  /** @type {Record<string, string>} */
  const stringData = {};
  for (const key of secret.keys) {
    const source = valueSource(secret, key);
    if (source === 'generated') stringData[key] = djangoSecretKey();
    if (source === 'database-password') {
      if (databasePassword === undefined) throw new Failure('the database password is missing', 1);
      stringData[key] = databasePassword;
    }
    if (source === 'role') {
      const role = settings.get('databaseRole');
      if (!role) throw new Failure('dist plan.tsv has no setting databaseRole: run npm run synth', 2);
      stringData[key] = role;
    }
    if (source === 'registry-credentials') stringData[key] = dockerConfig(settings);
  }
  const manifest = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: secret.name,
      namespace: secret.namespace,
      ...(secret.labels ? { labels: { ...secret.labels } } : {}),
    },
    type: secret.type,
    stringData,
  };
  return YAML.stringify(manifest, { lineWidth: 0 });
}

/**
 * @param {Map<string, string>} settings
 * @returns {string} a .dockerconfigjson from REGISTRY_USER and REGISTRY_TOKEN
 */
function dockerConfig(settings) {
  const user = process.env.REGISTRY_USER ?? '';
  const token = process.env.REGISTRY_TOKEN ?? '';
  if (!user || !token) {
    throw new Failure('REGISTRY_USER and REGISTRY_TOKEN must both be set for a registry pull Secret', 1);
  }
  const image = settings.get('image');
  if (!image) throw new Failure('dist plan.tsv has no setting image: run npm run synth', 2);
  const auth = Buffer.from(`${user}:${token}`).toString('base64');
  return JSON.stringify({ auths: { [registryHost(image)]: { username: user, password: token, auth } } });
}

/** @returns {Promise<string>} the database password given on stdin (one line). */
async function passwordFromStdin() {
  if (process.stdin.isTTY) {
    throw new Failure('the database password is read from stdin (a pipe), not a terminal', 1);
  }
  // Read as a stream: a synchronous read of a pipe fails with EAGAIN when the writer made it non-blocking.
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (!PASSWORD.test(password)) {
    throw new Failure('stdin: the database password must be at least 32 characters of A-Z a-z 0-9 _ -', 1);
  }
  return password;
}

/** @param {string} text */
function printSecretMaterial(text) {
  if (process.stdout.isTTY) {
    throw new Failure('refusing to print secret values to a terminal; pipe the output into sops', 1);
  }
  // A reader that quit early (sops failed and said why) is not worth a stack trace.
  process.stdout.on('error', (error) => {
    const code = /** @type {NodeJS.ErrnoException} */ (error).code;
    process.stderr.write(`secret-manifest: cannot write the manifest (${code})\n`);
    process.exit(1);
  });
  process.stdout.write(text);
}

/**
 * @param {string[]} argv
 * @returns {{ command: string, env: string, root: string, names: string[], nul: boolean }}
 */
function parseArgs(argv) {
  const [command, ...rest] = argv;
  if (!['list', 'render'].includes(command)) {
    throw new Failure(`unknown command ${JSON.stringify(command ?? '')}; use list or render`, 2);
  }
  /** @type {Record<string, string>} */
  const options = {};
  /** @type {string[]} */
  const names = [];
  let nul = false;
  for (let i = 0; i < rest.length; i += 1) {
    if (command === 'render' && rest[i] === '--null') {
      nul = true;
      continue;
    }
    if (!['--env', '--root', '--name'].includes(rest[i]) || i + 1 >= rest.length) {
      throw new Failure(`unknown argument or missing value: ${rest[i]}`, 2);
    }
    if (rest[i] === '--name') names.push(rest[i + 1]);
    else options[rest[i].slice(2)] = rest[i + 1];
    i += 1;
  }
  if (!options.env) throw new Failure('--env is required', 2);
  if (command === 'render' && names.length === 0) throw new Failure('--name is required', 2);
  if (names.length > 1 && !nul) {
    throw new Failure('several --name need --null (each manifest then ends with a NUL byte)', 2);
  }
  return {
    command,
    env: options.env ?? '',
    root: path.resolve(options.root ?? path.join(__dirname, '..')),
    names,
    nul,
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));

  const secrets = sopsSecrets(args.root, args.env);
  if (args.command === 'list') {
    for (const secret of secrets) {
      const needs = new Set(secret.keys.map((key) => valueSource(secret, key))
        .filter((source) => source === 'database-password' || source === 'registry-credentials'));
      process.stdout.write(`${secret.name}\t${secret.file}\t${[...needs].join(',') || '-'}\n`);
    }
    return;
  }

  const chosen = args.names.map((name) => {
    const secret = secrets.find((s) => s.name === name);
    if (!secret) throw new Failure(`Secret ${name} is not a sops Secret of dist/${args.env}/secrets.yaml`, 2);
    return secret;
  });
  const settings = planSettings(args.root, args.env);
  const needsPassword = chosen.some((secret) => secret.keys
    .some((key) => valueSource(secret, key) === 'database-password'));
  const password = needsPassword ? await passwordFromStdin() : undefined;
  // All rendered before anything is printed: a Secret that cannot be made stops the others too.
  const manifests = chosen.map((secret) => render(secret, settings, password));
  printSecretMaterial(args.nul ? manifests.map((manifest) => `${manifest}\0`).join('') : manifests[0]);
}

main().catch((error) => {
  if (!(error instanceof Failure)) throw error;
  process.stderr.write(`secret-manifest: ${error.message}\n`);
  process.exit(error.code);
});
