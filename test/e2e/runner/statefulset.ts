import { createHash, randomUUID } from 'crypto';
import type { Claims } from './claims';
import type { PodManifest, StatefulSet, Volume } from './k8s';
import type { Pod } from './pod';

/** What the StatefulSet controller needs from the runner. */
export interface StatefulSetHost {
  readonly claims: Claims;
  pods(namespace: string): Pod[];
  createPod(manifest: PodManifest): Promise<Pod>;
  deletePod(pod: Pod): Promise<void>;
}

/**
 * The StatefulSet controller: pods `<name>-<ordinal>` with stable hostnames under the governing
 * Service and one claim per volumeClaimTemplate and ordinal (`<template>-<name>-<ordinal>`),
 * which outlives the pod. OrderedReady creates pod N+1 only when pod N is Running and Ready and
 * removes pods from the highest ordinal down, one at a time; Parallel does both at once. A
 * changed pod template rolls out from the highest ordinal down (RollingUpdate, with partition).
 */
export class StatefulSetController {
  public readonly name: string;
  public readonly namespace: string;
  /** The last reconcile error, for wait timeouts. */
  public lastError: Error | undefined;
  private readonly host: StatefulSetHost;
  private manifest: StatefulSet;
  private replicas: number;
  private step: Promise<void> | undefined;

  constructor(host: StatefulSetHost, manifest: StatefulSet, namespace: string) {
    this.host = host;
    this.manifest = manifest;
    this.name = manifest.metadata!.name!;
    this.namespace = namespace;
    this.replicas = manifest.spec?.replicas ?? 1;
  }

  /** A re-applied manifest: new replicas and, if the template changed, a rollout. */
  public update(manifest: StatefulSet): void {
    this.manifest = manifest;
    this.replicas = manifest.spec?.replicas ?? 1;
  }

  public scale(replicas: number): void {
    this.replicas = replicas;
  }

  /** Pods 0..replicas-1 exist, are Running and Ready at the current revision, and no other pod of the set exists. */
  public isSettled(replicas: number): boolean {
    const pods = this.ownPods();
    return this.replicas === replicas && pods.length === replicas
      && pods.every(([ordinal, pod]) => ordinal < replicas && pod.ready && this.isCurrent(pod));
  }

  /** Starts one step towards the desired state unless one is in progress; resolves when that step is done. */
  public async reconcile(): Promise<void> {
    if (!this.step) {
      // The step starts on the next tick, after `step` is set: deleting a pod calls back into reconcile at once.
      this.step = Promise.resolve().then(() => this.act()).then(() => {
        this.lastError = undefined;
      }, (error: Error) => {
        this.lastError = error;
      }).finally(() => {
        this.step = undefined;
      });
    }
    await this.step;
  }

  /** Resolves when no step is in progress. */
  public async idle(): Promise<void> {
    await this.step;
  }

  private async act(): Promise<void> {
    const host = this.host;
    const ordered = (this.manifest.spec?.podManagementPolicy ?? 'OrderedReady') === 'OrderedReady';
    const pods = this.ownPods();
    // A pod that ended (restartPolicy other than Always) is deleted and created again.
    const ended = pods.filter(([, pod]) => !pod.terminating && (pod.phase === 'Failed' || pod.phase === 'Succeeded'));
    if (ended.length > 0) {
      await Promise.all(ended.map(([, pod]) => host.deletePod(pod)));
      return;
    }
    const creations: Array<Promise<Pod>> = [];
    for (let ordinal = 0; ordinal < this.replicas; ordinal++) {
      const pod = pods.find(([candidate]) => candidate === ordinal)?.[1];
      if (!pod) {
        creations.push(host.createPod(this.podManifest(ordinal)));
        if (ordered) {
          break;
        }
      } else if (ordered && (pod.terminating || !pod.ready)) {
        break;
      }
    }
    if (creations.length > 0) {
      await Promise.all(creations);
      return;
    }
    const condemned = pods.filter(([ordinal]) => ordinal >= this.replicas).sort(([a], [b]) => b - a);
    if (condemned.length > 0) {
      const removing = ordered ? condemned.slice(0, 1) : condemned;
      if (!ordered || pods.every(([, pod]) => !pod.terminating)) {
        await Promise.all(removing.map(([ordinal, pod]) => this.remove(ordinal, pod)));
      }
      return;
    }
    await this.rollOut(pods);
  }

