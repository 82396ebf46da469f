import { createHash } from 'crypto';
import { Construct } from 'constructs';
import { k8s } from './k8s';
import { APP_NAME, Component, selectorLabels, standardLabels } from './labels';
import { RequiredSecret } from './required-secret';

/** What the app's image must provide; the image is built in the app's own repository. */
export interface ImageContract {
  /** Numeric user the processes run as (Pod Security `restricted` needs a non-root UID). */
  readonly user: number;
  /** Numeric group of the processes and of written files. */
  readonly group: number;
  /** The command that starts gunicorn; its settings come from `GUNICORN_CMD_ARGS`. */
  readonly command: readonly string[];
  /** Port gunicorn listens on. */
  readonly port: number;
  /** Path that answers 200 once the app is up; probed with the public Host header. */
  readonly healthPath: string;
  /** The image's Python interpreter, used for `manage.py` and the preStop pause. */
  readonly python: string;
  /** Path of `manage.py`, relative to the image's working directory. */
  readonly managePy: string;
}

/** How the app reaches PostgreSQL; the password comes only from a Secret. */
export interface DatabaseConnection {
  /** Host name of the read-write service of the cluster. */
  readonly host: string;
  /** Port of that service. */
  readonly port: number;
  /** PostgreSQL database name. */
  readonly database: string;
  /** PostgreSQL role the app logs in as. */
  readonly user: string;
  /** libpq `sslmode`. */
  readonly sslMode: string;
  /** Namespace of the PostgreSQL pods, for the egress rule. */
  readonly podNamespace: string;
  /** Labels of the PostgreSQL pods, for the egress rule. */
  readonly podLabels: Readonly<Record<string, string>>;
}

/** gunicorn's process model. */
export interface GunicornSettings {
  /** Worker processes. */
  readonly workers: number;
  /** Threads per worker. */
  readonly threads: number;
  /** Seconds before a silent worker is killed and restarted. */
  readonly timeoutSeconds: number;
}

/** CPU and memory of one container. */
export interface Resources {
  /** What the scheduler reserves. */
  readonly requests: { readonly cpu: string; readonly memory: string };
  /** What the container may use at most. */
  readonly limits: { readonly cpu: string; readonly memory: string };
}

/** An extra destination the app may reach. */
export interface EgressRule {
  /** IPv4 CIDR of the destination. */
  readonly cidr: string;
  /** TCP ports of the destination. */
  readonly ports: readonly number[];
}

/** A persistent volume for uploaded files. */
export interface MediaVolume {
  /** Requested size of the volume. */
  readonly size: string;
  /** StorageClass of the volume. */
  readonly storageClassName: string;
  /** Where the app writes uploads (`MEDIA_ROOT`). */
  readonly mountPath: string;
}

export interface VergabeAppProps {
  /** Base name of the objects and the `app.kubernetes.io/instance` label. */
  readonly name: string;
  /** The app's own namespace, created here and labelled for Pod Security `restricted`. */
  readonly namespace: string;
  /** Public host name; Django's `ALLOWED_HOSTS` and the probes' Host header. */
  readonly host: string;
  /** Full image reference, tag and optional digest included. */
  readonly image: string;
  /** What the image provides. */
  readonly imageContract: ImageContract;
  /** Django settings module; production settings only. */
  readonly settingsModule: string;
  /** How to reach PostgreSQL. */
  readonly database: DatabaseConnection;
  /**
   * Pods of the web Deployment. One is enough for the expected load and keeps a media volume
   * simple.
   * @default 1
   */
  readonly replicas?: number;
  /** gunicorn's workers, threads and timeout. */
  readonly gunicorn: GunicornSettings;
  /** CPU and memory of the web and migration containers. */
  readonly resources: Resources;
  /**
   * Name of a `kubernetes.io/dockerconfigjson` Secret for the registry.
   * @default - the image is pulled without credentials
   */
  readonly pullSecret?: string;
  /**
   * Further non-secret environment variables.
   * @default {}
   */
  readonly extraEnv?: Readonly<Record<string, string>>;
  /**
   * Further destinations the pods may reach (e.g. an SMTP relay).
   * @default []
   */
  readonly extraEgress?: readonly EgressRule[];
  /**
   * A persistent volume for uploads.
   * @default - no volume; uploads are not kept
   */
  readonly media?: MediaVolume;
  /** Namespace of the ingress controller's pods, the only ones that may reach the app. */
  readonly ingressControllerNamespace: string;
  /** Labels of the ingress controller's pods. */
  readonly ingressControllerPodLabels: Readonly<Record<string, string>>;
  /**
   * Labels of the cluster DNS pods in `kube-system`.
   * @default { 'k8s-app': 'kube-dns' }
   */
  readonly dnsPodLabels?: Readonly<Record<string, string>>;
}

