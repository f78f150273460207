import { Lazy } from 'cdk8s';
import { k8s } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { AllowedClients } from './allowed-clients';

/** Who may reach a port of a cluster's pods. */
enum Access {
  /** The SQL port: the allowed clients, the cluster's own pods and its backup and restore Jobs. */
  CLIENTS = 'clients',
  /** The physical copy stream (no authentication): the cluster's own pods and its backup Jobs. */
  STREAM = 'stream',
  /** Galera group communication, IST, SST and the pods' status exchange: the cluster's own pods. */
  MEMBERS = 'members',
  /** The metrics exporter: `metricsFrom`. */
  METRICS = 'metrics',
}

/**
 * Every container port name the policy knows, by what it serves. A port of another name makes
 * the synthesis fail, so that no port is ever open, or closed, by accident.
 */
const PORT_ACCESS: Record<string, Access> = {
  'mysql': Access.CLIENTS,
  'seed': Access.STREAM,
  'backup': Access.STREAM,
  'galera': Access.MEMBERS,
  'ist': Access.MEMBERS,
  'sst': Access.MEMBERS,
  'galera-status': Access.MEMBERS,
  'metrics': Access.METRICS,
};

export interface ClusterNetworkPolicyProps {
  /** The StatefulSet whose pods the policy isolates; its container ports are read at synthesis. */
  readonly statefulSet: k8s.KubeStatefulSet;
  /** The name of the policy (the cluster's name). */
  readonly name: string;
  readonly labels: Record<string, string>;
  /** Labels that select exactly the cluster's database pods. */
  readonly memberLabels: Record<string, string>;
  /** Labels that select exactly the pods of the cluster's backup, restore and drill Jobs. */
  readonly jobLabels: Record<string, string>;
  readonly clients?: AllowedClients[];
  readonly metricsFrom?: AllowedClients[];
}

/** The labels of `recommendedLabels` that select one component of one cluster (name, instance, component). */
export function componentSelector(labels: Record<string, string>): Record<string, string> {
  const keys = ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/component'];
  return Object.fromEntries(keys.map((key) => [key, labels[key]]));
}

/** The default of `metricsFrom`: Prometheus in the `monitoring` namespace. */
export const DEFAULT_METRICS_NAMESPACE = 'monitoring';

/**
 * The ingress NetworkPolicy of a cluster's pods. Its rules are derived from the containers'
 * ports, by name, when the chart is synthesized (after every sidecar has been added, e.g. the
 * backup stream of a physical BackupSchedule).
 */
export function clusterNetworkPolicy(scope: Construct, id: string, props: ClusterNetworkPolicyProps): k8s.KubeNetworkPolicy {
  const clients = checkList('allowedClients', props.clients ?? [AllowedClients.sameNamespace()],
    'the SQL port', '[AllowedClients.sameNamespace()]');
  const metricsFrom = checkList('metricsFrom', props.metricsFrom ?? [AllowedClients.namespaceNamed(DEFAULT_METRICS_NAMESPACE)],
    'the metrics port', '[AllowedClients.namespaceNamed(\'monitoring\')]');
  const members: k8s.NetworkPolicyPeer = { podSelector: { matchLabels: { ...props.memberLabels } } };
  const jobs: k8s.NetworkPolicyPeer = { podSelector: { matchLabels: { ...props.jobLabels } } };
  const peers: Record<Access, Array<k8s.NetworkPolicyPeer | undefined>> = {
    [Access.CLIENTS]: [...clients.map((c) => c._peer), members, jobs],
    [Access.STREAM]: [members, jobs],
    [Access.MEMBERS]: [members],
    [Access.METRICS]: metricsFrom.map((c) => c._peer),
  };
  const statefulSet = props.statefulSet;
  const ingress = Lazy.any({
    produce: () => {
      const ports = containerPorts(statefulSet, props.name);
      return Object.values(Access).flatMap((access): k8s.NetworkPolicyIngressRule[] => {
        const matching = ports.filter((p) => p.access === access);
        if (matching.length === 0) return [];
        const rulePorts = matching.map((p) => ({ port: k8s.IntOrString.fromNumber(p.port), protocol: p.protocol }));
        // one peer that admits any source makes the rule a rule without `from`
        const from = peers[access];
        return [from.some((peer) => peer === undefined) ? { ports: rulePorts } : { ports: rulePorts, from: from as k8s.NetworkPolicyPeer[] }];
      });
    },
  });
  return new k8s.KubeNetworkPolicy(scope, id, {
    metadata: { name: props.name, labels: props.labels },
    spec: {
      podSelector: { matchLabels: { ...props.memberLabels } },
      policyTypes: ['Ingress'],
      ingress: ingress as unknown as k8s.NetworkPolicyIngressRule[],
    },
  });
}

interface KnownPort {
  readonly port: number;
  readonly protocol: string;
  readonly access: Access;
}

/** Every port of the StatefulSet's (init) containers as synthesized, with who may reach it. */
function containerPorts(statefulSet: k8s.KubeStatefulSet, policy: string): KnownPort[] {
  const spec = (statefulSet.toJson() as any).spec.template.spec;
  const containers: any[] = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
  const found = new Map<string, KnownPort>();
  for (const container of containers) {
    for (const port of container.ports ?? []) {
      const access = port.name === undefined ? undefined : PORT_ACCESS[port.name];
      if (access === undefined) {
        throw new Error(
          `container '${container.name}' of StatefulSet '${statefulSet.name}' has ${port.name === undefined ? 'an unnamed port' : `the port '${port.name}'`} ` +
          `(${port.containerPort}), which NetworkPolicy '${policy}' cannot classify, so it would be left closed: name it after what it serves ` +
          `(${Object.keys(PORT_ACCESS).join(', ')}), or set networkPolicy: false and write your own NetworkPolicy`,
        );
      }
      const protocol = port.protocol ?? 'TCP';
      found.set(`${port.containerPort}/${protocol}`, { port: port.containerPort, protocol, access });
    }
  }
  return [...found.values()].sort((a, b) => a.port - b.port);
}

function checkList(prop: string, list: AllowedClients[], port: string, example: string): AllowedClients[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new Error(
      `${prop} is empty, which would admit no client to ${port}: give at least one, e.g. ${example}, ` +
      'or set networkPolicy: false to synthesize no NetworkPolicy',
    );
  }
  list.forEach((entry, i) => {
    if (!(entry instanceof AllowedClients)) {
      throw new Error(`${prop}[${i}] is not an AllowedClients: make it with AllowedClients.sameNamespace(), .pods(), .namespaceNamed(), .namespaces() or .anywhere()`);
    }
  });
  return list;
}
