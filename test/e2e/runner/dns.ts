import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'fs';

export const CLUSTER_DOMAIN = 'cluster.local';

/** One hosts-file line: an address and its names, the fully qualified name first. */
export interface HostRecord {
  readonly ip: string;
  readonly names: readonly string[];
}

/** The names of a Service as a pod in `viewerNamespace` can use them (short names only in the same namespace). */
export function serviceNames(service: string, namespace: string, viewerNamespace: string): string[] {
  const names = [`${service}.${namespace}.svc.${CLUSTER_DOMAIN}`, `${service}.${namespace}.svc`, `${service}.${namespace}`];
  return namespace === viewerNamespace ? [...names, service] : names;
}

/** The per-pod names a headless Service publishes for a pod with `hostname` and `subdomain`. */
export function podNames(hostname: string, subdomain: string, namespace: string, viewerNamespace: string): string[] {
  return serviceNames(subdomain, namespace, viewerNamespace).map((name) => `${hostname}.${name}`);
}

/**
 * A pod's /etc/hosts as the kubelet writes it (localhost, then the pod's own name, FQDN first so
 * `hostname -f` works), followed by the cluster's DNS records: the runner has no DNS server.
 */
export function renderHosts(own: HostRecord | undefined, cluster: readonly HostRecord[]): string {
  const lines = [
    '# Kubernetes-managed hosts file (pod runner).',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::0\tip6-mcastprefix',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
  ];
  if (own) {
    lines.push(line(own));
  }
  lines.push('# Cluster DNS (pod runner): Services and the pods of headless Services.');
  lines.push(...cluster.map(line));
  return `${lines.join('\n')}\n`;
}

/** resolv.conf without a nameserver reachable from the pod: every name comes from /etc/hosts. */
export function renderResolvConf(namespace: string): string {
  return [
    `search ${namespace}.svc.${CLUSTER_DOMAIN} svc.${CLUSTER_DOMAIN} ${CLUSTER_DOMAIN}`,
    'nameserver 127.0.0.1',
    'options ndots:5 timeout:1 attempts:1',
    '',
  ].join('\n');
}

/**
 * Rewrites a file that is bind-mounted into containers without replacing its inode (a new inode
 * would not be seen through the mount). The new content is written over the old one before the
 * file is cut to length, so a reader never sees an empty file. An unchanged file is not touched.
 */
export function writeInPlace(path: string, content: string): void {
  if (readFileSync(path, 'utf8') === content) {
    return;
  }
  const data = Buffer.from(content, 'utf8');
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, data, 0, data.length, 0);
    ftruncateSync(fd, data.length);
  } finally {
    closeSync(fd);
  }
}

function line(record: HostRecord): string {
  return `${record.ip}\t${record.names.join(' ')}`;
}
