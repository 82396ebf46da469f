import { spawnSync } from 'child_process';
import {
  cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync,
} from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { parse, parseAllDocuments } from 'yaml';
import { environmentSchema } from '../lib/config-schema';
import { OutputFile } from '../lib/phases';
import { generate, OBJECTS_DOC, readDist, staleFiles, TOPOLOGY_DOC } from '../scripts/docs';
import { configData, productionWith, ROOT, synth } from './helpers';
import { kubernetes } from './k8s-schemas';
import { copyKeptBundles } from './project-copy';

/*
 * The operator's documentation: the generated docs match dist/ and are drawn from its objects,
 * every command the Markdown names exists, and the runbook covers every object kind, every
 * Secret and the image contract as configured.
 */

const RUNBOOK = 'docs/vergabe-teilnahme.md';
const DIST = join(ROOT, 'dist');
const environments = readdirSync(DIST, { withFileTypes: true })
  .filter((e) => e.isDirectory()).map((e) => e.name).sort();
/** The order of the environments in the generated docs: production first. */
const docOrder = ['production', ...environments.filter((e) => e !== 'production')];

interface Manifest { kind: string; metadata: { name: string; namespace?: string }; spec?: any; data?: any }

const distObjectsOf = new Map<string, Manifest[]>();

/** The objects of the phase files of dist/<env>/ (read once; not to be changed). */
function distObjects(env: string): Manifest[] {
  let objects = distObjectsOf.get(env);
  if (!objects) {
    objects = readdirSync(join(DIST, env))
      .filter((f) => /^[0-9]{2}-[a-z-]+\.yaml$/.test(f))
      .flatMap((f) => parseAllDocuments(readFileSync(join(DIST, env, f), 'utf8')).map((d) => d.toJS()));
    distObjectsOf.set(env, objects);
  }
  return objects;
}

interface RequiredSecret { name: string; namespace: string; keys: string[]; source: string; file?: string }

/** The Secrets of dist/<env>/secrets.yaml. */
function distSecrets(env: string): RequiredSecret[] {
  return parse(readFileSync(join(DIST, env, 'secrets.yaml'), 'utf8')).secrets;
}

/** An object's name as the docs show it: a Job's spec hash, new with every release, as `<hash>`. */
function shownName(o: Manifest): string {
  return o.kind === 'Job' ? o.metadata.name.replace(/-[0-9a-f]{8}$/, '-<hash>') : o.metadata.name;
}

/** Synth output in memory, grouped as the generator reads dist/. */
function asDist(files: OutputFile[]): Array<{ name: string; files: Map<string, string> }> {
  const byEnv = new Map<string, Map<string, string>>();
  for (const file of files) {
    const [env, ...rest] = file.path.split('/');
    byEnv.set(env, (byEnv.get(env) ?? new Map()).set(rest.join('/'), file.content));
  }
  return [...byEnv].map(([name, files]) => ({ name, files }));
}

/** The docs generated for production with one change to its configuration. */
function docsWith(change: (config: any) => void): { objects: string; topology: string } {
  const [objects, topology] = generate(asDist(synth(['production', productionWith(change)])));
  return { objects: objects.content, topology: topology.content };
}

let production: OutputFile[] | undefined;

/** The synth output of production as configured, made once (not to be changed). */
function productionOutput(): OutputFile[] {
  production ??= synth(['production', configData('production')]);
  return production;
}

let managedRole: { objects: string; topology: string } | undefined;

/** The docs of production when the platform team manages the role, made once. */
function clusterManagedRoleDocs(): { objects: string; topology: string } {
  managedRole ??= docsWith((c) => { c.database.roleMode = 'ClusterManagedRole'; });
  return managedRole;
}

/** The Mermaid blocks of a Markdown text. */
function mermaidBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1]);
}

