import { chmodSync, lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'fs';
import { dirname, join } from 'path';
import { configMapData, ContainerConfigError, fieldValue, PodContext, resourceValue, secretData } from './env';
import type { Volume } from './k8s';
import { check } from './shell';

const VOLUME_OWNER = join(__dirname, 'volume-owner.sh');

/** A pod volume on this machine. */
export interface PreparedVolume {
  readonly path: string;
  /** Mounted read-only whatever the volumeMount says (ConfigMap, Secret, projected, downward API). */
  readonly readOnly: boolean;
}

/** Where PersistentVolumeClaims live: one directory per claim that outlives the pods using it. */
export interface ClaimStore {
  path(namespace: string, claim: string): string | undefined;
}

type KeyToPath = NonNullable<NonNullable<Volume['configMap']>['items']>[number];
type DownwardItem = NonNullable<NonNullable<Volume['downwardAPI']>['items']>[number];
interface ProjectedFile {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
}

/** Throws for volume types the runner cannot provide (checked when manifests are applied). */
export function checkVolumeSupported(volume: Volume): void {
  const supported = ['emptyDir', 'persistentVolumeClaim', 'configMap', 'secret', 'downwardAPI', 'projected'];
  const type = Object.keys(volume).find((key) => key !== 'name');
  if (!type || !supported.includes(type)) {
    throw new Error(`volume "${volume.name}": ${type ?? 'an empty'} volume is not supported by the pod runner`);
  }
  for (const source of volume.projected?.sources ?? []) {
    if (source.serviceAccountToken || source.clusterTrustBundle) {
      throw new Error(`volume "${volume.name}": projected ${Object.keys(source).join(', ')} sources are not supported by the pod runner`);
    }
  }
}

/**
 * Sets up a pod's volumes like the kubelet: claims by name, a fresh emptyDir, ConfigMap, Secret
 * and downward API files in the kubelet's atomic-writer layout (`..data` and per-key symlinks),
 * then the pod's fsGroup. Throws {@link ContainerConfigError} while something is missing.
 */
export async function prepareVolumes(context: PodContext, volumesDir: string, claims: ClaimStore): Promise<Map<string, PreparedVolume>> {
  const prepared = new Map<string, PreparedVolume>();
  const { spec, metadata } = context.pod;
  for (const volume of spec.volumes ?? []) {
    const path = join(volumesDir, volume.name);
    if (volume.persistentVolumeClaim) {
      const claim = claims.path(metadata.namespace, volume.persistentVolumeClaim.claimName);
      if (!claim) {
        throw new ContainerConfigError(`persistentvolumeclaim "${volume.persistentVolumeClaim.claimName}" not found`);
      }
      prepared.set(volume.name, { path: claim, readOnly: volume.persistentVolumeClaim.readOnly ?? false });
    } else if (volume.emptyDir) {
      mkdirSync(path, { recursive: true });
      chmodSync(path, 0o777);
      prepared.set(volume.name, { path, readOnly: false });
    } else {
      writeProjection(path, projectedFiles(context, volume));
      prepared.set(volume.name, { path, readOnly: true });
    }
  }
  const fsGroup = spec.securityContext?.fsGroup;
  if (fsGroup !== undefined) {
    const policy = spec.securityContext?.fsGroupChangePolicy ?? 'Always';
    for (const volume of prepared.values()) {
      await check(['bash', VOLUME_OWNER, volume.path, String(fsGroup), volume.readOnly ? 'ro' : 'rw', policy]);
    }
  }
  return prepared;
}

/** Creates a subPath directory of a volume the way the kubelet does: with the mode of the volume's root. */
export function makeSubPath(volume: string, subPath: string): string {
  const path = join(volume, subPath);
  if (!lstatOrUndefined(path)) {
    const mode = lstatSync(volume).mode % 0o10000;
    mkdirSync(path, { recursive: true, mode });
    chmodSync(path, mode);
  }
  return path;
}

function projectedFiles(context: PodContext, volume: Volume): ProjectedFile[] {
  if (volume.configMap) {
    const source = volume.configMap;
    return keyFiles(configMapData(context, source.name ?? '', source.optional), source.items, source.defaultMode, source.optional);
  }
  if (volume.secret) {
    const source = volume.secret;
    return keyFiles(secretData(context, source.secretName, source.optional), source.items, source.defaultMode, source.optional);
  }
  if (volume.downwardAPI) {
    return downwardFiles(context, volume.downwardAPI.items ?? [], volume.downwardAPI.defaultMode);
  }
  const projected = volume.projected!;
  return (projected.sources ?? []).flatMap((source) => {
    if (source.configMap) {
      const data = configMapData(context, source.configMap.name ?? '', source.configMap.optional);
      return keyFiles(data, source.configMap.items, projected.defaultMode, source.configMap.optional);
    }
    if (source.secret) {
      const data = secretData(context, source.secret.name, source.secret.optional);
      return keyFiles(data, source.secret.items, projected.defaultMode, source.secret.optional);
    }
    return downwardFiles(context, source.downwardAPI?.items ?? [], projected.defaultMode);
  });
}

function keyFiles(data: Record<string, string>, items: readonly KeyToPath[] | undefined, defaultMode = 0o644, optional = false): ProjectedFile[] {
  if (!items) {
    return Object.entries(data).map(([key, content]) => ({ path: key, content, mode: defaultMode }));
  }
  return items.flatMap((item) => {
    if (!(item.key in data)) {
      if (optional) {
        return [];
      }
      throw new ContainerConfigError(`configmap or secret references non-existent key ${item.key}`);
    }
    return [{ path: item.path, content: data[item.key], mode: item.mode ?? defaultMode }];
  });
}

function downwardFiles(context: PodContext, items: readonly DownwardItem[], defaultMode = 0o644): ProjectedFile[] {
  return items.map((item) => {
    let content: string;
    if (item.fieldRef) {
      content = fieldValue(context, item.fieldRef);
    } else {
      const ref = item.resourceFieldRef!;
      const container = context.pod.spec.containers.find((candidate) => candidate.name === ref.containerName) ?? context.pod.spec.containers[0];
      content = resourceValue(container, ref);
    }
    return { path: item.path, content, mode: item.mode ?? defaultMode };
  });
}

/**
 * The kubelet's atomic-writer layout: the files live in a timestamped directory, `..data` points
 * to it, and every top-level entry is a symlink through `..data`.
 */
function writeProjection(dir: string, files: readonly ProjectedFile[]): void {
  const stamp = `${new Date().toISOString().slice(0, 19).replace(/[-T:]/g, '_')}.${process.hrtime()[1]}`;
  const data = join(dir, `..${stamp}`);
  mkdirSync(data, { recursive: true });
  chmodSync(dir, 0o777);
  for (const file of files) {
    const path = join(data, file.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, file.content);
    chmodSync(path, file.mode);
  }
  symlinkSync(`..${stamp}`, join(dir, '..data'));
  for (const entry of readdirSync(data)) {
    symlinkSync(join('..data', entry), join(dir, entry));
  }
}

function lstatOrUndefined(path: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
