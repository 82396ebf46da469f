/*
 * Strict offline validation of Kubernetes objects: built-in kinds against a Kubernetes version's
 * OpenAPI definitions (test/schemas/k8s/), custom resources against the vendored CRDs
 * (imports/crds/). Like kubeconform's -strict, an object schema that lists properties is closed, so
 * a misspelt field is an error here instead of being dropped silently by the API server.
 *
 * The vendored schemas are large (the cnpg Cluster CRD alone is 464 kB), so a schema is read,
 * closed and compiled only when an object of its kind is first validated, and then kept.
 */
import { readdirSync, readFileSync } from 'fs';
import { join } from 'path';
import Ajv, { ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { ROOT } from './root';

type Schema = Record<string, any>;

const CRD_DIR = join(ROOT, 'imports', 'crds');

/**
 * Closes every object schema that lists properties and does not ask to keep unknown fields;
 * `ref` gives the new target of each `$ref`.
 */
export function strict(schema: unknown, ref: (target: string) => string = (target) => target): unknown {
  if (Array.isArray(schema)) return schema.map((s) => strict(s, ref));
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    // `properties` maps names to schemas: recurse into each schema, never treat the map as one.
    if (key === 'properties' || key === 'definitions') {
      out[key] = Object.fromEntries(Object.entries(value as Schema).map(([k, v]) => [k, strict(v, ref)]));
    } else {
      out[key] = key === '$ref' && typeof value === 'string' ? ref(value) : strict(value, ref);
    }
  }
  if (out.properties && out.additionalProperties === undefined
    && !out['x-kubernetes-preserve-unknown-fields']) {
    out.additionalProperties = false;
  }
  return out;
}

/**
 * A validator that reports every error. The vendored schemas are upstream's own, so they are not
 * checked against the JSON Schema meta-schema; and each compiled check runs only a few times, so
 * optimizing its code would cost more than it saves.
 */
export function newAjv(): Ajv {
  return new Ajv({
    strict: false, allErrors: true, validateFormats: false, validateSchema: false,
    inlineRefs: false, code: { optimize: false },
  });
}

