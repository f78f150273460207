import { randomBytes, randomUUID } from 'crypto';
import type { ObjectMeta, PodManifest, PodSpec } from './k8s';
import type { Backoff, Pod } from './pod';
import { sleep } from './shell';

/** What a Job needs from the runner. */
export interface JobHost {
  readonly backoff: Backoff;
  createPod(manifest: PodManifest): Promise<Pod>;
  deletePod(pod: Pod): Promise<void>;
}

/** A Job's identity and spec (from a Job, or from a CronJob's jobTemplate). */
export interface JobDefinition {
  readonly name: string;
  readonly namespace: string;
  readonly template: { readonly metadata?: ObjectMeta; readonly spec: PodSpec };
  readonly backoffLimit?: number;
  readonly completions?: number;
  readonly activeDeadlineSeconds?: number;
}

export interface JobResult {
  readonly succeeded: boolean;
  /** Why the Job failed: BackoffLimitExceeded or DeadlineExceeded. */
  readonly reason?: string;
  /** Pods the Job created. */
  readonly attempts: number;
  /** Logs of the last pod, by container (init containers included). */
  readonly logs: Readonly<Record<string, string>>;
}

/**
 * Runs a Job to completion like the Job controller: one pod at a time until `completions` pods
 * succeeded. A failed pod (restartPolicy Never) or each container restart (OnFailure) counts
 * against `backoffLimit`; failed pods are replaced after a back-off (`initialMs`, doubling).
 * Finished pods are deleted once their logs are collected.
 */
export async function runJob(host: JobHost, job: JobDefinition): Promise<JobResult> {
  const restartPolicy = job.template.spec.restartPolicy;
  if (restartPolicy !== 'Never' && restartPolicy !== 'OnFailure') {
    throw new Error(`job ${job.name}: restartPolicy must be Never or OnFailure, not ${restartPolicy}`);
  }
  const backoffLimit = job.backoffLimit ?? 6;
  const deadline = job.activeDeadlineSeconds === undefined ? Infinity : Date.now() + job.activeDeadlineSeconds * 1000;
  const uid = randomUUID();
  let failures = 0;
  let successes = 0;
  let attempts = 0;
  let logs: Record<string, string> = {};
  while (successes < (job.completions ?? 1)) {
    attempts++;
    const pod = await host.createPod(podManifest(job, uid));
    const outcome = await finished(pod, backoffLimit - failures, deadline);
    logs = Object.fromEntries(pod.containerStatuses().map((status) => [status.name, safeLogs(pod, status.name)]));
    await host.deletePod(pod);
    if (outcome === 'DeadlineExceeded') {
      return { succeeded: false, reason: outcome, attempts, logs };
    }
    if (outcome === 'Succeeded') {
      successes++;
      continue;
    }
    failures += Math.max(1, restartsOf(pod));
    if (failures > backoffLimit) {
      return { succeeded: false, reason: 'BackoffLimitExceeded', attempts, logs };
    }
    const delay = Math.min(host.backoff.initialMs * 2 ** (failures - 1), host.backoff.maxMs);
    await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
    if (Date.now() >= deadline) {
      return { succeeded: false, reason: 'DeadlineExceeded', attempts, logs };
    }
  }
  return { succeeded: true, attempts, logs };
}

type Outcome = 'Succeeded' | 'Failed' | 'DeadlineExceeded';

/** Waits for the pod to end, for its restarts to use up the back-off limit (OnFailure), or for the deadline. */
async function finished(pod: Pod, restartsAllowed: number, deadline: number): Promise<Outcome> {
  for (;;) {
    if (pod.phase === 'Succeeded') {
      return 'Succeeded';
    }
    if (pod.phase === 'Failed' || restartsOf(pod) > restartsAllowed) {
      return 'Failed';
    }
    if (Date.now() >= deadline) {
      return 'DeadlineExceeded';
    }
    await sleep(100);
  }
}

function restartsOf(pod: Pod): number {
  return pod.containerStatuses().reduce((sum, status) => sum + status.restartCount, 0);
}

function safeLogs(pod: Pod, container: string): string {
  try {
    return pod.logs(container);
  } catch {
    return ''; // never started
  }
}

function podManifest(job: JobDefinition, uid: string): PodManifest {
  return {
    metadata: {
      ...job.template.metadata,
      name: `${job.name}-${randomBytes(3).toString('hex').slice(0, 5)}`,
      namespace: job.namespace,
      uid: randomUUID(),
      labels: {
        ...job.template.metadata?.labels,
        'batch.kubernetes.io/controller-uid': uid,
        'batch.kubernetes.io/job-name': job.name,
        'controller-uid': uid,
        'job-name': job.name,
      },
    },
    spec: job.template.spec,
  };
}
