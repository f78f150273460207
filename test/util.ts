/**
 * Helpers every construct test uses: synthesize a chart, pick objects by kind and name, and
 * validate every object against the Kubernetes API schema.
 *
 * The schema is the one compiled into `kubernetes-models` (v4). Its validators check types and
 * required fields but accept unknown fields, so `validateManifest` also reports every property
 * that the same compiled schema never reads: each validator touches every property its schema
 * defines (`data.selector`, `data.template`, …), and iterates the keys of free-form maps (labels,
 * ConfigMap data), so a property that was neither read nor enumerated is not in the schema.
 */
import { Chart, Testing } from 'cdk8s';

export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; [k: string]: any }; [k: string]: any };

/** Synthesizes a chart and validates every object; throws on the first schema error. */
export function synth(chart: Chart): Manifest[] {
  const manifests = Testing.synth(chart) as Manifest[];
  assertValid(manifests);
  return manifests;
}

/** All objects of a kind, optionally with a given name. */
export function ofKind(manifests: Manifest[], kind: string, name?: string): Manifest[] {
  return manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
}

/** Exactly one object of a kind (and name); throws when there are none or several. */
export function one(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = ofKind(manifests, kind, name);
  if (found.length !== 1) {
    const names = ofKind(manifests, kind).map((m) => m.metadata.name);
    throw new Error(`expected one ${kind}${name ? ` named ${name}` : ''}, found ${found.length} (${kind} names: ${names.join(', ') || 'none'})`);
  }
  return found[0];
}

/** Throws with every schema error of every object. */
export function assertValid(manifests: Manifest[]): void {
  const errors = manifests.flatMap((m) => validateManifest(m).map((e) => `${m.kind}/${m.metadata?.name}: ${e}`));
  if (errors.length > 0) {
    throw new Error(`manifests do not match the Kubernetes API schema:\n${errors.join('\n')}`);
  }
}

interface Access {
  readonly read: Set<string>;
  enumerated: boolean;
}

/** Schema errors of one object: wrong types, missing required fields and unknown fields. */
export function validateManifest(manifest: Manifest): string[] {
  const model = modelFor(manifest);
  if (!model) {
    return [`no schema for apiVersion ${manifest.apiVersion} kind ${manifest.kind}`];
  }
  const accesses = new Map<object, Access>();
  const errors: string[] = [];
  try {
    model.prototype.validate.call(track(manifest, accesses));
  } catch (e: any) {
    errors.push(...String(e.message).split('\n').filter((l) => l.trim().length > 0));
  }
  errors.push(...unknownFields(manifest, accesses, ''));
  return errors;
}

function modelFor(manifest: Manifest): any {
  if (typeof manifest.apiVersion !== 'string' || typeof manifest.kind !== 'string') {
    return undefined;
  }
  // core and built-in kinds, then the custom resources we synthesize (ServiceMonitor, Certificate, ...)
  for (const pkg of ['kubernetes-models', '@kubernetes-models/prometheus-operator', '@kubernetes-models/cert-manager']) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const model = require(`${pkg}/${manifest.apiVersion}/${manifest.kind}`)[manifest.kind];
      if (model) {
        return model;
      }
    } catch {
      // not in this package
    }
  }
  return undefined;
}

function track<T>(value: T, accesses: Map<object, Access>): T {
  if (value === null || typeof value !== 'object') {
    return value;
  }
  const target = value as unknown as object;
  let access = accesses.get(target);
  if (!access) {
    access = { read: new Set(), enumerated: false };
    accesses.set(target, access);
  }
  const a = access;
  return new Proxy(target, {
    get(t, key, receiver) {
      if (typeof key === 'string') {
        a.read.add(key);
      }
      return track(Reflect.get(t, key, receiver), accesses);
    },
    ownKeys(t) {
      a.enumerated = true;
      return Reflect.ownKeys(t);
    },
  }) as T;
}

function unknownFields(value: unknown, accesses: Map<object, Access>, path: string): string[] {
  if (value === null || typeof value !== 'object') {
    return [];
  }
  const access = accesses.get(value);
  if (!access) {
    // never reached by the validator: inside a field already reported as unknown
    return [];
  }
  if (Array.isArray(value)) {
    return value.flatMap((v, i) => unknownFields(v, accesses, `${path}/${i}`));
  }
  const errors: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    if (!access.enumerated && !access.read.has(key)) {
      errors.push(`${path}/${key} is not a field of the schema (unknown field "${key}")`);
      continue;
    }
    errors.push(...unknownFields(child, accesses, `${path}/${key}`));
  }
  return errors;
}

/**
 * Manifests for a snapshot with the scripts' text and the hash of scripts and config left out:
 * other tests compare the scripts with src/scripts byte for byte, so a script edit does not churn
 * the snapshots.
 */
export function forSnapshot(manifests: Manifest[]): Manifest[] {
  return manifests.map((m) => {
    if (m.kind === 'ConfigMap' && m.metadata.name.endsWith('-scripts')) {
      return { ...m, data: Object.fromEntries(Object.keys(m.data).map((k) => [k, `<src/scripts/${k}>`])) };
    }
    if (m.kind === 'StatefulSet') {
      const copy = JSON.parse(JSON.stringify(m));
      copy.spec.template.metadata.annotations['cdk8s-mysql/config-hash'] = '<hash of scripts and config>';
      return copy;
    }
    return m;
  });
}

/** The pod spec of the (only, or the named) StatefulSet. */
export function statefulSetPodSpec(manifests: Manifest[], name?: string): any {
  return one(manifests, 'StatefulSet', name).spec.template.spec;
}
