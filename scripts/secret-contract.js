#!/usr/bin/env node
// @ts-check
/*
 * Secret contract check: do the SOPS files in secrets/<env>/ hold, encrypted, every Secret that
 * dist/<env>/secrets.yaml lists with source sops?
 *
 * Needs no key: sops leaves apiVersion, kind, metadata and the key names in plain text and only
 * encrypts the values, so the structure can be checked on any checkout. Every problem is one line
 * naming the file, the Secret and the key; no value (not even a part of one) is ever printed.
 *
 *   node scripts/secret-contract.js --env <env> [--root <repo dir>]
 *   node scripts/secret-contract.js --env <env> [--root <repo dir>] --check-file <path> --secret <name> [...]
 *       (checks files as the named Secrets, e.g. fresh sops output before it is moved into place;
 *       the pair may repeat)
 *
 * Exit 0: contract holds (warnings may be printed); 1: problems; 2: usage or setup error.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { loadPackage } = require('./ts-module');

/** yaml, from one kept bundle (see ts-module.js): a faster start than its many modules. */
const YAML = /** @type {typeof import('yaml')} */ (loadPackage('yaml'));

/** What sops writes for an encrypted leaf: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`. */
const ENC_VALUE = /^ENC\[AES256_GCM,data:([A-Za-z0-9+/]*={0,2}),iv:[A-Za-z0-9+/]+={0,2},tag:[A-Za-z0-9+/]+={0,2},type:(str|int|float|bool|bytes|comment)\]$/;
/** An age public key (X25519 keys are 62 characters; plugin and post-quantum ones are longer). */
const AGE_RECIPIENT = /^age1[0-9a-z]{20,}$/;
const AGE_ARMOR = '-----BEGIN AGE ENCRYPTED FILE-----';
/** The placeholder recipient that .sops.yaml ships with. */
const PLACEHOLDER_RECIPIENT = /age1replace/i;
const ENV_NAME = /^[a-z][a-z0-9-]{0,62}$/;
/** Files that may sit next to the encrypted ones without being read by the deploy. */
const ALLOWED_OTHER_FILES = /(\.example\.yaml|^README\.md|^\.gitkeep)$/;

/**
 * @typedef {object} RequiredSecret one entry of dist/<env>/secrets.yaml
 * @property {string} namespace
 * @property {string} name
 * @property {string} type
 * @property {string[]} keys
 * @property {Record<string, string>} [labels]
 * @property {string} source
 * @property {string} [file]
 */

/** @typedef {{ level: 'error' | 'warning', text: string }} Finding */

class UsageError extends Error {}

/**
 * @param {unknown} value
 * @returns {value is string} whether value is a sops-encrypted leaf.
 */
