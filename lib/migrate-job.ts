import { createHash } from 'crypto';
import { Construct } from 'constructs';
import { k8s } from './k8s';
import { ANNOTATION_PREFIX } from './labels';
import { VergabeApp } from './vergabe-app';

export interface MigrateJobProps {
  /** The app whose image, environment, ServiceAccount and security settings the Job reuses. */
  readonly app: VergabeApp;
  /** Image tag (the app's commit), shown in an annotation for the reviewer. */
  readonly imageTag: string;
  /**
   * Run the app's idempotent `manage.py seed` after the migrations.
   * @default true
   */
  readonly seed?: boolean;
  /**
   * Retries after a failed pod. Django's PostgreSQL migrations run in transactions, so a retry
   * starts clean; one covers a passing network or database hiccup.
   * @default 1
   */
  readonly backoffLimit?: number;
  /**
   * Seconds after which the Job fails however far it got.
   * @default 900
   */
  readonly activeDeadlineSeconds?: number;
}

/** Longest Kubernetes object name this construct produces. */
export const MAX_NAME_LENGTH = 63;

/**
 * The steps, in the image's own Python with its own psycopg: no shell or psql is assumed in the
 * image. First close the database to every other role of the shared cluster (the owner keeps
 * its rights), then run each `manage.py` step given as an argument, stopping at the first failure.
 */
const MIGRATE_SCRIPT = `import os, subprocess, sys
import psycopg
from psycopg import sql

manage, steps = sys.argv[1], sys.argv[2:]
with psycopg.connect(autocommit=True) as conn:
    conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
        sql.Identifier(os.environ["PGDATABASE"])))
print("revoked CONNECT, TEMPORARY on", os.environ["PGDATABASE"], "from PUBLIC", flush=True)
for step in steps:
    print("manage.py", step, flush=True)
    result = subprocess.run([sys.executable, manage, *step.split()])
    if result.returncode != 0:
        print("manage.py", step, "failed with exit code", result.returncode, flush=True)
        sys.exit(result.returncode)
`;

/**
 * The migration Job: `migrate`, then `seed`, before the new app version starts. A Job's pod
 * template cannot change, so the name carries a hash of the spec: a new image or setting makes
 * a new Job, and applying the same spec again changes nothing. Old Jobs are removed by the
 * deploy, not by a TTL (a TTL would delete the Job and the next apply would run it again).
 */
export class MigrateJob extends Construct {
  /** metadata.name of the Job: `<app>-migrate-<hash of the spec>`. */
  public readonly jobName: string;

  constructor(scope: Construct, id: string, props: MigrateJobProps) {
    super(scope, id);
    const { app } = props;
    const contract = app.imageContract;
    const tmp = app.tmpVolume();
    const steps = ['migrate --noinput', ...((props.seed ?? true) ? ['seed'] : [])];

    const spec: k8s.JobSpec = {
      backoffLimit: props.backoffLimit ?? 1,
      activeDeadlineSeconds: props.activeDeadlineSeconds ?? 900,
      template: {
        metadata: {
          labels: app.labels('migrate'),
          annotations: { 'checksum/config': app.configChecksum },
        },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: app.serviceAccountName,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: app.podSecurityContext,
          imagePullSecrets: app.imagePullSecrets,
          containers: [{
            name: 'migrate',
            image: app.image,
            imagePullPolicy: 'IfNotPresent',
            command: [contract.python, '-c', MIGRATE_SCRIPT, contract.managePy, ...steps],
            ...app.containerEnv,
            resources: app.resources,
            securityContext: app.containerSecurityContext,
            volumeMounts: [tmp.mount],
          }],
          volumes: [tmp.volume],
        },
      },
    };

    const hash = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 8);
    this.jobName = `${app.name}-migrate-${hash}`;
    this.node.addValidation({
      validate: () => (this.jobName.length > MAX_NAME_LENGTH
        ? [`MigrateJob name "${this.jobName}" is longer than ${MAX_NAME_LENGTH} characters; `
          + 'shorten the app name']
        : []),
    });

    new k8s.KubeJob(this, 'job', {
      metadata: {
        ...app.metadata(this.jobName, 'migrate'),
        annotations: { [`${ANNOTATION_PREFIX}/image-tag`]: props.imageTag },
      },
      spec,
    });
  }
}
