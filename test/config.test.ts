import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { ConfigError, loadEnvironment, parseEnvironment } from '../lib/config';
import { configData, productionWith } from './helpers';

/** The problems reported for production's configuration with one change. */
function problemsWith(change: (config: any) => void, name = 'production'): string[] {
  try {
    parseEnvironment(name, productionWith(change));
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('the committed configuration', () => {
  test('production validates and gets the documented defaults', () => {
    const { config } = parseEnvironment('production', configData('production'));
    expect(config.image.healthPath).toBe('/healthz');
    expect(config.image.port).toBe(8000);
    expect(config.app.media.enabled).toBe(false);
    expect(config.app.replicas).toBe(1);
  });

  test('without migration.backupMethod a backup uses barmanObjectStore, cnpg\'s own default', () => {
    const data = productionWith((c) => { delete c.migration.backupMethod; });
    const { config } = parseEnvironment('production', data);
    expect(config.migration.backupMethod).toBe('barmanObjectStore');
    expect(config.migration.backupPlugin).toBeUndefined();
  });
});

describe('bad input names the environment, the field and the value', () => {
  test.each<[string, (c: any) => void, string]>([
    ['a host that is not a DNS name', (c) => { c.app.host = 'Vergabe Teilnahme'; },
      'config production: app.host "Vergabe Teilnahme" is not a fully qualified DNS name'],
    ['a wildcard host', (c) => { c.app.host = '*.whywhynot.de'; },
      'config production: app.host "*.whywhynot.de" is not a fully qualified DNS name'],
    ['the tag latest', (c) => { c.image.tag = 'latest'; },
      'config production: image.tag "latest" is not a git commit hash (7 to 40 lowercase hex digits)'],
    ['an upper-case tag', (c) => { c.image.tag = 'ABCDEF1'; },
      'config production: image.tag "ABCDEF1" is not a git commit hash'],
    ['a too short tag', (c) => { c.image.tag = 'abc123'; },
      'config production: image.tag "abc123" is not a git commit hash'],
    ['a tag YAML reads as a number', (c) => { c.image.tag = 1234567; },
      'config production: image.tag 1234567 is not of type "string" (YAML read it as a number: put it in quotes)'],
    ['a digest without sha256:', (c) => { c.image.digest = 'a'.repeat(64); },
      `config production: image.digest "${'a'.repeat(64)}" is not an image digest`],
    ['a namespace that is not DNS-1123', (c) => { c.app.namespace = 'Vergabe_Teilnahme'; },
      'config production: app.namespace "Vergabe_Teilnahme" is not a DNS-1123 label'],
    ['an app name too long for the Job name', (c) => { c.app.name = 'a'.repeat(47); },
      `config production: app.name "${'a'.repeat(47)}" is not a DNS-1123 label of at most 46 characters`],
    ['a quantity that does not parse', (c) => { c.app.resources.limits.memory = 'lots'; },
      'config production: app.resources.limits.memory "lots" is not a memory or storage quantity'],
    ['a CPU limit below the request', (c) => { c.app.resources.limits.cpu = '50m'; },
      'config production: app.resources.limits.cpu "50m" is below app.resources.requests.cpu "100m"'],
    ['a memory limit below the request', (c) => { c.app.resources.limits.memory = '256Mi'; },
      'config production: app.resources.limits.memory "256Mi" is below app.resources.requests.memory "384Mi"'],
    ['a probe path without a leading /', (c) => { c.image.healthPath = 'healthz'; },
      'config production: image.healthPath "healthz" is not a URL path with a leading "/"'],
    ['a connection limit too small for the workers', (c) => { c.database.connectionLimit = 10; },
      'config production: database.connectionLimit 10 is too small'],
    ['an unknown key', (c) => { c.app.replica = 2; }, 'config production: app.replica is not a known setting'],
    ['an unknown top-level key', (c) => { c.debug = true; }, 'config production: debug is not a known setting'],
    ['a missing required field', (c) => { delete c.image.tag; },
      'config production: image.tag is required but missing'],
    ['development settings', (c) => { c.app.settingsModule = 'vergabe_teilnahme.settings.dev'; },
      'config production: app.settingsModule "vergabe_teilnahme.settings.dev" is not a dotted Python module path ending in ".prod"'],
    ['a DEBUG switch in extra env', (c) => { c.app.extraEnv = { DJANGO_DEBUG: 'true' }; },
      'config production: app.extraEnv: key "DJANGO_DEBUG" is not an upper-case variable name'],
    ['extra env overriding a managed setting', (c) => { c.app.extraEnv = { ALLOWED_HOSTS: '*' }; },
      'config production: app.extraEnv: key "ALLOWED_HOSTS" is not'],
    ['a role mode that does not exist', (c) => { c.database.roleMode = 'Managed'; },
      'config production: database.roleMode "Managed" is not one of ["DatabaseRole","ClusterManagedRole"]'],
    ['a PostgreSQL name with a dash', (c) => { c.database.name = 'vergabe-db'; },
      'config production: database.name "vergabe-db" is not a PostgreSQL identifier'],
    ['media with two replicas',
      (c) => { c.app.media = { enabled: true }; c.app.replicas = 2; c.database.connectionLimit = 40; },
      'config production: app.replicas 2 is not 1, but app.media.enabled is true'],
    ['an extra egress that is not a CIDR',
      (c) => { c.app.extraEgress = [{ cidr: 'smtp.example.org', ports: [587] }]; },
      'config production: app.extraEgress[0].cidr "smtp.example.org" is not an IPv4 CIDR'],
    ['a pull secret name that is not DNS-1123', (c) => { c.image.pullSecret = 'Gitea_Registry'; },
      'config production: image.pullSecret "Gitea_Registry" is not a Secret name (a DNS-1123 label) or null'],
    ['a worker count out of range', (c) => { c.app.gunicorn.workers = 0; },
      'config production: app.gunicorn.workers 0: must be >= 1'],
    ['a backup method cnpg does not know', (c) => { c.migration.backupMethod = 'pgdump'; },
      'config production: migration.backupMethod "pgdump" is not one of '
        + '["barmanObjectStore","volumeSnapshot","plugin"]'],
    ['backups by a plugin without its name', (c) => { c.migration.backupMethod = 'plugin'; },
      'config production: migration.backupPlugin is required but missing: migration.backupMethod "plugin" '
        + 'needs the plugin\'s name'],
    ['a backup plugin named while the method is not plugin',
      (c) => { c.migration.backupPlugin = 'barman-cloud.cloudnative-pg.io'; },
      'config production: migration.backupPlugin "barman-cloud.cloudnative-pg.io" is set, but '
        + 'migration.backupMethod is "barmanObjectStore", not "plugin"'],
    ['a backup plugin name that is not a DNS name',
      (c) => { c.migration.backupMethod = 'plugin'; c.migration.backupPlugin = 'Barman Cloud'; },
      'config production: migration.backupPlugin "Barman Cloud" is not a fully qualified DNS name'],
  ])('%s', (_case, change, expected) => {
    const problems = problemsWith(change);
    const pattern = new RegExp(`^${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);
    expect(problems).toContainEqual(expect.stringMatching(pattern));
  });

  test('every problem is reported, one line each', () => {
    const problems = problemsWith((c) => { c.image.tag = 'latest'; c.app.host = 'x'; c.app.typo = 1; });
    expect(problems).toHaveLength(3);
    for (const p of problems) expect(p).not.toContain('\n');
  });

  test('an environment name that is not a DNS label', () => {
    expect(problemsWith(() => undefined, 'Prod_1')).toEqual([
      'config Prod_1: the environment name "Prod_1" is not a DNS-1123 label of 1 to 32 characters',
    ]);
  });
});

describe('files', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'vergabe-config-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('a YAML syntax error names the file, line and column', () => {
    const file = join(dir, 'production.yaml');
    writeFileSync(file, 'kubeContext: railiance01\napp:\n  name: [unclosed\n');
    expect(() => loadEnvironment(file)).toThrow(ConfigError);
    try {
      loadEnvironment(file);
    } catch (error) {
      expect((error as ConfigError).problems[0])
        .toMatch(new RegExp(`^config production: ${file}:[0-9]+:[0-9]+: YAML syntax error`));
    }
  });

  test('a duplicate key is a YAML error, not a silent override', () => {
    const file = join(dir, 'production.yaml');
    writeFileSync(file, 'kubeContext: a\nkubeContext: b\n');
    expect(() => loadEnvironment(file)).toThrow(/YAML syntax error/);
  });

  test('a missing file names the file', () => {
    expect(() => loadEnvironment(join(dir, 'staging.yaml')))
      .toThrow(/^config staging: cannot read .*staging\.yaml \(ENOENT\)$/);
  });
});
