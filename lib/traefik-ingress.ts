import { Construct } from 'constructs';
import {
  Certificate,
  CertificateSpecPrivateKeyAlgorithm,
  CertificateSpecPrivateKeyRotationPolicy,
} from '../imports/certmanager-certificate-cert-manager.io';
import { Middleware } from '../imports/traefik-middleware-traefik.io';
import { k8s } from './k8s';
import { standardLabels } from './labels';
import { RequiredSecret } from './required-secret';

export interface TraefikIngressProps {
  /** Base name of the objects and the `app.kubernetes.io/instance` label. */
  readonly name: string;
  /** Namespace of the app; the Certificate, its Secret, the Middlewares and the Ingress live there. */
  readonly namespace: string;
  /** The one public host name. */
  readonly host: string;
  /** Service the Ingress routes to. */
  readonly serviceName: string;
  /** Port of that Service. */
  readonly servicePort: number;
  /** cert-manager ClusterIssuer that signs the certificate. */
  readonly clusterIssuer: string;
  /** Secret cert-manager writes the certificate and key into. */
  readonly tlsSecretName: string;
  /**
   * IngressClass of the controller.
   * @default 'traefik'
   */
  readonly className?: string;
  /**
   * `Strict-Transport-Security` max-age; 0 sends no HSTS header.
   * @default 31536000 (one year)
   */
  readonly hstsMaxAgeSeconds?: number;
}

/**
 * Public exposure through Traefik: a cert-manager Certificate, the Middlewares that redirect
 * plain HTTP and set security headers, and an Ingress for exactly one host. The deploy applies
 * the Ingress only once the Certificate is Ready, so the host never serves Traefik's default
 * certificate.
 */
export class TraefikIngress extends Construct {
  /** The certificate's Secret, which cert-manager writes. */
  public readonly requiredSecrets: RequiredSecret[];
  /** metadata.name of the Certificate. */
  public readonly certificateName: string;

  constructor(scope: Construct, id: string, props: TraefikIngressProps) {
    super(scope, id);
    const labels = standardLabels(props.name, 'ingress');
    const metadata = (name: string) => ({ name, namespace: props.namespace, labels });
    this.certificateName = props.name;

    new Certificate(this, 'certificate', {
      metadata: metadata(this.certificateName),
      spec: {
        secretName: props.tlsSecretName,
        secretTemplate: { labels },
        dnsNames: [props.host],
        // cert-manager's default kind is Issuer (namespaced): the cluster-wide issuer must be named as such.
        issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: props.clusterIssuer },
        privateKey: {
          algorithm: CertificateSpecPrivateKeyAlgorithm.ECDSA,
          size: 256,
          rotationPolicy: CertificateSpecPrivateKeyRotationPolicy.ALWAYS,
        },
      },
    });
    this.requiredSecrets = [{
      namespace: props.namespace,
      name: props.tlsSecretName,
      type: 'kubernetes.io/tls',
      keys: ['tls.crt', 'tls.key'],
      source: 'cert-manager',
      purpose: `TLS certificate of ${props.host}, issued by ${props.clusterIssuer}`,
    }];

    const redirect = `${props.name}-redirect-https`;
    // A scheme redirect leaves HTTPS requests alone, and cert-manager's HTTP-01 solver route has a
    // longer, more specific rule, so certificate renewals over plain HTTP keep working.
    new Middleware(this, 'redirect-https', {
      metadata: metadata(redirect),
      spec: { redirectScheme: { scheme: 'https', permanent: true } },
    });

    const headers = `${props.name}-security-headers`;
    const hsts = props.hstsMaxAgeSeconds ?? 31536000;
    // No Content-Security-Policy: the app's front end (HTMX, inline handlers) needs what a
    // generic policy forbids; a CSP belongs to the app, which knows its own assets.
    new Middleware(this, 'security-headers', {
      metadata: metadata(headers),
      spec: {
        headers: {
          ...(hsts > 0 ? { stsSeconds: hsts, stsIncludeSubdomains: false, stsPreload: false } : {}),
          contentTypeNosniff: true,
          frameDeny: true,
          referrerPolicy: 'strict-origin-when-cross-origin',
          permissionsPolicy: 'camera=(), microphone=(), geolocation=()',
        },
      },
    });

    const middlewares = [redirect, headers].map((name) => `${props.namespace}-${name}@kubernetescrd`);
    new k8s.KubeIngress(this, 'ingress', {
      metadata: {
        ...metadata(props.name),
        annotations: { 'traefik.ingress.kubernetes.io/router.middlewares': middlewares.join(',') },
      },
      spec: {
        ingressClassName: props.className ?? 'traefik',
        tls: [{ hosts: [props.host], secretName: props.tlsSecretName }],
        // One host rule and no default backend: other hosts on this Traefik (Gitea) stay untouched.
        rules: [{
          host: props.host,
          http: {
            paths: [{
              path: '/',
              pathType: 'Prefix',
              backend: { service: { name: props.serviceName, port: { number: props.servicePort } } },
            }],
          },
        }],
      },
    });
  }
}