/** Keys of the app's own Secret. */
export const APP_SECRET_KEYS = { djangoSecretKey: 'django-secret-key', databasePassword: 'database-password' };

/** Seconds the old pod keeps serving after it is taken out of the Service, while Traefik catches up. */
const PRE_STOP_SECONDS = 5;

/**
 * The Django app: its Namespace, ServiceAccount, ConfigMap, NetworkPolicy, optional media volume,
 * Deployment and Service. It also describes its pods (env, security, volumes) for the migration
 * Job, which must run with exactly the same settings.
 */
export class VergabeApp extends Construct {
  /** The app's namespace. */
  public readonly namespace: string;
  /** Base name of the objects. */
  public readonly name: string;
  /** Full image reference. */
  public readonly image: string;
  /** What the image provides. */
  public readonly imageContract: ImageContract;
  /** Name of the Service in front of the web pods. */
  public readonly serviceName: string;
  /** Port of that Service. */
  public readonly servicePort = 80;
  /** Name of the ServiceAccount of every pod. */
  public readonly serviceAccountName: string;
  /** SHA-256 of the ConfigMap's data; a pod annotation, so that a config change rolls the pods. */
  public readonly configChecksum: string;
  /** Environment of every container: the ConfigMap and the secret references. */
  public readonly containerEnv: Pick<k8s.Container, 'env' | 'envFrom'>;
  /** Pod-level security settings shared by every pod. */
  public readonly podSecurityContext: k8s.PodSecurityContext;
  /** Container-level security settings shared by every container. */
  public readonly containerSecurityContext: k8s.SecurityContext;
  /** CPU and memory of every container. */
  public readonly resources: k8s.ResourceRequirements;
  /** Registry credentials of every pod. */
  public readonly imagePullSecrets?: k8s.LocalObjectReference[];
  /** Secrets the app's objects reference. */
  public readonly requiredSecrets: RequiredSecret[] = [];

  private readonly props: VergabeAppProps;

  constructor(scope: Construct, id: string, props: VergabeAppProps) {
    super(scope, id);
    this.props = props;
    this.name = props.name;
    this.namespace = props.namespace;
    this.image = props.image;
    this.imageContract = props.imageContract;
    this.serviceName = props.name;
    this.serviceAccountName = props.name;
    const appSecretName = `${props.name}-app`;

    new k8s.KubeNamespace(this, 'namespace', {
      metadata: {
        name: props.namespace,
        labels: {
          ...this.labels('app'),
          // Pod Security admission rejects any pod here that is not `restricted`.
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
          'pod-security.kubernetes.io/audit': 'restricted',
          'pod-security.kubernetes.io/warn': 'restricted',
        },
      },
    });

    new k8s.KubeServiceAccount(this, 'service-account', {
      metadata: this.metadata(this.serviceAccountName, 'app'),
      // The app never talks to the Kubernetes API.
      automountServiceAccountToken: false,
    });

    const configData = this.configData();
    // Over the keys in sorted order, as the ConfigMap is written, so anyone can recompute it.
    const sorted = Object.fromEntries(Object.entries(configData).sort(([a], [b]) => (a < b ? -1 : 1)));
    this.configChecksum = createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
    const configMapName = `${props.name}-config`;
    new k8s.KubeConfigMap(this, 'config', {
      metadata: this.metadata(configMapName, 'app'),
      data: configData,
    });

    this.requiredSecrets.push({
      namespace: props.namespace,
      name: appSecretName,
      type: 'Opaque',
      keys: [APP_SECRET_KEYS.djangoSecretKey, APP_SECRET_KEYS.databasePassword],
      source: 'sops',
      purpose: 'Django SECRET_KEY and the database password of the app and the migration Job',
    });
    const secretKey = (key: string): k8s.SecretKeySelector => ({ name: appSecretName, key });
    this.containerEnv = {
      envFrom: [{ configMapRef: { name: configMapName } }],
      env: [
        { name: 'SECRET_KEY', valueFrom: { secretKeyRef: secretKey(APP_SECRET_KEYS.djangoSecretKey) } },
        // libpq (and so psycopg) reads PGPASSWORD when the connection settings carry none.
        { name: 'PGPASSWORD', valueFrom: { secretKeyRef: secretKey(APP_SECRET_KEYS.databasePassword) } },
      ],
    };

    if (props.pullSecret) {
      this.imagePullSecrets = [{ name: props.pullSecret }];
      this.requiredSecrets.push({
        namespace: props.namespace,
        name: props.pullSecret,
        type: 'kubernetes.io/dockerconfigjson',
        keys: ['.dockerconfigjson'],
        source: 'sops',
        purpose: 'credentials of the image registry',
      });
    }

    this.podSecurityContext = {
      runAsNonRoot: true,
      runAsUser: props.imageContract.user,
      runAsGroup: props.imageContract.group,
      fsGroup: props.imageContract.group,
      seccompProfile: { type: 'RuntimeDefault' },
    };
    this.containerSecurityContext = {
      runAsNonRoot: true,
      runAsUser: props.imageContract.user,
      runAsGroup: props.imageContract.group,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    };
    this.resources = {
      requests: {
        cpu: k8s.Quantity.fromString(props.resources.requests.cpu),
        memory: k8s.Quantity.fromString(props.resources.requests.memory),
      },
      limits: {
        cpu: k8s.Quantity.fromString(props.resources.limits.cpu),
        memory: k8s.Quantity.fromString(props.resources.limits.memory),
      },
    };

    this.networkPolicy();
    const mediaClaim = props.media ? this.mediaClaim(props.media) : undefined;
    this.deployment(mediaClaim);

    new k8s.KubeService(this, 'service', {
      metadata: this.metadata(this.serviceName, 'web'),
      spec: {
        type: 'ClusterIP',
        selector: selectorLabels(props.name, 'web'),
        ports: [{
          name: 'http',
          port: this.servicePort,
          targetPort: k8s.IntOrString.fromString('http'),
          protocol: 'TCP',
        }],
      },
    });
  }