/** The `## <env>` section of a generated doc. */
function envSection(markdown: string, env: string): string {
  const found = markdown.split(/^## /m).find((s) => s.startsWith(`${env}\n`));
  if (found === undefined) throw new Error(`no section "## ${env}"`);
  return found;
}

/** A RegExp matching `text` literally. */
function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

describe('generated docs are up to date with dist/', () => {
  const generated = generate(readDist(DIST));

  test.each(generated.map((f) => [f.path, f.content]))('%s', (path, content) => {
    const committed = existsSync(join(ROOT, path)) ? readFileSync(join(ROOT, path), 'utf8') : '(missing)';
    if (committed !== content) throw new Error(`${path} is stale (dist/ gives another text): run npm run docs`);
  });

  test('the generator is deterministic', () => {
    expect(generate(readDist(DIST))).toEqual(generated);
  });

  test('an image bump (tag, digest) leaves the docs as they are', () => {
    const before = generate(asDist(productionOutput()));
    const after = generate(asDist(synth(['production', productionWith((c) => {
      c.image.tag = 'abcdef1234567';
      c.image.digest = `sha256:${'b'.repeat(64)}`;
    })])));
    expect(after).toEqual(before);
  });

  test('node scripts/docs.js --check exits 1 and names the stale file, 0 when all are current', () => {
    const root = mkdtempSync(join(tmpdir(), 'docs-check-'));
    try {
      mkdirSync(join(root, 'scripts'));
      const files = ['scripts/docs.js', 'scripts/ts-module.js', 'scripts/stamps.js', 'package.json', 'tsconfig.json'];
      for (const file of files) cpSync(join(ROOT, file), join(root, file));
      symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
      copyKeptBundles(root, ['packages']);
      cpSync(DIST, join(root, 'dist'), { recursive: true });
      const docsScript = join(root, 'scripts', 'docs.js');
      // A run this short spends more on V8's optimizing compiler than that saves: the baseline will do.
      const run = (...args: string[]) => spawnSync(process.execPath, ['--max-opt=1', docsScript, ...args], {
        encoding: 'utf8',
      });
      const topology = join(root, TOPOLOGY_DOC);
      const current = (path: string) => generated.find((f) => f.path === path)!.content;

      // objects.md missing, topology.md current: only the missing one is named.
      mkdirSync(dirname(topology));
      writeFileSync(topology, current(TOPOLOGY_DOC));
      const missing = run('--check');
      expect(missing.status).toBe(1);
      expect(missing.stderr).toContain(`${OBJECTS_DOC} is stale: run \`npm run docs\``);
      expect(missing.stderr).not.toContain(`${TOPOLOGY_DOC} is stale`);

      expect(run().status).toBe(0);
      for (const f of generated) expect(readFileSync(join(root, f.path), 'utf8')).toBe(f.content);
      expect(run('--check').status).toBe(0);

      // A doc edited by hand is stale as well (--check names what staleFiles finds, as above).
      writeFileSync(topology, `${current(TOPOLOGY_DOC)}\nedited by hand\n`);
      expect(staleFiles(root, generated)).toEqual([TOPOLOGY_DOC]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('a dist/ whose plan and phase files disagree is refused with the file named', () => {
    const [env] = asDist(productionOutput());
    const app = env.files.get('60-app.yaml')!;
    env.files.set('60-app.yaml', app.replace(/^ {2}name: vergabe-teilnahme$/m, '  name: renamed'));
    expect(() => generate([env]))
      .toThrow(/dist\/production\/plan.tsv names deployment.apps vergabe-teilnahme .*npm run synth/);
  });
});

describe('docs/objects.md lists every object and Secret of dist/', () => {
  const objectsDoc = readFileSync(join(ROOT, OBJECTS_DOC), 'utf8');

  test.each(environments)('%s: every object, with its kind, name and namespace', (env) => {
    const section = envSection(objectsDoc, env);
    for (const o of distObjects(env)) {
      const ns = o.metadata.namespace ? `\`${o.metadata.namespace}\`` : '(cluster)';
      expect(section).toContain(`| ${o.kind} | \`${shownName(o)}\` | ${ns} |`);
    }
  });

  test.each(environments)('%s: every required Secret with its keys and source, never a value', (env) => {
    const section = envSection(objectsDoc, env);
    for (const s of distSecrets(env)) {
      const row = section.split('\n').find((l) => l.startsWith(`| \`${s.namespace}\` | \`${s.name}\` |`));
      expect(row).toBeDefined();
      for (const key of s.keys) expect(row).toContain(`\`${key}\``);
      expect(row).toContain(s.source === 'sops' ? `SOPS: \`${s.file}\`` : s.source);
    }
    expect(objectsDoc).not.toMatch(/EXAMPLE-not-a-real|ENC\[AES256_GCM/);
  });

  test('a fragment for the platform team is listed as never applied', () => {
    const { objects } = clusterManagedRoleDocs();
    expect(objects).toContain('### Files for others (never applied by the deploy)');
    expect(objects).toContain('`dist/production/platform-team/apps-pg-managed-role.yaml`: For the platform team');
    expect(objects).not.toContain('| DatabaseRole |');
  });
});

describe('docs/topology.md is drawn from the objects', () => {
  const topologyDoc = readFileSync(join(ROOT, TOPOLOGY_DOC), 'utf8');
  const blocks = mermaidBlocks(topologyDoc);

  test('one Mermaid flowchart per environment, production first', () => {
    expect([...topologyDoc.matchAll(/^## (\S+)$/gm)].map((m) => m[1])).toEqual(docOrder);
    expect(blocks).toHaveLength(environments.length);
    for (const block of blocks) expect(block.startsWith('flowchart ')).toBe(true);
  });

  test('every edge joins declared nodes or subgraphs, and every subgraph is closed', () => {
    for (const block of blocks) {
      const lines = block.split('\n').map((l) => l.trim()).filter(Boolean);
      const declared = new Set(lines.flatMap((l) => /^(?:subgraph )?([A-Za-z0-9_]+)[[({]/.exec(l)?.[1] ?? []));
      expect(lines.filter((l) => l.startsWith('subgraph ')).length)
        .toBe(lines.filter((l) => l === 'end').length);
      const edges = lines.filter((l) => /^[A-Za-z0-9_]+ (-->|-\.->)/.test(l));
      expect(edges.length).toBeGreaterThan(10);
      for (const edge of edges) {
        const words = edge.split(' ');
        const [from, to] = [words[0], words[words.length - 1]];
        expect({ edge, from: declared.has(from), to: declared.has(to) })
          .toEqual({ edge, from: true, to: true });
      }
    }
  });

  test.each(environments)('%s: every object and Secret of dist/ appears', (env) => {
    const block = blocks[docOrder.indexOf(env)];
    for (const o of distObjects(env)) {
      expect(block).toContain(`${o.kind} ${shownName(o).replace('<', '#lt;').replace('>', '#gt;')}`);
    }
    for (const s of distSecrets(env)) expect(block).toContain(`Secret ${s.name}`);
  });

  test('the request path follows the objects: Internet, controller, Middlewares, Ingress, Service, Deployment', () => {
    const block = blocks[0];
    const idOf = (text: string) =>
      new RegExp(`^\\s*([A-Za-z0-9_]+)[[({/]+"${literal(text)}`, 'm').exec(block)?.[1];
    const chain = [
      'Internet', 'Ingress controller, class traefik', 'Middleware vergabe-teilnahme-redirect-https',
      'Middleware vergabe-teilnahme-security-headers', 'Ingress vergabe-teilnahme', 'Service vergabe-teilnahme',
      'Deployment vergabe-teilnahme',
    ].map(idOf);
    chain.forEach((node, i) => {
      expect(node).toBeDefined();
      if (i > 0) expect(block).toMatch(new RegExp(`^\\s*${chain[i - 1]} -->(\\|[^|]*\\|)? ${node}$`, 'm'));
    });
  });

  test('names come from the objects, not from the code of the generator', () => {
    const { topology, objects } = docsWith((c) => {
      c.app.name = 'tender-app';
      c.app.namespace = 'tender';
      c.app.host = 'tender.example.org';
      c.ingress.clusterIssuer = 'other-issuer';
      c.ingress.tlsSecretName = 'tender-tls';
      c.database.cluster = 'shared-pg';
      c.database.role = 'tender';
      c.database.name = 'tender_db';
      c.database.resourceName = 'tender-db';
      c.database.credentialsSecret = 'tender-db-credentials';
      c.image.repository = 'registry.example.org/team/tender';
    });
    const expected = ['Deployment tender-app', 'Namespace tender', 'https://tender.example.org/',
      'ClusterIssuer other-issuer', 'CloudNativePG Cluster shared-pg', 'shared-pg-rw.databases.svc:5432',
      'as tender', 'Database tender-db', 'Secret tender-tls'];
    expect(expected.filter((text) => !topology.includes(text))).toEqual([]);
    expect(mermaidBlocks(topology).join('\n')).not.toContain('vergabe');
    expect(objects).not.toContain('vergabe-teilnahme-app');
  });

  test('ClusterManagedRole mode draws the role from the platform team\'s fragment', () => {
    const { topology } = clusterManagedRoleDocs();
    expect(topology).not.toContain('DatabaseRole');
    expect(topology).toContain('role vergabe<br/>in spec.managed.roles of apps-pg, '
      + 'from dist/production/platform-team/apps-pg-managed-role.yaml');
  });

  test('a media volume, a pull Secret and extra egress appear when configured', () => {
    const { topology } = docsWith((c) => {
      c.app.media = { enabled: true };
      c.image.pullSecret = 'vergabe-teilnahme-registry';
      c.app.extraEgress = [{ cidr: '203.0.113.10/32', ports: [587] }];
    });
    expect(topology).toContain('PersistentVolumeClaim vergabe-teilnahme-media');
    expect(topology).toContain('"mounted at /app/media"');
    expect(topology).toContain('Secret vergabe-teilnahme-registry');
    expect(topology).toContain('"image pull"');
    expect(topology).toContain('203.0.113.10/32');
    expect(topology).toContain('"allowed out: TCP 587"');
  });
});

/* ------------------------------------------------------------------------------------------ */
/* Every command the docs name exists                                                          */
/* ------------------------------------------------------------------------------------------ */

/** The Markdown files whose commands must exist. */
function markdownFiles(): string[] {
  const docs = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort();
  return ['README.md', ...docs.map((f) => `docs/${f}`)];
}

/** The code of a Markdown text: fenced blocks and inline code spans (prose may say "make sure"). */
function codeOf(markdown: string): string[] {
  const fence = /^```[^\n]*\n([\s\S]*?)^```/gm;
  const fenced = [...markdown.matchAll(fence)].map((m) => m[1]);
  const inline = [...markdown.replace(fence, '').matchAll(/`([^`\n]+)`/g)].map((m) => m[1]);
  return [...fenced, ...inline];
}

interface Command {
  readonly tool: 'make' | 'npm';
  /** The make target or npm script. */
  readonly name: string;
  /** The command as written. */
  readonly text: string;
  /** The VAR=value names given to make. */
  readonly variables: string[];
}

/** The make targets, with their variables, of one `make ...` command's words. */
function makeCommand(words: string[]): { targets: string[]; variables: string[] } {
  const targets: string[] = [];
  const variables: string[] = [];
  for (let i = 0; i < words.length; i += 1) {
    const word = words[i];
    if (/^-[CfIo]$/.test(word)) i += 1; // an option with an argument: -C <dir>
    else if (word.startsWith('-')) continue;
    else if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(word)) variables.push(word.split('=')[0]);
    else if (/^[a-z][a-z0-9-]*$/.test(word)) targets.push(word);
    else break; // a redirection or the like ends the command
  }
  return { targets: targets.length > 0 ? targets : ['(the default goal)'], variables };
}

/** Every `make [options] [VAR=value ...] target ...` and `npm run <script>` / `npm test` in the code. */
function commandsIn(markdown: string): Command[] {
  const commands: Command[] = [];
  for (const line of codeOf(markdown).flatMap((code) => code.split('\n'))) {
    for (const m of line.matchAll(/(?:^|[\s;&|(`$])make((?:\s+[^\s;&|#`)]+)*)/g)) {
      const { targets, variables } = makeCommand(m[1].trim().split(/\s+/).filter(Boolean));
      for (const name of targets) commands.push({ tool: 'make', name, text: `make${m[1]}`.trim(), variables });
    }
    const npm = /\bnpm\s+(?:run(?:-script)?\s+(?:--?[a-z-]+\s+)*([a-z][\w:.-]*)|(test|start|stop|restart)\b)/g;
    for (const m of line.matchAll(npm)) {
      commands.push({ tool: 'npm', name: m[1] ?? m[2], text: m[0], variables: [] });
    }
  }
  return commands;
}

/** The explicit targets of a Makefile and of the files it includes by a literal path. */
function makeTargets(makefile: string, read = (p: string) => readFileSync(join(ROOT, p), 'utf8')): Set<string> {
  const targets = new Set<string>();
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    for (const line of read(path).replace(/\\\n/g, ' ').split('\n')) {
      const include = /^-?include\s+(.+)$/.exec(line);
      if (include) {
        const files = include[1].trim().split(/\s+/);
        files.filter((f) => !f.includes('$') && existsSync(join(ROOT, f))).forEach(visit);
        continue;
      }
      // A rule starts in the first column: `a b: prerequisites` (not `x := value`, not `.PHONY:`).
      const rule = /^([A-Za-z0-9][^:=#\t]*?)\s*::?(?!=)/.exec(line);
      if (rule) rule[1].trim().split(/\s+/).forEach((target) => targets.add(target));
    }
  };
  visit(makefile);
  return targets;
}

/** One line per command whose make target or npm script does not exist. */
function missingCommands(
  file: string, markdown: string, targets: Set<string>, scripts: Record<string, string>,
): string[] {
  return commandsIn(markdown).flatMap((c) => {
    if (c.tool === 'npm') {
      // `npm run env` is npm's own: it lists the environment scripts run with.
      if (c.name in scripts || c.name === 'env') return [];
      return [`${file}: \`${c.text}\`: no npm script ${c.name} in package.json`];
    }
    if (targets.has(c.name) || c.name === '(the default goal)') return [];
    return [`${file}: \`${c.text}\`: no make target ${c.name} in the Makefile`];
  });
}

describe('every command in the Markdown docs exists', () => {
  const targets = makeTargets('Makefile');
  const scripts: Record<string, string> = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts;
  const files = markdownFiles();

  test('the extraction finds make targets, variables and npm scripts, and flags unknown ones', () => {
    const sample = [
      'Run `make vergabe-deploy ENV=staging BACKUP=1` or `make -C ../deploy vergabe-status`.',
      '```bash', 'make vergabe-nonexistent && npm run docs', 'npm test; npm run no-such-script', '```',
      'Prose may say make sure, and npm run away, outside code.',
    ].join('\n');
    expect(commandsIn(sample).map((c) => `${c.tool} ${c.name} [${c.variables.join(' ')}]`)).toEqual([
      'make vergabe-nonexistent []', 'npm docs []', 'npm test []', 'npm no-such-script []',
      'make vergabe-deploy [ENV BACKUP]', 'make vergabe-status []',
    ]);
    const known = new Set(['vergabe-deploy', 'vergabe-status']);
    expect(missingCommands('sample.md', sample, known, { docs: '', test: '' })).toEqual([
      'sample.md: `make vergabe-nonexistent`: no make target vergabe-nonexistent in the Makefile',
      'sample.md: `npm run no-such-script`: no npm script no-such-script in package.json',
    ]);
  });

  test('the Makefile parser finds rules, not variables, recipes or special targets', () => {
    const makefile = 'ENV ?= production\nX := 1\n.PHONY: a b\na: ## first\n\techo b: c\nb c: a\n';
    expect([...makeTargets('M', () => makefile)].sort()).toEqual(['a', 'b', 'c']);
  });

  test('the docs name commands at all (README, runbook)', () => {
    const names = (file: string) => commandsIn(readFileSync(join(ROOT, file), 'utf8'))
      .map((c) => `${c.tool} ${c.name}`);
    expect(names('README.md')).toEqual(expect.arrayContaining(['npm test', 'npm synth', 'make help']));
    expect(names(RUNBOOK))
      .toEqual(expect.arrayContaining(['make vergabe-deploy', 'make vergabe-status', 'make vergabe-rollback']));
  });

  test.each(files)('%s: every make target and npm script exists', (file) => {
    expect(missingCommands(file, readFileSync(join(ROOT, file), 'utf8'), targets, scripts)).toEqual([]);
  });

  test.each(files)('%s: every VAR=value given to make is read by the Makefile or a script', (file) => {
    const scriptFiles = readdirSync(join(ROOT, 'scripts')).map((f) => join(ROOT, 'scripts', f));
    const sources = [join(ROOT, 'Makefile'), ...scriptFiles].map((f) => readFileSync(f, 'utf8')).join('\n');
    const unread = commandsIn(readFileSync(join(ROOT, file), 'utf8')).flatMap((c) => c.variables
      .filter((v) => !new RegExp(`\\b${v}\\b`).test(sources))
      .map((v) => `${file}: \`${c.text}\`: ${v} is read nowhere`));
    expect([...new Set(unread)]).toEqual([]);
  });

  test('the runbook names every vergabe-* target of the Makefile', () => {
    const runbook = readFileSync(join(ROOT, RUNBOOK), 'utf8');
    const named = new Set(commandsIn(runbook).map((c) => c.name));
    expect([...targets].filter((t) => t.startsWith('vergabe-') && !named.has(t))).toEqual([]);
  });

  test('README.md gives the two commands of a fresh clone: set up and synth, then test', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('npm ci && npm run synth');
    expect(readme).toMatch(/^npm test$/m);
  });
});

/* ------------------------------------------------------------------------------------------ */
/* The runbook covers what is deployed                                                         */
/* ------------------------------------------------------------------------------------------ */

/** A Markdown section: its heading (matched by `title`) up to the next heading of its level or above. */
function section(markdown: string, title: RegExp): string {
  const lines = markdown.split('\n');
  const level = (line: string) => /^(#{1,6}) /.exec(line)?.[1].length;
  const start = lines.findIndex((l) => level(l) !== undefined && title.test(l));
  if (start < 0) throw new Error(`${RUNBOOK} has no section whose heading matches ${title}`);
  const end = lines.findIndex((l, i) => i > start && (level(l) ?? 7) <= level(lines[start])!);
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

/** The anchors GitHub makes for the headings of a Markdown file. */
function anchors(file: string): Set<string> {
  return new Set(readFileSync(join(ROOT, file), 'utf8').split('\n')
    .filter((l) => /^#{1,6} /.test(l))
    .map((l) => l.replace(/^#+ /, '').toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')));
}

describe('the runbook covers what is deployed', () => {
  const runbook = readFileSync(join(ROOT, RUNBOOK), 'utf8');

  test.each(environments)('%s: it names every object kind in dist/', (env) => {
    const kinds = [...new Set(distObjects(env).map((o) => o.kind))];
    expect(kinds.length).toBeGreaterThan(5);
    expect(kinds.filter((k) => !new RegExp(`\\b${k}\\b`).test(runbook))).toEqual([]);
  });

  test.each(environments)('%s: it names every Secret of secrets.yaml', (env) => {
    expect(distSecrets(env).map((s) => s.name).filter((n) => !runbook.includes(`\`${n}\``))).toEqual([]);
  });

  test('it links the generated table and picture', () => {
    expect(runbook).toContain('(objects.md)');
    expect(runbook).toContain('(topology.md)');
  });

  test('its image contract states the values of config/production.yaml and the schema defaults', () => {
    const contract = section(runbook, /image contract/i);
    const defaults = environmentSchema.properties.image.properties;
    const configured = configData('production');
    const value = (key: keyof typeof defaults): unknown =>
      configured.image[key] ?? (defaults[key] as unknown as { default?: unknown }).default;
    const settingsModule = configured.app.settingsModule
      ?? environmentSchema.properties.app.properties.settingsModule.default;

    const expected = [
      `UID ${value('user')}`, `GID ${value('group')}`, `port ${value('port')}`, `\`${value('healthPath')}\``,
      `\`${(value('command') as string[]).join(' ')}\``, `\`${value('python')}\``, `\`${value('managePy')}\``,
      `\`${settingsModule}\``, `\`${configured.image.repository}\``,
    ];
    expect(expected.filter((text) => !contract.includes(text))).toEqual([]);
  });

  test('its image contract names every environment variable the app and the Job receive', () => {
    const contract = section(runbook, /image contract/i);
    const objects = distObjects('production');
    const configMap = objects.find((o) => o.kind === 'ConfigMap')!;
    const pods = objects.filter((o) => o.spec?.template?.spec?.containers).map((o) => o.spec.template.spec);
    const fromSecrets = pods.flatMap(
      (p) => p.containers.flatMap((c: any) => (c.env ?? []).map((e: any) => e.name)));
    const names = [...Object.keys(configMap.data), ...fromSecrets, 'MEDIA_ROOT'];
    expect(names.filter((n) => !contract.includes(`\`${n}\``))).toEqual([]);
  });

  describe.each(environments)('%s: the debug pod of the runbook', (env) => {
    const objects = distObjects(env);
    const app = objects.find((o) => o.kind === 'Deployment')!.metadata.name;
    const namespace = objects.find((o) => o.kind === 'Namespace')!.metadata.name;
    const heredoc = /apply -f - <<EOF\n([\s\S]*?)\nEOF\n/.exec(section(runbook, /database connection/i));
    const pod = parse((heredoc?.[1] ?? '').replace(/\$APP\b/g, app).replace(/\$NS\b/g, namespace));

    test('is a complete Pod, valid for Kubernetes 1.28 and 1.33 (strict)', () => {
      expect(pod.kind).toBe('Pod');
      for (const version of ['1.28.0', '1.33.0']) {
        const validate = kubernetes(version).validator('v1', 'Pod')!;
        expect({ version, valid: validate(pod), errors: validate.errors ?? null })
          .toEqual({ version, valid: true, errors: null });
      }
    });

    test('passes Pod Security restricted', () => {
      const spec = pod.spec;
      expect([spec.hostNetwork, spec.hostPID, spec.hostIPC].filter(Boolean)).toEqual([]);
      for (const volume of spec.volumes ?? []) expect(Object.keys(volume).sort()).toEqual(['emptyDir', 'name']);
      for (const c of spec.containers) {
        const sc = { ...spec.securityContext, ...c.securityContext };
        expect(sc.runAsNonRoot).toBe(true);
        expect(sc.runAsUser).toBeGreaterThan(0);
        expect(sc.seccompProfile).toEqual({ type: 'RuntimeDefault' });
        expect(sc.allowPrivilegeEscalation).toBe(false);
        expect(sc.privileged ?? false).toBe(false);
        expect(sc.capabilities).toEqual({ drop: ['ALL'] });
        expect(c.ports ?? []).toEqual([]);
      }
    });

    test('is let out by the NetworkPolicy, gets no traffic from the Service, and uses what exists', () => {
      const policy = objects.find((o) => o.kind === 'NetworkPolicy')!;
      const labels: Record<string, string> = pod.metadata.labels;
      const { matchLabels, matchExpressions } = policy.spec.podSelector;
      expect(Object.entries(matchLabels).every(([k, v]) => labels[k] === v)).toBe(true);
      expect(matchExpressions.every((e: any) => e.operator === 'In' && e.values.includes(labels[e.key])))
        .toBe(true);
      const service = objects.find((o) => o.kind === 'Service')!;
      expect(Object.entries(service.spec.selector).every(([k, v]) => labels[k] === v)).toBe(false);

      const container = pod.spec.containers[0];
      const configMap = container.envFrom[0].configMapRef.name;
      expect(objects.some((o) => o.kind === 'ConfigMap' && o.metadata.name === configMap)).toBe(true);
      const ref = container.env.find((e: any) => e.name === 'PGPASSWORD').valueFrom.secretKeyRef;
      const secret = distSecrets(env).find((s) => s.name === ref.name && s.namespace === namespace);
      expect(secret?.keys).toContain(ref.key);
    });
  });

  test('links to headings resolve (anchors as GitHub makes them)', () => {
    for (const file of markdownFiles()) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const broken = [...text.matchAll(/\]\(([^)#\s]*)#([^)\s]+)\)/g)]
        .filter(([, target]) => target === '' || target.endsWith('.md'))
        .filter(([, target, anchor]) => {
          const path = target === '' ? file : join(dirname(file), target);
          return !existsSync(join(ROOT, path)) || !anchors(path).has(anchor);
        })
        .map(([link]) => link);
      expect({ file, broken }).toEqual({ file, broken: [] });
    }
  });

  test('links to files of the repository resolve', () => {
    for (const file of markdownFiles()) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const broken = [...text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)].map((m) => m[1])
        .filter((target) => !/^[a-z]+:/.test(target))
        .filter((target) => !existsSync(join(ROOT, dirname(file), target)));
      expect({ file, broken }).toEqual({ file, broken: [] });
    }
  });
});
