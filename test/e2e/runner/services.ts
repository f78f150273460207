import { HostRecord, podNames, serviceNames } from './dns';
import type { ServicePortListener } from './forwarder';
import type { Service } from './k8s';
import type { Pod } from './pod';

/** An applied Service and, unless it is headless, its virtual address. */
export interface ServiceEntry {
  readonly manifest: Service;
  readonly name: string;
  readonly namespace: string;
  readonly clusterIp: string | undefined;
}

/**
 * The pods a Service sends traffic to, like the endpoints controller: selected by labels in the
 * Service's namespace, Ready and not terminating, or any pod with an address when the Service
 * has `publishNotReadyAddresses`.
 */
function endpoints(service: ServiceEntry, pods: readonly Pod[]): Pod[] {
  const selector = service.manifest.spec?.selector;
  if (!selector || Object.keys(selector).length === 0) {
    return [];
  }
  const includeNotReady = service.manifest.spec?.publishNotReadyAddresses ?? false;
  return pods.filter((pod) => pod.namespace === service.namespace
    && pod.ip !== undefined
    && Object.entries(selector).every(([key, value]) => pod.manifest.metadata.labels?.[key] === value)
    && (includeNotReady || pod.ready));
}

/**
 * What cluster DNS would answer to a pod in `viewerNamespace`: a ClusterIP Service's names
 * resolve to its virtual address; a headless Service's names to each endpoint, and
 * `<hostname>.<service>` to a pod whose subdomain is that Service.
 */
export function dnsRecords(services: readonly ServiceEntry[], pods: readonly Pod[], viewerNamespace: string): HostRecord[] {
  return services.flatMap((service) => {
    const names = serviceNames(service.name, service.namespace, viewerNamespace);
    if (service.clusterIp) {
      return [{ ip: service.clusterIp, names }];
    }
    return endpoints(service, pods).flatMap((pod) => {
      const records: HostRecord[] = [{ ip: pod.ip!, names }];
      if (pod.manifest.spec.subdomain === service.name) {
        records.unshift({ ip: pod.ip!, names: podNames(pod.hostname, service.name, service.namespace, viewerNamespace) });
      }
      return records;
    });
  });
}

/** The forwarder's listeners: every TCP port of every ClusterIP Service with its endpoints' target ports. */
export function forwarderListeners(services: readonly ServiceEntry[], pods: readonly Pod[]): ServicePortListener[] {
  return services.filter((service) => service.clusterIp).flatMap((service) => {
    const ready = endpoints(service, pods);
    return (service.manifest.spec?.ports ?? []).filter((port) => (port.protocol ?? 'TCP') === 'TCP').map((port) => ({
      ip: service.clusterIp!,
      port: port.port,
      endpoints: ready.flatMap((pod) => {
        try {
          return [{ ip: pod.ip!, port: pod.resolvePort(port.targetPort ?? port.port) }];
        } catch {
          return []; // a pod without the named port is no endpoint for it
        }
      }),
    }));
  });
}
