/*
 * lib/config-validator.js is generated from lib/config-schema.ts (ajv standalone code): it must
 * match the schema, and a synth with a stale one must refuse to run rather than validate against
 * an old schema.
 */
import { spawnSync } from 'child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { ROOT } from './helpers';

test('the committed validator is what npm run validator generates from the schema', () => {
  const result = spawnSync(process.execPath, ['scripts/validator.js', '--check'],
    { cwd: ROOT, encoding: 'utf8' });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
});

test('synth refuses a validator generated from another schema, and writes nothing', () => {
  const copy = mkdtempSync(join(tmpdir(), 'vergabe-validator-'));
  try {
    for (const entry of ['main.ts', 'lib', 'imports', 'scripts', 'config', 'package.json']) {
      cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
    }
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
    const schemaFile = join(copy, 'lib', 'config-schema.ts');
    writeFileSync(schemaFile,
      readFileSync(schemaFile, 'utf8').replace("default: '/healthz'", "default: '/health'"));

    const result = spawnSync(process.execPath, ['scripts/synth.js'], { cwd: copy, encoding: 'utf8' });

    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^config: lib\/config-validator\.js was made from another schema: run npm run validator$/m);
    expect(result.stdout).toBe('');
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});
