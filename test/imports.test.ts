/*
 * imports/ is generated: the committed TypeScript must be exactly what `cdk8s import` makes from
 * the vendored CRDs listed in cdk8s.yaml, and the CRDs must be the upstream files the README names.
 */
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { ROOT } from './helpers';

test('the vendored CRDs are byte-identical to the upstream files listed in their README', () => {
  const dir = join(ROOT, 'imports', 'crds');
  const readme = readFileSync(join(dir, 'README.md'), 'utf8');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  expect(files.length).toBeGreaterThan(0);
  for (const file of files) {
    const sha = createHash('sha256').update(readFileSync(join(dir, file))).digest('hex');
    expect(readme).toContain(`${sha}  ${file}`);
  }
});

test('imports/*.ts is what cdk8s import generates from cdk8s.yaml', () => {
  const copy = mkdtempSync(join(tmpdir(), 'vergabe-import-'));
  try {
    cpSync(join(ROOT, 'cdk8s.yaml'), join(copy, 'cdk8s.yaml'));
    cpSync(join(ROOT, 'imports', 'crds'), join(copy, 'imports', 'crds'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
    const cli = join(ROOT, 'node_modules', 'cdk8s-cli', 'bin', 'cdk8s');
    // Without the CLI's check for a newer version of itself: a request to the npm registry.
    const args = [cli, 'import', '--output', 'imports', '--no-check-upgrade'];
    const result = spawnSync(process.execPath, args, { cwd: copy, encoding: 'utf8' });
    expect(result.status).toBe(0);
    const generated = readdirSync(join(copy, 'imports')).filter((f) => f.endsWith('.ts')).sort();
    const committed = readdirSync(join(ROOT, 'imports')).filter((f) => f.endsWith('.ts')).sort();
    expect(generated).toEqual(committed);
    for (const file of committed) {
      expect(readFileSync(join(copy, 'imports', file), 'utf8'))
        .toBe(readFileSync(join(ROOT, 'imports', file), 'utf8'));
    }
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}, 30000);
