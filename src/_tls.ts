import { ApiObject } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';

/**
 * The names a cluster's certificate must be valid for. (internal)
 */
export interface TlsNames {
  /** The cluster's name, the default prefix of the Secret's name. */
  readonly cluster: string;
  /** The headless Service whose `<pod>.<headless>` names the peers and backup Jobs connect to. */
  readonly headlessService: string;
  /** The Services applications connect to. */
  readonly clientServices: string[];
  /** The pods' names (`<name>-<ordinal>`). */
  readonly pods: string[];
  /** The chart's namespace, when it has one. */
  readonly namespace?: string;
  /** The labels of the cluster's objects, for the Certificate and the Secret it writes. */
  readonly labels: Record<string, string>;
}

/**
 * Where a cluster's certificate files come from, once bound to the cluster. (internal)
 */
export interface BoundServerTls {
  /** The Secret with `tls.crt`, `tls.key` and `ca.crt`. */
  readonly secretName: string;
  /** The cert-manager Certificate, when cert-manager issues the certificate. */
  readonly certificate?: ApiObject;
  /** The pod volume of the certificate files (name `tls`), readable by the mysql group only. */
  readonly volume: k8s.Volume;
}

/** Where the certificate files are mounted in every pod and Job. */
export const TLS_DIR = '/etc/cdk8s-mysql/tls';

/**
 * The DNS names a cluster's certificate covers: every client Service in each form, and every pod
 * under the headless Service. The pods' short names (`<pod>.<headless>`, what the peers, replicas
 * and backup Jobs connect to) are listed one by one: OpenSSL never matches a wildcard with a
 * single label after it (`*.orders`), so only the longer forms use wildcards.
 */
export function tlsDnsNames(names: TlsNames, clusterDomain = 'cluster.local'): string[] {
  const ns = names.namespace;
  const qualified = (host: string) => ns ? [`${host}.${ns}`, `${host}.${ns}.svc`, `${host}.${ns}.svc.${clusterDomain}`] : [];
  return [
    ...names.clientServices.flatMap((service) => [service, ...qualified(service)]),
    ...names.pods.map((pod) => `${pod}.${names.headlessService}`),
    ...qualified(`*.${names.headlessService}`),
  ];
}

/** The server options of a cluster with TLS (my.cnf), by option name. */
export function tlsServerOptions(requireSecureTransport: boolean): Record<string, string> {
  return {
    ssl_cert: `${TLS_DIR}/tls.crt`,
    ssl_key: `${TLS_DIR}/tls.key`,
    ssl_ca: `${TLS_DIR}/ca.crt`,
    ...(requireSecureTransport ? { require_secure_transport: 'ON' } : {}),
  };
}

/** Checks that `requireSecureTransport` comes with a certificate. */
export function validateSecureTransport(tls: unknown, requireSecureTransport: boolean): void {
  if (requireSecureTransport && !tls) {
    throw new Error(
      'requireSecureTransport is true but tls is not set: the server would refuse every TCP connection; ' +
      'give the cluster a certificate, e.g. tls: ServerTls.certManager({ issuerName: \'db-ca\' }) or ServerTls.fromSecret(secret), or remove requireSecureTransport',
    );
  }
}

/** The TLS options the clusters manage, with the prop that sets them. */
export const TLS_RESERVED_OPTIONS: Record<string, string> = {
  ssl_cert: 'set tls',
  ssl_key: 'set tls',
  ssl_ca: 'set tls',
  ssl_capath: 'set tls',
  require_secure_transport: 'set requireSecureTransport',
};

/** Galera's provider options for TLS: group communication and IST, with the cluster's CA. */
export function galeraTlsProviderOptions(): string {
  return `socket.ssl_key=${TLS_DIR}/tls.key;socket.ssl_cert=${TLS_DIR}/tls.crt;socket.ssl_ca=${TLS_DIR}/ca.crt`;
}

/**
 * The [sst] options of a mariabackup state transfer over TLS (socat with OpenSSL): encrypt=4 is
 * mutual TLS that verifies the peer's chain against the CA but not its name, because the donor
 * connects to the joiner's pod IP, which no certificate names.
 */
export function galeraTlsSstOptions(): Record<string, string | number> {
  return { encrypt: 4, tkey: `${TLS_DIR}/tls.key`, tcert: `${TLS_DIR}/tls.crt`, tca: `${TLS_DIR}/ca.crt` };
}
