import { parse } from 'yaml';
import { configData, Manifest, manifests, one, synth } from './helpers';

const files = synth(['production', configData('production')], ['staging', configData('staging')]);
const stagingFiles = files.filter((f) => f.path.startsWith('staging/'));
const byEnvironment = (environment: string): Manifest[] =>
  manifests(files.filter((f) => f.path.startsWith(`${environment}/`)));
const production = byEnvironment('production');
const staging = byEnvironment('staging');

describe('snapshots of every staging output file', () => {
  test.each(stagingFiles.map((f) => [f.path, f.content]))('%s', (_path, content) => {
    expect(content).toMatchSnapshot();
  });
});

describe('staging is built from the same constructs as production', () => {
  test('the same kinds of objects in the same phases', () => {
    const shape = (objects: Manifest[]) => objects.map((o) => o.kind);
    expect(shape(staging)).toEqual(shape(production));
    const phaseFiles = (env: string) =>
      files.filter((f) => f.path.startsWith(`${env}/`)).map((f) => f.path.slice(env.length));
    expect(phaseFiles('staging')).toEqual(phaseFiles('production'));
  });

  test('its own host, namespace, issuer (Let\'s Encrypt staging), database and role', () => {
    expect(one(staging, 'Ingress').spec.rules[0].host).toBe('vergabe-teilnahme-staging.whywhynot.de');
    expect(one(staging, 'Namespace').metadata.name).toBe('vergabe-teilnahme-staging');
    expect(one(staging, 'Certificate').spec.issuerRef).toEqual({
      group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'letsencrypt-staging',
    });
    expect(one(staging, 'Database').spec)
      .toEqual(expect.objectContaining({ name: 'vergabe_staging_db', owner: 'vergabe_staging' }));
    expect(one(staging, 'DatabaseRole').spec.name).toBe('vergabe_staging');
  });

  test('only staging lets the smoke check accept an untrusted chain', () => {
    const setting = (env: string) => files.find((f) => f.path === `${env}/plan.tsv`)!.content
      .match(/^setting\tacceptUntrustedChain\t(\S+)$/m)![1];
    expect(setting('staging')).toBe('true');
    expect(setting('production')).toBe('false');
  });

  test('staging still runs the production settings module, never DEBUG', () => {
    expect(one(staging, 'ConfigMap').data!.DJANGO_SETTINGS_MODULE).toMatch(/\.prod$/);
    expect(Object.keys(one(staging, 'ConfigMap').data!).filter((k) => /DEBUG/.test(k))).toEqual([]);
  });
});

describe('the two environments share nothing', () => {
  test('no namespaced object of one is an object of the other', () => {
    const ids = (objects: Manifest[]) =>
      new Set(objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`));
    const prod = ids(production);
    expect([...ids(staging)].filter((id) => prod.has(id))).toEqual([]);
  });

  test('no host, namespace, Secret, role or database in common', () => {
    const facts = (env: string) => {
      const objects = byEnvironment(env);
      const secrets = parse(files.find((f) => f.path === `${env}/secrets.yaml`)!.content).secrets;
      return new Set([
        ...objects.filter((o) => o.kind === 'Ingress')
          .flatMap((o) => o.spec.rules.map((r: any) => `host:${r.host}`)),
        ...objects.filter((o) => o.kind === 'Certificate')
          .flatMap((o) => o.spec.dnsNames.map((h: string) => `host:${h}`)),
        ...objects.filter((o) => o.kind === 'Namespace').map((o) => `namespace:${o.metadata.name}`),
        ...secrets.map((s: any) => `secret:${s.namespace}/${s.name}`),
        ...secrets.filter((s: any) => s.file).map((s: any) => `file:${s.file}`),
        ...objects.filter((o) => o.kind === 'DatabaseRole').map((o) => `role:${o.spec.name}`),
        ...objects.filter((o) => o.kind === 'Database').map((o) => `database:${o.spec.name}`),
        `role:${one(objects, 'Database').spec.owner}`,
        `pguser:${one(objects, 'ConfigMap').data!.PGUSER}`,
      ]);
    };
    const prod = facts('production');
    expect([...facts('staging')].filter((f) => prod.has(f))).toEqual([]);
  });

  test('the selectors of one environment never match the pods of the other', () => {
    const selector = one(production, 'Service').spec.selector;
    const stagingPods = [one(staging, 'Deployment'), one(staging, 'Job')]
      .map((o) => o.spec.template.metadata.labels);
    for (const labels of stagingPods) {
      expect(Object.entries(selector).every(([k, v]) => labels[k] === v)).toBe(false);
    }
  });
});
