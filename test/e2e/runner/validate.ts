import type { Container, PodSpec, Probe } from './k8s';
import { profileFor } from './profiles';
import { checkVolumeSupported } from './volumes';

type Handler = NonNullable<NonNullable<Container['lifecycle']>['preStop']>;

/**
 * Rejects, when manifests are applied, what the runner cannot run faithfully: images without a
 * profile (such as mysql:*), probes and hooks other than exec/tcpSocket, unsupported volume
 * types and containers that rely on an entrypoint the runner cannot provide.
 * `claimTemplates` are the volume names a StatefulSet's volumeClaimTemplates add.
 */
export function validatePodSpec(spec: PodSpec, where: string, claimTemplates: readonly string[] = []): void {
  const volumes = new Set([...(spec.volumes ?? []).map((volume) => volume.name), ...claimTemplates]);
  for (const volume of spec.volumes ?? []) {
    checkVolumeSupported(volume);
  }
  for (const container of [...(spec.initContainers ?? []), ...spec.containers]) {
    const at = `${where}, container "${container.name}"`;
    const profile = profileFor(container.image);
    if (!container.command && profile.unavailable.some((path) => path.endsWith(`/${profile.entrypoint[0]}`))) {
      throw new Error(`${at} has no command, so it would run the image's entrypoint ${profile.entrypoint[0]}, which the pod runner cannot provide`);
    }
    for (const mount of container.volumeMounts ?? []) {
      if (!volumes.has(mount.name)) {
        throw new Error(`${at} mounts volume "${mount.name}", which the pod does not define`);
      }
    }
    const probes = { startup: container.startupProbe, liveness: container.livenessProbe, readiness: container.readinessProbe };
    for (const [kind, probe] of Object.entries(probes)) {
      if (probe) {
        checkHandler(`${at}, ${kind} probe`, probe, ['exec', 'tcpSocket']);
      }
    }
    for (const [kind, hook] of Object.entries(container.lifecycle ?? {})) {
      if (kind !== 'postStart' && kind !== 'preStop') {
        throw new Error(`${at}: lifecycle ${kind} is not supported by the pod runner`);
      }
      checkHandler(`${at}, ${kind} hook`, hook as Handler, ['exec']);
    }
  }
  for (const container of spec.initContainers ?? []) {
    if (container.restartPolicy) {
      throw new Error(`${where}, init container "${container.name}": sidecar containers (restartPolicy on an init container) are not supported by the pod runner`);
    }
  }
}

function checkHandler(where: string, handler: Probe | Handler, supported: readonly string[]): void {
  const type = Object.keys(handler).find((key) => ['exec', 'tcpSocket', 'httpGet', 'grpc', 'sleep'].includes(key));
  if (!type || !supported.includes(type)) {
    throw new Error(`${where}: ${type ?? 'an empty'} handler is not supported by the pod runner (only ${supported.join(' and ')})`);
  }
}
