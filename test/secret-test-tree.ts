/*
 * A throw-away repository tree for the tests of the secret scripts: config/, dist/<env>/ copied
 * from the repository, a .sops.yaml with real-looking recipients, an empty secrets/<env>/.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { parse, stringify } from 'yaml';

export const ROOT = join(__dirname, '..');

/** The three age recipients of the vendored sops fixtures (public keys, no secret). */
export const FIXTURE_RECIPIENTS = (parse(readFileSync(join(ROOT, 'test/fixtures/sops/secret.enc.yaml'), 'utf8'))
  .sops.age as Array<{ recipient: string }>).map((entry) => entry.recipient);

/** The repository's .sops.yaml with its placeholder replaced by `recipients`. */
export function sopsConfig(recipients: readonly string[]): string {
  const config = readFileSync(join(ROOT, '.sops.yaml'), 'utf8');
  const placeholder = /^( +)- age1replace\S*$/m;
  const indent = placeholder.exec(config)?.[1];
  if (indent === undefined) throw new Error('.sops.yaml has no placeholder recipient line to replace');
  return config.replace(placeholder, recipients.map((r) => `${indent}- ${r}`).join('\n'));
}

/** A temp tree for `env`; `contract` edits the parsed dist/<env>/secrets.yaml, `plan` the plan text. */
export function makeTree(options: {
  env?: string;
  sopsYaml?: string;
  contract?: (contract: any) => void;
  plan?: (plan: string) => string;
} = {}): string {
  const env = options.env ?? 'production';
  const root = mkdtempSync(join(tmpdir(), 'vergabe-secrets-'));
  mkdirSync(join(root, 'config'));
  mkdirSync(join(root, 'dist', env), { recursive: true });
  mkdirSync(join(root, 'secrets', env), { recursive: true });
  copyFileSync(join(ROOT, 'config', `${env}.yaml`), join(root, 'config', `${env}.yaml`));
  const contract = parse(readFileSync(join(ROOT, 'dist', env, 'secrets.yaml'), 'utf8'));
  options.contract?.(contract);
  writeFileSync(join(root, 'dist', env, 'secrets.yaml'), stringify(contract));
  const plan = readFileSync(join(ROOT, 'dist', env, 'plan.tsv'), 'utf8');
  writeFileSync(join(root, 'dist', env, 'plan.tsv'), options.plan ? options.plan(plan) : plan);
  writeFileSync(join(root, '.sops.yaml'), options.sopsYaml ?? sopsConfig(FIXTURE_RECIPIENTS));
  return root;
}

/** Every file under `dir` (recursively) with its content. */
export function allFiles(dir: string): Array<{ path: string; content: string }> {
  const out: Array<{ path: string; content: string }> = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...allFiles(path));
    else out.push({ path, content: readFileSync(path, 'latin1') });
  }
  return out;
}

/**
 * Fails when `text` contains `value` or any piece of it `piece` characters long: a message may
 * name a key, never show (part of) a value.
 */
export function expectNoFragment(text: string, value: string, piece = 6): void {
  for (let i = 0; i + piece <= value.length; i++) {
    const fragment = value.slice(i, i + piece);
    if (text.includes(fragment)) {
      throw new Error(`output shows a fragment of a secret value (${piece} characters at offset ${i})`);
    }
  }
}
