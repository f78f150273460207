/**
 * The Kubernetes object shapes the runner reads, as they appear in synthesized manifests
 * (plain JSON, exactly what `chart.toJson()` returns). Types only: nothing here exists at runtime.
 */
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { ICronJob } from 'kubernetes-models/batch/v1/CronJob';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IVolume } from 'kubernetes-models/v1/Volume';

export type {
  ICronJob as CronJob,
  IConfigMap as ConfigMap,
  IContainer as Container,
  IEnvVar as EnvVar,
  IJob as Job,
  IPodSpec as PodSpec,
  IProbe as Probe,
  ISecret as Secret,
  IService as Service,
  IStatefulSet as StatefulSet,
  IVolume as Volume,
};

export type ObjectMeta = NonNullable<IPod['metadata']>;

/** Any manifest: every synthesized object has these fields. */
export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata?: ObjectMeta;
  readonly [field: string]: unknown;
}

/** A pod as the runner creates it: a template's metadata and spec plus the pod's identity. */
export interface PodManifest {
  readonly metadata: ObjectMeta & { readonly name: string; readonly namespace: string; readonly uid: string };
  readonly spec: IPodSpec;
}
