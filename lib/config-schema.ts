import type { FromSchema } from 'json-schema-to-ts';

/*
 * The schema of one environment file, `config/<environment>.yaml`. It is the single source of
 * both the runtime validation (ajv) and the TypeScript type `EnvironmentConfig` below.
 *
 * `hint` is this project's own keyword: the words that complete "field VALUE is not ..." when
 * a value fails its pattern, range or enum. Every object is closed: an unknown key is an error,
 * so a misspelt setting cannot be silently ignored.
 */

const dnsLabel = {
  type: 'string',
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  maxLength: 63,
  hint: 'a DNS-1123 label (lowercase letters, digits and "-", at most 63 characters)',
} as const;

const dnsName = {
  type: 'string',
  pattern: '^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$',
  hint: 'a fully qualified DNS name (lowercase, dot-separated labels, no wildcard)',
} as const;

const pgIdentifier = {
  type: 'string',
  pattern: '^[a-z_][a-z0-9_]{0,62}$',
  hint: 'a PostgreSQL identifier (lowercase letters, digits and "_", at most 63 characters)',
} as const;

const quantityCpu = {
  type: 'string',
  pattern: '^([0-9]+m|[0-9]+(\\.[0-9]+)?)$',
  hint: 'a CPU quantity such as "250m" or "1"',
} as const;

const quantityBytes = {
  type: 'string',
  pattern: '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$',
  hint: 'a memory or storage quantity such as "512Mi" or "5Gi"',
} as const;

const resourceList = {
  type: 'object',
  additionalProperties: false,
  required: ['cpu', 'memory'],
  properties: { cpu: quantityCpu, memory: quantityBytes },
} as const;

const labelMap = {
  type: 'object',
  minProperties: 1,
  additionalProperties: {
    type: 'string',
    pattern: '^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]?$',
    maxLength: 63,
    hint: 'a Kubernetes label value',
  },
  propertyNames: {
    pattern: '^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$',
    hint: 'a Kubernetes label key',
  },
} as const;

