import { Names } from 'cdk8s';
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

/** Checks that an image reference names a tag or a digest, so that pods never float to `latest`. */
export function validateImage(prop: string, image: string): void {
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  if (!image.includes('@sha256:') && !lastSegment.includes(':')) {
    throw new Error(`${prop} '${image}' has no tag: pin a version, e.g. '${image}:11.4' (an untagged image floats to 'latest')`);
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
      if (!/^[A-Za-z0-9_.-]+$/.test(key)) {
        throw new Error(`my.cnf option name '${key}' is not valid: use letters, digits, '_', '-' and '.'`);
      }
      if (typeof value === 'string' && /[\r\n]/.test(value)) {
        throw new Error(`my.cnf option '${key}' has a line break in its value: give a single-line value`);
      }
      out.push(value === true ? key : `${key} = ${value === false ? 'OFF' : value}`);
    }
    out.push('');
  }
  return out.join('\n');
}
