/**
 * Decides whether Kubernetes NetworkPolicies admit one TCP (or UDP, SCTP) connection, following
 * the API's semantics (networking.k8s.io/v1):
 * - a pod is isolated for ingress when any policy of its namespace selects it and has the type
 *   Ingress (`policyTypes`, or, without it, always Ingress);
 * - an isolated pod accepts a connection when any ingress rule of any policy that selects it
 *   admits it: a rule without `ports` admits every port, one without `from` every source;
 * - a peer with only `podSelector` selects pods of the policy's own namespace; with only
 *   `namespaceSelector`, every pod of the selected namespaces; with both, the selected pods of
 *   the selected namespaces; `ipBlock` selects addresses (CIDR minus `except`);
 * - a port is a number (with `endPort`, a range) or a name, resolved against the destination
 *   pod's container ports of that name and protocol; the protocol defaults to TCP;
 * - every namespace carries the label `kubernetes.io/metadata.name: <name>`.
 * Connections the policies do not govern (from the node, e.g. kubelet probes) are not modelled.
 */

export interface LabelSelector {
  readonly matchLabels?: Record<string, string>;
  readonly matchExpressions?: ReadonlyArray<{ readonly key: string; readonly operator: string; readonly values?: readonly string[] }>;
}

export interface NetworkPolicyPeer {
  readonly podSelector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  readonly ipBlock?: { readonly cidr: string; readonly except?: readonly string[] };
}

export interface NetworkPolicyPort {
  readonly port?: number | string;
  readonly endPort?: number;
  readonly protocol?: string;
}

export interface NetworkPolicy {
  readonly kind?: string;
  readonly metadata: { readonly name?: string; readonly namespace?: string };
  readonly spec: {
    readonly podSelector: LabelSelector;
    readonly policyTypes?: readonly string[];
    readonly ingress?: ReadonlyArray<{ readonly from?: readonly NetworkPolicyPeer[]; readonly ports?: readonly NetworkPolicyPort[] }>;
    readonly egress?: readonly object[];
  };
}

export interface ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol?: string;
}

/** A source: a pod (namespace and labels, optionally its address), or an address outside the cluster. */
export type Source =
  | { readonly namespace: string; readonly labels: Record<string, string>; readonly ip?: string }
  | { readonly ip: string; readonly namespace?: undefined };

export interface Destination {
  readonly namespace: string;
  readonly labels: Record<string, string>;
  /** Every container port of the pod, for named ports. */
  readonly ports: readonly ContainerPort[];
}

export interface Cluster {
  readonly policies: readonly NetworkPolicy[];
  /** Labels of each namespace (its `kubernetes.io/metadata.name` is added). */
  readonly namespaces?: Record<string, Record<string, string>>;
  /** The namespace of policies without one. */
  readonly defaultNamespace?: string;
}

export interface Verdict {
  readonly allowed: boolean;
  /** Which policy and rule admitted it, or why not. */
  readonly reason: string;
}

/** Whether the policies admit a connection from `source` to `port` of `destination`. */
export function evaluate(cluster: Cluster, source: Source, destination: Destination, port: number, protocol = 'TCP'): Verdict {
  const defaultNamespace = cluster.defaultNamespace ?? 'default';
  const selecting = cluster.policies.filter((policy) =>
    (policy.metadata.namespace ?? defaultNamespace) === destination.namespace
    && ingressType(policy)
    && selects(policy.spec.podSelector, destination.labels));
  if (selecting.length === 0) {
    return { allowed: true, reason: 'no policy selects the destination: it is not isolated' };
  }
  for (const policy of selecting) {
    const policyNamespace = policy.metadata.namespace ?? defaultNamespace;
    for (const [i, rule] of (policy.spec.ingress ?? []).entries()) {
      const portOk = !rule.ports || rule.ports.length === 0 || rule.ports.some((p) => portMatches(p, port, protocol, destination.ports));
      const fromOk = !rule.from || rule.from.length === 0 || rule.from.some((peer) => peerMatches(cluster, peer, policyNamespace, source));
      if (portOk && fromOk) {
        return { allowed: true, reason: `admitted by ingress rule ${i} of NetworkPolicy ${policyNamespace}/${policy.metadata.name}` };
      }
    }
  }
  return { allowed: false, reason: `isolated by ${selecting.map((p) => p.metadata.name).join(', ')}, and no ingress rule admits it` };
}

function ingressType(policy: NetworkPolicy): boolean {
  return policy.spec.policyTypes === undefined ? true : policy.spec.policyTypes.includes('Ingress');
}

/** A label selector: every matchLabels entry and every expression must hold; an empty selector selects everything. */
export function selects(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpressions = (selector.matchExpressions ?? []).every((e) => {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    switch (e.operator) {
      case 'In': return has && (e.values ?? []).includes(labels[e.key]);
      case 'NotIn': return !has || !(e.values ?? []).includes(labels[e.key]);
      case 'Exists': return has;
      case 'DoesNotExist': return !has;
      default: throw new Error(`unknown label selector operator ${e.operator}`);
    }
  });
  return byLabels && byExpressions;
}

function portMatches(rule: NetworkPolicyPort, port: number, protocol: string, containerPorts: readonly ContainerPort[]): boolean {
  const ruleProtocol = rule.protocol ?? 'TCP';
  if (ruleProtocol !== protocol) return false;
  if (rule.port === undefined) return true;
  if (typeof rule.port === 'number') {
    return rule.endPort === undefined ? port === rule.port : port >= rule.port && port <= rule.endPort;
  }
  // a named port: the destination's container port of that name and protocol
  return containerPorts.some((p) => p.name === rule.port && (p.protocol ?? 'TCP') === protocol && p.containerPort === port);
}

function peerMatches(cluster: Cluster, peer: NetworkPolicyPeer, policyNamespace: string, source: Source): boolean {
  if (peer.ipBlock) {
    return source.ip !== undefined && inCidr(source.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((c) => inCidr(source.ip!, c));
  }
  if (source.namespace === undefined) {
    return false; // pod and namespace selectors select pods only
  }
  const namespaceOk = peer.namespaceSelector
    ? selects(peer.namespaceSelector, namespaceLabels(cluster, source.namespace))
    : source.namespace === policyNamespace;
  return namespaceOk && (peer.podSelector === undefined || selects(peer.podSelector, source.labels));
}

function namespaceLabels(cluster: Cluster, namespace: string): Record<string, string> {
  return { ...(cluster.namespaces?.[namespace] ?? {}), 'kubernetes.io/metadata.name': namespace };
}

/** IPv4 only (the test clusters' addresses). */
function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const toNumber = (a: string) => {
    const parts = a.split('.').map(Number);
    if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) throw new Error(`not an IPv4 address: ${a}`);
    return parts.reduce((acc, n) => acc * 256 + n, 0);
  };
  const prefix = Number(bits ?? 32);
  const size = 2 ** (32 - prefix);
  return Math.floor(toNumber(ip) / size) === Math.floor(toNumber(base) / size);
}