export const environmentSchema = {
  $id: 'vergabe-teilnahme-environment',
  type: 'object',
  additionalProperties: false,
  required: ['kubeContext', 'app', 'image', 'ingress', 'database'],
  properties: {
    kubeContext: {
      type: 'string',
      pattern: '^[A-Za-z0-9][-A-Za-z0-9_.@:/]*$',
      hint: 'a kubeconfig context name',
      description: 'The kubeconfig context the deploy insists on, so it never writes to another cluster.',
    },
    app: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'namespace', 'host'],
      properties: {
        name: {
          ...dnsLabel,
          maxLength: 46,
          hint: 'a DNS-1123 label of at most 46 characters (the migration Job adds "-migrate-" and 8 characters)',
          description: 'Base name of every object and the app.kubernetes.io/instance label.',
        },
        namespace: { ...dnsLabel, description: 'The dedicated namespace of the app.' },
        host: { ...dnsName, description: 'The public host name; the only host of the Ingress.' },
        settingsModule: {
          type: 'string',
          pattern: '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*\\.prod$',
          hint: 'a dotted Python module path ending in ".prod" (production settings only)',
          default: 'vergabe_teilnahme.settings.prod',
        },
        replicas: { type: 'integer', minimum: 1, maximum: 4, default: 1 },
        gunicorn: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            workers: { type: 'integer', minimum: 1, maximum: 16, default: 2 },
            threads: { type: 'integer', minimum: 1, maximum: 16, default: 4 },
            timeoutSeconds: { type: 'integer', minimum: 5, maximum: 300, default: 30 },
          },
        },
        resources: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            requests: { ...resourceList, default: { cpu: '100m', memory: '384Mi' } },
            limits: { ...resourceList, default: { cpu: '1', memory: '768Mi' } },
          },
        },
        extraEnv: {
          type: 'object',
          default: {},
          description: 'Further non-secret environment variables for the app and the migration Job.',
          propertyNames: {
            pattern: '^(?!.*DEBUG)(?!(DJANGO_SETTINGS_MODULE|ALLOWED_HOSTS|CSRF_TRUSTED_ORIGINS|SECRET_KEY|'
              + 'DATABASE_URL|PG[A-Z]*|HOME|GUNICORN_CMD_ARGS|MEDIA_ROOT)$)[A-Z_][A-Z0-9_]*$',
            hint: 'an upper-case variable name that is neither set by the deployment itself nor a DEBUG switch',
          },
          additionalProperties: { type: 'string' },
        },
        extraEgress: {
          type: 'array',
          default: [],
          description: 'Further destinations the app may reach, e.g. an SMTP relay.',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['cidr', 'ports'],
            properties: {
              cidr: {
                type: 'string',
                pattern: '^([0-9]{1,3}\\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$',
                hint: 'an IPv4 CIDR such as "203.0.113.10/32"',
              },
              ports: {
                type: 'array',
                minItems: 1,
                items: { type: 'integer', minimum: 1, maximum: 65535 },
              },
            },
          },
        },
        media: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            enabled: { type: 'boolean', default: false },
            size: { ...quantityBytes, default: '5Gi' },
            storageClassName: { ...dnsLabel, default: 'local-path' },
            mountPath: {
              type: 'string',
              pattern: '^/[^\\s]*$',
              hint: 'an absolute path',
              default: '/app/media',
            },
          },
        },
      },
    },
    image: {
      type: 'object',
      additionalProperties: false,
      required: ['repository', 'tag'],
      properties: {
        repository: {
          type: 'string',
          pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$',
          hint: 'an image repository such as "registry.example.org/team/app" (no tag)',
        },
        tag: {
          type: 'string',
          pattern: '^[0-9a-f]{7,40}$',
          hint: 'a git commit hash (7 to 40 lowercase hex digits)',
        },
        digest: {
          type: ['string', 'null'],
          pattern: '^sha256:[0-9a-f]{64}$',
          hint: 'an image digest ("sha256:" and 64 lowercase hex digits)',
          default: null,
        },
        pullSecret: {
          ...dnsLabel,
          type: ['string', 'null'],
          hint: 'a Secret name (a DNS-1123 label) or null',
          default: null,
          description: 'Name of a kubernetes.io/dockerconfigjson Secret from SOPS, when the registry needs one.',
        },
        user: { type: 'integer', minimum: 1, maximum: 2147483647, default: 10001 },
        group: { type: 'integer', minimum: 1, maximum: 2147483647, default: 10001 },
        command: {
          type: 'array',
          minItems: 1,
          items: { type: 'string', minLength: 1 },
          default: ['gunicorn', 'vergabe_teilnahme.wsgi:application'],
        },
        port: { type: 'integer', minimum: 1024, maximum: 65535, default: 8000 },
        healthPath: {
          type: 'string',
          pattern: '^/[^\\s?#]*$',
          hint: 'a URL path with a leading "/"',
          default: '/healthz',
        },
        python: { type: 'string', minLength: 1, default: 'python' },
        managePy: { type: 'string', minLength: 1, default: 'manage.py' },
      },
    },
    ingress: {
      type: 'object',
      additionalProperties: false,
      required: ['address', 'clusterIssuer', 'tlsSecretName'],
      properties: {
        className: { ...dnsLabel, default: 'traefik' },
        address: {
          type: 'string',
          pattern: '^([0-9]{1,3}\\.){3}[0-9]{1,3}$',
          hint: 'an IPv4 address',
          description: 'The ingress controller\'s public address the host must resolve to.',
        },
        controllerNamespace: { ...dnsLabel, default: 'kube-system' },
        controllerPodLabels: { ...labelMap, default: { 'app.kubernetes.io/name': 'traefik' } },
        clusterIssuer: { ...dnsLabel, description: 'cert-manager ClusterIssuer of the certificate.' },
        tlsSecretName: dnsLabel,
        acceptUntrustedChain: {
          type: 'boolean',
          default: false,
          description: 'Lets the smoke check accept a chain it cannot verify (staging issuers only).',
        },
        hstsMaxAgeSeconds: { type: 'integer', minimum: 0, maximum: 63072000, default: 31536000 },
      },
    },
    database: {
      type: 'object',
      additionalProperties: false,
      required: ['cluster', 'namespace', 'name', 'role', 'resourceName', 'credentialsSecret'],
      properties: {
        cluster: { ...dnsLabel, description: 'The CloudNativePG Cluster that hosts the database.' },
        namespace: dnsLabel,
        name: { ...pgIdentifier, description: 'PostgreSQL database name (spec.name of the Database).' },
        role: { ...pgIdentifier, description: 'PostgreSQL role that logs in and owns the database.' },
        resourceName: { ...dnsLabel, description: 'metadata.name of the cnpg Database object.' },
        credentialsSecret: { ...dnsLabel, description: 'basic-auth Secret with the role\'s password.' },
        connectionLimit: { type: 'integer', minimum: 1, maximum: 1000, default: 20 },
        sslMode: { type: 'string', enum: ['require', 'verify-ca', 'verify-full'], default: 'require' },
        roleMode: {
          type: 'string',
          enum: ['DatabaseRole', 'ClusterManagedRole'],
          default: 'DatabaseRole',
          description: 'DatabaseRole needs cnpg >= 1.30; ClusterManagedRole writes a fragment for the '
            + 'platform team to add to the Cluster\'s spec.managed.roles instead.',
        },
      },
    },
    migration: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        seed: { type: 'boolean', default: true },
        backoffLimit: { type: 'integer', minimum: 0, maximum: 5, default: 1 },
        activeDeadlineSeconds: { type: 'integer', minimum: 60, maximum: 7200, default: 900 },
        backupBeforeMigrate: { type: 'boolean', default: false },
        backupMethod: {
          type: 'string',
          enum: ['barmanObjectStore', 'volumeSnapshot', 'plugin'],
          default: 'barmanObjectStore',
          description: 'spec.method of the Backup taken before migrations: the way the database '
            + 'Cluster is set up to back up (the platform team knows; the deploy checks the Cluster).',
        },
        backupPlugin: {
          ...dnsName,
          description: 'With backupMethod plugin: the backup plugin\'s name as the Cluster\'s '
            + 'spec.plugins lists it, e.g. barman-cloud.cloudnative-pg.io.',
        },
      },
    },
  },
} as const;

/** One environment, as validated and completed with defaults. */
export type EnvironmentConfig = FromSchema<typeof environmentSchema, { keepDefaultedPropertiesOptional: false }>;
