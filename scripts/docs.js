#!/usr/bin/env node
// @ts-check
/*
 * `npm run docs`: writes docs/objects.md (every object and required Secret of every environment)
 * and docs/topology.md (a Mermaid picture of what is deployed) from the synthesized output in
 * dist/, so the operator's documentation cannot drift from what the deploy applies. Run it after
 * `npm run synth`; `npm test` fails while a generated doc is stale.
 *
 * `node scripts/docs.js --check` writes nothing: it exits 1 and names each stale file.
 *
 * Everything shown is read from dist/<environment>/: the phase files, plan.tsv, secrets.yaml and
 * the files handed to others (platform-team/). Only the layout of the picture is decided here.
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { parse, parseAllDocuments } = require('yaml');

/**
 * @typedef {{
 *   apiVersion: string, kind: string,
 *   metadata: { name: string, namespace?: string, labels?: Record<string, string>,
 *               annotations?: Record<string, string> },
 *   spec?: any, data?: Record<string, string>, automountServiceAccountToken?: boolean
 * }} Manifest
 * @typedef {{ id: string, file: string, source: string, title: string }} PlanPhase
 * @typedef {{ phase: string, resource: string, namespace: string, name: string, wait: string,
 *             prune: string, manifest: Manifest }} PlanObject
 * @typedef {{ phase: string, namespace: string, name: string, file: string }} PlanSecret
 * @typedef {{ namespace: string, name: string, type: string, keys: string[],
 *             labels?: Record<string, string>, source: string, file?: string, purpose: string }} RequiredSecret
 * @typedef {{ path: string, header: string, body: any }} HandOver
 * @typedef {{
 *   name: string, settings: Map<string, string>, phases: PlanPhase[], objects: PlanObject[],
 *   planSecrets: PlanSecret[], secrets: RequiredSecret[], handOver: HandOver[]
 * }} Environment
 * @typedef {{ name: string, files: Map<string, string> }} EnvironmentFiles
 *   The files of dist/<name>/, by path relative to that folder.
 * @typedef {{ path: string, content: string }} OutputFile
 */

/** The generated documents, relative to the repository. */
const OBJECTS_DOC = 'docs/objects.md';
const TOPOLOGY_DOC = 'docs/topology.md';

/** An expected problem: printed as one line, exit code 1. */
class DocsError extends Error {}

/* ------------------------------------------------------------------------------------------ */
/* Reading dist/                                                                               */
/* ------------------------------------------------------------------------------------------ */

/**
 * Every file of every environment folder in `distDir`.
 * @param {string} distDir
 * @returns {EnvironmentFiles[]}
 */
