import { Names, Size, SizeRoundingBehavior } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { k8s } from 'cdk8s-plus-27';
import { IConstruct } from 'constructs';

/** Kubernetes object names of the DNS-1123 label form (pods, Services, StatefulSets). */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The name of a cluster's objects: the explicit `name` prop, else one derived from the
 * construct path (stable, with a short hash, at most 40 characters).
 */
export function resourceName(scope: IConstruct, explicit?: string): string {
  return explicit ?? Names.toDnsLabel(scope, { maxLen: 40 });
}

/**
 * Checks that a StatefulSet name is usable: a DNS label, at most 52 characters (the
 * controller-revision-hash label adds 11) and every pod name (`name-ordinal`) at most 63.
 */
export function validateStatefulSetName(prop: string, name: string, replicas: number): void {
  if (!DNS_LABEL.test(name)) {
    throw new Error(
      `${prop} '${name}' is not a valid Kubernetes name: use lowercase letters, digits and '-', starting and ending with a letter or digit`,
    );
  }
  if (name.length > 52) {
    throw new Error(
      `${prop} '${name}' is ${name.length} characters long; a StatefulSet name may have at most 52 (Kubernetes adds an 11-character revision hash to its pod labels): choose a shorter name`,
    );
  }
  const longestPod = `${name}-${Math.max(replicas - 1, 0)}`;
  if (longestPod.length > 63) {
    throw new Error(`${prop} '${name}' makes the pod name '${longestPod}' longer than 63 characters: choose a shorter name`);
  }
}

/**
 * Checks that an image reference names a tag other than `latest`, or a digest, so that pods never
 * float to another release; `tag` is the example tag of the message (e.g. the server's version).
 */
export function validateImage(prop: string, image: string, tag = '<version>'): void {
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  if (!image.includes('@sha256:') && !lastSegment.includes(':')) {
    throw new Error(`${prop} '${image}' has no tag: pin a version, e.g. '${image}:${tag}' (an untagged image floats to 'latest')`);
  }
  if (!image.includes('@sha256:') && /:latest$/i.test(lastSegment)) {
    const repository = image.slice(0, image.length - ':latest'.length);
    throw new Error(`${prop} '${image}' is pinned to 'latest', which moves to every new release: pin a version, e.g. '${repository}:${tag}'`);
  }
}

/** The labels that Kubernetes recommends, shared by every object of one cluster. */
export function recommendedLabels(name: string, instance: string, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/instance': instance,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': instance,
    'app.kubernetes.io/managed-by': 'cdk8s-mysql',
  };
}

/** One option of an option file: a value, or `true` for a bare flag such as `skip_name_resolve`. */
export type CnfValue = string | number | boolean;

/**
 * Renders an option file (my.cnf) from sections of options. Later sections and later keys win
 * over earlier ones when merged by the caller; option names are written as given.
 */
export function renderCnf(sections: Record<string, Record<string, CnfValue>>): string {
  const out: string[] = [];
  for (const [section, options] of Object.entries(sections)) {
    out.push(`[${section}]`);
    for (const [key, value] of Object.entries(options)) {
      // the options of the library are well-formed: what fails here comes from serverOptions
      if (!/^[A-Za-z0-9_.-]+$/.test(key)) {
        throw new Error(`serverOptions key '${key}' is not an option name: use the server's option name, of letters, digits, '_', '-' and '.', e.g. 'long_query_time'`);
      }
      if (typeof value === 'string' && /[\r\n]/.test(value)) {
        throw new Error(`serverOptions.${key} has a line break in its value: give a single-line value`);
      }
      out.push(value === true ? key : `${key} = ${value === false ? 'OFF' : value}`);
    }
    out.push('');
  }
  return out.join('\n');
}

/**
 * A Kubernetes quantity for a size, in the largest binary unit that represents it exactly
 * (`10Gi`, `512Mi`, else KiB rounded up).
 */
export function sizeQuantity(size: Size): string {
  const gib = size.toGibibytes({ rounding: SizeRoundingBehavior.NONE });
  if (Number.isInteger(gib)) return `${gib}Gi`;
  const mib = size.toMebibytes({ rounding: SizeRoundingBehavior.NONE });
  if (Number.isInteger(mib)) return `${mib}Mi`;
  return `${Math.ceil(size.toKibibytes({ rounding: SizeRoundingBehavior.NONE }))}Ki`;
}

/** A container's `resources` (the L1 shape) from cdk8s-plus `ContainerResources`. */
export function kubeResources(resources: kplus.ContainerResources): k8s.ResourceRequirements {
  const limits: Record<string, k8s.Quantity> = {};
  const requests: Record<string, k8s.Quantity> = {};
  if (resources.cpu?.limit) limits.cpu = k8s.Quantity.fromString(resources.cpu.limit.amount);
  if (resources.cpu?.request) requests.cpu = k8s.Quantity.fromString(resources.cpu.request.amount);
  if (resources.memory?.limit) limits.memory = k8s.Quantity.fromString(sizeQuantity(resources.memory.limit));
  if (resources.memory?.request) requests.memory = k8s.Quantity.fromString(sizeQuantity(resources.memory.request));
  if (resources.ephemeralStorage?.limit) limits['ephemeral-storage'] = k8s.Quantity.fromString(sizeQuantity(resources.ephemeralStorage.limit));
  if (resources.ephemeralStorage?.request) requests['ephemeral-storage'] = k8s.Quantity.fromString(sizeQuantity(resources.ephemeralStorage.request));
  return {
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
  };
}

/** The uid and gid of the `mysql` user in the official mysql and mariadb images. */
export const MYSQL_UID = 999;

/** Every container runs as the images' mysql user, unprivileged, with no capabilities and a read-only root. */
export const CONTAINER_SECURITY: k8s.SecurityContext = {
  runAsUser: MYSQL_UID,
  runAsGroup: MYSQL_UID,
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  privileged: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};

/** The pod-level context: the mysql user, volumes owned by its group, the runtime's default seccomp profile. */
export const POD_SECURITY: k8s.PodSecurityContext = {
  runAsUser: MYSQL_UID,
  runAsGroup: MYSQL_UID,
  runAsNonRoot: true,
  fsGroup: MYSQL_UID,
  fsGroupChangePolicy: 'OnRootMismatch',
  seccompProfile: { type: 'RuntimeDefault' },
};