function isEncryptedValue(value) {
  return typeof value === 'string' && ENC_VALUE.test(value);
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isMap(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses the text as exactly one YAML document. Parser messages are not passed on: they quote
 * the offending source line, which may hold a plain secret value.
 * @param {string} text
 * @returns {{ doc?: unknown, problem?: string }}
 */
function parseOneDocument(text) {
  const docs = YAML.parseAllDocuments(text);
  for (const doc of docs) {
    const error = doc.errors[0];
    if (error) {
      const where = error.linePos ? ` at line ${error.linePos[0].line}, column ${error.linePos[0].col}` : '';
      return { problem: `does not parse as YAML (${error.code}${where})` };
    }
  }
  const nonEmpty = docs.filter((doc) => doc.contents !== null);
  if (nonEmpty.length === 0) return { problem: 'is empty; it must hold one encrypted Secret' };
  if (nonEmpty.length > 1) {
    return {
      problem: `holds ${nonEmpty.length} YAML documents; it must hold exactly one Secret (one Secret per file)`,
    };
  }
  try {
    return { doc: nonEmpty[0].toJS() };
  } catch (error) {
    // e.g. an alias to an unknown anchor; sops never writes anchors or aliases.
    return { problem: `does not resolve as YAML (${/** @type {Error} */ (error).name})` };
  }
}

/**
 * Checks the `sops` block: at least one age recipient with its encrypted data key, and a MAC.
 * @param {unknown} sops
 * @returns {string[]} problems (without file prefix)
 */
function checkSopsBlock(sops) {
  if (!isMap(sops)) {
    return ['has no sops block: it is not sops output; create it with make vergabe-secrets-init '
      + 'or encrypt it with sops (the creation rules in .sops.yaml apply)'];
  }
  const problems = [];
  const age = Array.isArray(sops.age) ? sops.age : [];
  const usable = age.filter((entry) => isMap(entry) && typeof entry.recipient === 'string'
    && AGE_RECIPIENT.test(entry.recipient) && typeof entry.enc === 'string' && entry.enc.includes(AGE_ARMOR));
  if (usable.length === 0) {
    problems.push('sops block has no age recipient (an entry with recipient age1... and its enc data key); '
      + 'the deploy decrypts with an age key: add the recipients in .sops.yaml, then sops updatekeys');
  } else if (usable.length < age.length) {
    const malformed = age.length - usable.length;
    problems.push(`sops block has ${malformed} malformed age entr${malformed === 1 ? 'y' : 'ies'} `
      + '(each needs recipient age1... and enc with an age armored data key)');
  }
  if (!isEncryptedValue(sops.mac)) {
    problems.push('sops block has no MAC (sops.mac must be an ENC[AES256_GCM,...] value); '
      + 're-encrypt the file with sops');
  }
  return problems;
}

/**
 * Checks one parsed file against the Secret it must hold.
 * @param {unknown} doc
 * @param {RequiredSecret} expected
 * @returns {{ secret: string[], keys: Array<{ key: string, problem: string }> }} problems of the
 *   Secret as a whole and problems of single keys
 */
function checkSecretDocument(doc, expected) {
  /** @type {string[]} */
  const secret = [];
  /** @type {Array<{ key: string, problem: string }>} */
  const keys = [];
  if (!isMap(doc)) {
    secret.push('is not a YAML mapping; it must be one Kubernetes Secret');
    return { secret, keys };
  }

  const metadata = isMap(doc.metadata) ? doc.metadata : {};
  const plainOrEncrypted = (
    /** @type {unknown} */ value, /** @type {string} */ field, /** @type {string} */ want,
  ) => {
    if (value === want) return;
    if (isEncryptedValue(value)) {
      secret.push(`${field} is encrypted, so the file was not encrypted with the creation rules of .sops.yaml `
        + '(encrypted_regex ^(data|stringData)$); re-create it with make vergabe-secrets-init');
    } else {
      secret.push(`${field} must be ${JSON.stringify(want)}`);
    }
  };
  plainOrEncrypted(doc.apiVersion, 'apiVersion', 'v1');
  plainOrEncrypted(doc.kind, 'kind', 'Secret');
  plainOrEncrypted(metadata.name, 'metadata.name', expected.name);
  plainOrEncrypted(metadata.namespace, 'metadata.namespace', expected.namespace);
  // The API server defaults a missing type to Opaque.
  plainOrEncrypted(doc.type ?? (expected.type === 'Opaque' ? 'Opaque' : undefined), 'type', expected.type);
  const labels = isMap(metadata.labels) ? metadata.labels : {};
  for (const [label, want] of Object.entries(expected.labels ?? {})) {
    plainOrEncrypted(labels[label], `metadata.labels.${label}`, want);
  }

  /** @type {Set<string>} */
  const present = new Set();
  for (const section of ['data', 'stringData']) {
    const values = doc[section];
    if (values === undefined || values === null) continue;
    if (!isMap(values)) {
      secret.push(`${section} must be a mapping of key to encrypted value`);
      continue;
    }
    for (const [key, value] of Object.entries(values)) {
      present.add(key);
      const match = typeof value === 'string' ? ENC_VALUE.exec(value) : null;
      if (!match) {
        keys.push({ key, problem: `value under ${section} is not encrypted (plain text left in the file); `
          + 'remove it and set it with sops (make vergabe-secrets-edit), which encrypts on save' });
      } else if (match[2] !== 'str') {
        keys.push({ key, problem: `value under ${section} was encrypted as type ${match[2]}; `
          + 'Secret values must be strings: quote it in sops edit' });
      }
    }
  }
  for (const key of expected.keys) {
    if (!present.has(key)) {
      keys.push({
        key, problem: 'is missing (neither under data nor stringData); add it with make vergabe-secrets-edit',
      });
    }
  }

  for (const problem of checkSopsBlock(doc.sops)) secret.push(problem);
  return { secret, keys };
}

/**
 * Checks one file (by path) as the given Secret.
 * @param {string} file absolute path
 * @param {string} shown the path to print
 * @param {RequiredSecret} expected
 * @param {string} env
 * @returns {Finding[]}
 */
function checkFile(file, shown, expected, env) {
  const who = `${shown}: Secret ${expected.namespace}/${expected.name}`;
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = /** @type {NodeJS.ErrnoException} */ (error).code;
    const problem = code === 'ENOENT'
      ? `is missing; run make vergabe-secrets-init ENV=${env}`
      : `cannot be read (${code})`;
    return [{ level: 'error', text: `${who}: ${problem}` }];
  }
  const parsed = parseOneDocument(text);
  if (parsed.problem) return [{ level: 'error', text: `${who}: ${parsed.problem}` }];
  const result = checkSecretDocument(parsed.doc, expected);
  return [
    ...result.secret.map((problem) => ({ level: /** @type {const} */ ('error'), text: `${who}: ${problem}` })),
    ...result.keys.map(({ key, problem }) => ({
      level: /** @type {const} */ ('error'), text: `${who}, key ${key}: ${problem}`,
    })),
  ];
}

/**
 * The age recipients that .sops.yaml gives files matching `relative`, or undefined when no rule
 * matches or the config cannot be read.
 * @param {string} root
 * @param {string} relative
 * @returns {{ recipients?: string[], problem?: string }}
 */
function creationRuleRecipients(root, relative) {
  let config;
  try {
    config = YAML.parse(fs.readFileSync(path.join(root, '.sops.yaml'), 'utf8'));
  } catch {
    return { problem: '.sops.yaml is missing or does not parse; sops needs its creation rules' };
  }
  const rules = isMap(config) && Array.isArray(config.creation_rules) ? config.creation_rules : [];
  const rule = rules.find((r) => isMap(r)
    && (typeof r.path_regex !== 'string' || new RegExp(r.path_regex).test(relative)));
  if (!isMap(rule)) return { problem: `.sops.yaml has no creation rule for ${relative}` };
  /** @type {string[]} */
  const recipients = [];
  /** @param {unknown} age */
  const add = (age) => {
    if (typeof age === 'string') recipients.push(...age.split(',').map((r) => r.trim()).filter(Boolean));
    if (Array.isArray(age)) for (const r of age) if (typeof r === 'string') recipients.push(r.trim());
  };
  add(rule.age);
  if (Array.isArray(rule.key_groups)) for (const group of rule.key_groups) if (isMap(group)) add(group.age);
  return { recipients };
}

/**
 * Warnings about .sops.yaml: the placeholder recipient, and files not encrypted for exactly the
 * recipients it lists (after a recipient was added or removed and `sops updatekeys` not yet run).
 * @param {string} root
 * @param {Array<{ relative: string, file: string }>} files existing encrypted files
 * @returns {Finding[]}
 */
function checkRecipients(root, files) {
  /** @type {Finding[]} */
  const findings = [];
  let placeholderSeen = false;
  for (const { relative, file } of files) {
    const rule = creationRuleRecipients(root, relative);
    if (rule.problem) {
      findings.push({ level: 'warning', text: rule.problem });
      break;
    }
    const wanted = rule.recipients ?? [];
    if (wanted.some((r) => PLACEHOLDER_RECIPIENT.test(r))) {
      if (!placeholderSeen) {
        findings.push({ level: 'warning', text: '.sops.yaml still holds the placeholder recipient; '
          + 'replace it with the age public keys of the operators (see the comment in .sops.yaml)' });
      }
      placeholderSeen = true;
      continue;
    }
    let doc;
    try {
      doc = YAML.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      continue; // reported by the file check
    }
    const age = isMap(doc) && isMap(doc.sops) && Array.isArray(doc.sops.age) ? doc.sops.age : [];
    const have = new Set(age.map((entry) => (isMap(entry) ? entry.recipient : undefined)));
    const missing = wanted.filter((r) => !have.has(r)).length;
    const extra = [...have].filter((r) => typeof r === 'string' && !wanted.includes(r)).length;
    if (missing > 0 || extra > 0) {
      findings.push({
        level: 'warning',
        text: `${relative}: encrypted for other recipients than .sops.yaml lists `
          + `(${missing} missing, ${extra} not listed); run: sops updatekeys ${relative}`,
      });
    }
  }
  return findings;
}

/**
 * Files in secrets/<env>/ that the contract does not know: encrypted files no Secret requires
 * (a warning: the deploy never applies them, so they cannot break it; a misspelt name also shows
 * up as the missing file of the Secret that needs it, which is an error) and anything else
 * (an error: only encrypted files and examples belong there, a decrypted copy must never exist).
 * @param {string} root
 * @param {string} env
 * @param {Set<string>} required relative paths of the required files
 * @returns {Finding[]}
 */
function checkUnknownFiles(root, env, required) {
  const dir = path.join(root, 'secrets', env);
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  /** @type {Finding[]} */
  const findings = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const relative = `secrets/${env}/${entry.name}`;
    if (entry.name.endsWith('.sops.yaml')) {
      if (!required.has(relative)) {
        findings.push({ level: 'warning', text: `${relative}: no Secret of dist/${env}/secrets.yaml `
          + 'needs this file, so the deploy does not apply it; delete it if it is no longer used' });
      }
    } else if (!ALLOWED_OTHER_FILES.test(entry.name)) {
      findings.push({
        level: 'error',
        text: `${relative}: only <name>.sops.yaml (encrypted) and <name>.example.yaml `
          + 'belong in this folder; if it is a decrypted Secret, delete it now '
          + '(decrypted secrets never go on disk)',
      });
    }
  }
  return findings;
}