function readDist(distDir) {
  let names;
  try {
    names = fs.readdirSync(distDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    throw new DocsError(`cannot read ${distDir}/: run \`npm run synth\` first`);
  }
  if (names.length === 0) throw new DocsError(`${distDir}/ holds no environment: run \`npm run synth\` first`);
  return names.map((name) => {
    /** @type {Map<string, string>} */
    const files = new Map();
    /** @param {string} dir */
    const walk = (dir) => {
      for (const entry of fs.readdirSync(path.join(distDir, name, dir), { withFileTypes: true })) {
        const rel = dir ? `${dir}/${entry.name}` : entry.name;
        if (entry.isDirectory()) walk(rel);
        else files.set(rel, fs.readFileSync(path.join(distDir, name, rel), 'utf8'));
      }
    };
    walk('');
    return { name, files };
  });
}

/**
 * The kubectl resource of an object, as plan.tsv writes it (`job.batch`, `service`).
 * @param {Manifest} m
 */
function kubectlResource(m) {
  const group = m.apiVersion.includes('/') ? m.apiVersion.split('/')[0] : '';
  return group ? `${m.kind.toLowerCase()}.${group}` : m.kind.toLowerCase();
}

/**
 * Parses one environment's output and checks that plan.tsv and the phase files agree.
 * @param {EnvironmentFiles} source
 * @returns {Environment}
 */
function parseEnvironment(source) {
  const where = (/** @type {string} */ file) => `dist/${source.name}/${file}`;
  const read = (/** @type {string} */ file) => {
    const text = source.files.get(file);
    if (text === undefined) throw new DocsError(`${where(file)} is missing: run \`npm run synth\``);
    return text;
  };

  /** @type {Map<string, string>} */
  const settings = new Map();
  /** @type {PlanPhase[]} */
  const phases = [];
  /** @type {PlanSecret[]} */
  const planSecrets = [];
  /** @type {Array<Omit<PlanObject, 'manifest'>>} */
  const rows = [];
  read('plan.tsv').split('\n').forEach((line, index) => {
    if (line === '' || line.startsWith('#')) return;
    const cells = line.split('\t');
    const bad = () => new DocsError(`${where('plan.tsv')}:${index + 1}: unexpected line ${JSON.stringify(line)}`);
    switch (cells[0]) {
      case 'setting':
        if (cells.length !== 3) throw bad();
        settings.set(cells[1], cells[2]);
        break;
      case 'phase':
        if (cells.length !== 5) throw bad();
        phases.push({ id: cells[1], file: cells[2], source: cells[3], title: cells[4] });
        break;
      case 'secret':
        if (cells.length !== 5) throw bad();
        planSecrets.push({ phase: cells[1], namespace: cells[2], name: cells[3], file: cells[4] });
        break;
      case 'object':
        if (cells.length !== 7) throw bad();
        rows.push({
          phase: cells[1], resource: cells[2], namespace: cells[3], name: cells[4], wait: cells[5], prune: cells[6],
        });
        break;
      default:
        throw bad();
    }
  });

  /** @type {Map<string, Manifest>} */
  const manifests = new Map();
  for (const phase of phases) {
    if (phase.file === '-') continue;
    const docs = parseAllDocuments(read(phase.file));
    for (const doc of Array.isArray(docs) ? docs : [docs]) {
      if (doc.errors.length > 0) throw new DocsError(`${where(phase.file)}: ${doc.errors[0].message.split('\n')[0]}`);
      const m = /** @type {Manifest} */ (doc.toJS());
      const key = `${phase.id}|${kubectlResource(m)}|${m.metadata.namespace ?? '-'}|${m.metadata.name}`;
      manifests.set(key, m);
    }
  }
  const objects = rows.map((row) => {
    const key = `${row.phase}|${row.resource}|${row.namespace}|${row.name}`;
    const manifest = manifests.get(key);
    if (!manifest) {
      throw new DocsError(`${where('plan.tsv')} names ${row.resource} ${row.name} in phase ${row.phase}, `
        + 'but its phase file does not hold it: run `npm run synth`');
    }
    manifests.delete(key);
    return { ...row, manifest };
  });
  const [unplanned] = manifests.keys();
  if (unplanned) {
    throw new DocsError(`dist/${source.name}: ${unplanned.replace(/\|/g, ' ')} has no line in plan.tsv: run \`npm run synth\``);
  }

  const secretsData = parse(read('secrets.yaml'));
  if (!secretsData || !Array.isArray(secretsData.secrets)) {
    throw new DocsError(`${where('secrets.yaml')} has no \`secrets:\` list: run \`npm run synth\``);
  }

  const phaseFiles = new Set(phases.map((p) => p.file));
  const handOver = [...source.files.keys()]
    .filter((file) => file.includes('/') && !phaseFiles.has(file))
    .sort()
    .map((file) => {
      const text = read(file);
      const header = text.split('\n').filter((l) => l.startsWith('#')).map((l) => l.replace(/^# ?/, '')).join(' ');
      return { path: file, header, body: parse(text) };
    });

  return {
    name: source.name, settings, phases, objects, planSecrets, secrets: secretsData.secrets, handOver,
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Markdown                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/** What the deploy waits for after applying an object, in the operator's words. */
const WAIT_TEXT = /** @type {Record<string, string>} */ ({
  none: '—',
  active: 'Namespace `Active`',
  applied: '`.status.applied` is true',
  complete: 'Job `Complete` (`Failed` stops the deploy)',
  rollout: 'rollout finished',
  ready: '`Ready` condition',
});

/**
 * A table cell: pipes escaped, line breaks removed.
 * @param {string} text
 */
function cell(text) {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/**
 * @param {string[]} header
 * @param {string[][]} rows
 */
function table(header, rows) {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ];
}

/** @param {string} text */
const code = (text) => `\`${text}\``;

/**
 * production first (it is what the on-call operator looks for), then the others by name.
 * @param {Environment[]} environments
 */
function ordered(environments) {
  return [...environments].sort((a, b) => {
    if (a.name === b.name) return 0;
    if (a.name === 'production') return -1;
    if (b.name === 'production') return 1;
    return a.name < b.name ? -1 : 1;
  });
}

/**
 * docs/objects.md.
 * @param {Environment[]} environments
 * @returns {string}
 */
function renderObjects(environments) {
  const out = [
    '<!-- Generated by `npm run docs` from dist/; do not edit. `npm test` fails when it is stale. -->',
    '# Objects and Secrets of every environment',
    '',
    'Every object the deploy applies, in apply order, and every Secret the objects need, read from',
    'the synthesized output in `dist/<environment>/` (the phase files, `plan.tsv` and `secrets.yaml`).',
    'The runbook is [vergabe-teilnahme.md](vergabe-teilnahme.md); the picture is [topology.md](topology.md).',
    '',
    '- **File**: the file under `dist/<environment>/` the object is in, or the SOPS file a Secret is',
    '  decrypted from. Sorting the file names gives the apply order.',
    '- **kubectl resource**: what to pass to `kubectl get` (e.g. `kubectl get job.batch -n <namespace>`).',
    '- **Deploy waits for**: the condition the deploy waits for after applying the object, before the',
    '  next phase.',
    '- **Pruned**: `yes` means the deploy deletes the object once it is removed from the code;',
    '  `never` marks objects whose loss loses data or access: removing them is a manual step.',
    '- **`<hash>`**: a Job cannot be changed once created, so its name ends in a hash of its spec,',
    '  new with every release; the current name is the setting `migrationJob` in `dist/<environment>/plan.tsv`.',
    '- Secret values are never in this repository in plain text, nor in `dist/`; only the names of',
    '  their keys are listed here.',
  ];
  for (const env of ordered(environments)) {
    const s = (/** @type {string} */ key) => env.settings.get(key) ?? '?';
    out.push('', `## ${env.name}`, '',
      `Context ${code(s('kubeContext'))}, namespace ${code(s('namespace'))}, https://${s('host')}/, image`,
      `${code(imageRepository(s('image')))} (the release: \`image.tag\` and \`image.digest\` in \`config/${env.name}.yaml\`).`,
      '', '### Objects, in apply order', '');

    /** @type {string[][]} */
    const rows = [];
    for (const phase of env.phases) {
      for (const secret of env.planSecrets.filter((x) => x.phase === phase.id)) {
        rows.push([code(secret.file), 'Secret', code(secret.name), code(secret.namespace), code('secret'),
          '—', 'never']);
      }
      for (const o of env.objects.filter((x) => x.phase === phase.id)) {
        rows.push([code(phase.file), o.manifest.kind, code(shownName(o.manifest)), o.namespace === '-' ? '(cluster)' : code(o.namespace),
          code(o.resource), WAIT_TEXT[o.wait] ?? o.wait, o.prune === 'prune' ? 'yes' : 'never']);
      }
    }
    out.push(...table(['File', 'Kind', 'Name', 'Namespace', 'kubectl resource', 'Deploy waits for', 'Pruned'], rows));

    const empty = env.phases.filter((p) => p.file === '-' && !env.planSecrets.some((x) => x.phase === p.id));
    if (empty.length > 0) {
      out.push('', 'Phases without objects in `dist/`:', '');
      for (const phase of empty) out.push(`- ${code(phase.id)}: ${phase.title} (made by the deploy when asked).`);
    }

    out.push('', '### Secrets the objects need', '',
      'Created from SOPS by the deploy (`source` sops) or written by cert-manager; never in `dist/`.', '');
    out.push(...table(['Namespace', 'Name', 'Type', 'Keys', 'Labels', 'Source', 'Purpose'],
      env.secrets.map((x) => [
        code(x.namespace), code(x.name), code(x.type), x.keys.map(code).join(', '),
        x.labels ? Object.entries(x.labels).map(([k, v]) => code(`${k}: ${v}`)).join(', ') : '—',
        x.source === 'sops' ? `SOPS: ${code(x.file ?? '?')}` : x.source,
        x.purpose,
      ])));

    if (env.handOver.length > 0) {
      out.push('', '### Files for others (never applied by the deploy)', '');
      for (const h of env.handOver) out.push(`- ${code(`dist/${env.name}/${h.path}`)}: ${h.header}`);
    }
  }
  out.push('');
  return out.join('\n');
}

/* ------------------------------------------------------------------------------------------ */
/* The topology picture                                                                        */
/* ------------------------------------------------------------------------------------------ */

/** Mermaid node shapes: [open, close]. */
const SHAPES = /** @type {Record<string, [string, string]>} */ ({
  box: ['["', '"]'],
  circle: ['(("', '"))'],
  database: ['[("', '")]'],
  secret: ['[/"', '"/]'],
  external: ['{{"', '"}}'],
  files: ['[["', '"]]'],
});

/**
 * A Mermaid flowchart built up in a fixed order, so the same objects give the same bytes.
 */
class Flowchart {
  constructor() {
    /** @type {Map<string, { label: string, shape: string, cls: string, group: string }>} */
    this.nodes = new Map();
    /** @type {Map<string, { title: string, parent: string }>} */
    this.groups = new Map();
    /** @type {string[]} */
    this.edges = [];
  }

  /**
   * A group (a Mermaid subgraph); returns its id.
   * @param {string} key
   * @param {string} title
   * @param {string} [parent]
   */
  group(key, title, parent = '') {
    const id = `g_${slug(key)}`;
    if (!this.groups.has(id)) this.groups.set(id, { title, parent });
    return id;
  }

  /**
   * A node; the first call for an id decides its label. Returns its id.
   * @param {string} key
   * @param {string[]} lines
   * @param {{ shape?: string, cls?: string, group?: string }} [options]
   */
  node(key, lines, options = {}) {
    const id = `n_${slug(key)}`;
    if (!this.nodes.has(id)) {
      this.nodes.set(id, {
        label: lines.map(escapeHtml).join('<br/>'), shape: options.shape ?? 'box', cls: options.cls ?? 'ours', group: options.group ?? '',
      });
    }
    return id;
  }

  /** @param {string} key */
  has(key) {
    return this.nodes.has(`n_${slug(key)}`);
  }

  /**
   * @param {string} from
   * @param {string} to
   * @param {string} label
   * @param {'flow' | 'uses'} [style]
   */
  edge(from, to, label, style = 'flow') {
    const arrow = style === 'flow' ? '-->' : '-.->';
    const line = label ? `  ${from} ${arrow}|"${quote(escapeHtml(label))}"| ${to}` : `  ${from} ${arrow} ${to}`;
    if (!this.edges.includes(line)) this.edges.push(line);
  }

  /** @returns {string[]} */
  render() {
    const out = ['flowchart TB'];
    /** @param {string} group @param {string} indent */
    const emit = (group, indent) => {
      for (const [id, n] of this.nodes) {
        if (n.group !== group) continue;
        const [open, close] = SHAPES[n.shape];
        out.push(`${indent}${id}${open}${quote(n.label)}${close}`);
      }
      for (const [id, g] of this.groups) {
        if (g.parent !== group) continue;
        out.push(`${indent}subgraph ${id}["${quote(escapeHtml(g.title))}"]`);
        emit(id, `${indent}  `);
        out.push(`${indent}end`);
      }
    };
    emit('', '  ');
    out.push(...this.edges);
    out.push(
      '  classDef ours fill:#e8f1fb,stroke:#2b6cb0,color:#1a202c',
      '  classDef secret fill:#fff4d6,stroke:#b7791f,color:#1a202c',
      '  classDef external fill:#f2f2f2,stroke:#777,stroke-dasharray:4 3,color:#1a202c',
    );
    for (const cls of ['ours', 'secret', 'external']) {
      const ids = [...this.nodes].filter(([, n]) => n.cls === cls).map(([id]) => id);
      if (ids.length > 0) out.push(`  class ${ids.join(',')} ${cls}`);
    }
    return out;
  }
}

/** @param {string} text */
function slug(text) {
  return text.replace(/[^A-Za-z0-9]+/g, '_');
}

/** Text inside a quoted Mermaid label. @param {string} text */
function quote(text) {
  return text.replace(/"/g, '#quot;');
}

/**
 * `k=v, k2=v2`.
 * @param {Record<string, string> | undefined} labels
 */
function labelText(labels) {
  return Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
}

/**
 * Whether a label selector selects the labels.
 * @param {any} selector `{ matchLabels, matchExpressions }` or a plain map (a Service's selector)
 * @param {Record<string, string> | undefined} labels
 */
function selects(selector, labels) {
  const have = labels ?? {};
  const matchLabels = selector?.matchLabels ?? (selector?.matchExpressions ? {} : selector ?? {});
  const exact = Object.entries(matchLabels).every(([k, v]) => have[k] === v);
  const expressions = (selector?.matchExpressions ?? []).every((/** @type {any} */ e) => {
    switch (e.operator) {
      case 'In': return e.values.includes(have[e.key]);
      case 'NotIn': return !e.values.includes(have[e.key]);
      case 'Exists': return e.key in have;
      case 'DoesNotExist': return !(e.key in have);
      default: return false;
    }
  });
  return exact && expressions;
}

/**
 * An image reference without its tag and digest, which change with every release: the docs
 * describe the deployment, not the version, so an image bump leaves them as they are.
 * @param {string} image
 */
function imageRepository(image) {
  return image.replace(/@sha256:[0-9a-f]+$/, '').replace(/:[^:/]+$/, '');
}

/**
 * The short form of an image reference: the last path segment of its repository.
 * @param {string} image
 */
function shortImage(image) {
  return imageRepository(image).split('/').pop() ?? image;
}

/**
 * The name of an object as the docs show it. A Job's template is immutable, so its name ends in
 * a hash of its spec that changes with every release; the docs show `<hash>` in its place (the
 * current name is the setting migrationJob in dist/<environment>/plan.tsv).
 * @param {Manifest} m
 */
function shownName(m) {
  return m.kind === 'Job' ? m.metadata.name.replace(/-[0-9a-f]{8}$/, '-<hash>') : m.metadata.name;
}

/** `<` and `>` in Mermaid's HTML labels, as its entity codes. @param {string} text */
function escapeHtml(text) {
  return text.replace(/</g, '#lt;').replace(/>/g, '#gt;');
}

/**
 * Ports of a NetworkPolicy rule, e.g. `TCP 8000` or `UDP 53, TCP 53`.
 * @param {any[] | undefined} ports
 */
function portText(ports) {
  if (!ports || ports.length === 0) return 'all ports';
  return ports.map((p) => `${p.protocol ?? 'TCP'} ${p.port}`).join(', ');
}

/**
 * The workloads of an environment: objects with a pod template.
 * @param {PlanObject[]} objects
 */
function workloads(objects) {
  return objects.filter((o) => o.manifest.spec?.template?.spec?.containers);
}

/**
 * The environment variables a workload sees from its ConfigMaps and its own `env` values.
 * @param {Manifest} workload
 * @param {Manifest[]} configMaps
 */
function plainEnv(workload, configMaps) {
  /** @type {Record<string, string>} */
  const env = {};
  for (const c of workload.spec.template.spec.containers) {
    for (const from of c.envFrom ?? []) {
      const cm = configMaps.find((m) => m.metadata.name === from.configMapRef?.name);
      Object.assign(env, cm?.data ?? {});
    }
    for (const e of c.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
  }
  return env;
}

/**
 * The Mermaid flowchart of one environment.
 * @param {Environment} env
 * @returns {string[]}
 */
function topologyOf(env) {
  const g = new Flowchart();
  const all = env.objects;
  const ofKind = (/** @type {string} */ kind) => all.filter((o) => o.manifest.kind === kind);
  const objectKey = (/** @type {PlanObject} */ o) => `${o.manifest.kind} ${o.namespace} ${shownName(o.manifest)}`;
  const secretKey = (/** @type {string} */ ns, /** @type {string} */ name) => `Secret ${ns} ${name}`;

  // Namespaces: ours (with a Namespace object) and the others the objects live in.
  const ownNamespaces = new Map(ofKind('Namespace').map((o) => [o.name, o]));
  const nsGroup = (/** @type {string} */ ns) => {
    const own = ownNamespaces.get(ns);
    const pss = own?.manifest.metadata.labels?.['pod-security.kubernetes.io/enforce'];
    const title = own
      ? `Namespace ${ns}${pss ? ` · Pod Security ${pss}` : ''}`
      : `namespace ${ns} · not created here`;
    return g.group(`ns ${ns}`, title);
  };
  for (const ns of ownNamespaces.keys()) nsGroup(ns);

  // The pods of the Deployment and the Job, inside the NetworkPolicy that selects them.
  const pods = workloads(all);
  const policies = ofKind('NetworkPolicy');
  const policyGroup = (/** @type {PlanObject} */ policy) => {
    const selector = policy.manifest.spec.podSelector ?? {};
    const components = (selector.matchExpressions ?? [])
      .flatMap((/** @type {any} */ e) => (e.operator === 'In' ? [`${e.key.split('/').pop()} ${e.values.join(', ')}`] : []));
    return g.group(`policy ${policy.namespace} ${policy.name}`,
      `NetworkPolicy ${policy.name}: pods ${components.length ? components.join('; ') : labelText(selector.matchLabels) || '(all)'}`,
      nsGroup(policy.namespace));
  };
  /** @type {Map<string, string>} pod owner key → the group its node is in */
  const podGroup = new Map();
  /** @type {Map<string, string[]>} policy group → owner keys of its pods */
  const policyMembers = new Map();
  for (const w of pods) {
    const labels = w.manifest.spec.template.metadata?.labels;
    const policy = policies.find((p) => p.namespace === w.namespace && selects(p.manifest.spec.podSelector, labels));
    let group = nsGroup(w.namespace);
    if (policy) {
      group = policyGroup(policy);
      policyMembers.set(group, [...(policyMembers.get(group) ?? []), objectKey(w)]);
    }
    podGroup.set(objectKey(w), group);
  }
  for (const w of pods) {
    const spec = w.manifest.spec;
    const lines = [`${w.manifest.kind} ${shownName(w.manifest)}`];
    if (w.manifest.kind === 'Deployment') lines.push(`replicas ${spec.replicas ?? 1}`);
    const images = [...new Set(spec.template.spec.containers.map((/** @type {any} */ c) => shortImage(c.image)))];
    lines.push(`image ${images.join(', ')}`, `phase ${w.phase}`);
    g.node(objectKey(w), lines, { group: podGroup.get(objectKey(w)) });
  }

  /**
   * An edge from a node to the pods that use it: to the NetworkPolicy group when every pod in it
   * uses it the same way, else to each pod.
   * @param {string} from
   * @param {Map<string, string>} users owner key → edge label
   * @param {'flow' | 'uses'} style
   */
  const toPods = (from, users, style) => {
    const done = new Set();
    for (const [group, members] of policyMembers) {
      const labels = new Set(members.map((m) => users.get(m)));
      if (members.length > 1 && labels.size === 1 && members.every((m) => users.has(m))) {
        g.edge(from, group, /** @type {string} */ ([...labels][0]), style);
        members.forEach((m) => done.add(m));
      }
    }
    for (const [owner, label] of users) if (!done.has(owner)) g.edge(from, `n_${slug(owner)}`, label, style);
  };
  /**
   * The same, from the pods to a node.
   * @param {Map<string, string>} users
   * @param {string} to
   * @param {'flow' | 'uses'} style
   */
  const fromPods = (users, to, style) => {
    const done = new Set();
    for (const [group, members] of policyMembers) {
      const labels = new Set(members.map((m) => users.get(m)));
      if (members.length > 1 && labels.size === 1 && members.every((m) => users.has(m))) {
        g.edge(group, to, /** @type {string} */ ([...labels][0]), style);
        members.forEach((m) => done.add(m));
      }
    }
    for (const [owner, label] of users) if (!done.has(owner)) g.edge(`n_${slug(owner)}`, to, label, style);
  };

  // The Internet, the ingress controller and the path of a request down to the pods.
  const ingresses = ofKind('Ingress');
  const middlewares = ofKind('Middleware');
  const services = ofKind('Service');
  const ingressPeers = policies.flatMap((p) => (p.manifest.spec.ingress ?? [])
    .flatMap((/** @type {any} */ rule) => (rule.from ?? []).map((/** @type {any} */ peer) => ({ peer, rule }))));
  /** @param {any} peer @returns {string} */
  const peerNamespace = (peer) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] ?? '';
  for (const ingress of ingresses) {
    const spec = ingress.manifest.spec;
    const className = spec.ingressClassName ?? '(default class)';
    const controllerPeer = ingressPeers[0]?.peer;
    const controllerNs = controllerPeer ? peerNamespace(controllerPeer) : '';
    const controller = g.node(controllerPeer ? `pods ${controllerNs} ${labelText(controllerPeer.podSelector?.matchLabels)}` : `controller ${className}`, [
      `Ingress controller, class ${className}`,
      ...(controllerPeer?.podSelector ? [`pods ${labelText(controllerPeer.podSelector.matchLabels)}`] : []),
      ...(controllerNs ? [`in namespace ${controllerNs}`] : []),
    ], { shape: 'external', cls: 'external' });

    const hosts = (spec.rules ?? []).map((/** @type {any} */ r) => r.host);
    const internet = g.node('internet', ['Internet', ...hosts.map((/** @type {string} */ h) => `https://${h}/`)], {
      shape: 'circle', cls: 'external',
    });
    const address = env.settings.get('ingressAddress');
    g.edge(internet, controller, `${hosts.join(', ')}${address ? ` → ${address}` : ''}, http and https`);

    const ingressNode = g.node(objectKey(ingress), [
      `Ingress ${ingress.name}`, ...hosts.map((/** @type {string} */ h) => `host ${h}`), `phase ${ingress.phase}`,
    ], { group: nsGroup(ingress.namespace) });

    // Traefik's annotation lists the Middlewares in the order they run: <namespace>-<name>@kubernetescrd.
    const chain = (ingress.manifest.metadata.annotations?.['traefik.ingress.kubernetes.io/router.middlewares'] ?? '')
      .split(',').map((s) => s.trim()).filter(Boolean)
      .map((ref) => middlewares.find((m) => `${m.namespace}-${m.name}@kubernetescrd` === ref));
    let previous = controller;
    let label = 'routes the host';
    for (const m of chain) {
      if (!m) continue;
      const mw = g.node(objectKey(m), [`Middleware ${m.name}`, middlewareSummary(m.manifest.spec), `phase ${m.phase}`], {
        group: nsGroup(m.namespace),
      });
      g.edge(previous, mw, label);
      previous = mw;
      label = '';
    }
    g.edge(previous, ingressNode, label);

    for (const rule of spec.rules ?? []) {
      for (const p of rule.http?.paths ?? []) {
        const backend = p.backend?.service;
        const service = services.find((s) => s.namespace === ingress.namespace && s.name === backend?.name);
        if (!service) continue;
        const svcNode = g.node(objectKey(service), [
          `Service ${service.name}`,
          `${service.manifest.spec.type ?? 'ClusterIP'}, ${(service.manifest.spec.ports ?? []).map((/** @type {any} */ sp) => `port ${sp.port} → ${sp.targetPort}`).join(', ')}`,
          `phase ${service.phase}`,
        ], { group: nsGroup(service.namespace) });
        g.edge(ingressNode, svcNode, `${p.path ?? '/'} → port ${backend.port?.number ?? backend.port?.name}`);
      }
    }
    for (const tls of spec.tls ?? []) {
      if (!tls.secretName) continue;
      const secret = g.node(secretKey(ingress.namespace, tls.secretName), secretLines(env, ingress.namespace, tls.secretName), {
        shape: 'secret', cls: 'secret', group: nsGroup(ingress.namespace),
      });
      g.edge(secret, ingressNode, 'TLS', 'uses');
    }
  }

  // Services to the pods they select (by labels, as Kubernetes does).
  for (const service of services) {
    const svcNode = g.node(objectKey(service), [`Service ${service.name}`, `phase ${service.phase}`], {
      group: nsGroup(service.namespace),
    });
    for (const w of pods) {
      if (w.namespace !== service.namespace || !selects(service.manifest.spec.selector, w.manifest.spec.template.metadata?.labels)) continue;
      const containers = w.manifest.spec.template.spec.containers;
      const ports = (service.manifest.spec.ports ?? []).map((/** @type {any} */ sp) => {
        const port = containers.flatMap((/** @type {any} */ c) => c.ports ?? []).find((/** @type {any} */ cp) => cp.name === sp.targetPort || cp.containerPort === sp.targetPort);
        return port ? `${sp.targetPort} = ${port.containerPort}` : String(sp.targetPort);
      });
      g.edge(svcNode, `n_${slug(objectKey(w))}`, `selects, to ${ports.join(', ')}`);
    }
  }

  // What the pods use: settings, Secrets, service account, volumes.
  const configMaps = ofKind('ConfigMap');
  /** @type {Map<string, Map<string, string>>} node id → (pod owner → label) */
  const uses = new Map();
  /** @param {string} id @param {PlanObject} w @param {string} label */
  const use = (id, w, label) => {
    const users = uses.get(id) ?? new Map();
    const before = users.get(objectKey(w));
    users.set(objectKey(w), before ? `${before}, ${label}` : label);
    uses.set(id, users);
  };
  for (const w of pods) {
    const pod = w.manifest.spec.template.spec;
    for (const c of pod.containers) {
      for (const from of c.envFrom ?? []) {
        const cm = configMaps.find((m) => m.namespace === w.namespace && m.name === from.configMapRef?.name);
        if (cm) use(g.node(objectKey(cm), [`ConfigMap ${cm.name}`, 'settings, no secrets', `phase ${cm.phase}`], { group: nsGroup(cm.namespace) }), w, 'env');
      }
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) continue;
        use(g.node(secretKey(w.namespace, ref.name), secretLines(env, w.namespace, ref.name), {
          shape: 'secret', cls: 'secret', group: nsGroup(w.namespace),
        }), w, e.name);
      }
    }
    for (const ref of pod.imagePullSecrets ?? []) {
      use(g.node(secretKey(w.namespace, ref.name), secretLines(env, w.namespace, ref.name), {
        shape: 'secret', cls: 'secret', group: nsGroup(w.namespace),
      }), w, 'image pull');
    }
    if (pod.serviceAccountName) {
      const sa = all.find((o) => o.manifest.kind === 'ServiceAccount' && o.namespace === w.namespace && o.name === pod.serviceAccountName);
      const token = sa?.manifest.automountServiceAccountToken === false ? 'no API token' : 'API token mounted';
      use(g.node(`ServiceAccount ${w.namespace} ${pod.serviceAccountName}`,
        [`ServiceAccount ${pod.serviceAccountName}`, token, ...(sa ? [`phase ${sa.phase}`] : [])],
        { group: nsGroup(w.namespace) }), w, 'runs as');
    }
    for (const v of pod.volumes ?? []) {
      if (!v.persistentVolumeClaim) continue;
      const pvc = all.find((o) => o.manifest.kind === 'PersistentVolumeClaim' && o.namespace === w.namespace && o.name === v.persistentVolumeClaim.claimName);
      const mount = pod.containers.flatMap((/** @type {any} */ c) => c.volumeMounts ?? []).find((/** @type {any} */ m) => m.name === v.name);
      const pvcSpec = pvc?.manifest.spec;
      use(g.node(`PersistentVolumeClaim ${w.namespace} ${v.persistentVolumeClaim.claimName}`, [
        `PersistentVolumeClaim ${v.persistentVolumeClaim.claimName}`,
        ...(pvcSpec ? [`${pvcSpec.resources?.requests?.storage ?? ''} ${pvcSpec.storageClassName ?? ''} ${(pvcSpec.accessModes ?? []).join(', ')}`.trim()] : []),
        ...(pvc ? [`phase ${pvc.phase}`] : []),
      ], { group: nsGroup(w.namespace) }), w, `mounted at ${mount?.mountPath ?? v.name}`);
    }
  }
  for (const [id, users] of uses) toPods(id, users, 'uses');

  // The database: the pods log in as PGUSER to PGDATABASE through PGHOST (libpq's variables).
  const roles = ofKind('DatabaseRole');
  const databases = ofKind('Database');
  const managedRoles = env.handOver.flatMap((h) => (h.body?.spec?.managed?.roles ?? []).map((/** @type {any} */ r) => ({ role: r, file: h.path })));
  /** @param {string} cluster @param {string} ns */
  const clusterNode = (cluster, ns) => g.node(`cnpg cluster ${ns} ${cluster}`, [
    `CloudNativePG Cluster ${cluster}`, 'PostgreSQL, not created here',
  ], { shape: 'database', cls: 'external', group: nsGroup(ns) });
  /** @type {Map<string, Map<string, string>>} role node → (pod owner → label) */
  const logins = new Map();
  for (const w of pods) {
    const vars = plainEnv(w.manifest, configMaps.map((c) => c.manifest));
    if (!vars.PGUSER) continue;
    const role = roles.find((r) => r.manifest.spec?.name === vars.PGUSER);
    const managed = managedRoles.find((r) => r.role.name === vars.PGUSER);
    let roleNode;
    let cluster;
    let clusterNs;
    if (role) {
      cluster = role.manifest.spec.cluster?.name;
      clusterNs = role.namespace;
      roleNode = g.node(objectKey(role), [
        `DatabaseRole ${role.name}`, `role ${role.manifest.spec.name}, login, ${role.manifest.spec.connectionLimit ?? 'no'} connections max`,
        `phase ${role.phase}`,
      ], { group: nsGroup(role.namespace) });
    } else {
      const database = databases.find((d) => d.manifest.spec?.name === vars.PGDATABASE);
      cluster = database?.manifest.spec.cluster?.name ?? env.settings.get('databaseCluster');
      clusterNs = database?.namespace ?? env.settings.get('databaseNamespace') ?? '';
      roleNode = g.node(`managed role ${vars.PGUSER}`, [
        `role ${vars.PGUSER}`,
        managed ? `in spec.managed.roles of ${cluster}, from dist/${env.name}/${managed.file}` : 'not declared in dist/',
      ], { cls: 'external', group: nsGroup(clusterNs) });
    }
    const label = `${vars.PGHOST ?? '?'}:${vars.PGPORT ?? '5432'}, sslmode ${vars.PGSSLMODE ?? 'prefer'}, as ${vars.PGUSER}`;
    logins.set(roleNode, new Map([...(logins.get(roleNode) ?? []), [objectKey(w), label]]));

    const password = role?.manifest.spec.passwordSecret?.name ?? managed?.role.passwordSecret?.name;
    if (password) {
      const secret = g.node(secretKey(clusterNs, password), secretLines(env, clusterNs, password), {
        shape: 'secret', cls: 'secret', group: nsGroup(clusterNs),
      });
      g.edge(secret, roleNode, 'password', 'uses');
    }
    const database = databases.find((d) => d.manifest.spec?.name === vars.PGDATABASE);
    if (database) {
      const dbNode = g.node(objectKey(database), [
        `Database ${database.name}`, `${database.manifest.spec.name}, owner ${database.manifest.spec.owner}`,
        `reclaim ${database.manifest.spec.databaseReclaimPolicy ?? 'delete'}`, `phase ${database.phase}`,
      ], { group: nsGroup(database.namespace) });
      if (database.manifest.spec.owner === vars.PGUSER) g.edge(roleNode, dbNode, 'owns');
      g.edge(dbNode, clusterNode(database.manifest.spec.cluster?.name ?? cluster, database.namespace), 'in');
    } else if (cluster) {
      g.edge(roleNode, clusterNode(cluster, clusterNs), 'in');
    }
  }
  for (const [roleNode, users] of logins) fromPods(users, roleNode, 'flow');

  // The certificate: the ClusterIssuer issues it into its Secret.
  for (const cert of ofKind('Certificate')) {
    const spec = cert.manifest.spec;
    const certNode = g.node(objectKey(cert), [
      `Certificate ${cert.name}`, ...(spec.dnsNames ?? []), `phase ${cert.phase}`,
    ], { group: nsGroup(cert.namespace) });
    const issuer = spec.issuerRef ?? {};
    const issuerNode = g.node(`issuer ${issuer.kind} ${issuer.name}`, [
      `${issuer.kind ?? 'Issuer'} ${issuer.name}`, `${issuer.group ?? 'cert-manager.io'}, not created here`,
    ], { shape: 'external', cls: 'external', group: issuer.kind === 'ClusterIssuer' ? '' : nsGroup(cert.namespace) });
    g.edge(issuerNode, certNode, 'issues');
    if (spec.secretName) {
      const secret = g.node(secretKey(cert.namespace, spec.secretName), secretLines(env, cert.namespace, spec.secretName), {
        shape: 'secret', cls: 'secret', group: nsGroup(cert.namespace),
      });
      g.edge(certNode, secret, 'writes');
    }
  }

  // The Secrets from SOPS: the deploy decrypts each file straight into kubectl.
  const sopsSecrets = env.secrets.filter((x) => x.source === 'sops');
  if (sopsSecrets.length > 0) {
    const folders = [...new Set(sopsSecrets.map((x) => path.posix.dirname(x.file ?? '')))];
    const sops = g.node(`sops ${folders.join(' ')}`, [
      ...folders.map((f) => `${f}/*.sops.yaml`), 'SOPS, encrypted with age, in git',
    ], { shape: 'files', cls: 'secret' });
    for (const x of sopsSecrets) {
      const secret = g.node(secretKey(x.namespace, x.name), secretLines(env, x.namespace, x.name), {
        shape: 'secret', cls: 'secret', group: nsGroup(x.namespace),
      });
      g.edge(sops, secret, 'decrypted by the deploy', 'uses');
    }
  }

  // What each NetworkPolicy lets in and out.
  for (const p of policies) {
    const group = policyGroup(p);
    for (const rule of p.manifest.spec.ingress ?? []) {
      for (const peer of rule.from ?? []) {
        g.edge(policyPeer(g, peer, nsGroup), group, `allowed in: ${portText(rule.ports)}`, 'uses');
      }
    }
    for (const rule of p.manifest.spec.egress ?? []) {
      for (const peer of rule.to ?? []) {
        g.edge(group, policyPeer(g, peer, nsGroup), `allowed out: ${portText(rule.ports)}`, 'uses');
      }
    }
  }

  // Anything else in dist/ still appears, so the picture never silently misses an object.
  for (const o of all) {
    if (o.manifest.kind === 'Namespace' || o.manifest.kind === 'NetworkPolicy') continue;
    if (g.has(objectKey(o)) || g.has(`${o.manifest.kind} ${o.namespace} ${o.name}`)) continue;
    g.node(objectKey(o), [`${o.manifest.kind} ${shownName(o.manifest)}`, `phase ${o.phase}`],
      { group: o.namespace === '-' ? '' : nsGroup(o.namespace) });
  }
  return g.render();
}

/**
 * The node of a NetworkPolicy peer: the ingress controller or the database cluster when the peer
 * selects them, else a node of its own.
 * @param {Flowchart} g
 * @param {any} peer
 * @param {(ns: string) => string} nsGroup
 */
function policyPeer(g, peer, nsGroup) {
  if (peer.ipBlock) return g.node(`cidr ${peer.ipBlock.cidr}`, [`${peer.ipBlock.cidr}`, 'outside the cluster'], { shape: 'external', cls: 'external' });
  const ns = peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] ?? '';
  const labels = peer.podSelector?.matchLabels ?? {};
  const cluster = labels['cnpg.io/cluster'];
  if (cluster && Object.keys(labels).length === 1) {
    return g.node(`cnpg cluster ${ns} ${cluster}`, [`CloudNativePG Cluster ${cluster}`, 'PostgreSQL, not created here'], {
      shape: 'database', cls: 'external', group: ns ? nsGroup(ns) : '',
    });
  }
  return g.node(`pods ${ns} ${labelText(labels)}`, [
    `pods ${labelText(labels) || '(all)'}`, ns ? `in namespace ${ns}` : 'in any namespace',
  ], { shape: 'external', cls: 'external' });
}

/**
 * The label of a Secret node, from secrets.yaml when it lists the Secret.
 * @param {Environment} env
 * @param {string} namespace
 * @param {string} name
 */
function secretLines(env, namespace, name) {
  const known = env.secrets.find((x) => x.namespace === namespace && x.name === name);
  if (!known) return [`Secret ${name}`, 'not in secrets.yaml'];
  return [`Secret ${name}`, `${known.type}: ${known.keys.join(', ')}`, known.source === 'sops' ? 'from SOPS' : `from ${known.source}`];
}

/**
 * What a Traefik Middleware does, in a few words.
 * @param {any} spec
 */
function middlewareSummary(spec) {
  /** @type {string[]} */
  const parts = [];
  for (const [key, value] of Object.entries(spec ?? {})) {
    if (key === 'redirectScheme') parts.push(`redirect to ${/** @type {any} */ (value).scheme}`);
    else if (key === 'headers') {
      const v = /** @type {any} */ (value);
      parts.push(v.stsSeconds ? `HSTS ${v.stsSeconds}s and security headers` : 'headers');
    } else parts.push(key);
  }
  return parts.join(', ');
}

/**
 * docs/topology.md.
 * @param {Environment[]} environments
 * @returns {string}
 */
function renderTopology(environments) {
  const out = [
    '<!-- Generated by `npm run docs` from dist/; do not edit. `npm test` fails when it is stale. -->',
    '# Deployed topology',
    '',
    'What the deploy creates and what it relies on, drawn from the synthesized objects in',
    '`dist/<environment>/`. Every object is in [objects.md](objects.md); the runbook is',
    '[vergabe-teilnahme.md](vergabe-teilnahme.md).',
    '',
    '- Blue boxes are objects in `dist/` (their phase file is on the last line); yellow shapes are',
    '  Secrets and their SOPS files; grey dashed shapes exist without this repository (the ingress',
    '  controller, cert-manager\'s issuer, the PostgreSQL cluster, cluster DNS).',
    '- Solid arrows are the path of a request or a connection; dotted arrows are what an object',
    '  uses (settings, Secrets, volumes) and what the NetworkPolicy allows.',
    '- A box around pods is the NetworkPolicy that selects them: only the dotted "allowed" arrows',
    '  reach them or leave them.',
  ];
  for (const env of ordered(environments)) {
    out.push('', `## ${env.name}`, '', '```mermaid', ...topologyOf(env), '```');
  }
  out.push('');
  return out.join('\n');
}

/* ------------------------------------------------------------------------------------------ */
/* The command                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/**
 * The generated documents for the given environment outputs.
 * @param {EnvironmentFiles[]} sources
 * @returns {OutputFile[]}
 */
function generate(sources) {
  const environments = sources.map(parseEnvironment);
  return [
    { path: OBJECTS_DOC, content: renderObjects(environments) },
    { path: TOPOLOGY_DOC, content: renderTopology(environments) },
  ];
}

/**
 * The generated documents whose committed content differs from what would be generated now.
 * @param {string} root
 * @param {OutputFile[]} files
 * @returns {string[]}
 */
function staleFiles(root, files) {
  return files.filter((f) => {
    try {
      return fs.readFileSync(path.join(root, f.path), 'utf8') !== f.content;
    } catch {
      return true;
    }
  }).map((f) => f.path);
}

/** @param {string[]} argv */
function main(argv) {
  const root = path.resolve(__dirname, '..');
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    console.error(`docs: unknown argument ${unknown[0]} (usage: node scripts/docs.js [--check])`);
    return 2;
  }
  try {
    const files = generate(readDist(path.join(root, 'dist')));
    if (argv.includes('--check')) {
      const stale = staleFiles(root, files);
      for (const file of stale) console.error(`docs: ${file} is stale: run \`npm run docs\` and commit it`);
      if (stale.length === 0) console.log(`docs: ${files.map((f) => f.path).join(', ')} are up to date`);
      return stale.length === 0 ? 0 : 1;
    }
    for (const file of files) {
      const target = path.join(root, file.path);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      // Written whole through a temporary file, so an interrupted run leaves the previous doc.
      fs.writeFileSync(`${target}.tmp-${process.pid}`, file.content);
      fs.renameSync(`${target}.tmp-${process.pid}`, target);
      console.log(`docs: wrote ${file.path}`);
    }
    return 0;
  } catch (error) {
    if (error instanceof DocsError) {
      console.error(`docs: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

module.exports = { generate, readDist, staleFiles, OBJECTS_DOC, TOPOLOGY_DOC, DocsError };

if (require.main === module) process.exitCode = main(process.argv.slice(2));
