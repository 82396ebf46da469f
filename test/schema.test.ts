/*
 * Strict offline validation of every synthesized object: Kubernetes kinds against the 1.28 and
 * 1.33 OpenAPI definitions, custom resources against their vendored CRDs. Like kubeconform's
 * -strict, an object schema that lists properties is closed, so a misspelt field is an error
 * here instead of being dropped silently by the API server.
 */
import { readFileSync, readdirSync } from 'fs';
import { join } from 'path';
import Ajv, { ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { configData, Manifest, manifests, productionFiles, productionWith, ROOT, synth } from './helpers';

type Schema = Record<string, any>;

/** Closes every object schema that lists properties and does not ask to keep unknown fields. */
function strict(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strict);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    // `properties` maps names to schemas: recurse into each schema, never treat the map as one.
    out[key] = key === 'properties' || key === 'definitions'
      ? Object.fromEntries(Object.entries(value as Schema).map(([k, v]) => [k, strict(v)]))
      : strict(value);
  }
  if (out.properties && out.additionalProperties === undefined
    && !out['x-kubernetes-preserve-unknown-fields']) {
    out.additionalProperties = false;
  }
  return out;
}

function newAjv(): Ajv {
  return new Ajv({ strict: false, allErrors: true, validateFormats: false });
}

/** A validator per group/version/kind of one Kubernetes version's definitions. */
function kubernetesValidators(version: string): { ajv: Ajv; byKind: Map<string, string>; id: string } {
  const file = join(ROOT, 'test', 'schemas', 'k8s', `v${version}.definitions.json`);
  const document = JSON.parse(readFileSync(file, 'utf8'));
  const id = `k8s-${version}`;
  const ajv = newAjv();
  ajv.addSchema({ $id: id, definitions: (strict(document) as Schema).definitions });
  const byKind = new Map<string, string>();
  for (const [name, definition] of Object.entries<Schema>(document.definitions)) {
    for (const gvk of definition['x-kubernetes-group-version-kind'] ?? []) {
      const apiVersion = gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version;
      byKind.set(`${apiVersion}/${gvk.kind}`, name);
    }
  }
  return { ajv, byKind, id };
}

/** Validators for the vendored CRDs, with metadata checked as a strict ObjectMeta. */
function crdValidators(k8s: { ajv: Ajv; id: string }): Map<string, ValidateFunction> {
  const dir = join(ROOT, 'imports', 'crds');
  const validators = new Map<string, ValidateFunction>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    const crd = parse(readFileSync(join(dir, file), 'utf8'));
    for (const version of crd.spec.versions) {
      const schema = strict(version.schema.openAPIV3Schema) as Schema;
      schema.properties.metadata = {
        $ref: `${k8s.id}#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`,
      };
      validators.set(`${crd.spec.group}/${version.name}/${crd.spec.names.kind}`, k8s.ajv.compile(schema));
    }
  }
  return validators;
}

function errorsOf(validate: ValidateFunction): string {
  return (validate.errors ?? [])
    .map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`).join('; ');
}

const productionObjects = manifests(productionFiles());
const stagingObjects = manifests(synth(['staging', configData('staging')]));
const allModesObjects = manifests(synth(['production', productionWith((c) => {
  c.app.media = { enabled: true };
  c.image.pullSecret = 'gitea-registry';
  c.image.digest = `sha256:${'c'.repeat(64)}`;
  c.app.extraEgress = [{ cidr: '203.0.113.25/32', ports: [587] }];
})]));

describe.each(['1.28.0', '1.33.0'])('Kubernetes %s, strict', (version) => {
  const k8s = kubernetesValidators(version);
  const crds = crdValidators(k8s);

  function validate(object: Manifest): string {
    const key = `${object.apiVersion}/${object.kind}`;
    const crd = crds.get(key);
    if (crd) return crd(object) ? '' : errorsOf(crd);
    const name = k8s.byKind.get(key);
    if (!name) return `no schema for ${key}`;
    const validator = k8s.ajv.getSchema(`${k8s.id}#/definitions/${name}`)!;
    return validator(object) ? '' : errorsOf(validator);
  }

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
  const crd = parse(readFileSync(join(ROOT, 'imports', 'crds', 'postgresql.cnpg.io_clusters.yaml'), 'utf8'));
  const roleSchema = crd.spec.versions[0].schema.openAPIV3Schema
    .properties.spec.properties.managed.properties.roles.items;
  const validate = newAjv().compile(strict(roleSchema) as Schema);
  for (const role of fragment.spec.managed.roles) {
    expect(validate(role) ? '' : errorsOf(validate)).toBe('');
  }
});