/**
 * Reads dist/<env>/secrets.yaml.
 * @param {string} root
 * @param {string} env
 * @returns {RequiredSecret[]}
 */
function loadContract(root, env) {
  if (!ENV_NAME.test(env)) {
    throw new UsageError(`--env ${JSON.stringify(env)} is not an environment name `
      + '(lowercase letters, digits, -)');
  }
  if (!fs.existsSync(path.join(root, 'config', `${env}.yaml`))) {
    /** @type {string[]} */
    let known = [];
    try {
      known = fs.readdirSync(path.join(root, 'config'))
        .filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -5));
    } catch {
      // no config folder: the list stays empty
    }
    throw new UsageError(`unknown environment ${env}: there is no config/${env}.yaml `
      + `(known: ${known.join(', ') || 'none'})`);
  }
  const contractFile = `dist/${env}/secrets.yaml`;
  let text;
  try {
    text = fs.readFileSync(path.join(root, contractFile), 'utf8');
  } catch {
    throw new UsageError(`${contractFile} not found: run npm run synth`);
  }
  let contract;
  try {
    contract = YAML.parse(text);
  } catch {
    throw new UsageError(`${contractFile} does not parse: run npm run synth`);
  }
  if (!isMap(contract) || !Array.isArray(contract.secrets)) {
    throw new UsageError(`${contractFile} has no secrets list: run npm run synth`);
  }
  return contract.secrets.map((/** @type {unknown} */ s, /** @type {number} */ i) => {
    if (!isMap(s) || typeof s.name !== 'string' || typeof s.namespace !== 'string' || typeof s.type !== 'string'
      || !Array.isArray(s.keys) || typeof s.source !== 'string') {
      throw new UsageError(`${contractFile}: secrets[${i}] lacks name, namespace, type, keys or source: `
        + 'run npm run synth');
    }
    if (s.source === 'sops' && (typeof s.file !== 'string' || !s.file.startsWith(`secrets/${env}/`)
      || !s.file.endsWith('.sops.yaml'))) {
      throw new UsageError(`${contractFile}: secrets[${i}].file must be secrets/${env}/<name>.sops.yaml: `
        + 'run npm run synth');
    }
    return /** @type {RequiredSecret} */ (s);
  });
}