/** The errors of a validator's last run, on one line. */
export function errorsOf(validate: ValidateFunction): string {
  return (validate.errors ?? [])
    .map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`).join('; ');
}

const parsedCrds = new Map<string, Schema>();

/** A vendored CRD of imports/crds/, parsed once. */
export function customResourceDefinition(file: string): Schema {
  let crd = parsedCrds.get(file);
  if (!crd) {
    crd = parse(readFileSync(join(CRD_DIR, file), 'utf8')) as Schema;
    parsedCrds.set(file, crd);
  }
  return crd;
}

let crdFiles: Map<string, string> | undefined;

/**
 * The vendored CRD file of each group/kind. Only the head of a file, up to its versions and their
 * schemas, is read for this.
 */
function crdFileOf(group: string, kind: string): string | undefined {
  if (!crdFiles) {
    crdFiles = new Map();
    for (const file of readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml')).sort()) {
      const text = readFileSync(join(CRD_DIR, file), 'utf8');
      const versions = text.search(/^ {2}versions:$/m);
      let head = parse(versions < 0 ? text : text.slice(0, versions)) as Schema;
      if (!head?.spec?.group || !head.spec.names?.kind) head = customResourceDefinition(file);
      crdFiles.set(`${head.spec.group}/${head.spec.names.kind}`, file);
    }
  }
  return crdFiles.get(`${group}/${kind}`);
}

/** The closed openAPIV3Schema of each version of a CRD, by file and version. */
const crdSchemas = new Map<string, Schema | undefined>();

function crdSchema(file: string, version: string): Schema | undefined {
  const key = `${file}/${version}`;
  if (!crdSchemas.has(key)) {
    const found = customResourceDefinition(file).spec.versions.find((v: Schema) => v.name === version);
    crdSchemas.set(key, found && strict(found.schema.openAPIV3Schema) as Schema);
  }
  return crdSchemas.get(key);
}

/** The validators of one Kubernetes version: its built-in kinds and the vendored CRDs. */
export class KubernetesSchemas {
  private readonly ajv = newAjv();
  private readonly definitions: Record<string, Schema>;
  /** group/version/kind → definition name */
  private readonly byKind = new Map<string, string>();
  private readonly added = new Set<string>();
  private readonly validators = new Map<string, ValidateFunction | undefined>();

  /** @param version e.g. `1.33.0`, a file `test/schemas/k8s/v<version>.definitions.json` */
  constructor(readonly version: string) {
    const file = join(ROOT, 'test', 'schemas', 'k8s', `v${version}.definitions.json`);
    this.definitions = JSON.parse(readFileSync(file, 'utf8')).definitions;
    for (const [name, definition] of Object.entries<Schema>(this.definitions)) {
      for (const gvk of definition['x-kubernetes-group-version-kind'] ?? []) {
        const apiVersion = gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version;
        this.byKind.set(`${apiVersion}/${gvk.kind}`, name);
      }
    }
  }

  /** The validator of a kind: its CRD's schema, else its Kubernetes definition; undefined if neither. */
  validator(apiVersion: string, kind: string): ValidateFunction | undefined {
    const key = `${apiVersion}/${kind}`;
    if (!this.validators.has(key)) {
      this.validators.set(key, this.crdValidator(apiVersion, kind) ?? this.builtIn(key));
    }
    return this.validators.get(key);
  }

  /** '' when the object is valid for its kind, else its errors (or that its kind has no schema). */
  validate(object: { apiVersion: string; kind: string }): string {
    const validate = this.validator(object.apiVersion, object.kind);
    if (!validate) return `no schema for ${object.apiVersion}/${object.kind}`;
    return validate(object) ? '' : errorsOf(validate);
  }

  private crdValidator(apiVersion: string, kind: string): ValidateFunction | undefined {
    const [group, version] = String(apiVersion).split('/');
    const file = version === undefined ? undefined : crdFileOf(group, kind);
    const schema = file === undefined ? undefined : crdSchema(file, version);
    if (!schema) return undefined;

    // The metadata of a custom resource is checked as a strict ObjectMeta of this version.
    const metadata = 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta';
    this.add(metadata);
    const properties = { ...schema.properties, metadata: { $ref: this.id(metadata) } };
    return this.ajv.compile({ ...schema, properties });
  }

  private builtIn(key: string): ValidateFunction | undefined {
    const name = this.byKind.get(key);
    if (!name) return undefined;
    this.add(name);
    return this.ajv.getSchema(this.id(name));
  }

  /** The schema id of a definition. */
  private id(name: string): string {
    return `k8s-${this.version}:${name}`;
  }

  /** Adds a definition, closed, and every definition it refers to, each as a schema of its own. */
  private add(name: string): void {
    if (this.added.has(name)) return;
    const definition = this.definitions[name];
    if (!definition) throw new Error(`Kubernetes ${this.version} has no definition ${name}`);
    this.added.add(name);
    const refs: string[] = [];
    const schema = strict(definition, (target) => {
      const referred = /^#\/definitions\/(.+)$/.exec(target)?.[1];
      if (!referred) throw new Error(`Kubernetes ${this.version}: ${name} refers to ${target}`);
      refs.push(referred);
      return this.id(referred);
    });
    this.ajv.addSchema(schema as Schema, this.id(name));
    refs.forEach((r) => this.add(r));
  }
}

const kubernetesVersions = new Map<string, KubernetesSchemas>();

/** The validators of a Kubernetes version, made once. */
export function kubernetes(version: string): KubernetesSchemas {
  let schemas = kubernetesVersions.get(version);
  if (!schemas) {
    schemas = new KubernetesSchemas(version);
    kubernetesVersions.set(version, schemas);
  }
  return schemas;
}
