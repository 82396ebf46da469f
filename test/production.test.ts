import { createHash } from 'crypto';
import { parse } from 'yaml';
import { KINDS, PHASES } from '../lib/phases';
import { configData, Manifest, manifests, one, productionFiles, productionWith, synth } from './helpers';

const HOST = 'vergabe-teilnahme.whywhynot.de';
const files = productionFiles();
const objects = manifests(files);
const deployment = one(objects, 'Deployment');
const job = one(objects, 'Job');
const configMap = one(objects, 'ConfigMap');

function podSpecs(): Array<[string, any]> {
  return [['Deployment', deployment.spec.template.spec], ['Job', job.spec.template.spec]];
}

/** Objects as synthesized for production with one change to its configuration. */
function objectsWith(change: (config: any) => void): Manifest[] {
  return manifests(synth(['production', productionWith(change)]));
}

describe('snapshots of every output file', () => {
  test.each(files.map((f) => [f.path, f.content]))('%s', (_path, content) => {
    expect(content).toMatchSnapshot();
  });
});

describe('names and labels', () => {
  test('every object carries the five app.kubernetes.io labels and no version label', () => {
    for (const o of objects) {
      expect(o.metadata.labels).toEqual(expect.objectContaining({
        'app.kubernetes.io/name': 'vergabe-teilnahme',
        'app.kubernetes.io/instance': 'vergabe-teilnahme',
        'app.kubernetes.io/component': expect.any(String),
        'app.kubernetes.io/part-of': 'vergabe-teilnahme',
        'app.kubernetes.io/managed-by': 'cdk8s',
      }));
      expect(JSON.stringify(o)).not.toContain('app.kubernetes.io/version');
    }
  });

  test('every metadata.name is an explicit DNS-1123 label of at most 63 characters', () => {
    for (const o of objects) {
      expect(o.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(o.metadata.name.length).toBeLessThanOrEqual(63);
    }
    const names = objects.filter((o) => o.kind !== 'Job').map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(names).toEqual([
      'Certificate/vergabe-teilnahme', 'ConfigMap/vergabe-teilnahme-config', 'Database/vergabe-db',
      'DatabaseRole/vergabe', 'Deployment/vergabe-teilnahme', 'Ingress/vergabe-teilnahme',
      'Middleware/vergabe-teilnahme-redirect-https', 'Middleware/vergabe-teilnahme-security-headers',
      'Namespace/vergabe-teilnahme', 'NetworkPolicy/vergabe-teilnahme', 'Service/vergabe-teilnahme',
      'ServiceAccount/vergabe-teilnahme',
    ]);
  });

  test('PostgreSQL names with "_" stay in spec.name, never in metadata.name', () => {
    const objects2 = objectsWith((c) => { c.database.role = 'vergabe_app'; c.database.name = 'vergabe_db'; });
    expect(one(objects2, 'DatabaseRole').metadata.name).toBe('vergabe-app');
    expect(one(objects2, 'DatabaseRole').spec.name).toBe('vergabe_app');
    expect(one(objects2, 'Database').spec.name).toBe('vergabe_db');
  });

  test('no cdk8s-plus hashed label anywhere', () => {
    for (const f of files) expect(f.content).not.toContain('cdk8s.io/metadata.addr');
  });

  test('the Service selects the web pods only, never the migration Job\'s pods', () => {
    const selector = one(objects, 'Service').spec.selector;
    expect(selector).toEqual({
      'app.kubernetes.io/name': 'vergabe-teilnahme',
      'app.kubernetes.io/instance': 'vergabe-teilnahme',
      'app.kubernetes.io/component': 'web',
    });
    expect(deployment.spec.selector.matchLabels).toEqual(selector);
    const matches = (labels: Record<string, string>) =>
      Object.entries(selector).every(([k, v]) => labels[k] === v);
    expect(matches(deployment.spec.template.metadata.labels)).toBe(true);
    expect(matches(job.spec.template.metadata.labels)).toBe(false);
  });
});

describe('VergabeApp', () => {
  test('the namespace is labelled for Pod Security restricted (enforce, audit, warn)', () => {
    const labels = one(objects, 'Namespace').metadata.labels!;
    expect(one(objects, 'Namespace').metadata.name).toBe('vergabe-teilnahme');
    for (const mode of ['enforce', 'audit', 'warn']) {
      expect(labels[`pod-security.kubernetes.io/${mode}`]).toBe('restricted');
    }
  });

  test('the ServiceAccount and the pods do not mount an API token', () => {
    expect((one(objects, 'ServiceAccount') as any).automountServiceAccountToken).toBe(false);
    for (const [, spec] of podSpecs()) {
      expect(spec.automountServiceAccountToken).toBe(false);
      expect(spec.serviceAccountName).toBe('vergabe-teilnahme');
    }
  });

  test('the ConfigMap holds the production settings and the database settings without a password', () => {
    expect(configMap.data).toEqual(expect.objectContaining({
      DJANGO_SETTINGS_MODULE: 'vergabe_teilnahme.settings.prod',
      ALLOWED_HOSTS: HOST,
      CSRF_TRUSTED_ORIGINS: `https://${HOST}`,
      PYTHONDONTWRITEBYTECODE: '1',
      HOME: '/tmp',
      PGHOST: 'apps-pg-rw.databases.svc',
      PGPORT: '5432',
      PGDATABASE: 'vergabe_db',
      PGUSER: 'vergabe',
      PGSSLMODE: 'require',
    }));
    expect(configMap.data!.DATABASE_URL).toBe('postgres://vergabe@apps-pg-rw.databases.svc:5432/vergabe_db?sslmode=require');
  });

  test('HOME is on a writable volume', () => {
    for (const [, spec] of podSpecs()) {
      const mount = spec.containers[0].volumeMounts.find((m: any) => m.mountPath === configMap.data!.HOME);
      expect(mount).toBeDefined();
      expect(spec.volumes.find((v: any) => v.name === mount.name).emptyDir).toBeDefined();
    }
  });

  test('gunicorn keeps its worker temp dir on the writable /tmp', () => {
    expect(configMap.data!.GUNICORN_CMD_ARGS).toContain('--worker-tmp-dir=/tmp');
    expect(configMap.data!.GUNICORN_CMD_ARGS).toContain('--bind=0.0.0.0:8000');
  });

  test('the Deployment runs one replica of the commit-tagged image, pulled only when missing', () => {
    expect(deployment.spec.replicas).toBe(1);
    const container = deployment.spec.template.spec.containers[0];
    expect(container.image)
      .toBe(`gitea.coulomb.social/coulomb/vergabe-teilnahme:${configData('production').image.tag}`);
    expect(container.imagePullPolicy).toBe('IfNotPresent');
    expect(container.ports).toEqual([{ name: 'http', containerPort: 8000, protocol: 'TCP' }]);
  });

  test('a digest pins the image as tag@sha256', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const pinned = objectsWith((c) => { c.image.digest = digest; });
    for (const kind of ['Deployment', 'Job']) {
      expect(one(pinned, kind).spec.template.spec.containers[0].image)
        .toMatch(new RegExp(`:[0-9a-f]{7,40}@${digest}$`));
    }
  });

  test('an optional pull secret is referenced by both pods and listed as required', () => {
    expect(deployment.spec.template.spec.imagePullSecrets).toBeUndefined();
    const withSecret = synth(['production', productionWith((c) => { c.image.pullSecret = 'gitea-registry'; })]);
    for (const kind of ['Deployment', 'Job']) {
      expect(one(manifests(withSecret), kind).spec.template.spec.imagePullSecrets)
        .toEqual([{ name: 'gitea-registry' }]);
    }
    const secrets = parse(withSecret.find((f) => f.path.endsWith('secrets.yaml'))!.content).secrets;
    expect(secrets).toContainEqual(expect.objectContaining({
      name: 'gitea-registry', type: 'kubernetes.io/dockerconfigjson', source: 'sops',
    }));
  });

  test('readiness and startup probes send the public Host and X-Forwarded-Proto https', () => {
    const container = deployment.spec.template.spec.containers[0];
    for (const probe of [container.readinessProbe, container.startupProbe]) {
      expect(probe.httpGet.path).toBe('/healthz');
      expect(probe.httpGet.port).toBe('http');
      expect(probe.httpGet.httpHeaders).toEqual([
        { name: 'Host', value: HOST },
        { name: 'X-Forwarded-Proto', value: 'https' },
      ]);
    }
  });

  test('the liveness probe does not depend on the database (no HTTP request into Django)', () => {
    const liveness = deployment.spec.template.spec.containers[0].livenessProbe;
    expect(liveness.httpGet).toBeUndefined();
    expect(liveness.tcpSocket).toEqual({ port: 'http' });
  });

  test('requests and limits are set, limits not below requests', () => {
    const { resources } = deployment.spec.template.spec.containers[0];
    expect(resources).toEqual({
      requests: { cpu: '100m', memory: '384Mi' }, limits: { cpu: '1', memory: '768Mi' },
    });
  });

  test('one replica rolls gracefully: surge 1, unavailable 0, preStop pause, grace above gunicorn\'s timeout', () => {
    expect(deployment.spec.strategy).toEqual({
      type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
    const spec = deployment.spec.template.spec;
    const timeout = configData('production').app.gunicorn.timeoutSeconds;
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(timeout);
    expect(spec.containers[0].lifecycle.preStop.exec.command[0]).toBe('python');
    expect(deployment.spec.progressDeadlineSeconds).toBeGreaterThan(0);
    expect(deployment.spec.revisionHistoryLimit).toBeGreaterThan(0);
  });

  test('the pod annotation is the checksum of the ConfigMap, so a config change rolls the pod', () => {
    const checksum = createHash('sha256').update(JSON.stringify(configMap.data)).digest('hex');
    expect(deployment.spec.template.metadata.annotations['checksum/config']).toBe(checksum);
    const changed = objectsWith((c) => { c.app.extraEnv = { EMAIL_HOST: 'smtp.example.org' }; });
    expect(one(changed, 'Deployment').spec.template.metadata.annotations['checksum/config']).not.toBe(checksum);
  });

  test('the Service is ClusterIP port 80 to the named port http', () => {
    const service = one(objects, 'Service');
    expect(service.spec.type).toBe('ClusterIP');
    expect(service.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
  });

  test('no media volume by default', () => {
    expect(objects.filter((o) => o.kind === 'PersistentVolumeClaim')).toEqual([]);
    expect(configMap.data!.MEDIA_ROOT).toBeUndefined();
  });

  test('media on: a ReadWriteOnce claim of the configured size, mounted at MEDIA_ROOT, Recreate strategy', () => {
    const withMedia = objectsWith((c) => {
      c.app.media = { enabled: true, size: '10Gi', mountPath: '/srv/media' };
    });
    const claim = one(withMedia, 'PersistentVolumeClaim');
    expect(claim.spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(claim.spec.resources.requests.storage).toBe('10Gi');
    const dep = one(withMedia, 'Deployment');
    expect(dep.spec.strategy).toEqual({ type: 'Recreate' });
    expect(dep.spec.template.spec.containers[0].volumeMounts)
      .toContainEqual({ name: 'media', mountPath: '/srv/media' });
    expect(dep.spec.template.spec.volumes).toContainEqual({
      name: 'media', persistentVolumeClaim: { claimName: claim.metadata.name },
    });
    expect(one(withMedia, 'ConfigMap').data!.MEDIA_ROOT).toBe('/srv/media');
  });
});

describe('Pod Security restricted and production settings in the Deployment and the Job', () => {
  test.each(podSpecs())('%s passes Pod Security restricted', (_kind, spec) => {
    expect(spec.hostNetwork ?? false).toBe(false);
    expect(spec.hostPID ?? false).toBe(false);
    expect(spec.hostIPC ?? false).toBe(false);
    expect(spec.securityContext.runAsNonRoot).toBe(true);
    expect(Number.isInteger(spec.securityContext.runAsUser) && spec.securityContext.runAsUser > 0).toBe(true);
    expect(Number.isInteger(spec.securityContext.runAsGroup) && spec.securityContext.runAsGroup > 0).toBe(true);
    expect(spec.securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    for (const volume of spec.volumes) {
      expect(Object.keys(volume).filter((k) => k !== 'name'))
        .toEqual([expect.stringMatching(/^(emptyDir|persistentVolumeClaim)$/)]);
    }
    for (const container of spec.containers) {
      const sc = container.securityContext;
      expect(sc.allowPrivilegeEscalation).toBe(false);
      expect(sc.privileged).toBe(false);
      expect(sc.capabilities).toEqual({ drop: ['ALL'] });
      expect(sc.runAsNonRoot).toBe(true);
      expect(sc.readOnlyRootFilesystem).toBe(true);
      expect(sc.seccompProfile).toEqual({ type: 'RuntimeDefault' });
      expect(container.ports?.some((p: any) => p.hostPort)).toBeFalsy();
    }
  });

  test.each(podSpecs())('%s never turns DEBUG on and uses the production settings module', (_kind, spec) => {
    const container = spec.containers[0];
    expect(container.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
    expect(configMap.data!.DJANGO_SETTINGS_MODULE).toMatch(/\.prod$/);
    const variables: Array<[string, unknown]> = [
      ...Object.entries(configMap.data!),
      ...container.env.map((e: any) => [e.name, e.value] as [string, unknown]),
    ];
    for (const [name, value] of variables) {
      if (/DEBUG/i.test(name)) expect(String(value)).toMatch(/^(0|false|False|no)$/);
    }
  });

  test('the Job runs with the app\'s image, environment, service account and security context', () => {
    const jobSpec = job.spec.template.spec;
    const appSpec = deployment.spec.template.spec;
    expect(jobSpec.containers[0].image).toBe(appSpec.containers[0].image);
    expect(jobSpec.containers[0].env).toEqual(appSpec.containers[0].env);
    expect(jobSpec.containers[0].envFrom).toEqual(appSpec.containers[0].envFrom);
    expect(jobSpec.containers[0].securityContext).toEqual(appSpec.containers[0].securityContext);
    expect(jobSpec.securityContext).toEqual(appSpec.securityContext);
    expect(jobSpec.serviceAccountName).toBe(appSpec.serviceAccountName);
  });
});

describe('NetworkPolicy', () => {
  const policy = one(objects, 'NetworkPolicy');

  test('it selects the app\'s and the Job\'s pods by label, not the whole namespace', () => {
    expect(policy.spec.podSelector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'vergabe-teilnahme', 'app.kubernetes.io/instance': 'vergabe-teilnahme',
    });
    expect(policy.spec.podSelector.matchExpressions).toEqual([
      { key: 'app.kubernetes.io/component', operator: 'In', values: ['web', 'migrate'] },
    ]);
    expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
  });

  test('ingress only from Traefik\'s pods in kube-system to port 8000', () => {
    expect(policy.spec.ingress).toEqual([{
      from: [{
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'traefik' } },
      }],
      ports: [{ protocol: 'TCP', port: 8000 }],
    }]);
  });

  test('egress only to cluster DNS and to the apps-pg pods on 5432', () => {
    expect(policy.spec.egress).toEqual([
      {
        to: [{
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
          podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
        }],
        ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
      },
      {
        to: [{
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'databases' } },
          podSelector: { matchLabels: { 'cnpg.io/cluster': 'apps-pg' } },
        }],
        ports: [{ protocol: 'TCP', port: 5432 }],
      },
    ]);
  });

  test('extra egress (e.g. SMTP) is configurable', () => {
    const extra = one(objectsWith((c) => {
      c.app.extraEgress = [{ cidr: '203.0.113.25/32', ports: [587] }];
    }), 'NetworkPolicy');
    expect(extra.spec.egress).toContainEqual({
      to: [{ ipBlock: { cidr: '203.0.113.25/32' } }], ports: [{ protocol: 'TCP', port: 587 }],
    });
  });
});

describe('secrets', () => {
  test('no Secret object and no password value in dist', () => {
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    for (const f of files) {
      expect(f.content).not.toMatch(/postgres(ql)?:\/\/[^@\s]*:[^@\s]*@/);
      expect(f.content).not.toMatch(/^kind: Secret$/m);
    }
  });

  test('the database password reaches the pods only as a secretKeyRef', () => {
    for (const [, spec] of podSpecs()) {
      const password = spec.containers[0].env.find((e: any) => e.name === 'PGPASSWORD');
      expect(password.value).toBeUndefined();
      expect(password.valueFrom.secretKeyRef)
        .toEqual({ name: 'vergabe-teilnahme-app', key: 'database-password' });
      expect(Object.keys(configMap.data!).filter((k) => /PASSWORD|SECRET/.test(k))).toEqual([]);
    }
  });

  test('the list of required Secrets matches every Secret reference in the output', () => {
    const listed = parse(files.find((f) => f.path === 'production/secrets.yaml')!.content).secrets;
    const referenced = new Map<string, Set<string>>();
    const add = (namespace: string, name: string, key?: string) => {
      const id = `${namespace}/${name}`;
      if (!referenced.has(id)) referenced.set(id, new Set());
      if (key) referenced.get(id)!.add(key);
    };
    for (const o of objects) {
      const text = JSON.stringify(o);
      for (const m of text.matchAll(/"secretKeyRef":\{"key":"([^"]+)","name":"([^"]+)"\}/g)) {
        add(o.metadata.namespace!, m[2], m[1]);
      }
      if (o.kind === 'DatabaseRole') add(o.metadata.namespace!, o.spec.passwordSecret.name, 'password');
      if (o.kind === 'Certificate') add(o.metadata.namespace!, o.spec.secretName);
      if (o.kind === 'Ingress') for (const tls of o.spec.tls) add(o.metadata.namespace!, tls.secretName);
      for (const ps of (o.spec?.template?.spec?.imagePullSecrets ?? [])) add(o.metadata.namespace!, ps.name);
    }
    expect(listed.map((s: any) => `${s.namespace}/${s.name}`).sort()).toEqual([...referenced.keys()].sort());
    for (const s of listed) {
      for (const key of referenced.get(`${s.namespace}/${s.name}`)!) expect(s.keys).toContain(key);
    }
    expect(listed.find((s: any) => s.name === 'vergabe-teilnahme-tls').source).toBe('cert-manager');
    expect(listed.find((s: any) => s.name === 'vergabe-db-credentials')).toEqual(expect.objectContaining({
      namespace: 'databases', type: 'kubernetes.io/basic-auth', keys: ['username', 'password'],
      labels: { 'cnpg.io/reload': 'true' }, source: 'sops',
    }));
  });
});

describe('CnpgDatabase', () => {
  test('the DatabaseRole logs in and has no other privilege', () => {
    const role = one(objects, 'DatabaseRole');
    expect(role.metadata.namespace).toBe('databases');
    expect(role.spec).toEqual(expect.objectContaining({
      name: 'vergabe', cluster: { name: 'apps-pg' }, login: true, superuser: false, createdb: false,
      createrole: false, replication: false, bypassrls: false, ensure: 'present',
      passwordSecret: { name: 'vergabe-db-credentials' },
    }));
    expect(role.spec.inRoles).toBeUndefined();
  });

  test('the Database vergabe_db is owned by the role and retained', () => {
    const database = one(objects, 'Database');
    expect(database.metadata).toEqual(expect.objectContaining({ name: 'vergabe-db', namespace: 'databases' }));
    expect(database.spec).toEqual({
      name: 'vergabe_db', owner: 'vergabe', cluster: { name: 'apps-pg' }, ensure: 'present',
      databaseReclaimPolicy: 'retain',
    });
  });

  test('the connection limit covers twice workers x threads plus the Job and a shell', () => {
    const { gunicorn } = configData('production').app;
    expect(one(objects, 'DatabaseRole').spec.connectionLimit)
      .toBeGreaterThanOrEqual(2 * gunicorn.workers * gunicorn.threads + 2);
  });

  test('ClusterManagedRole mode: no DatabaseRole, a fragment for the platform team that the deploy never applies', () => {
    const fallback = synth(['production',
      productionWith((c) => { c.database.roleMode = 'ClusterManagedRole'; })]);
    expect(manifests(fallback).filter((o) => o.kind === 'DatabaseRole')).toEqual([]);
    const fragment = fallback.find((f) => f.path === 'production/platform-team/apps-pg-managed-role.yaml')!;
    const body = parse(fragment.content);
    expect(body.kind).toBeUndefined();
    expect(body.spec.managed.roles).toEqual([expect.objectContaining({
      name: 'vergabe', login: true, superuser: false, passwordSecret: { name: 'vergabe-db-credentials' },
    })]);
    const plan = fallback.find((f) => f.path === 'production/plan.tsv')!.content;
    expect(plan).not.toContain('platform-team');
    expect(plan).not.toMatch(/databaserole/);
  });
});

describe('MigrateJob', () => {
  test('its name is <app>-migrate-<hash of the spec>, within 63 characters', () => {
    expect(job.metadata.name).toMatch(/^vergabe-teilnahme-migrate-[0-9a-f]{8}$/);
    expect(job.metadata.name.length).toBeLessThanOrEqual(63);
    const longest = objectsWith((c) => { c.app.name = 'a'.repeat(46); });
    expect(one(longest, 'Job').metadata.name.length).toBe(63);
  });

  test('the same spec keeps the name; a new image, digest or setting gives a new Job', () => {
    expect(one(objectsWith(() => undefined), 'Job').metadata.name).toBe(job.metadata.name);
    const names = [
      objectsWith((c) => { c.image.tag = 'abcdef1'; }),
      objectsWith((c) => { c.image.digest = `sha256:${'b'.repeat(64)}`; }),
      objectsWith((c) => { c.app.extraEnv = { EMAIL_HOST: 'smtp.example.org' }; }),
    ].map((o) => one(o, 'Job').metadata.name);
    expect(new Set([job.metadata.name, ...names]).size).toBe(4);
  });

  test('the image tag is visible in an annotation', () => {
    expect(job.metadata.annotations!['vergabe-teilnahme.whywhynot.de/image-tag'])
      .toBe(configData('production').image.tag);
  });

  test('backoffLimit and activeDeadlineSeconds are set, no TTL', () => {
    expect(job.spec.backoffLimit).toBe(1);
    expect(job.spec.activeDeadlineSeconds).toBe(900);
    expect(job.spec.ttlSecondsAfterFinished).toBeUndefined();
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
  });

  test('it revokes CONNECT and TEMPORARY from PUBLIC, then migrates, then seeds, with the image\'s Python', () => {
    const command: string[] = job.spec.template.spec.containers[0].command;
    expect(command.slice(0, 2)).toEqual(['python', '-c']);
    expect(command[2]).toContain('REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC');
    expect(command[2]).toContain('import psycopg');
    expect(command.slice(3)).toEqual(['manage.py', 'migrate --noinput', 'seed']);
  });

  test('seed can be switched off', () => {
    const command = one(objectsWith((c) => { c.migration.seed = false; }), 'Job')
      .spec.template.spec.containers[0].command;
    expect(command.slice(3)).toEqual(['manage.py', 'migrate --noinput']);
  });
});

describe('TraefikIngress', () => {
  const certificate = one(objects, 'Certificate');
  const ingress = one(objects, 'Ingress');

  test('the Certificate is issued by the ClusterIssuer letsencrypt-prod into vergabe-teilnahme-tls', () => {
    expect(certificate.spec.secretName).toBe('vergabe-teilnahme-tls');
    expect(certificate.spec.dnsNames).toEqual([HOST]);
    expect(certificate.spec.issuerRef).toEqual({
      group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'letsencrypt-prod',
    });
  });

  test('the Ingress has class traefik, one host rule, TLS, no default backend, no wildcard, no priority', () => {
    expect(ingress.spec.ingressClassName).toBe('traefik');
    expect(ingress.spec.defaultBackend).toBeUndefined();
    expect(ingress.spec.rules).toHaveLength(1);
    expect(ingress.spec.rules[0].host).toBe(HOST);
    expect(JSON.stringify(ingress)).not.toContain('*');
    expect(ingress.spec.tls).toEqual([{ hosts: [HOST], secretName: 'vergabe-teilnahme-tls' }]);
    expect(Object.keys(ingress.metadata.annotations!).filter((k) => /priority/.test(k))).toEqual([]);
  });

  test('no cert-manager annotation competes with the explicit Certificate', () => {
    expect(Object.keys(ingress.metadata.annotations!).filter((k) => k.startsWith('cert-manager.io')))
      .toEqual([]);
  });

  test('the Ingress uses the redirect and header Middlewares, which exist in its phase or earlier', () => {
    const refs = ingress.metadata.annotations!['traefik.ingress.kubernetes.io/router.middlewares'].split(',');
    const middlewares = objects.filter((o) => o.kind === 'Middleware');
    expect(refs).toEqual(middlewares.map((m) => `${m.metadata.namespace}-${m.metadata.name}@kubernetescrd`));
    expect(PHASES.findIndex((p) => p.id === KINDS.Middleware.phase)).toBeLessThanOrEqual(
      PHASES.findIndex((p) => p.id === KINDS.Ingress.phase));
    expect(one(objects, 'Middleware', 'vergabe-teilnahme-redirect-https').spec).toEqual({
      redirectScheme: { scheme: 'https', permanent: true },
    });
  });

  test('security headers: HSTS without preload, no Content-Security-Policy', () => {
    const headers = one(objects, 'Middleware', 'vergabe-teilnahme-security-headers').spec.headers;
    expect(headers.stsSeconds).toBeGreaterThanOrEqual(31536000);
    expect(headers.stsPreload).toBe(false);
    expect(headers.contentTypeNosniff).toBe(true);
    expect(headers.contentSecurityPolicy).toBeUndefined();
    expect(headers.contentSecurityPolicyReportOnly).toBeUndefined();
  });
});

describe('phases and plan', () => {
  const phaseFiles = files.filter((f) => /\/[0-9]{2}-[a-z-]+\.yaml$/.test(f.path)).map((f) => f.path);

  test('sorting the file names gives the apply order of the phase table', () => {
    expect([...phaseFiles].sort()).toEqual(phaseFiles);
    const order = PHASES.map((p) => `production/${p.id}.yaml`).filter((p) => phaseFiles.includes(p));
    expect(phaseFiles).toEqual(order);
  });

  test('the Namespace comes first and the Ingress last', () => {
    expect(parse(files.find((f) => f.path === phaseFiles[0])!.content).kind).toBe('Namespace');
    expect(files.find((f) => f.path === phaseFiles[phaseFiles.length - 1])!.content)
      .toMatch(/^kind: Ingress$/m);
    expect(PHASES[PHASES.length - 1].id).toBe(KINDS.Ingress.phase);
  });

  test('the migration runs before the app, the certificate after the app and before the ingress', () => {
    const index = (kind: string) => PHASES.findIndex((p) => p.id === KINDS[kind].phase);
    expect(index('Secret')).toBeLessThan(index('DatabaseRole'));
    expect(index('DatabaseRole')).toBeLessThan(index('Job'));
    expect(index('Job')).toBeLessThan(index('Deployment'));
    expect(index('Deployment')).toBeLessThan(index('Certificate'));
    expect(index('Certificate')).toBeLessThan(index('Ingress'));
  });

  test('the plan lists every object once, in file order, with the wait of its kind', () => {
    const plan = files.find((f) => f.path === 'production/plan.tsv')!.content;
    const planned = plan.split('\n').filter((l) => l.startsWith('object\t')).map((l) => l.split('\t'));
    expect(planned.map((row) => row[4])).toEqual(objects.map((o) => o.metadata.name));
    for (const [i, row] of planned.entries()) expect(row[5]).toBe(KINDS[objects[i].kind].wait);
    expect(plan).toContain(`setting\tmigrationJob\t${job.metadata.name}\n`);
  });

  test('the plan names the SOPS file of each SOPS Secret, the role\'s Secret before the role', () => {
    const plan = files.find((f) => f.path === 'production/plan.tsv')!.content;
    expect(plan).toContain('secret\t10-secrets\tdatabases\tvergabe-db-credentials\tsecrets/production/vergabe-db-credentials.sops.yaml');
    expect(plan.indexOf('vergabe-db-credentials')).toBeLessThan(plan.indexOf('databaserole'));
  });

  test('synthesis is deterministic: two runs give identical bytes', () => {
    expect(productionFiles()).toEqual(files);
  });
});