/** @typedef {{ env: string, root: string, checks: Array<{ file: string, secret: string }> }} Args */

/**
 * @param {string[]} argv
 * @returns {Args}
 */
function parseArgs(argv) {
  /** @type {Record<string, string>} */
  const options = {};
  /** @type {string[]} */
  const files = [];
  /** @type {string[]} */
  const secrets = [];
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    if (!['--env', '--root', '--check-file', '--secret'].includes(flag)) {
      throw new UsageError(`unknown argument ${flag}`);
    }
    if (i + 1 >= argv.length) throw new UsageError(`${flag} needs a value`);
    if (flag === '--check-file') files.push(argv[i + 1]);
    else if (flag === '--secret') secrets.push(argv[i + 1]);
    else options[flag.slice(2)] = argv[i + 1];
  }
  if (!options.env) throw new UsageError('--env is required');
  if (files.length !== secrets.length) throw new UsageError('each --check-file needs its --secret');
  const root = path.resolve(options.root ?? path.join(__dirname, '..'));
  const checks = files.map((file, i) => ({ file: path.resolve(file), secret: secrets[i] }));
  return { env: options.env, root, checks };
}

/**
 * @param {Args} args
 * @returns {{ findings: Finding[], checked: number }}
 */
function run(args) {
  const contract = loadContract(args.root, args.env).filter((s) => s.source === 'sops');
  if (args.checks.length > 0) {
    return {
      findings: args.checks.flatMap(({ file, secret }) => {
        const expected = contract.find((s) => s.name === secret);
        if (!expected) {
          throw new UsageError(`Secret ${secret} is not a sops Secret of dist/${args.env}/secrets.yaml`);
        }
        return checkFile(file, path.relative(args.root, file) || file, expected, args.env);
      }),
      checked: args.checks.length,
    };
  }

  /** @type {Finding[]} */
  const findings = [];
  /** @type {Array<{ relative: string, file: string }>} */
  const existing = [];
  for (const expected of contract) {
    const relative = /** @type {string} */ (expected.file);
    const file = path.join(args.root, relative);
    findings.push(...checkFile(file, relative, expected, args.env));
    if (fs.existsSync(file)) existing.push({ relative, file });
  }
  findings.push(...checkRecipients(args.root, existing));
  const required = new Set(contract.map((s) => /** @type {string} */ (s.file)));
  findings.push(...checkUnknownFiles(args.root, args.env, required));
  return { findings, checked: contract.length };
}

