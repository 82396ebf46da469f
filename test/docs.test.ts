import { spawnSync } from 'child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { parse, parseAllDocuments } from 'yaml';
import { environmentSchema } from '../lib/config-schema';
import { OutputFile } from '../lib/phases';
import { generate, OBJECTS_DOC, readDist, TOPOLOGY_DOC } from '../scripts/docs';
import { configData, productionWith, ROOT, synth } from './helpers';

/*
 * The operator's documentation: the generated docs match dist/, every command the Markdown names
 * exists, and the runbook covers every object kind, every Secret and the image contract.
 */

const RUNBOOK = 'docs/vergabe-teilnahme.md';
const DIST = join(ROOT, 'dist');
const environments = readdirSync(DIST, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();

/** The objects of dist/<env>/'s phase files. */
function distObjects(env: string): Array<{ kind: string; metadata: { name: string; namespace?: string } }> {
  return readdirSync(join(DIST, env))
    .filter((f) => /^[0-9]{2}-[a-z-]+\.yaml$/.test(f))
    .flatMap((f) => parseAllDocuments(readFileSync(join(DIST, env, f), 'utf8')).map((d) => d.toJS()));
}

/** An object's name as the docs show it: a Job's spec hash, new with every release, as `<hash>`. */
function shownName(o: { kind: string; metadata: { name: string } }): string {
  return o.kind === 'Job' ? o.metadata.name.replace(/-[0-9a-f]{8}$/, '-<hash>') : o.metadata.name;
}

/** The Secrets of dist/<env>/secrets.yaml. */
function distSecrets(env: string): Array<{ name: string; namespace: string; source: string }> {
  return parse(readFileSync(join(DIST, env, 'secrets.yaml'), 'utf8')).secrets;
}

/** In-memory synth output grouped as the generator reads dist/. */
function asDist(files: OutputFile[]): Array<{ name: string; files: Map<string, string> }> {
  const byEnv = new Map<string, Map<string, string>>();
  for (const file of files) {
    const [env, ...rest] = file.path.split('/');
    byEnv.set(env, (byEnv.get(env) ?? new Map()).set(rest.join('/'), file.content));
  }
  return [...byEnv].map(([name, map]) => ({ name, files: map }));
}

/** The docs generated for production with one change to its configuration. */
function docsWith(change: (config: any) => void): { objects: string; topology: string } {
  const [objects, topology] = generate(asDist(synth(['production', productionWith(change)])));
  return { objects: objects.content, topology: topology.content };
}

/** The Mermaid blocks of a Markdown text. */
function mermaidBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1]);
}

