import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { CnpgDatabase } from './cnpg-database';
import { Environment } from './config';
import { MigrateJob } from './migrate-job';
import { EnvironmentOutput } from './phases';
import { RequiredSecret } from './required-secret';
import { TraefikIngress } from './traefik-ingress';
import { VergabeApp } from './vergabe-app';

export interface VergabeChartProps {
  /** The validated environment to deploy. */
  readonly environment: Environment;
}

/** Everything one environment deploys: the app, its database, the migration Job and the ingress. */
export class VergabeChart extends Chart {
  /** The environment this chart was built from. */
  public readonly environment: Environment;
  public readonly app: VergabeApp;
  public readonly database: CnpgDatabase;
  public readonly migration: MigrateJob;
  public readonly ingress: TraefikIngress;

  constructor(scope: Construct, id: string, props: VergabeChartProps) {
    // Names are set explicitly on every object; no generated hash suffixes.
    super(scope, id, { disableResourceNameHashes: true });
    this.environment = props.environment;
    const config = props.environment.config;
    const { image, app, database: db } = config;
    const imageRef = `${image.repository}:${image.tag}${image.digest ? `@${image.digest}` : ''}`;

    this.app = new VergabeApp(this, 'app', {
      name: app.name,
      namespace: app.namespace,
      host: app.host,
      image: imageRef,
      imageContract: image,
      pullSecret: image.pullSecret ?? undefined,
      settingsModule: app.settingsModule,
      replicas: app.replicas,
      gunicorn: app.gunicorn,
      resources: app.resources,
      extraEnv: app.extraEnv,
      extraEgress: app.extraEgress,
      media: app.media.enabled ? app.media : undefined,
      ingressControllerNamespace: config.ingress.controllerNamespace,
      ingressControllerPodLabels: config.ingress.controllerPodLabels,
      database: {
        // cnpg's read-write Service of the cluster, always `<cluster>-rw`.
        host: `${db.cluster}-rw.${db.namespace}.svc`,
        port: 5432,
        database: db.name,
        user: db.role,
        sslMode: db.sslMode,
        podNamespace: db.namespace,
        podLabels: { 'cnpg.io/cluster': db.cluster },
      },
    });

    this.database = new CnpgDatabase(this, 'database', {
      instance: app.name,
      cluster: db.cluster,
      namespace: db.namespace,
      databaseName: db.name,
      databaseResourceName: db.resourceName,
      roleName: db.role,
      credentialsSecret: db.credentialsSecret,
      connectionLimit: db.connectionLimit,
      roleMode: db.roleMode,
    });

    this.migration = new MigrateJob(this, 'migrate', {
      app: this.app,
      imageTag: image.tag,
      seed: config.migration.seed,
      backoffLimit: config.migration.backoffLimit,
      activeDeadlineSeconds: config.migration.activeDeadlineSeconds,
    });

    this.ingress = new TraefikIngress(this, 'ingress', {
      name: app.name,
      namespace: app.namespace,
      host: app.host,
      serviceName: this.app.serviceName,
      servicePort: this.app.servicePort,
      clusterIssuer: config.ingress.clusterIssuer,
      tlsSecretName: config.ingress.tlsSecretName,
      className: config.ingress.className,
      hstsMaxAgeSeconds: config.ingress.hstsMaxAgeSeconds,
    });
  }

  /** Every Secret the objects reference, in the order the deploy applies them. */
  public get requiredSecrets(): RequiredSecret[] {
    return [...this.app.requiredSecrets, ...this.database.requiredSecrets, ...this.ingress.requiredSecrets];
  }

  /** The objects, the settings the deploy reads and the files for others, for the output step. */
  public output(): EnvironmentOutput {
    const { name, config } = this.environment;
    const fragment = this.database.managedRoleFragment;
    return {
      environment: name,
      chart: this,
      requiredSecrets: this.requiredSecrets,
      settings: [
        ['environment', name],
        ['kubeContext', config.kubeContext],
        ['namespace', config.app.namespace],
        ['host', config.app.host],
        ['healthPath', config.image.healthPath],
        ['python', config.image.python],
        ['managePy', config.image.managePy],
        ['image', this.app.image],
        ['deployment', this.app.name],
        ['migrationJob', this.migration.jobName],
        ['certificate', this.ingress.certificateName],
        ['clusterIssuer', config.ingress.clusterIssuer],
        ['ingressAddress', config.ingress.address],
        ['acceptUntrustedChain', String(config.ingress.acceptUntrustedChain)],
        ['databaseCluster', config.database.cluster],
        ['databaseNamespace', config.database.namespace],
        ['databaseRole', config.database.role],
        ['roleMode', config.database.roleMode],
        ['backupBeforeMigrate', String(config.migration.backupBeforeMigrate)],
        ['backupMethod', config.migration.backupMethod],
        ['backupPlugin', config.migration.backupPlugin ?? '-'],
      ],
      extraFiles: fragment ? [{
        path: `platform-team/${config.database.cluster}-managed-role.yaml`,
        header: `For the platform team: merge this entry into spec.managed.roles of the Cluster `
          + `${config.database.cluster}\n(namespace ${config.database.namespace}). The deploy never applies `
          + 'this file; it is not a complete object.\nGenerated by `npm run synth`; do not edit.',
        body: fragment,
      }] : [],
    };
  }
}