/**
 * The command line: what `node scripts/secret-contract.js <argv>` prints and its exit code.
 * @param {string[]} argv the arguments after the script's name
 * @returns {{ status: 0 | 1 | 2, stdout: string, stderr: string }}
 */
function cli(argv) {
  let args;
  let result;
  try {
    args = parseArgs(argv);
    result = run(args);
  } catch (error) {
    if (error instanceof UsageError) {
      return {
        status: 2,
        stdout: '',
        stderr: `secret-contract: ${error.message}\n`
          + 'usage: node scripts/secret-contract.js --env <env> [--root <repo dir>] '
          + '[--check-file <path> --secret <name>]...\n',
      };
    }
    throw error;
  }
  const errors = result.findings.filter((f) => f.level === 'error');
  const warnings = result.findings.filter((f) => f.level === 'warning');
  let stderr = warnings.map((finding) => `secret-contract: warning: ${finding.text}\n`).join('')
    + errors.map((finding) => `secret-contract: ${finding.text}\n`).join('');
  if (errors.length > 0) {
    stderr += `secret-contract: ${args.env}: ${errors.length} problem${errors.length === 1 ? '' : 's'} `
      + '(checked without decrypting; no value is shown)\n';
    return { status: 1, stdout: '', stderr };
  }
  const what = args.checks.length > 0
    ? args.checks.map(({ file, secret }) => `${path.relative(args.root, file)} as Secret ${secret}`).join(', ')
    : `${result.checked} Secret${result.checked === 1 ? '' : 's'} from SOPS in secrets/${args.env}/`;
  const stdout = `secret contract of ${args.env} ok: ${what}`
    + `${warnings.length ? ` (${warnings.length} warning${warnings.length === 1 ? '' : 's'})` : ''}\n`;
  return { status: 0, stdout, stderr };
}

function main() {
  const { status, stdout, stderr } = cli(process.argv.slice(2));
  process.stderr.write(stderr);
  process.stdout.write(stdout);
  process.exitCode = status;
}

if (require.main === module) main();

module.exports = { isEncryptedValue, checkSopsBlock, checkSecretDocument, parseOneDocument, cli };
