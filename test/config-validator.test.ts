/*
 * lib/config-validator.js is generated from lib/config-schema.ts (ajv standalone code): it must
 * match the schema, and a synth with a stale one must refuse to run rather than validate against
 * an old schema.
 */
import { spawnSync } from 'child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

const ROOT = join(__dirname, '..');

/**
 * Copies the repository's bundle of the packages (with its input stamps and V8 code cache) into
 * the copy's .cache/synth/, so its synth bundles only main.ts again. The synth there checks the
 * stamps itself and bundles the packages again when they do not match.
 */
function copyPackagesBundle(copy: string): void {
  const from = join(ROOT, '.cache', 'synth');
  for (const file of ['vendor.inputs.json', 'vendor.js', 'vendor.js.v8']) {
    if (existsSync(join(from, file))) cpSync(join(from, file), join(copy, '.cache', 'synth', file));
  }
}

test('the committed validator is what npm run validator generates from the schema', () => {
  const result = spawnSync(process.execPath, ['scripts/validator.js', '--check'],
    { cwd: ROOT, encoding: 'utf8' });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
});

test('synth refuses a validator generated from another schema, and writes nothing', () => {
  const copy = mkdtempSync(join(tmpdir(), 'vergabe-validator-'));
  try {
    for (const entry of ['main.ts', 'lib', 'imports', 'scripts', 'config', 'package.json', 'tsconfig.json']) {
      cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
    }
    copyPackagesBundle(copy);
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
    const schemaFile = join(copy, 'lib', 'config-schema.ts');
    writeFileSync(schemaFile,
      readFileSync(schemaFile, 'utf8').replace("default: '/healthz'", "default: '/health'"));

    const result = spawnSync(process.execPath, ['scripts/synth.js'], { cwd: copy, encoding: 'utf8' });

    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^config: lib\/config-validator\.js was made from another schema: run npm run validator$/m);
    expect(result.stdout).toBe('');
    expect(existsSync(join(copy, 'dist'))).toBe(false);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});
