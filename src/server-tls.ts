import { ApiObject, Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { BoundServerTls, TlsNames, tlsDnsNames } from './_tls';

/**
 * Options of a server certificate issued by cert-manager (`ServerTls.certManager`).
 */
export interface CertManagerTlsOptions {
  /**
   * The name of the cert-manager Issuer or ClusterIssuer that signs the certificate. It must
   * put its CA certificate into the Secret's `ca.crt` (a CA or Vault issuer does; ACME issuers
   * cannot sign in-cluster names at all): the replicas, the Galera peers and the backup Jobs
   * verify the servers against it.
   */
  readonly issuerName: string;

  /**
   * The kind of the issuer: `Issuer` (in the cluster's namespace) or `ClusterIssuer`.
   *
   * @default 'Issuer'
   */
  readonly issuerKind?: string;

  /**
   * The API group of the issuer, for external issuers.
   *
   * @default 'cert-manager.io'
   */
  readonly issuerGroup?: string;

  /**
   * How long each certificate is valid.
   *
   * @default Duration.days(90) (cert-manager's default)
   */
  readonly duration?: Duration;

  /**
   * How long before its expiry cert-manager renews a certificate.
   *
   * @default - cert-manager's default: a third of `duration`
   */
  readonly renewBefore?: Duration;

  /**
   * The name of the Secret cert-manager writes the certificate into.
   *
   * @default `<cluster name>-tls`
   */
  readonly secretName?: string;

  /**
   * Further DNS names the certificate is valid for, e.g. an external load balancer's name.
   * The Services and pods of the cluster are always included.
   *
   * @default - none
   */
  readonly extraDnsNames?: string[];

  /**
   * The cluster's DNS domain, for the fully qualified names (`<service>.<namespace>.svc.<domain>`).
   *
   * @default 'cluster.local'
   */
  readonly clusterDomain?: string;
}

/**
 * The server certificate of a cluster: TLS for client connections, replication, Galera group
 * communication, IST and SST. The certificate comes from a Secret of type `kubernetes.io/tls`
 * with the keys `tls.crt`, `tls.key` and `ca.crt` (`ServerTls.fromSecret`), or from cert-manager
 * (`ServerTls.certManager`), which writes and renews such a Secret.
 *
 * The certificate must be valid for every name that clients and peers connect to: the client
 * Services (`<name>-write`, `<name>-read` or `<name>-client`, short and fully qualified), and
 * every pod under the headless Service (`*.<name>`, `*.<name>.<namespace>.svc.cluster.local`).
 * It is used both as a server and as a client certificate (Galera peers and state-transfer
 * donors present it to each other), so it needs both the `server auth` and `client auth` usages
 * when it restricts them.
 */
export class ServerTls {
  /**
   * A certificate from an existing Secret of type `kubernetes.io/tls` with the keys `tls.crt`,
   * `tls.key` and `ca.crt`. Create it before the cluster, e.g.
   * `kubectl create secret generic orders-tls --type=kubernetes.io/tls --from-file=tls.crt --from-file=tls.key --from-file=ca.crt`.
   */
  public static fromSecret(secret: kplus.ISecret): ServerTls {
    return new ServerTls(secret, undefined);
  }

  /**
   * A certificate that cert-manager issues and renews: a `cert-manager.io/v1` Certificate
   * with every name of the cluster, written into the Secret `<name>-tls`.
   */
  public static certManager(options: CertManagerTlsOptions): ServerTls {
    return new ServerTls(undefined, options);
  }

  private constructor(private readonly secret: kplus.ISecret | undefined, private readonly options: CertManagerTlsOptions | undefined) {}

  /**
   * Binds the certificate to a cluster: creates the Certificate (cert-manager) in `scope`.
   *
   * @internal
   */
  public _bind(scope: Construct, names: TlsNames): BoundServerTls {
    let secretName: string;
    let certificate: ApiObject | undefined;
    if (this.secret) {
      secretName = this.secret.name;
    } else {
      const o = this.options!;
      secretName = o.secretName ?? `${names.cluster}-tls`;
      certificate = new ApiObject(scope, 'Certificate', {
        apiVersion: 'cert-manager.io/v1',
        kind: 'Certificate',
        metadata: { name: names.cluster, labels: { ...names.labels, 'app.kubernetes.io/component': 'tls' } },
        spec: { ...certificateSpec(o, names, secretName), secretTemplate: { labels: { ...names.labels, 'app.kubernetes.io/component': 'tls' } } },
      });
    }
    const item = (key: string) => ({ key, path: key });
    return {
      secretName,
      certificate,
      // 0440 with the pods' fsGroup: the mysql group (uid 999) reads the key, nobody else
      volume: { name: 'tls', secret: { secretName, defaultMode: 0o440, items: ['tls.crt', 'tls.key', 'ca.crt'].map(item) } },
    };
  }
}

function certificateSpec(o: CertManagerTlsOptions, names: TlsNames, secretName: string): Record<string, unknown> {
  if (!o.issuerName || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(o.issuerName)) {
    throw new Error(`tls issuerName '${o.issuerName ?? ''}' is not a valid Kubernetes name: give the name of a cert-manager Issuer or ClusterIssuer, e.g. 'db-ca'`);
  }
  const kind = o.issuerKind ?? 'Issuer';
  if (kind !== 'Issuer' && kind !== 'ClusterIssuer' && (o.issuerGroup ?? 'cert-manager.io') === 'cert-manager.io') {
    throw new Error(`tls issuerKind '${kind}' is not a cert-manager issuer kind: use 'Issuer' or 'ClusterIssuer' (or set issuerGroup for an external issuer)`);
  }
  const clusterDomain = o.clusterDomain ?? 'cluster.local';
  const dnsNames = [...tlsDnsNames(names, clusterDomain), ...(o.extraDnsNames ?? [])];
  for (const name of o.extraDnsNames ?? []) {
    if (!/^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name)) {
      throw new Error(`tls extraDnsNames has '${name}', which is not a DNS name: use lowercase names such as 'db.example.com'`);
    }
  }
  const duration = o.duration ?? Duration.days(90);
  const hours = (d: Duration) => `${Math.ceil(d.toSeconds() / 3600)}h`;
  if (duration.toSeconds() < 3600) {
    throw new Error(`tls duration must be at least 1 hour (cert-manager's minimum), got ${duration.toSeconds()} s: e.g. Duration.days(90)`);
  }
  if (o.renewBefore && o.renewBefore.toSeconds() >= duration.toSeconds()) {
    throw new Error(`tls renewBefore (${hours(o.renewBefore)}) must be shorter than duration (${hours(duration)}): e.g. a third of it`);
  }
  return {
    secretName,
    issuerRef: { name: o.issuerName, kind, group: o.issuerGroup ?? 'cert-manager.io' },
    commonName: names.clientServices[0],
    dnsNames: [...new Set(dnsNames)],
    duration: hours(duration),
    ...(o.renewBefore ? { renewBefore: hours(o.renewBefore) } : {}),
    // a fresh key at every renewal; RSA 2048 for every TLS library of the images (OpenSSL, socat, Galera)
    privateKey: { algorithm: 'RSA', size: 2048, rotationPolicy: 'Always' },
    // the same certificate is the server's and, towards Galera peers and SST joiners, the client's
    usages: ['server auth', 'client auth', 'digital signature', 'key encipherment'],
  };
}
