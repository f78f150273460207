import { cpus, totalmem } from 'os';
import type { ConfigMap, Container, EnvVar, PodManifest, Secret } from './k8s';

/**
 * A container cannot start with this configuration yet (a missing ConfigMap, Secret or key):
 * the kubelet reports CreateContainerConfigError and keeps retrying.
 */
export class ContainerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContainerConfigError';
  }
}

/** What a pod's environment and downward API volumes can refer to. */
export interface PodContext {
  readonly pod: PodManifest;
  readonly podIp: string;
  readonly nodeName: string;
  readonly nodeIp: string;
  configMap(name: string): ConfigMap | undefined;
  secret(name: string): Secret | undefined;
}

type FieldRef = NonNullable<EnvVar['valueFrom']>['fieldRef'];
type ResourceFieldRef = NonNullable<EnvVar['valueFrom']>['resourceFieldRef'];

/**
 * The environment of a container as the kubelet builds it: the image's `ENV` and `HOSTNAME`,
 * then `envFrom` sources in order, then `env` in order, where `$(VAR)` refers to variables
 * defined before.
 */
export function containerEnvironment(context: PodContext, container: Container, imageEnv: Readonly<Record<string, string>>): Map<string, string> {
  const env = new Map(Object.entries(imageEnv));
  env.set('HOSTNAME', context.pod.spec.hostname ?? context.pod.metadata.name);
  for (const source of container.envFrom ?? []) {
    const prefix = source.prefix ?? '';
    const data = source.configMapRef
      ? configMapData(context, source.configMapRef.name ?? '', source.configMapRef.optional)
      : secretData(context, source.secretRef?.name, source.secretRef?.optional);
    for (const [key, value] of Object.entries(data)) {
      if (/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(prefix + key)) {
        env.set(prefix + key, value);
      }
    }
  }
  for (const variable of container.env ?? []) {
    const value = variable.valueFrom ? valueFrom(context, container, variable) : expand(variable.value ?? '', env);
    if (value !== undefined) {
      env.set(variable.name, value);
    }
  }
  return env;
}

/** `$(VAR)` expansion of `command`, `args` and `env` values; `$$` escapes a `$`; unknown references stay as written. */
export function expand(text: string, env: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\(([^)]*)\)/g, (match, name: string | undefined) => {
    if (name === undefined) {
      return '$';
    }
    return env.get(name) ?? match;
  });
}

/** A downward API field of the pod (env `fieldRef` and downwardAPI volume items). */
export function fieldValue(context: PodContext, ref: NonNullable<FieldRef>): string {
  const { metadata, spec } = context.pod;
  const mapEntry = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(ref.fieldPath);
  if (mapEntry) {
    return (mapEntry[1] === 'labels' ? metadata.labels : metadata.annotations)?.[mapEntry[2]] ?? '';
  }
  const fields: Record<string, string | undefined> = {
    'metadata.name': metadata.name,
    'metadata.namespace': metadata.namespace,
    'metadata.uid': metadata.uid,
    'metadata.labels': formatMap(metadata.labels),
    'metadata.annotations': formatMap(metadata.annotations),
    'spec.nodeName': context.nodeName,
    'spec.serviceAccountName': spec.serviceAccountName ?? 'default',
    'status.hostIP': context.nodeIp,
    'status.hostIPs': context.nodeIp,
    'status.podIP': context.podIp,
    'status.podIPs': context.podIp,
  };
  if (!(ref.fieldPath in fields)) {
    throw new ContainerConfigError(`unsupported fieldRef ${ref.fieldPath}`);
  }
  return fields[ref.fieldPath] ?? '';
}

/**
 * A container's resource (downward API `resourceFieldRef`), rounded up in units of `divisor`.
 * Without a limit, limits are the node's capacity; without a request, requests are the limit
 * if one is set, else 0.
 */
export function resourceValue(container: Container, ref: NonNullable<ResourceFieldRef>): string {
  const [kind, resource] = ref.resource.split('.');
  const limits = container.resources?.limits ?? {};
  const requests = container.resources?.requests ?? {};
  const capacity: Record<string, number> = { 'cpu': cpus().length, 'memory': totalmem(), 'ephemeral-storage': 0 };
  if (!(resource in capacity) || (kind !== 'limits' && kind !== 'requests')) {
    throw new ContainerConfigError(`unsupported resourceFieldRef ${ref.resource}`);
  }
  const limit = limits[resource] === undefined ? capacity[resource] : parseQuantity(limits[resource]);
  const request = requests[resource] ?? limits[resource];
  const value = kind === 'limits' ? limit : request === undefined ? 0 : parseQuantity(request);
  return String(Math.ceil(value / parseQuantity(ref.divisor ?? 1)));
}

/** A Kubernetes quantity (`500m`, `1Gi`, `2e3`) as a number. */
function parseQuantity(quantity: string | number): number {
  if (typeof quantity === 'number') {
    return quantity;
  }
  const match = /^([0-9.]+(?:[eE][-+]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/.exec(quantity);
  if (!match) {
    throw new ContainerConfigError(`invalid quantity ${quantity}`);
  }
  const binary = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
  const decimal = ['k', 'M', 'G', 'T', 'P', 'E'];
  const fractions: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3 };
  const suffix = match[2] ?? '';
  const factor = binary.includes(suffix) ? 1024 ** (binary.indexOf(suffix) + 1)
    : decimal.includes(suffix) ? 1000 ** (decimal.indexOf(suffix) + 1)
      : fractions[suffix] ?? 1;
  return Number(match[1]) * factor;
}

/** The decoded data of a ConfigMap (`data` and `binaryData`). */
export function configMapData(context: PodContext, name: string, optional?: boolean): Record<string, string> {
  const configMap = context.configMap(name);
  if (!configMap) {
    return optional ? {} : fail(`configmap "${name}" not found`);
  }
  const binary = Object.entries(configMap.binaryData ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]);
  return { ...configMap.data, ...Object.fromEntries(binary) };
}

/** The decoded data of a Secret (`data` is base64, `stringData` wins). */
export function secretData(context: PodContext, name: string | undefined, optional?: boolean): Record<string, string> {
  const secret = name === undefined ? undefined : context.secret(name);
  if (!secret) {
    return optional ? {} : fail(`secret "${name}" not found`);
  }
  const decoded = Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]);
  return { ...Object.fromEntries(decoded), ...secret.stringData };
}

function valueFrom(context: PodContext, container: Container, variable: EnvVar): string | undefined {
  const from = variable.valueFrom!;
  if (from.fieldRef) {
    return fieldValue(context, from.fieldRef);
  }
  if (from.resourceFieldRef) {
    return resourceValue(container, from.resourceFieldRef);
  }
  const ref = from.configMapKeyRef ?? from.secretKeyRef;
  if (!ref) {
    throw new ContainerConfigError(`env ${variable.name}: unsupported valueFrom`);
  }
  const data = from.configMapKeyRef ? configMapData(context, ref.name ?? '', ref.optional) : secretData(context, ref.name, ref.optional);
  if (!(ref.key in data)) {
    return ref.optional ? undefined : fail(`couldn't find key ${ref.key} in ${from.configMapKeyRef ? 'ConfigMap' : 'Secret'} ${ref.name}`);
  }
  return data[ref.key];
}

function fail(message: string): never {
  throw new ContainerConfigError(message);
}

function formatMap(map: Record<string, string> | undefined): string {
  return Object.entries(map ?? {}).map(([key, value]) => `${key}="${value}"`).join('\n');
}