  /** RollingUpdate: once every pod is Running and Ready, delete the highest-ordinal pod at an old revision. */
  private async rollOut(pods: Array<[number, Pod]>): Promise<void> {
    const strategy = this.manifest.spec?.updateStrategy;
    if (strategy?.type === 'OnDelete' || pods.some(([, pod]) => pod.terminating || !pod.ready)) {
      return;
    }
    const partition = strategy?.rollingUpdate?.partition ?? 0;
    const outdated = pods.filter(([ordinal, pod]) => ordinal >= partition && !this.isCurrent(pod)).sort(([a], [b]) => b - a);
    if (outdated.length > 0) {
      await this.host.deletePod(outdated[0][1]);
    }
  }

  private async remove(ordinal: number, pod: Pod): Promise<void> {
    await this.host.deletePod(pod);
    if (this.manifest.spec?.persistentVolumeClaimRetentionPolicy?.whenScaled === 'Delete') {
      for (const claim of this.claimNames(ordinal)) {
        this.host.claims.delete(this.namespace, claim);
      }
    }
  }

  /** The set's pods (`<name>-<ordinal>`) by ordinal. */
  private ownPods(): Array<[number, Pod]> {
    const pattern = new RegExp(`^${this.name.replace(/[.]/g, '\\.')}-(0|[1-9][0-9]*)$`);
    return this.host.pods(this.namespace).flatMap((pod): Array<[number, Pod]> => {
      const match = pattern.exec(pod.name);
      return match ? [[Number(match[1]), pod]] : [];
    });
  }

  private podName(ordinal: number): string {
    return `${this.name}-${ordinal}`;
  }

  private podManifest(ordinal: number): PodManifest {
    const spec = this.manifest.spec!;
    const template = spec.template;
    const name = this.podName(ordinal);
    const templates = spec.volumeClaimTemplates ?? [];
    const claimVolumes: Volume[] = templates.map((claim, index) => {
      const claimName = this.claimNames(ordinal)[index];
      this.host.claims.ensure(this.namespace, claimName);
      return { name: claim.metadata!.name!, persistentVolumeClaim: { claimName } };
    });
    const claimNames = new Set(claimVolumes.map((volume) => volume.name));
    return {
      metadata: {
        ...template.metadata,
        name,
        namespace: this.namespace,
        uid: randomUUID(),
        labels: {
          ...template.metadata?.labels,
          'statefulset.kubernetes.io/pod-name': name,
          'apps.kubernetes.io/pod-index': String(ordinal),
          'controller-revision-hash': this.revision(),
        },
      },
      spec: {
        ...template.spec!,
        hostname: name,
        subdomain: spec.serviceName,
        volumes: [...(template.spec?.volumes ?? []).filter((volume) => !claimNames.has(volume.name)), ...claimVolumes],
      },
    };
  }

  private claimNames(ordinal: number): string[] {
    return (this.manifest.spec?.volumeClaimTemplates ?? []).map((claim) => `${claim.metadata!.name}-${this.podName(ordinal)}`);
  }

  private isCurrent(pod: Pod): boolean {
    return pod.manifest.metadata.labels?.['controller-revision-hash'] === this.revision();
  }

  /** Like the controller-revision-hash label: changes whenever the pod template changes. */
  private revision(): string {
    const hash = createHash('sha256').update(JSON.stringify(this.manifest.spec?.template ?? {})).digest('hex').slice(0, 10);
    return `${this.name}-${hash}`;
  }
}
