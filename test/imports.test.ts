/*
 * imports/ is generated: the committed TypeScript must be exactly what `cdk8s import` makes from
 * the vendored CRDs listed in cdk8s.yaml, and the CRDs must be the upstream files the README names.
 */
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

const ROOT = join(__dirname, '..');

/**
 * `cdk8s import --output imports` (npm run import) without the command line around it: the CLI's
 * import command reads the specs and the language from cdk8s.yaml in the working folder and hands
 * them to the same dispatch, as here. The command line itself (argument parsing, every other
 * command and the code generators of other languages) costs over a second of start-up and adds
 * nothing to what is generated.
 */
const IMPORT = `
  const path = require('path');
  const cli = path.dirname(require.resolve('cdk8s-cli/package.json'));
  const { readConfigSync } = require(path.join(cli, 'lib', 'config.js'));
  const { parseImports } = require(path.join(cli, 'lib', 'util.js'));
  const { importDispatch } = require(path.join(cli, 'lib', 'import', 'dispatch.js'));
  const config = readConfigSync();
  importDispatch(config.imports.map(parseImports), {},
    { outdir: 'imports', targetLanguage: config.language, save: false })
    .catch((error) => { console.error(error); process.exitCode = 1; });
`;

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
    const result = spawnSync(process.execPath, ['-e', IMPORT], { cwd: copy, encoding: 'utf8' });
    expect(result.stderr).not.toMatch(/error/i);
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
