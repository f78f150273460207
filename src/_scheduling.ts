import { k8s } from 'cdk8s-plus-27';
import { PodAntiAffinity } from './pod-anti-affinity';

/**
 * Where a cluster's pods may run: anti-affinity on the node (preferred or required) and, when
 * asked, an even spread across zones. `podLabels` must select only the database pods, not the
 * backup Jobs' pods (which share the name and instance labels): a required anti-affinity on them
 * would keep a backup Job from every node that runs a member.
 */
export function placement(podLabels: Record<string, string>, antiAffinity: PodAntiAffinity | undefined, spreadAcrossZones: boolean | undefined):
Pick<k8s.PodSpec, 'affinity' | 'topologySpreadConstraints'> {
  const mode = antiAffinity ?? PodAntiAffinity.PREFERRED;
  if (!Object.values(PodAntiAffinity).includes(mode)) {
    throw new Error(`podAntiAffinity '${mode}' is not supported: use PodAntiAffinity.PREFERRED (the default) or PodAntiAffinity.REQUIRED`);
  }
  const term: k8s.PodAffinityTerm = { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { ...podLabels } } };
  const podAntiAffinity: k8s.PodAntiAffinity = mode === PodAntiAffinity.REQUIRED
    ? { requiredDuringSchedulingIgnoredDuringExecution: [term] }
    : { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: term }] };
  return {
    affinity: { podAntiAffinity },
    ...(spreadAcrossZones
      ? {
        topologySpreadConstraints: [{
          topologyKey: 'topology.kubernetes.io/zone',
          maxSkew: 1,
          whenUnsatisfiable: 'DoNotSchedule',
          nodeTaintsPolicy: 'Honor',
          labelSelector: { matchLabels: { ...podLabels } },
        }],
      }
      : {}),
  };
}
