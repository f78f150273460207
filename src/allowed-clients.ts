import { k8s } from 'cdk8s-plus-27';

/** A DNS-1123 label: namespace names. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** The name part of a label key, and a label value. */
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Who may connect to a port of a cluster's pods: the peers of one NetworkPolicy ingress rule.
 * Give a list (`allowedClients`, `metricsFrom`); a connection is admitted when any entry admits it.
 *
 * NetworkPolicies select by labels: a namespace is selected by its labels (every namespace has
 * `kubernetes.io/metadata.name: <its name>`), a pod by its labels.
 */
export class AllowedClients {
  /** Every pod of the cluster's own namespace. */
  public static sameNamespace(): AllowedClients {
    return new AllowedClients('every pod of the same namespace', { podSelector: {} });
  }

  /**
   * The pods of the cluster's own namespace that carry all these labels, e.g.
   * `{ 'app.kubernetes.io/name': 'orders-api' }`.
   */
  public static pods(labels: { [key: string]: string }): AllowedClients {
    checkLabels('AllowedClients.pods', labels, 'AllowedClients.sameNamespace() for every pod of the namespace');
    return new AllowedClients(`the pods labelled ${describe(labels)}`, { podSelector: { matchLabels: { ...labels } } });
  }

  /** Every pod of the namespace with this name, e.g. `'monitoring'`. */
  public static namespaceNamed(name: string): AllowedClients {
    if (typeof name !== 'string' || !DNS_LABEL.test(name) || name.length > 63) {
      throw new Error(
        `AllowedClients.namespaceNamed('${name}'): '${name}' is not a namespace name: a namespace name is a DNS label of at most 63 ` +
        'lowercase letters, digits and \'-\', starting and ending with a letter or digit, e.g. \'monitoring\'',
      );
    }
    return new AllowedClients(`every pod of namespace ${name}`, {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': name } },
    });
  }

  /** Every pod of the namespaces that carry all these labels, e.g. `{ team: 'payments' }`. */
  public static namespaces(labels: { [key: string]: string }): AllowedClients {
    checkLabels('AllowedClients.namespaces', labels, 'AllowedClients.allNamespaces() for every namespace');
    return new AllowedClients(`every pod of the namespaces labelled ${describe(labels)}`, { namespaceSelector: { matchLabels: { ...labels } } });
  }

  /** The pods that carry all of `podLabels`, in the namespaces that carry all of `namespaceLabels`. */
  public static podsInNamespaces(podLabels: { [key: string]: string }, namespaceLabels: { [key: string]: string }): AllowedClients {
    checkLabels('AllowedClients.podsInNamespaces (podLabels)', podLabels, 'AllowedClients.namespaces(namespaceLabels) for every pod of those namespaces');
    checkLabels('AllowedClients.podsInNamespaces (namespaceLabels)', namespaceLabels, 'AllowedClients.allNamespaces() or a list of AllowedClients.pods()');
    return new AllowedClients(`the pods labelled ${describe(podLabels)} in the namespaces labelled ${describe(namespaceLabels)}`, {
      podSelector: { matchLabels: { ...podLabels } },
      namespaceSelector: { matchLabels: { ...namespaceLabels } },
    });
  }

  /** Every pod of every namespace of the Kubernetes cluster (not addresses outside it). */
  public static allNamespaces(): AllowedClients {
    return new AllowedClients('every pod of every namespace', { namespaceSelector: {} });
  }

  /**
   * Any source, inside or outside the Kubernetes cluster (an ingress rule without `from`): the
   * port is open as far as NetworkPolicy goes.
   */
  public static anywhere(): AllowedClients {
    return new AllowedClients('any source', undefined);
  }

  /** What this admits, for messages and documentation. */
  public readonly description: string;

  /** @internal the NetworkPolicy peer, or undefined for any source */
  public readonly _peer?: k8s.NetworkPolicyPeer;

  private constructor(description: string, peer: k8s.NetworkPolicyPeer | undefined) {
    this.description = description;
    this._peer = peer;
  }
}

function describe(labels: { [key: string]: string }): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
}

/** Checks labels as the API server does: non-empty, keys `[prefix/]name`, values of at most 63 characters. */
function checkLabels(prop: string, labels: { [key: string]: string }, instead: string): void {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) {
    throw new Error(`${prop} got no labels, which would select everything: give at least one label, or use ${instead}`);
  }
  for (const [key, value] of entries) {
    const slash = key.lastIndexOf('/');
    const [prefix, name] = slash < 0 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)];
    if (!LABEL_NAME.test(name) || name.length > 63 || (prefix !== undefined && (!DNS_SUBDOMAIN.test(prefix) || prefix.length > 253))) {
      throw new Error(
        `${prop}: '${key}' is not a label key: use [prefix/]name, the name at most 63 letters, digits, '-', '_' and '.' starting and ending with a letter or digit, e.g. 'app.kubernetes.io/name'`,
      );
    }
    if (typeof value !== 'string' || value.length > 63 || (value !== '' && !LABEL_NAME.test(value))) {
      throw new Error(`${prop}: the value '${value}' of label '${key}' is not a label value: use at most 63 letters, digits, '-', '_' and '.' starting and ending with a letter or digit`);
    }
  }
}