describe('generated docs are up to date with dist/', () => {
  const generated = generate(readDist(DIST));

  test.each(generated.map((f) => [f.path, f.content]))('%s', (path, content) => {
    const committed = existsSync(join(ROOT, path)) ? readFileSync(join(ROOT, path), 'utf8') : '(missing)';
    if (committed !== content) throw new Error(`${path} is stale (it differs from what dist/ gives): run npm run docs`);
  });

  test('the generator is deterministic', () => {
    expect(generate(readDist(DIST))).toEqual(generated);
  });

  test('node scripts/docs.js --check exits 1 and names the stale file, 0 when all are current', () => {
    const root = mkdtempSync(join(tmpdir(), 'docs-check-'));
    try {
      mkdirSync(join(root, 'scripts'));
      cpSync(join(ROOT, 'scripts', 'docs.js'), join(root, 'scripts', 'docs.js'));
      cpSync(DIST, join(root, 'dist'), { recursive: true });
      const run = (...args: string[]) => spawnSync(process.execPath, [join(root, 'scripts', 'docs.js'), ...args], {
        encoding: 'utf8', env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules') },
      });

      const missing = run('--check');
      expect(missing.status).toBe(1);
      expect(missing.stderr).toContain(`${OBJECTS_DOC} is stale`);

      expect(run().status).toBe(0);
      for (const f of generated) expect(readFileSync(join(root, f.path), 'utf8')).toBe(f.content);
      expect(run('--check').status).toBe(0);

      writeFileSync(join(root, TOPOLOGY_DOC), `${readFileSync(join(root, TOPOLOGY_DOC), 'utf8')}\nedited by hand\n`);
      const stale = run('--check');
      expect(stale.status).toBe(1);
      expect(stale.stderr).toContain(`${TOPOLOGY_DOC} is stale: run \`npm run docs\``);
      expect(stale.stderr).not.toContain(`${OBJECTS_DOC} is stale`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('an image bump (tag, digest) leaves the docs as they are', () => {
    const before = generate(asDist(synth(['production', configData('production')])));
    const after = generate(asDist(synth(['production', productionWith((c) => {
      c.image.tag = 'abcdef1234567';
      c.image.digest = `sha256:${'b'.repeat(64)}`;
    })])));
    expect(after).toEqual(before);
  });

  test('a dist/ whose plan and phase files disagree is refused with the file named', () => {
    const [env] = asDist(synth(['production', configData('production')]));
    env.files.set('60-app.yaml', env.files.get('60-app.yaml')!.replace(/^  name: vergabe-teilnahme$/m, '  name: renamed'));
    expect(() => generate([env])).toThrow(/dist\/production\/plan.tsv names deployment.apps vergabe-teilnahme .*npm run synth/);
  });
});

describe('docs/objects.md lists every object and Secret of dist/', () => {
  const objectsDoc = readFileSync(join(ROOT, OBJECTS_DOC), 'utf8');

  test.each(environments)('%s: every object, with its kind, name and namespace', (env) => {
    const section = objectsDoc.split(/^## /m).find((s) => s.startsWith(`${env}\n`)) ?? '';
    expect(section).not.toBe('');
    for (const o of distObjects(env)) {
      const ns = o.metadata.namespace ? `\`${o.metadata.namespace}\`` : '(cluster)';
      expect(section).toContain(`| ${o.kind} | \`${shownName(o)}\` | ${ns} |`);
    }
  });

  test.each(environments)('%s: every required Secret with its keys and source, never a value', (env) => {
    const section = objectsDoc.split(/^## /m).find((s) => s.startsWith(`${env}\n`)) ?? '';
    for (const s of parse(readFileSync(join(DIST, env, 'secrets.yaml'), 'utf8')).secrets) {
      const row = section.split('\n').find((l) => l.startsWith(`| \`${s.namespace}\` | \`${s.name}\` |`));
      expect(row).toBeDefined();
      for (const key of s.keys) expect(row).toContain(`\`${key}\``);
      expect(row).toContain(s.source === 'sops' ? `SOPS: \`${s.file}\`` : s.source);
    }
    expect(objectsDoc).not.toMatch(/EXAMPLE-not-a-real|ENC\[AES256_GCM/);
  });

  test('a fragment for the platform team is listed as never applied', () => {
    const { objects } = docsWith((c) => { c.database.roleMode = 'ClusterManagedRole'; });
    expect(objects).toContain('### Files for others (never applied by the deploy)');
    expect(objects).toContain('`dist/production/platform-team/apps-pg-managed-role.yaml`: For the platform team');
    expect(objects).not.toContain('| DatabaseRole |');
  });
});

describe('docs/topology.md is drawn from the objects', () => {
  const topologyDoc = readFileSync(join(ROOT, TOPOLOGY_DOC), 'utf8');

  test('one Mermaid flowchart per environment, production first', () => {
    const headings = [...topologyDoc.matchAll(/^## (\S+)$/gm)].map((m) => m[1]);
    expect(headings).toEqual(['production', ...environments.filter((e) => e !== 'production')]);
    expect(mermaidBlocks(topologyDoc)).toHaveLength(environments.length);
    for (const block of mermaidBlocks(topologyDoc)) expect(block.startsWith('flowchart ')).toBe(true);
  });

  test('every edge joins declared nodes or subgraphs, and every subgraph is closed', () => {
    for (const block of mermaidBlocks(topologyDoc)) {
      const lines = block.split('\n').map((l) => l.trim()).filter(Boolean);
      const declared = new Set(lines.flatMap((l) => {
        const m = /^(?:subgraph )?([A-Za-z0-9_]+)(?:\[|\(|\{)/.exec(l);
        return m ? [m[1]] : [];
      }));
      expect(lines.filter((l) => l.startsWith('subgraph ')).length).toBe(lines.filter((l) => l === 'end').length);
      const edges = lines.filter((l) => /^[A-Za-z0-9_]+ (-->|-\.->)/.test(l));
      expect(edges.length).toBeGreaterThan(10);
      for (const edge of edges) {
        const [from, , ...rest] = edge.split(' ');
        const to = rest[rest.length - 1];
        expect({ edge, from: declared.has(from), to: declared.has(to) }).toEqual({ edge, from: true, to: true });
      }
    }
  });

  test.each(environments)('%s: every object of dist/ appears (Namespace and NetworkPolicy as boxes)', (env) => {
    const block = mermaidBlocks(topologyDoc)[['production', ...environments.filter((e) => e !== 'production')].indexOf(env)];
    for (const o of distObjects(env)) {
      expect(block).toContain(`${o.kind} ${shownName(o).replace('<', '#lt;').replace('>', '#gt;')}`);
    }
    for (const s of distSecrets(env)) expect(block).toContain(`Secret ${s.name}`);
  });

  test('the request path follows the objects: Internet, controller, Middlewares, Ingress, Service, Deployment', () => {
    const block = mermaidBlocks(topologyDoc)[0];
    const id = (label: string) => new RegExp(`^\\s*([A-Za-z0-9_]+)[\\[({/]+"${label.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`, 'm').exec(block)?.[1];
    const chain = ['Internet', 'Ingress controller, class traefik', 'Middleware vergabe-teilnahme-redirect-https',
      'Middleware vergabe-teilnahme-security-headers', 'Ingress vergabe-teilnahme', 'Service vergabe-teilnahme',
      'Deployment vergabe-teilnahme'].map(id);
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
    for (const text of ['Deployment tender-app', 'Namespace tender', 'https://tender.example.org/', 'ClusterIssuer other-issuer',
      'CloudNativePG Cluster shared-pg', 'shared-pg-rw.databases.svc:5432', 'as tender', 'Database tender-db']) {
      expect(topology).toContain(text);
    }
    expect(mermaidBlocks(topology).join('\n')).not.toContain('vergabe');
    expect(objects).not.toContain('vergabe-teilnahme-app');
  });

  test('ClusterManagedRole mode draws the role from the platform team\'s fragment', () => {
    const { topology } = docsWith((c) => { c.database.roleMode = 'ClusterManagedRole'; });
    expect(topology).not.toContain('DatabaseRole');
    expect(topology).toContain('role vergabe<br/>in spec.managed.roles of apps-pg, from dist/production/platform-team/apps-pg-managed-role.yaml');
  });

  test('a media volume, a pull Secret and extra egress appear when configured', () => {
    const { topology } = docsWith((c) => {
      c.app.media = { enabled: true };
      c.image.pullSecret = 'vergabe-teilnahme-registry';
      c.app.extraEgress = [{ cidr: '203.0.113.10/32', ports: [587] }];
    });
    expect(topology).toContain('PersistentVolumeClaim vergabe-teilnahme-media');
    expect(topology).toMatch(/"mounted at \/app\/media"/);
    expect(topology).toContain('Secret vergabe-teilnahme-registry');
    expect(topology).toMatch(/"image pull"/);
    expect(topology).toContain('203.0.113.10/32');
    expect(topology).toMatch(/"allowed out: TCP 587"/);
  });
});

/* ------------------------------------------------------------------------------------------ */
/* Every command the docs name exists                                                          */
/* ------------------------------------------------------------------------------------------ */

/** The Markdown files whose commands must exist. */
function markdownFiles(): string[] {
  return ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
}

/** The code of a Markdown text: fenced blocks and inline code spans (prose may say "make sure"). */
function codeOf(markdown: string): string[] {
  const fenced = [...markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].map((m) => m[1]);
  const prose = markdown.replace(/^```[^\n]*\n[\s\S]*?^```/gm, '');
  const inline = [...prose.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]);
  return [...fenced, ...inline];
}

interface Command { readonly tool: 'make' | 'npm'; readonly name: string; readonly text: string; readonly variables: string[] }

/** Every `make [options] [VAR=value ...] target ...` and `npm run <script>` / `npm test` in the code. */
function commandsIn(markdown: string): Command[] {
  const commands: Command[] = [];
  for (const code of codeOf(markdown)) {
    for (const line of code.split('\n')) {
      for (const m of line.matchAll(/(?:^|[\s;&|(`$])make((?:\s+[^\s;&|#`)]+)*)/g)) {
        const words = m[1].trim().split(/\s+/).filter(Boolean);
        const variables: string[] = [];
        const targets: string[] = [];
        for (let i = 0; i < words.length; i += 1) {
          const word = words[i];
          if (/^-[CfIo]$/.test(word)) { i += 1; continue; }
          if (word.startsWith('-')) continue;
          const variable = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(word);
          if (variable) { variables.push(variable[1]); continue; }
          if (/^[a-z][a-z0-9-]*$/.test(word)) targets.push(word);
          else break;
        }
        if (targets.length === 0) targets.push('(the default goal)');
        for (const name of targets) commands.push({ tool: 'make', name, text: `make${m[1]}`.trim(), variables });
      }
      for (const m of line.matchAll(/\bnpm\s+(?:run(?:-script)?\s+(?:--?[a-z-]+\s+)*([a-z][\w:.-]*)|(test|start|stop|restart)\b)/g)) {
        commands.push({ tool: 'npm', name: m[1] ?? m[2], text: m[0], variables: [] });
      }
    }
  }
  return commands;
}

/** The explicit targets of a Makefile and of the files it includes by a literal path. */
function makeTargets(makefile: string, read: (path: string) => string = (p) => readFileSync(join(ROOT, p), 'utf8')): Set<string> {
  const targets = new Set<string>();
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    const text = read(path).replace(/\\\n/g, ' ');
    for (const line of text.split('\n')) {
      const include = /^-?include\s+(.+)$/.exec(line);
      if (include) {
        for (const file of include[1].trim().split(/\s+/)) if (!file.includes('$') && existsSync(join(ROOT, file))) visit(file);
        continue;
      }
      const rule = /^([A-Za-z0-9][^:=#\t]*?)\s*::?(?![=])/.exec(line);
      if (!rule || /^\s/.test(line)) continue;
      for (const target of rule[1].trim().split(/\s+/)) targets.add(target);
    }
  };
  visit(makefile);
  return targets;
}

/** Problems: each command whose make target or npm script does not exist, by file. */
function missingCommands(file: string, markdown: string, targets: Set<string>, scripts: Record<string, string>): string[] {
  return commandsIn(markdown).flatMap((c) => {
    if (c.tool === 'make') {
      return targets.has(c.name) || (c.name === '(the default goal)') ? [] : [`${file}: \`${c.text}\`: no make target ${c.name} in the Makefile`];
    }
    return c.name in scripts ? [] : [`${file}: \`${c.text}\`: no npm script ${c.name} in package.json`];
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
    expect(missingCommands('sample.md', sample, new Set(['vergabe-deploy', 'vergabe-status']), { docs: '', test: '' })).toEqual([
      'sample.md: `make vergabe-nonexistent`: no make target vergabe-nonexistent in the Makefile',
      'sample.md: `npm run no-such-script`: no npm script no-such-script in package.json',
    ]);
  });

  test('the Makefile parser finds rules, not variables or recipes', () => {
    const makefile = 'ENV ?= production\nX := 1\n.PHONY: a b\na: ## first\n\techo b: c\nb c: a\n';
    expect([...makeTargets('M', () => makefile)].sort()).toEqual(['a', 'b', 'c']);
  });

  test('the docs name commands at all (README, runbook)', () => {
    const names = (file: string) => commandsIn(readFileSync(join(ROOT, file), 'utf8')).map((c) => `${c.tool} ${c.name}`);
    expect(names('README.md')).toEqual(expect.arrayContaining(['npm test', 'npm synth', 'make help']));
    expect(names(RUNBOOK)).toEqual(expect.arrayContaining(['make vergabe-deploy', 'make vergabe-status', 'make vergabe-rollback']));
  });

  test.each(files)('%s: every make target and npm script exists', (file) => {
    expect(missingCommands(file, readFileSync(join(ROOT, file), 'utf8'), targets, scripts)).toEqual([]);
  });

  test.each(files)('%s: every VAR=value given to make is read by the Makefile or a script', (file) => {
    const sources = [readFileSync(join(ROOT, 'Makefile'), 'utf8'),
      ...readdirSync(join(ROOT, 'scripts')).map((f) => readFileSync(join(ROOT, 'scripts', f), 'utf8'))].join('\n');
    const unknown = commandsIn(readFileSync(join(ROOT, file), 'utf8'))
      .flatMap((c) => c.variables.filter((v) => !new RegExp(`\\b${v}\\b`).test(sources)).map((v) => `${file}: \`${c.text}\`: ${v} is read nowhere`));
    expect([...new Set(unknown)]).toEqual([]);
  });

  test('README.md gives exactly the two commands of a fresh clone', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('npm ci && npm run synth');
    expect(readme).toMatch(/`npm test`/);
  });
});

/* ------------------------------------------------------------------------------------------ */
/* The runbook covers what is deployed                                                         */
/* ------------------------------------------------------------------------------------------ */

/** The text of a Markdown section (its heading matched by `title`) up to the next heading of its level or above. */
function section(markdown: string, title: RegExp): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^#{1,6} /.test(l) && title.test(l));
  if (start < 0) throw new Error(`${RUNBOOK} has no section whose heading matches ${title}`);
  const level = /^(#+)/.exec(lines[start])![1].length;
  const end = lines.findIndex((l, i) => i > start && /^(#+) /.test(l) && /^(#+)/.exec(l)![1].length <= level);
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

describe('the runbook covers what is deployed', () => {
  const runbook = readFileSync(join(ROOT, RUNBOOK), 'utf8');

  test.each(environments)('%s: it names every object kind in dist/', (env) => {
    const kinds = [...new Set(distObjects(env).map((o) => o.kind))];
    expect(kinds.length).toBeGreaterThan(5);
    expect(kinds.filter((k) => !new RegExp(`\\b${k}\\b`).test(runbook))).toEqual([]);
  });

  test.each(environments)('%s: it names every Secret of secrets.yaml', (env) => {
    const names = distSecrets(env).map((s) => s.name);
    expect(names.filter((n) => !runbook.includes(`\`${n}\``))).toEqual([]);
  });

  test('it links the generated table and picture', () => {
    expect(runbook).toContain('(objects.md)');
    expect(runbook).toContain('(topology.md)');
  });

  test('its image contract states the values of config/production.yaml and the schema defaults', () => {
    const contract = section(runbook, /image contract/i);
    const image = environmentSchema.properties.image.properties;
    const configured = configData('production');
    const value = <K extends keyof typeof image>(key: K): unknown =>
      configured.image[key] ?? (image[key] as unknown as { default?: unknown }).default;
    const settingsModule = configured.app.settingsModule ?? environmentSchema.properties.app.properties.settingsModule.default;

    const expected = [
      `UID ${value('user')}`, `GID ${value('group')}`, `port ${value('port')}`, `\`${value('healthPath')}\``,
      `\`${(value('command') as string[]).join(' ')}\``, `\`${value('python')}\``, `\`${value('managePy')}\``,
      `\`${settingsModule}\``, `\`${configured.image.repository}\``,
    ];
    expect(expected.filter((text) => !contract.includes(text))).toEqual([]);
  });

  test('its image contract names every environment variable the app and the Job receive', () => {
    const contract = section(runbook, /image contract/i);
    const objects = distObjects('production') as any[];
    const configMap = objects.find((o) => o.kind === 'ConfigMap');
    const deployment = objects.find((o) => o.kind === 'Deployment');
    const names = [...Object.keys(configMap.data),
      ...deployment.spec.template.spec.containers.flatMap((c: any) => (c.env ?? []).map((e: any) => e.name)), 'MEDIA_ROOT'];
    expect(names.filter((n) => !contract.includes(`\`${n}\``))).toEqual([]);
  });

  test('its links to headings resolve (anchors as GitHub makes them)', () => {
    const anchors = (file: string) => new Set(readFileSync(join(ROOT, file), 'utf8').split('\n')
      .filter((l) => /^#{1,6} /.test(l))
      .map((l) => l.replace(/^#+ /, '').toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')));
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

  test('its links to other files of the repository resolve', () => {
    for (const file of markdownFiles()) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const broken = [...text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)].map((m) => m[1])
        .filter((target) => !/^[a-z]+:/.test(target))
        .filter((target) => !existsSync(join(ROOT, dirname(file), target)));
      expect({ file, broken }).toEqual({ file, broken: [] });
    }
  });
});
