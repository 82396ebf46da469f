import { Construct } from 'constructs';
import {
  Database,
  DatabaseSpecDatabaseReclaimPolicy,
  DatabaseSpecEnsure,
} from '../imports/cnpg-database-postgresql.cnpg.io';
import {
  DatabaseRole,
  DatabaseRoleSpecDatabaseRoleReclaimPolicy,
  DatabaseRoleSpecEnsure,
} from '../imports/cnpg-databaserole-postgresql.cnpg.io';
import { standardLabels } from './labels';
import { RequiredSecret } from './required-secret';

/** How the role reaches the cluster. */
export type RoleMode = 'DatabaseRole' | 'ClusterManagedRole';

export interface CnpgDatabaseProps {
  /** `app.kubernetes.io/instance` of the objects. */
  readonly instance: string;
  /** Name of the CloudNativePG Cluster. */
  readonly cluster: string;
  /** Namespace of that Cluster; the objects and the credentials Secret live there too. */
  readonly namespace: string;
  /** PostgreSQL database name (may contain `_`). */
  readonly databaseName: string;
  /** metadata.name of the `Database` object (DNS-1123). */
  readonly databaseResourceName: string;
  /** PostgreSQL role that logs in and owns the database. */
  readonly roleName: string;
  /** `kubernetes.io/basic-auth` Secret with the role's password, in the Cluster's namespace. */
  readonly credentialsSecret: string;
  /** Concurrent connections the role may open. */
  readonly connectionLimit: number;
  /**
   * `DatabaseRole` needs cnpg 1.30 or later. `ClusterManagedRole` emits no role object but a
   * fragment for the platform team to add to the Cluster's `spec.managed.roles`.
   * @default 'DatabaseRole'
   */
  readonly roleMode?: RoleMode;
}

/**
 * One login role and the database it owns, in a shared CloudNativePG cluster that belongs to
 * the platform team. Both are kept when the objects are deleted (reclaim policy `retain`).
 */
export class CnpgDatabase extends Construct {
  /** The role's password Secret, which SOPS provides. */
  public readonly requiredSecrets: RequiredSecret[];
  /**
   * In `ClusterManagedRole` mode: the `spec.managed.roles` entry to hand to the platform team.
   * It is never applied by the deploy.
   */
  public readonly managedRoleFragment?: Record<string, unknown>;
  /** metadata.name of the DatabaseRole (in `DatabaseRole` mode). */
  public readonly roleResourceName: string;

  constructor(scope: Construct, id: string, props: CnpgDatabaseProps) {
    super(scope, id);
    const labels = standardLabels(props.instance, 'database');
    this.roleResourceName = props.roleName.replace(/_/g, '-');

    // Only what the app needs: it logs in and owns its database, nothing more.
    const role = {
      name: props.roleName,
      comment: `login role of ${props.instance}`,
      login: true,
      superuser: false,
      createdb: false,
      createrole: false,
      replication: false,
      bypassrls: false,
      inherit: true,
      connectionLimit: props.connectionLimit,
      passwordSecret: { name: props.credentialsSecret },
    };

    if ((props.roleMode ?? 'DatabaseRole') === 'DatabaseRole') {
      new DatabaseRole(this, 'role', {
        metadata: { name: this.roleResourceName, namespace: props.namespace, labels },
        spec: {
          ...role,
          cluster: { name: props.cluster },
          ensure: DatabaseRoleSpecEnsure.PRESENT,
          databaseRoleReclaimPolicy: DatabaseRoleSpecDatabaseRoleReclaimPolicy.RETAIN,
        },
      });
    } else {
      this.managedRoleFragment = { spec: { managed: { roles: [{ ...role, ensure: 'present' }] } } };
    }

    new Database(this, 'database', {
      metadata: { name: props.databaseResourceName, namespace: props.namespace, labels },
      spec: {
        name: props.databaseName,
        owner: props.roleName,
        cluster: { name: props.cluster },
        ensure: DatabaseSpecEnsure.PRESENT,
        databaseReclaimPolicy: DatabaseSpecDatabaseReclaimPolicy.RETAIN,
      },
    });

    this.requiredSecrets = [{
      namespace: props.namespace,
      name: props.credentialsSecret,
      type: 'kubernetes.io/basic-auth',
      keys: ['username', 'password'],
      // cnpg reloads the role's password when a Secret with this label changes.
      labels: { 'cnpg.io/reload': 'true' },
      source: 'sops',
      purpose: `password of the PostgreSQL role ${props.roleName} (the same as in the app's Secret)`,
    }];
  }
}
