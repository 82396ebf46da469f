/*
 * Strict offline validation of every synthesized object: Kubernetes kinds against the 1.28 and
 * 1.33 OpenAPI definitions, custom resources against their vendored CRDs. Like kubeconform's
 * -strict, an object schema that lists properties is closed, so a misspelt field is an error
 * here instead of being dropped silently by the API server.
 */
import { parse } from 'yaml';
import { configData, Manifest, manifests, productionFiles, productionWith, synth } from './helpers';
import { customResourceDefinition, errorsOf, kubernetes, newAjv, strict } from './k8s-schemas';

const productionObjects = manifests(productionFiles());
const stagingObjects = manifests(synth(['staging', configData('staging')]));
const allModesObjects = manifests(synth(['production', productionWith((c) => {
  c.app.media = { enabled: true };
  c.image.pullSecret = 'gitea-registry';
  c.image.digest = `sha256:${'c'.repeat(64)}`;
  c.app.extraEgress = [{ cidr: '203.0.113.25/32', ports: [587] }];
})]));

describe.each(['1.28.0', '1.33.0'])('Kubernetes %s, strict', (version) => {
  const validate = (object: Manifest): string => kubernetes(version).validate(object);

  const productionCases = productionObjects.map((o) => [`${o.kind} ${o.metadata.name}`, o]);
  test.each(productionCases)('production %s is valid', (_n, object) => {
    expect(validate(object as Manifest)).toBe('');
  });

  const stagingCases = stagingObjects.map((o) => [`${o.kind} ${o.metadata.name}`, o]);
  test.each(stagingCases)('staging %s is valid', (_n, object) => {
    expect(validate(object as Manifest)).toBe('');
  });

  test.each(allModesObjects.map((o) => [`${o.kind} ${o.metadata.name}`, o]))(
    'with media, pull secret, digest and extra egress: %s is valid', (_n, object) => {
      expect(validate(object as Manifest)).toBe('');
    });

  test('the validator is strict: an unknown field is an error', () => {
    const deployment = structuredClone(productionObjects.find((o) => o.kind === 'Deployment')!);
    deployment.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
    expect(validate(deployment)).toMatch(/additional properties.*imagePullPolicyy/);
    const role = structuredClone(productionObjects.find((o) => o.kind === 'DatabaseRole')!);
    role.spec.superUser = false;
    expect(validate(role)).toMatch(/additional properties.*superUser/);
  });
});

test('the platform team fragment is a valid spec.managed.roles entry of a cnpg Cluster', () => {
  const files = synth(['production', productionWith((c) => { c.database.roleMode = 'ClusterManagedRole'; })]);
  const fragment = parse(files.find((f) => f.path.includes('platform-team/'))!.content);
  const crd = customResourceDefinition('postgresql.cnpg.io_clusters.yaml');
  const roleSchema = crd.spec.versions[0].schema.openAPIV3Schema
    .properties.spec.properties.managed.properties.roles.items;
  const validate = newAjv().compile(strict(roleSchema) as object);
  for (const role of fragment.spec.managed.roles) {
    expect(validate(role) ? '' : errorsOf(validate)).toBe('');
  }
});