  /** Standard labels of one of this app's objects. */
  public labels(component: Component): Record<string, string> {
    return standardLabels(this.props.name, component);
  }

  /** Metadata of a namespaced object of this app. */
  public metadata(name: string, component: Component): k8s.ObjectMeta {
    return { name, namespace: this.namespace, labels: this.labels(component) };
  }

  /** Volumes every pod mounts: a writable /tmp (HOME, gunicorn's heartbeat files) on a read-only root. */
  public tmpVolume(): { volume: k8s.Volume; mount: k8s.VolumeMount } {
    return {
      volume: { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('256Mi') } },
      mount: { name: 'tmp', mountPath: '/tmp' },
    };
  }

  private configData(): Record<string, string> {
    const { props } = this;
    const db = props.database;
    const gunicorn = props.gunicorn;
    const data: Record<string, string> = {
      DJANGO_SETTINGS_MODULE: props.settingsModule,
      ALLOWED_HOSTS: props.host,
      CSRF_TRUSTED_ORIGINS: `https://${props.host}`,
      PYTHONDONTWRITEBYTECODE: '1',
      PYTHONUNBUFFERED: '1',
      HOME: '/tmp',
      // Only Traefik can reach the pods (see the NetworkPolicy), so its forwarded headers are trusted.
      GUNICORN_CMD_ARGS: [
        `--bind=0.0.0.0:${props.imageContract.port}`,
        `--workers=${gunicorn.workers}`,
        `--threads=${gunicorn.threads}`,
        `--timeout=${gunicorn.timeoutSeconds}`,
        `--graceful-timeout=${gunicorn.timeoutSeconds}`,
        '--worker-tmp-dir=/tmp',
        '--access-logfile=-',
        '--forwarded-allow-ips=*',
      ].join(' '),
      PGHOST: db.host,
      PGPORT: String(db.port),
      PGDATABASE: db.database,
      PGUSER: db.user,
      PGSSLMODE: db.sslMode,
      // No password here: libpq takes it from PGPASSWORD, which comes from the Secret.
      DATABASE_URL: `postgres://${db.user}@${db.host}:${db.port}/${db.database}?sslmode=${db.sslMode}`,
    };
    if (props.media) data.MEDIA_ROOT = props.media.mountPath;
    return { ...data, ...props.extraEnv };
  }

  private networkPolicy(): void {
    const { props } = this;
    const tcp = (port: number): k8s.NetworkPolicyPort => ({
      protocol: 'TCP',
      port: k8s.IntOrString.fromNumber(port),
    });
    const inNamespace = (name: string) => ({ matchLabels: { 'kubernetes.io/metadata.name': name } });

    new k8s.KubeNetworkPolicy(this, 'network-policy', {
      metadata: this.metadata(props.name, 'app'),
      spec: {
        // Only the app's own pods: cert-manager's HTTP-01 solver pods in this namespace stay reachable.
        podSelector: {
          matchLabels: { 'app.kubernetes.io/name': APP_NAME, 'app.kubernetes.io/instance': props.name },
          matchExpressions: [
            { key: 'app.kubernetes.io/component', operator: 'In', values: ['web', 'migrate'] },
          ],
        },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{
          from: [{
            namespaceSelector: inNamespace(props.ingressControllerNamespace),
            podSelector: { matchLabels: { ...props.ingressControllerPodLabels } },
          }],
          ports: [tcp(props.imageContract.port)],
        }],
        egress: [
          {
            to: [{
              namespaceSelector: inNamespace('kube-system'),
              podSelector: { matchLabels: { ...(props.dnsPodLabels ?? { 'k8s-app': 'kube-dns' }) } },
            }],
            ports: [
              { protocol: 'UDP', port: k8s.IntOrString.fromNumber(53) },
              tcp(53),
            ],
          },
          {
            to: [{
              namespaceSelector: inNamespace(props.database.podNamespace),
              podSelector: { matchLabels: { ...props.database.podLabels } },
            }],
            ports: [tcp(props.database.port)],
          },
          ...(props.extraEgress ?? []).map((rule) => ({
            to: [{ ipBlock: { cidr: rule.cidr } }],
            ports: rule.ports.map(tcp),
          })),
        ],
      },
    });
  }

  private mediaClaim(media: MediaVolume): string {
    const name = `${this.props.name}-media`;
    new k8s.KubePersistentVolumeClaim(this, 'media', {
      metadata: this.metadata(name, 'app'),
      spec: {
        accessModes: ['ReadWriteOnce'],
        storageClassName: media.storageClassName,
        resources: { requests: { storage: k8s.Quantity.fromString(media.size) } },
      },
    });
    return name;
  }

  private deployment(mediaClaim: string | undefined): void {
    const { props } = this;
    const contract = props.imageContract;
    const tmp = this.tmpVolume();
    const volumes: k8s.Volume[] = [tmp.volume];
    const mounts: k8s.VolumeMount[] = [tmp.mount];
    if (mediaClaim && props.media) {
      volumes.push({ name: 'media', persistentVolumeClaim: { claimName: mediaClaim } });
      mounts.push({ name: 'media', mountPath: props.media.mountPath });
    }

    // Django answers 400 to a Host it does not know (the pod IP) and the production settings
    // redirect plain HTTP, so the probes look like a request that came through Traefik.
    const healthCheck: k8s.HttpGetAction = {
      path: contract.healthPath,
      port: k8s.IntOrString.fromString('http'),
      httpHeaders: [{ name: 'Host', value: props.host }, { name: 'X-Forwarded-Proto', value: 'https' }],
    };

    new k8s.KubeDeployment(this, 'deployment', {
      metadata: this.metadata(props.name, 'web'),
      spec: {
        replicas: props.replicas ?? 1,
        selector: { matchLabels: selectorLabels(props.name, 'web') },
        // A ReadWriteOnce volume attaches to one pod: the old pod must go before the new one starts.
        strategy: mediaClaim
          ? { type: 'Recreate' }
          : {
            type: 'RollingUpdate',
            rollingUpdate: {
              maxSurge: k8s.IntOrString.fromNumber(1),
              maxUnavailable: k8s.IntOrString.fromNumber(0),
            },
          },
        revisionHistoryLimit: 5,
        progressDeadlineSeconds: 600,
        template: {
          metadata: {
            labels: this.labels('web'),
            annotations: { 'checksum/config': this.configChecksum },
          },
          spec: {
            serviceAccountName: this.serviceAccountName,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: this.podSecurityContext,
            imagePullSecrets: this.imagePullSecrets,
            // gunicorn gets its full graceful timeout after the preStop pause, plus a margin.
            terminationGracePeriodSeconds: PRE_STOP_SECONDS + props.gunicorn.timeoutSeconds + 10,
            containers: [{
              name: 'web',
              image: props.image,
              // The tag is a commit and the image never changes under it: pull once per node.
              imagePullPolicy: 'IfNotPresent',
              command: [...contract.command],
              ports: [{ name: 'http', containerPort: contract.port, protocol: 'TCP' }],
              ...this.containerEnv,
              resources: this.resources,
              securityContext: this.containerSecurityContext,
              volumeMounts: mounts,
              startupProbe: { httpGet: healthCheck, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 36 },
              readinessProbe: {
                httpGet: healthCheck,
                periodSeconds: 10,
                timeoutSeconds: 3,
                failureThreshold: 3,
              },
              // Liveness only asks whether gunicorn accepts connections: a database outage must not
              // restart every pod.
              livenessProbe: {
                tcpSocket: { port: k8s.IntOrString.fromString('http') },
                periodSeconds: 20,
                timeoutSeconds: 3,
                failureThreshold: 3,
              },
              lifecycle: {
                preStop: {
                  exec: { command: [contract.python, '-c', `import time; time.sleep(${PRE_STOP_SECONDS})`] },
                },
              },
            }],
            volumes,
          },
        },
      },
    });
  }
}
